// The CLI contract other issues rely on, run as users run it (the bundled dist/cli.js), on every
// fixture variant: generate writes a PNG whose parameters read back, and repeating it gives the
// same bytes; predict and doctor answer in JSON; bad input exits non-zero with a clear message.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { decodePng, readPngText } from '../../server/pipeline/png';
import { parseParameters } from '../../server/pipeline/parameters';
import { buildOnce, CLI } from '../build';
import { ensureFixtures, ensureLayoutFixtures, makeBrokenFixture } from '../fixtures/make-fixtures';
import { tempDir } from '../temp-dirs';

const run = promisify(execFile);
const tmp = tempDir('adadiff-cli-');
const env = { ...process.env, ADADIFF_CACHE_DIR: join(tmp, 'cache') };

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let fixtures: Awaited<ReturnType<typeof ensureFixtures>>;
before(async () => {
  buildOnce();
  fixtures = await ensureFixtures();
});

test('the bundle runs as the executable npm links for `npx adadiff` (its mode survives a rebuild)', async () => {
  const { stdout } = await run(CLI, ['--version'], { env });
  assert.equal(stdout.trim(), JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
});

describe('adadiff generate', () => {
  for (const variant of ['optimum', 'diffusers-script', 'int64-timestep', 'fp16'] as const) {
    test(`${variant}: PNG with parameters that read back, same bytes on repeat`, async () => {
      const out = join(tmp, `${variant}.png`);
      const args = ['generate', 'a red apple', '-o', out, '--model', fixtures[variant], '--seed', '7', '--steps', '10'];
      const first = await cli(...args);
      assert.equal(first.code, 0, first.stderr);
      const bytes = readFileSync(out);
      const image = decodePng(bytes);
      assert.equal(image.width, 64);
      assert.equal(image.height, 64);
      const params = parseParameters(readPngText(bytes).parameters);
      assert.equal(params.prompt, 'a red apple');
      assert.equal(params.fields['Steps'], '10');
      assert.equal(params.fields['Seed'], '7');
      assert.equal(params.fields['Sampler'], 'DDIM');
      assert.equal(params.fields['Size'], '64x64');
      assert.match(params.fields['Model hash'], /^[0-9a-f]{10}$/);
      assert.equal(params.fields['AdaDiff baseline steps'], '50');
      assert.equal(await cli(...args).then((r) => r.code), 0);
      assert.ok(readFileSync(out).equals(bytes), 'a repeated run must give byte-identical output');
    });
  }

  test('seed, prompt and steps each change the image; the negative prompt is recorded', async () => {
    const model = fixtures.optimum;
    const files = {
      base: ['a red apple', '--seed', '1'],
      seed: ['a red apple', '--seed', '2'],
      prompt: ['a blue rocket', '--seed', '1'],
      steps: ['a red apple', '--seed', '1', '--steps', '5'],
    };
    const pixels: Record<string, Buffer> = {};
    for (const [name, args] of Object.entries(files)) {
      const out = join(tmp, `vary-${name}.png`);
      const r = await cli('generate', ...args, '-o', out, '--model', model, '--negative', 'blurry, dark');
      assert.equal(r.code, 0, r.stderr);
      pixels[name] = Buffer.from(decodePng(readFileSync(out)).data);
      if (name === 'base') assert.equal(parseParameters(readPngText(readFileSync(out)).parameters).negativePrompt, 'blurry, dark');
    }
    for (const name of ['seed', 'prompt', 'steps']) assert.ok(!pixels[name].equals(pixels.base), `${name} should change the image`);
  });

  test('every scheduler runs, and a size option is honoured', async () => {
    for (const scheduler of ['ddim', 'euler', 'euler-a', 'dpmpp-2m', 'dpmpp-2m-karras', 'lcm']) {
      const out = join(tmp, `s-${scheduler}.png`);
      const r = await cli('generate', 'cat', '-o', out, '--model', fixtures.optimum, '--scheduler', scheduler, '--steps', '4', '--size', '96x64');
      assert.equal(r.code, 0, r.stderr);
      const png = readFileSync(out);
      assert.deepEqual([decodePng(png).width, decodePng(png).height], [96, 64]);
      assert.match(readPngText(png).parameters, /Size: 96x64/);
    }
  });

  test('a non-Latin-1 prompt goes into iTXt and reads back', async () => {
    const out = join(tmp, 'utf8.png');
    const r = await cli('generate', 'りんご 🍎', '-o', out, '--model', fixtures.optimum, '--steps', '3');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseParameters(readPngText(readFileSync(out)).parameters).prompt, 'りんご 🍎');
  });

  test('a model folder the tests never saw (a copy under another name) works', async () => {
    const copy = join(tmp, 'my-model');
    cpSync(fixtures['diffusers-script'], copy, { recursive: true });
    const r = await cli('generate', 'rocket', '-o', join(tmp, 'copy.png'), '--model', copy, '--steps', '3', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).steps, 3);
  });
});

