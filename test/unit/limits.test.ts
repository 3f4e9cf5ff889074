// One source for each setting and limit: package.json's contributes.configuration is checked
// against limits.ts and DEFAULT_SETTINGS (as rust-analyzer tests its generated configuration), and
// the settings parser, the CLI's flags and the pipeline take exactly those bounds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { collectTargets } from '../../server/assets/targets';
import { guidanceOption, schedulerOption, seedOption, sizeOption, stepsOption, UsageError } from '../../server/cli/args';
import { Engine } from '../../server/engine';
import { BASELINE_SETTING, GUIDANCE, isImageSize, parseImageSize, SCHEDULER_NAMES, SCHEDULER_SETTINGS, SEED, SIDE, SIZE_SETTING_PATTERN, STEPS } from '../../server/limits';
import { DEFAULT_SETTINGS, readSettings } from '../../server/lsp/settings';
import { validatePolicyManifest } from '../../server/adadiff/policy-manifest';
import { validateSeed } from '../../server/pipeline/noise';
import { SCHEDULER_NAMES as BUILT_SCHEDULERS } from '../../server/pipeline/schedulers';
import { parseOptions } from '../../server/prompts';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { tempWorkspace } from './assets-helpers';
import { tempDir } from '../temp-dirs';

interface Property {
  type: string;
  default: unknown;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  enumDescriptions?: string[];
  pattern?: string;
  items?: { type: string; enum?: string[] };
}

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
const properties: Record<string, Property> = pkg.contributes.configuration.properties;

/** DEFAULT_SETTINGS flattened to the dotted keys package.json uses. */
function flatten(value: object, prefix = 'adadiff'): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(flatten(v, `${prefix}.${k}`)) : [[`${prefix}.${k}`, v]])),
  );
}

describe("package.json's settings against limits.ts", () => {
  test('the same settings, each with the default DEFAULT_SETTINGS gives and the JSON type of that default', () => {
    const defaults = flatten(DEFAULT_SETTINGS);
    // Read by the client alone (client/extension.ts); the server never sees it.
    const clientOnly = ['adadiff.preview.openBeside'];
    assert.deepEqual(Object.keys(properties).filter((k) => !clientOnly.includes(k)).sort(), Object.keys(defaults).sort());
    for (const [key, value] of Object.entries(defaults)) {
      assert.deepEqual(properties[key].default, value, key);
      const type = Array.isArray(value) ? 'array' : Number.isInteger(value) && properties[key].type === 'integer' ? 'integer' : typeof value;
      assert.equal(properties[key].type, type, key);
    }
    assert.equal(DEFAULT_SETTINGS.baselineSteps, 0, 'the baseline setting is not set by default: the model\'s own, else the engine default');
  });

  test('bounds: seed, baseline steps and guidance', () => {
    const bounds = (key: string) => ({ min: properties[key].minimum, max: properties[key].maximum });
    assert.deepEqual(bounds('adadiff.seed'), SEED);
    assert.deepEqual(bounds('adadiff.baselineSteps'), BASELINE_SETTING);
    assert.equal(BASELINE_SETTING.max, STEPS.max);
    assert.deepEqual(bounds('adadiff.guidance'), GUIDANCE);
  });

  test('scheduler names: the setting, the schedulers built, and policy.json all take limits.ts\'s', () => {
    const scheduler = properties['adadiff.scheduler'];
    assert.deepEqual(scheduler.enum, [...SCHEDULER_SETTINGS]);
    assert.deepEqual(SCHEDULER_SETTINGS, ['auto', ...SCHEDULER_NAMES]);
    assert.equal(scheduler.enumDescriptions?.length, scheduler.enum!.length, 'one description per name');
    assert.equal(BUILT_SCHEDULERS, SCHEDULER_NAMES);
    const manifest = (name: string) => () => validatePolicyManifest({ format: 'adadiff-policy', version: 1, candidates: [5], baselineSteps: 5, scheduler: name, guidance: 7, features: { dim: 4, tokens: 4 }, architecture: { outputs: 1, inputDim: 4 } });
    for (const name of SCHEDULER_NAMES) assert.doesNotThrow(manifest(name), name);
    assert.throws(manifest('pndm'), /scheduler "pndm" is not one of ddim, euler, euler-a, dpmpp-2m, dpmpp-2m-karras, lcm/);
  });

  test('the size pattern accepts exactly the sizes the parser accepts, for every side up to 10000', () => {
    const size = properties['adadiff.size'];
    assert.equal(size.pattern, SIZE_SETTING_PATTERN);
    const pattern = new RegExp(size.pattern!, 'u');
    assert.ok(pattern.test(''), 'empty: the model\'s size');
    for (let n = 0; n <= 10_000; n++) {
      for (const text of [`${n}x64`, `64x${n}`]) assert.equal(pattern.test(text), parseImageSize(text) !== undefined, text);
    }
    assert.equal(parseImageSize('500x500'), undefined, 'not a multiple of 8');
    assert.ok(!pattern.test('500x500'));
    assert.deepEqual(parseImageSize(`${SIDE.max}x${SIDE.min}`), { width: SIDE.max, height: SIDE.min });
  });
});

