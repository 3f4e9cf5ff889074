// The `adadiff` commands are declared once (server/cli/command.ts): the parser, the usage line,
// --help and the defaults all come from one declaration per command. These tests run the
// declarations without a model: what parses, what is refused and with which words, that --help
// shows the core's own defaults, and that the README names only flags the commands declare.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_CANDIDATES, REWARD_DEFAULTS } from '../../server/adadiff/reward';
import { TRAIN_DEFAULTS } from '../../server/adadiff/trainer';
import { bundledModelDir, UsageError } from '../../server/cli/args';
import { assetsCommand } from '../../server/cli/assets';
import { calibrateCommand } from '../../server/cli/calibrate';
import { type Command, defineCommand, flag, text } from '../../server/cli/command';
import { doctorCommand } from '../../server/cli/doctor';
import { evalCommand } from '../../server/cli/eval';
import { generateCommand } from '../../server/cli/generate';
import { model, seed, steps } from '../../server/cli/options';
import { predictCommand } from '../../server/cli/predict';
import { sheetCommand } from '../../server/cli/sheet';
import { trainPolicyCommand } from '../../server/cli/train-policy';
import { SCHEDULER_NAMES } from '../../server/limits';

const COMMANDS: Command[] = [generateCommand, predictCommand, sheetCommand, assetsCommand, trainPolicyCommand, evalCommand, doctorCommand, calibrateCommand];

/** A command over the shared options that answers with what it was given instead of running. */
function echo() {
  let got: unknown;
  const command = defineCommand({
    name: 'echo',
    summary: 'says what it parsed',
    positionals: { usage: '"PROMPT"', noun: 'prompt', min: 1, max: 1 },
    options: { output: text('FILE', 'out', { short: 'o', required: true }), model, seed, steps, tag: { ...text('T', 'a tag'), multiple: true }, json: flag('json') },
    async run(values, positionals) {
      got = { values, positionals };
      return 0;
    },
  });
  return { command, got: () => got };
}

/** Whether --help lists the flag (`--name ...` or `-o, --output ...`). */
const declares = (command: Command, flagText: string) =>
  command.help().split('\n').some((line) => {
    const names = line.trim().split(/ {2,}/)[0];
    return flagText.startsWith('--') ? new RegExp(`(^|, )${flagText}( |$)`).test(names) : names.startsWith(`${flagText}, --`);
  });

const refuses = (p: Promise<unknown>, message: RegExp) => assert.rejects(p, (err: unknown) => err instanceof UsageError && message.test(err.message));