describe('adadiff predict and doctor', () => {
  test('predict --json without a policy: baseline steps, flagged', async () => {
    const r = await cli('predict', 'a red apple', '--model', fixtures.optimum, '--json');
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout);
    assert.equal(p.policy, false);
    assert.equal(p.steps, 50);
    assert.equal(p.baselineSteps, 50);
    assert.deepEqual(p.candidates, [50]);
    assert.deepEqual(p.probabilities, [1]);
    assert.ok(p.estimatedSeconds > 0);
  });

  test('doctor --json names the providers and why they are not used', async () => {
    const r = await cli('doctor', '--model', fixtures.optimum, '--json');
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout);
    const cpu = d.providers.find((p: { name: string }) => p.name === 'cpu');
    assert.equal(cpu.available, true);
    for (const p of d.providers) if (!p.available) assert.ok(p.reason.length > 10, `${p.name} needs a reason`);
    assert.equal(d.model.parts.unet.used, d.providers.find((p: { available: boolean }) => p.available).name);
  });
});

describe('SD 2.x, SDXL, Turbo and LCM folders without flags', () => {
  // The model's own scheduler, guidance and step count (server/model/layout.ts), and its size.
  const cases = [
    { layout: 'sdxl', name: 'SDXL', size: 128, sampler: 'Euler', steps: '50', guidance: 7 },
    { layout: 'sdxl-turbo', name: 'SDXL', size: 64, sampler: 'Euler a', steps: '4', guidance: 0 },
    { layout: 'lcm', name: 'SD 1.x/2.x-style', size: 64, sampler: 'LCM', steps: '4', guidance: 8.5 },
  ] as const;
  for (const c of cases) {
    test(`${c.layout}: doctor names the layout, generate renders ${c.size}x${c.size} with ${c.sampler} at ${c.steps} steps`, async () => {
      const dir = (await ensureLayoutFixtures())[c.layout];
      const doctor = await cli('doctor', '--model', dir);
      assert.equal(doctor.code, 0, doctor.stderr);
      assert.match(doctor.stdout, new RegExp(`layout +${c.name}`));
      const out = join(tmp, `layout-${c.layout}.png`);
      const r = await cli('generate', 'a red apple', '-o', out, '--model', dir);
      assert.equal(r.code, 0, r.stderr);
      const png = readFileSync(out);
      assert.deepEqual([decodePng(png).width, decodePng(png).height], [c.size, c.size]);
      const params = parseParameters(readPngText(png).parameters);
      assert.deepEqual([params.fields['Sampler'], params.fields['Steps'], Number(params.fields['CFG scale'])], [c.sampler, c.steps, c.guidance]);
    });
  }

  test('a negative prompt that cannot act is said so: LCM (guidance embedding) and Turbo (guidance 0)', async () => {
    const fixturesByLayout = await ensureLayoutFixtures();
    for (const [layout, why] of [['lcm', /--negative has no effect: an LCM model is told the guidance as an embedding/], ['sdxl-turbo', /--negative has no effect: guidance 0 runs no unconditional batch/]] as const) {
      const r = await cli('generate', 'a red apple', '-o', join(tmp, `negative-${layout}.png`), '--model', fixturesByLayout[layout], '--negative', 'blurry', '--steps', '1');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, why);
    }
    const sd = await cli('generate', 'a red apple', '-o', join(tmp, 'negative-sd.png'), '--model', fixtures.optimum, '--negative', 'blurry', '--steps', '1');
    assert.doesNotMatch(sd.stderr, /no effect/);
  });

  test('sd2-v: doctor --json reports v-prediction; predict answers', async () => {
    const dir = (await ensureLayoutFixtures())['sd2-v'];
    const doctor = await cli('doctor', '--model', dir, '--json');
    assert.equal(doctor.code, 0, doctor.stderr);
    assert.deepEqual(JSON.parse(doctor.stdout).model.layout.traits, ['v-prediction']);
    const predict = await cli('predict', 'a red apple', '--model', dir, '--json');
    assert.equal(predict.code, 0, predict.stderr);
    assert.equal(JSON.parse(predict.stdout).steps, 50);
  });
});