describe('the settings parser takes the same bounds and reports what it ignores', () => {
  const read = (raw: Record<string, unknown>) => readSettings(raw);

  test('the largest and smallest values in bounds are kept, without a problem', () => {
    const edge = { seed: SEED.max, baselineSteps: STEPS.max, guidance: GUIDANCE.max, size: `${SIDE.max}x${SIDE.max}`, scheduler: SCHEDULER_NAMES.at(-1) };
    assert.deepEqual(read(edge), { settings: { ...structuredClone(DEFAULT_SETTINGS), ...edge }, problems: [] });
    const low = { seed: SEED.min, baselineSteps: BASELINE_SETTING.min, guidance: GUIDANCE.min, size: `${SIDE.min}x${SIDE.min}` };
    assert.deepEqual(read(low).problems, []);
  });

  test('a value out of bounds falls back to the default and is reported, one problem each', () => {
    const { settings, problems } = read({ seed: SEED.max + 1, baselineSteps: STEPS.max + 1, guidance: GUIDANCE.max + 0.5, size: '500x500', scheduler: 'pndm', codeLens: { enabled: 'yes' }, prompts: { names: [1] } });
    assert.deepEqual(settings, DEFAULT_SETTINGS);
    assert.deepEqual(problems, [
      `adadiff.baselineSteps: ${STEPS.max + 1} is not an integer from 0 to 1000; using 0`,
      `adadiff.guidance: ${GUIDANCE.max + 0.5} is not a number from 0 to 30; using 0`,
      'adadiff.size: "500x500" is not WIDTHxHEIGHT in multiples of 8 from 8 to 4096, or empty; using ""',
      'adadiff.scheduler: "pndm" is not one of auto, ddim, euler, euler-a, dpmpp-2m, dpmpp-2m-karras, lcm; using "auto"',
      `adadiff.seed: ${SEED.max + 1} is not an integer from 0 to 4294967295; using 0`,
      'adadiff.codeLens.enabled: "yes" is not true or false; using true',
      'adadiff.prompts.names: [1] is not a list of strings; using []',
    ]);
  });

  test('unset values (a client that sends no section, or nulls) are no problem', () => {
    assert.deepEqual(readSettings(undefined), { settings: DEFAULT_SETTINGS, problems: [] });
    assert.deepEqual(readSettings({ guidance: null, model: { path: null } }).problems, []);
  });
});

describe('the CLI and the pipeline take the same bounds', () => {
  const usage = (f: () => unknown, message: RegExp) => assert.throws(f, (err: unknown) => err instanceof UsageError && message.test(err.message));

  test('--seed, --steps, --guidance, --size and --scheduler', () => {
    assert.equal(seedOption(String(SEED.max)), SEED.max);
    usage(() => seedOption(String(SEED.max + 1)), /--seed must be an integer from 0 to 4294967295/);
    assert.equal(stepsOption(String(STEPS.max)), STEPS.max);
    usage(() => stepsOption(String(STEPS.max + 1)), /--steps must be an integer from 1 to 1000/);
    assert.equal(guidanceOption(String(GUIDANCE.max)), GUIDANCE.max);
    usage(() => guidanceOption(String(GUIDANCE.max + 1)), /--guidance must be a number from 0 to 30/);
    assert.deepEqual(sizeOption('4096x8'), { width: 4096, height: 8 });
    usage(() => sizeOption('500x500'), /--size must be multiples of 8 from 8 to 4096/);
    for (const name of SCHEDULER_NAMES) assert.equal(schedulerOption(name), name);
    usage(() => schedulerOption('auto'), /--scheduler must be one of ddim, euler, euler-a, dpmpp-2m, dpmpp-2m-karras, lcm/);
  });

  test('validateSeed and image sizes', () => {
    assert.equal(validateSeed(SEED.max), SEED.max);
    assert.throws(() => validateSeed(SEED.max + 1), /seed must be an integer from 0 to 4294967295/);
    assert.ok(isImageSize(SIDE.max, SIDE.min));
    assert.ok(!isImageSize(SIDE.max + SIDE.multiple, SIDE.min));
  });
});

describe('prompt options out of bounds are reported, not dropped', () => {
  test('the options syntax keeps any number; the asset planner names the bound it breaks', async () => {
    assert.deepEqual(parseOptions('steps: 20000, seed: 4294967296, size: 20000x8'), { steps: 20000, seed: 2 ** 32, size: { width: 20000, height: 8 } });
    const fence = (options: string, out: string) => ['```prompt', `out: ${out}, ${options}`, 'a red fox', '```', ''].join('\n');
    const root = tempWorkspace({ 'README.md': [fence('steps: 20000', 'a.png'), fence('seed: 4294967296', 'b.png'), fence('size: 20000x8', 'c.png')].join('\n') });
    const { targets, problems } = await collectTargets(root);
    assert.deepEqual(targets, []);
    assert.deepEqual(problems.map((p) => p.message), [
      'steps 20000: at most 1000',
      'seed 4294967296: at most 4294967295',
      'size 20000x8: width and height must be multiples of 8 from 8 to 4096',
    ]);
  });

  test('a render refuses a size out of bounds (a preview of such a prompt says why)', async () => {
    const engine = new Engine({ cacheDir: tempDir('adadiff-limits-'), providers: ['cpu'] });
    try {
      const handle = await engine.open((await ensureFixtures()).optimum);
      await assert.rejects(handle.render({ prompt: 'a red fox', steps: 1, width: SIDE.max + SIDE.multiple, height: SIDE.min }), /size 4104x8: width and height must be multiples of 8 from 8 to 4096/);
    } finally {
      await engine.dispose();
    }
  });
});
