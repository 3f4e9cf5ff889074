// `adadiff`: the command line over the same core the language server hosts.
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
import { type ErrorKind, isExpected, kindOf } from './errors';

const commands: Command[] = [generateCommand, predictCommand, assetsCommand, trainPolicyCommand, evalCommand, sheetCommand, doctorCommand, calibrateCommand, workerCommand, lspCommand];

// The exit codes a script can tell apart: 2 for a wrong command line (as getopt's users expect),
// 130 for a cancel (128 + SIGINT, as a shell reports Ctrl-C), 1 for any other failure.
const EXIT_CODES: Partial<Record<ErrorKind, number>> = { usage: 2, cancelled: 130 };
const exitCode = (err: unknown): number => EXIT_CODES[kindOf(err)] ?? 1;

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
    console.error(`adadiff: ${isExpected(err) ? err.message : err.stack ?? err.message}`);
    process.exit(exitCode(err));
  },
);
