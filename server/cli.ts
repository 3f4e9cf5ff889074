// `adadiff`: the command line over the same core the language server hosts.
import { UsageError } from './cli/args';
import { assetsCommand } from './cli/assets';
import { calibrateCommand } from './cli/calibrate';
import type { Command } from './cli/command';
import { doctorCommand } from './cli/doctor';
import { evalCommand } from './cli/eval';
import { generateCommand } from './cli/generate';
import { lspCommand } from './cli/lsp';
import { predictCommand } from './cli/predict';
import { sheetCommand } from './cli/sheet';
import { trainPolicyCommand } from './cli/train-policy';
import { workerCommand } from './cli/worker';

const commands: Command[] = [generateCommand, predictCommand, assetsCommand, trainPolicyCommand, evalCommand, sheetCommand, doctorCommand, calibrateCommand, workerCommand, lspCommand];

// Errors that describe bad input or a bad model folder: their message is the whole story.
const EXPECTED_ERRORS = new Set(['ModelError', 'PolicyError', 'NoProviderError', 'CancelledError', 'RangeError', 'PoolError', 'JobError']);

function help(): string {
  return ['usage: adadiff <command> [options]', '', ...commands.map((c) => `  ${c.name.padEnd(14)} ${c.summary}`), '', 'adadiff <command> --help for its options'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(help());
    return name ? 0 : 1;
  }
  if (name === '--version') {
    console.log(require('../package.json').version);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`adadiff: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help());
    return 0;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const usage = err instanceof UsageError;
    const expected = usage || EXPECTED_ERRORS.has(err.name);
    console.error(`adadiff: ${expected ? err.message : err.stack ?? err.message}`);
    process.exit(usage ? 2 : 1);
  },
);