describe('one declaration gives the parser', () => {
  test('typed values, defaults filled in, repeatable options in order', async () => {
    const e = echo();
    assert.equal(await e.command.run(['a cat', '-o', 'x.png', '--seed', '7', '--steps', 'auto', '--tag', 'b', '--tag', 'a']), 0);
    assert.deepEqual(e.got(), { values: { output: 'x.png', model: bundledModelDir(), seed: 7, steps: 'auto', tag: ['b', 'a'], json: undefined }, positionals: ['a cat'] });
    await e.command.run(['a cat', '-o', 'x.png', '--model', '/m', '--steps', '12', '--json']);
    assert.deepEqual(e.got(), { values: { output: 'x.png', model: '/m', seed: undefined, steps: 12, tag: undefined, json: true }, positionals: ['a cat'] });
  });

  test('refusals name the flag and repeat the usage line', async () => {
    const { command } = echo();
    const usage = /\nusage: adadiff echo "PROMPT" -o FILE \[--model DIR\] \[--seed N\] \[--steps auto\|N\] \[--tag T\]\.\.\. \[--json\]$/;
    await refuses(command.run(['a cat']), new RegExp(`^missing -o FILE${usage.source}`));
    await refuses(command.run(['-o', 'x.png']), new RegExp(`^expected one prompt, got 0${usage.source}`));
    await refuses(command.run(['a', 'b', '-o', 'x.png']), /^expected one prompt, got 2\n/);
    await refuses(command.run(['a', '-o', 'x.png', '--colour', 'red']), /Unknown option '--colour'[^]*\nusage: adadiff echo/);
    await refuses(command.run(['a', '-o', 'x.png', '--seed', '4294967296']), /^--seed must be an integer from 0 to 4294967295, got "4294967296"$/);
    await refuses(command.run(['a', '-o', 'x.png', '--steps', '0']), /^--steps must be an integer from 1 to 1000/);
    await refuses(command.run(['a', '-o', 'x.png', '--json=yes']), /--json/);
  });

  test("the real commands refuse before they open a model, with the words the CLI tests expect", async () => {
    await refuses(generateCommand.run(['x']), /^missing -o FILE\nusage: adadiff generate "PROMPT" -o FILE \[--model DIR\]/);
    await refuses(generateCommand.run(['x', '-o', 'x.png', '--scheduler', 'pndm']), new RegExp(`--scheduler must be one of ${SCHEDULER_NAMES.join(', ')}, got "pndm"`));
    await refuses(generateCommand.run(['x', '-o', 'x.png', '--size', 'big']), /--size must look like 512x512/);
    await refuses(predictCommand.run([]), /^expected one prompt, got 0/);
    await refuses(assetsCommand.run(['a', 'b']), /^expected at most one folder, got 2/);
    await refuses(assetsCommand.run(['--check', '--force']), /^--check only reports; it takes neither --force nor --dry-run/);
    await refuses(sheetCommand.run(['-o', 'x.png']), /^no prompts given\nusage: adadiff sheet \(--prompts FILE \| "PROMPT"\.\.\.\) -o FILE\.png/);
    await refuses(trainPolicyCommand.run([]), /^missing --prompts FILE/);
    await refuses(trainPolicyCommand.run(['--prompts', 'p.txt', 'stray']), /^unexpected argument "stray"/);
    await refuses(trainPolicyCommand.run(['--prompts', 'p.txt', '--estimator', 'adam']), /^--estimator must be one of expected, reinforce, got "adam"/);
    await refuses(trainPolicyCommand.run(['--prompts', 'p.txt', '--candidates', '5,0']), /^--candidates must be an integer from 1 to 1000, got "0"/);
    await refuses(evalCommand.run(['--model', 'm']), /^missing --prompts FILE\nusage: adadiff eval --prompts FILE \[--prompts FILE\]\.\.\./);
    await refuses(doctorCommand.run(['models/x']), /^unexpected argument "models\/x"/);
  });
});

describe('and the help', () => {
  test('--help lists every option with the default the core applies', () => {
    const help = trainPolicyCommand.help();
    assert.match(help, /^usage: adadiff train-policy --prompts FILE \[--model DIR\] \[--held-out FILE\]\.\.\./);
    const defaults: [string, unknown][] = [
      ['epochs', TRAIN_DEFAULTS.epochs],
      ['lr', TRAIN_DEFAULTS.learningRate],
      ['batch-size', TRAIN_DEFAULTS.batchSize],
      ['estimator', TRAIN_DEFAULTS.estimator],
      ['tau', REWARD_DEFAULTS.tau],
      ['lambda', REWARD_DEFAULTS.lambda],
      ['top-k', REWARD_DEFAULTS.topK],
      ['candidates', DEFAULT_CANDIDATES.join(',')],
    ];
    for (const [name, value] of defaults) {
      const line = help.split('\n').find((l) => l.trimStart().startsWith(`--${name} `));
      assert.ok(line?.endsWith(`(default: ${value})`), `--${name}: ${line}`);
    }
    assert.match(sheetCommand.help(), /--scale K +pixels per image pixel \(default: 2\)/);
    assert.match(generateCommand.help(), /-o, --output FILE +the PNG to write \(required\)/);
  });

  test('every command declares every flag the README shows it with', () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
    let checked = 0;
    for (const m of readme.matchAll(/adadiff ([a-z-]+)((?: [^`|\n]*?)?)(?=`|\||\n)/g)) {
      const command = COMMANDS.find((c) => c.name === m[1]);
      if (!command) continue;
      for (const f of m[2].matchAll(/(?<![\w-])(--?[a-z][a-z-]*)/g)) {
        checked++;
        const flagText = f[1];
        // cli.ts answers --help for every command.
        const declared = flagText === '--help' || declares(command, flagText);
        assert.ok(declared, `README: adadiff ${m[1]} ${flagText} is not declared`);
      }
    }
    assert.ok(checked > 20, `only ${checked} README flags read`);
  });
});