describe('bad input exits non-zero with one clear message', () => {
  const cases: [string, () => Promise<string[]>, RegExp, number][] = [
    ['not a model folder', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--model', tmp], /is not a model folder/, 1],
    ['truncated unet', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--model', await makeBrokenFixture('truncated-unet')], /unet[\\/]model\.onnx: is truncated/, 1],
    ['missing external data', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--model', await makeBrokenFixture('missing-external-data')], /model\.onnx_data/, 1],
    ['wrong input name', async () => ['predict', 'x', '--model', await makeBrokenFixture('wrong-input-name')], /unet[\\/]model\.onnx: .*sample/, 1],
    ['steps 0', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--steps', '0'], /--steps must be an integer from 1 to 1000/, 2],
    ['bad size', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--size', 'big'], /--size must look like/, 2],
    ['seed out of range', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--seed', '4294967296'], /--seed must be an integer/, 2],
    ['missing output', async () => ['generate', 'x'], /missing -o FILE/, 2],
    ['unknown scheduler', async () => ['generate', 'x', '-o', join(tmp, 'x.png'), '--scheduler', 'pndm'], /--scheduler must be one of/, 2],
    ['unknown command', async () => ['paint'], /unknown command "paint"/, 2],
  ];
  for (const [name, args, message, code] of cases) {
    test(name, async () => {
      const r = await cli(...(await args()));
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for expected errors');
    });
  }
});

describe('adadiff train-policy and eval', () => {
  test('train on a copy of a fixture, then predict uses the policy and eval prints the JSON contract', async () => {
    const model = join(tmp, 'policy-model');
    cpSync(fixtures.optimum, model, { recursive: true });
    const prompts = join(tmp, 'train.txt');
    const heldOut = join(tmp, 'held.txt');
    writeFileSync(prompts, '# training prompts\na red apple\ncat face\n\na blue rocket\nsun\n');
    writeFileSync(heldOut, 'green apple\ndog face\n');
    const trained = await cli('train-policy', '--model', model, '--prompts', prompts, '--epochs', '5', '--candidates', '5,10,20', '--seeds', '0', '--json');
    assert.equal(trained.code, 0, trained.stderr);
    const { onnxPath, manifestPath } = JSON.parse(trained.stdout);
    assert.ok(readFileSync(onnxPath).length > 100);
    assert.deepEqual(JSON.parse(readFileSync(manifestPath, 'utf8')).candidates, [5, 10, 20]);

    const p = JSON.parse((await cli('predict', 'a red apple', '--model', model, '--json')).stdout);
    assert.equal(p.policy, true);
    assert.deepEqual(p.candidates, [5, 10, 20]);
    assert.ok(p.candidates.includes(p.steps));
    assert.ok(Math.abs(p.probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);

    const plot = join(tmp, 'plot.png');
    const e = await cli('eval', '--model', model, '--prompts', heldOut, '--json', '--plot', plot);
    assert.equal(e.code, 0, e.stderr);
    const evaluation = JSON.parse(e.stdout);
    for (const key of ['avgSteps', 'baselineSteps', 'savingPct', 'tau', 'shareMeetingTau', 'meanQuality', 'baselines']) assert.ok(key in evaluation, key);
    assert.equal(evaluation.baselineSteps, 20);
    assert.equal(decodePng(readFileSync(plot)).width > 100, true);
  });

  test('SDXL-Turbo: --candidates 1,2,3,4,6,8 trains with the model\'s Euler ancestral and guidance 0, and predict picks one of them', async () => {
    const model = join(tmp, 'turbo-policy-model');
    cpSync((await ensureLayoutFixtures())['sdxl-turbo'], model, { recursive: true });
    const prompts = join(tmp, 'turbo-train.txt');
    writeFileSync(prompts, 'a red apple\ncat face\na blue rocket at night over the sea, detailed\nsun\n');
    const trained = await cli('train-policy', '--model', model, '--prompts', prompts, '--epochs', '3', '--candidates', '1,2,3,4,6,8', '--seeds', '0', '--json');
    assert.equal(trained.code, 0, trained.stderr);
    const manifest = JSON.parse(readFileSync(JSON.parse(trained.stdout).manifestPath, 'utf8'));
    assert.deepEqual([manifest.candidates, manifest.scheduler, manifest.guidance, manifest.baselineSteps], [[1, 2, 3, 4, 6, 8], 'euler-a', 0, 8]);
    const p = JSON.parse((await cli('predict', 'a red apple', '--model', model, '--json')).stdout);
    assert.equal(p.policy, true);
    assert.ok([1, 2, 3, 4, 6, 8].includes(p.steps));
  });

  test('eval on a model without a policy says how to get one', async () => {
    const heldOut = join(tmp, 'held2.txt');
    writeFileSync(heldOut, 'x\n');
    const r = await cli('eval', '--model', fixtures.optimum, '--prompts', heldOut);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /has no step policy .* adadiff train-policy/);
  });
});

describe('adadiff sheet', () => {
  test('a grid of prompts x steps whose cells are the images generate makes', async () => {
    const sheet = join(tmp, 'sheet.png');
    const r = await cli('sheet', 'a red apple', 'cat', '-o', sheet, '--model', fixtures.optimum, '--steps', '3,6', '--seed', '4', '--scale', '1');
    assert.equal(r.code, 0, r.stderr);
    const grid = decodePng(readFileSync(sheet));
    // label column 170 + 2 x (64 + 8) + 8 wide, header 18 + 2 x (64 + 8) + 8 high
    assert.deepEqual([grid.width, grid.height], [170 + 2 * 72 + 8, 18 + 2 * 72 + 8]);
    const single = join(tmp, 'cell.png');
    assert.equal((await cli('generate', 'cat', '-o', single, '--model', fixtures.optimum, '--steps', '6', '--seed', '4')).code, 0);
    const cell = decodePng(readFileSync(single));
    // the second row, second column of the grid is that image, pixel for pixel
    const [x0, y0] = [170 + 72, 18 + 72];
    for (const [x, y] of [[0, 0], [31, 17], [63, 63]]) {
      const g = ((y0 + y) * grid.width + x0 + x) * 3;
      const c = (y * 64 + x) * 3;
      assert.deepEqual([...grid.data.subarray(g, g + 3)], [...cell.data.subarray(c, c + 3)]);
    }
  });
});

describe('the bundled model', () => {
  test('generates 64x64 deterministically with its step policy', async () => {
    const out = join(tmp, 'bundled.png');
    const first = await cli('generate', 'red apple emoji', '-o', out, '--seed', '3', '--json');
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout);
    assert.equal(summary.size, '64x64');
    // The shipped policy has a first-step-aware network, so the render takes its refined count.
    assert.equal(typeof summary.firstStepSteps, 'number', first.stdout);
    assert.equal(summary.steps, summary.firstStepSteps, 'steps come from the shipped policy');
    const bytes = readFileSync(out);
    assert.equal((await cli('generate', 'red apple emoji', '-o', out, '--seed', '3')).code, 0);
    assert.ok(readFileSync(out).equals(bytes), 'same inputs, same bytes');
    assert.match(readPngText(bytes).parameters, /AdaDiff predicted steps: \d+, AdaDiff first-step steps: \d+, AdaDiff baseline steps: 50/);
  });

  test('predict makes the first step of the seed it is given: the count generate renders with that seed, the prompt-only one beside it', async () => {
    for (const [prompt, seed] of [['red apple emoji', '3'], ['an old wooden sailing ship clip art', '1']]) {
      const p = JSON.parse((await cli('predict', prompt, '--seed', seed, '--json')).stdout);
      const g = JSON.parse((await cli('generate', prompt, '-o', join(tmp, 'predicted.png'), '--seed', seed, '--json')).stdout);
      assert.deepEqual(p.firstStep, { seed: Number(seed), promptOnlySteps: g.predictedSteps });
      assert.equal(p.steps, g.steps, prompt);
      const text = await cli('predict', prompt, '--seed', seed);
      assert.match(text.stdout, new RegExp(`^${g.steps} steps \\(policy, after the first denoising step with seed ${seed}; the prompt alone: ${g.predictedSteps}\\)`));
    }
  });
});
