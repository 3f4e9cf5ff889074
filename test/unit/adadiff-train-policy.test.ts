// The reward table, training, export and evaluation end to end on the generated fixture model
// (64x64 images, 32-wide text features): small, but every piece runs for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { openModelFolder } from '../../server/model/folder';
import { loadModel, type LoadedModel } from '../../server/model/session';
import { GraphBuilder, tensor } from '../../server/onnx';
import { generate } from '../../server/pipeline/generate';
import { formatParameters } from '../../server/pipeline/parameters';
import { Engine } from '../../server/engine';
import { decodePng, encodePng } from '../../server/pipeline/png';
import { ssim } from '../../server/adadiff/ssim';
import { loadPolicy } from '../../server/adadiff/policy';
import { buildRewardTable, fidelityScorer, loadOnnxScorer, type TableProgress } from '../../server/adadiff/reward-table';
import { trainPolicy, type TrainPolicyProgress } from '../../server/adadiff/train-policy';
import { tempDirAsync } from '../temp-dirs';

let modelPromise: Promise<LoadedModel> | undefined;
const fixtureModel = () =>
  (modelPromise ??= (async () => loadModel(await openModelFolder((await ensureFixtures()).optimum), { providers: ['cpu'] }))());

const settings = { scheduler: 'ddim', guidance: 7 } as const;

test('reward table: same noise per seed, cached as JSON lines, resumable, extra steps reuse the cache', async (t) => {
  const model = await fixtureModel();
  const cacheDir = await tempDirAsync('adadiff-table-');
  t.after(() => rm(cacheDir, { recursive: true, force: true }));
  const progress: TableProgress[] = [];
  const opts = { ...settings, prompts: ['a red apple', 'a castle on a hill'], seeds: [0, 1], steps: [2, 4, 8], scorer: fidelityScorer, cacheDir };
  const first = await buildRewardTable(model, { ...opts, onProgress: (p) => progress.push(p) });
  assert.deepEqual(first.steps, [2, 4, 8]);
  assert.equal(first.rows.length, 2);
  for (const seeds of first.rows) {
    assert.equal(seeds.length, 2);
    // The longest schedule is the reference and scores exactly 1 against itself.
    for (const row of seeds) {
      assert.equal(row.quality[2], 1);
      assert.ok(row.quality[0] < 1 && row.quality[0] > -1);
      assert.ok(row.ms.every((ms) => ms > 0));
    }
  }
  assert.notDeepEqual(first.rows[0][0].quality, first.rows[0][1].quality, 'seeds differ');
  assert.deepEqual(progress.map((p) => p.done), [1, 2, 3, 4]);
  assert.equal(progress.at(-1)!.etaSeconds, 0);
  assert.ok(progress[0].etaSeconds! > 0);
  assert.equal(progress.at(-1)!.cached, 0);
  assert.ok(first.cacheFile && (await readdir(cacheDir)).includes(path.basename(first.cacheFile)));

  // A killed run leaves a partial line; the next run ignores it and generates nothing.
  await appendFile(first.cacheFile!, '{"prompt": "a red ap');
  const again = await buildRewardTable(model, opts);
  assert.deepEqual(again.rows, first.rows);
  assert.equal(again.generatedSeconds, 0);

  // Asking for another step count generates only that column (plus the reference to score it).
  const generated: number[] = [];
  const more = await buildRewardTable(model, { ...opts, steps: [2, 3, 4, 8], onProgress: (p) => generated.push(p.cached) });
  assert.deepEqual(generated, [0, 0, 0, 0]);
  assert.deepEqual(more.rows[1][1].quality.filter((_, j) => j !== 1), first.rows[1][1].quality);
  // ... and the new score is SSIM(3 steps, 8 steps) from the same seed.
  const image = async (steps: number) => (await generate(model, { ...settings, prompt: 'a castle on a hill', seed: 1, steps })).image;
  assert.equal(more.rows[1][1].quality[1], ssim(await image(3), await image(8)));
  const lines = (await readFile(first.cacheFile!, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 1 + 4 + 1 + 4); // header, first run, the partial line, the extra column

  // A different guidance is a different table.
  const other = await buildRewardTable(model, { ...opts, guidance: 3 });
  assert.notEqual(other.cacheFile, first.cacheFile);
});

test('ONNX scorer contract: image [1,3,H,W] in 0..1 (+ input_ids) -> score; fixed sizes are resized to fit', async (t) => {
  const dir = await tempDirAsync('adadiff-scorer-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Mean brightness of a 16x16 resize, plus 0 * the number of ids (just to consume input_ids).
  const g = new GraphBuilder('scorer');
  const image = g.input('image', 'float32', [1, 3, 16, 16]);
  const ids = g.input('input_ids', 'int64', [1, 'tokens']);
  const mean = g.op('ReduceMean', [image], { keepdims: { kind: 'int', value: 0 } });
  const zero = g.op('Mul', [g.op('Cast', [g.op('ReduceSum', [ids], { keepdims: { kind: 'int', value: 0 } })], { to: { kind: 'int', value: 1 } }), g.constant(tensor('float32', [], [0]))]);
  g.op('Add', [mean, zero], {}, 'score');
  g.output('score', 'float32', []);
  const file = path.join(dir, 'scorer.onnx');
  await g.save(file);

  const model = await fixtureModel();
  await assert.rejects(loadOnnxScorer(file), /needs the model's tokenizer/);
  const scorer = await loadOnnxScorer(file, model.tokenizer);
  t.after(() => scorer.dispose?.());
  assert.equal(scorer.kind, 'onnx');
  const grey = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(51) };
  assert.ok(Math.abs((await scorer.score(grey, { prompt: 'a cat' })) - 0.2) < 1e-6);
});

test('trainPolicy writes a loadable policy and evaluates it on held-out prompts', async (t) => {
  const model = await fixtureModel();
  const outDir = await tempDirAsync('adadiff-train-');
  t.after(() => rm(outDir, { recursive: true, force: true }));
  const phases = new Set<string>();
  const result = await trainPolicy(model, {
    ...settings,
    prompts: ['a red apple', 'a castle on a hill at sunset, ornate, intricate', 'a cat', 'portrait of an old sailor, detailed'],
    heldOut: [{ name: 'held-out', prompts: ['a green apple', 'a tower on a hill, ornate, intricate', 'a dog'] }],
    seeds: [0],
    candidates: [2, 4, 8],
    training: { epochs: 5, architecture: { hiddenDim: 8, mlpDim: 8 } },
    outDir,
    cacheDir: path.join(outDir, 'cache'),
    onProgress: (p: TrainPolicyProgress) => phases.add(p.phase),
  });
  assert.deepEqual([...phases], ['features', 'table', 'train', 'export', 'evaluate']);
  assert.equal(result.log.length, 5);
  const m = result.manifest;
  assert.deepEqual(m.candidates, [2, 4, 8]);
  assert.equal(m.baselineSteps, 8);
  assert.deepEqual(m.features, { source: 'text_encoder.last_hidden_state', tokens: 77, dim: 32 });
  assert.equal(m.training.promptsSha256.length, 64);
  assert.equal(m.training.modelHash, await model.folder.hash());
  const e = result.evaluation!;
  assert.equal(e.prompts, 3);
  assert.equal(e.tau, 0.9);
  assert.ok([2, 4, 8].some((s) => Math.abs(e.avgSteps - s) < 1e-9) || (e.avgSteps > 2 && e.avgSteps < 8));
  assert.equal(e.baselines.full.meanQuality, 1);
  assert.deepEqual(e.fixedCurve.map((r) => r.steps), [2, 4, 8]);
  const png = decodePng(result.plotPng!);
  assert.equal(png.width, 640);

  // What is on disk is what was returned, evaluation included, and it loads and predicts.
  const onDisk = JSON.parse(await readFile(result.manifestPath, 'utf8'));
  assert.deepEqual(onDisk.evaluation, JSON.parse(JSON.stringify(e)));
  const policy = await loadPolicy(outDir);
  assert.ok(policy);
  t.after(() => policy.dispose());
  const ids = model.tokenizer.encode('a red apple');
  const text = await model.encodeText(['a red apple']);
  const mask = new Float32Array(ids.ids.length).map((_, i) => (i < ids.tokens ? 1 : 0));
  const p = await policy.predict(text.hidden, text.dims, mask);
  assert.ok([2, 4, 8].includes(p.steps));
  // The fixture's leading spacing gives every schedule its own first timestep: prompt-only, and it says why.
  assert.equal(m.firstStep, undefined);
  assert.match(result.firstStepSkipped!, /ddim: the 2-step schedule starts at timestep \d+, the 4-step one at \d+/);
});

test('trainPolicy with trailing spacing also trains, exports and evaluates the first-step-aware policy, set by set', async (t) => {
  const dir = await tempDirAsync('adadiff-trailing-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const modelDir = path.join(dir, 'model');
  await cp((await ensureFixtures()).optimum, modelDir, { recursive: true });
  const config = path.join(modelDir, 'scheduler', 'scheduler_config.json');
  await writeFile(config, JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), timestep_spacing: 'trailing' }));
  const model = await loadModel(await openModelFolder(modelDir), { providers: ['cpu'] });
  t.after(() => model.dispose());
  const phases = new Set<string>();
  const result = await trainPolicy(model, {
    ...settings,
    prompts: ['a red apple', 'a castle on a hill at sunset, ornate, intricate', 'a cat', 'portrait of an old sailor, detailed'],
    heldOut: [
      { name: 'like-training.txt', prompts: ['a green apple', 'a dog'] },
      { name: 'unlike-training.txt', prompts: ['logo for a coffee shop', 'pixel art sword'] },
    ],
    seeds: [0, 1],
    candidates: [2, 4, 8],
    training: { epochs: 5, architecture: { hiddenDim: 8, mlpDim: 8 } },
    cacheDir: path.join(dir, 'cache'),
    onProgress: (p: TrainPolicyProgress) => phases.add(p.phase),
  });
  assert.deepEqual([...phases], ['features', 'table', 'first-step', 'train', 'export', 'evaluate']);
  const f = result.manifest.firstStep!;
  assert.equal(f.images, 8);
  assert.equal(f.architecture.extraDim, 16);
  assert.equal(f.architecture.readsPrompt, false, 'the first-step network reads the first call alone');
  assert.equal(f.features.length, 16);
  assert.equal(result.firstStepSkipped, undefined);
  assert.deepEqual(result.evaluations!.map((e) => e.name), ['like-training.txt', 'unlike-training.txt']);
  for (const e of result.evaluations!) {
    assert.equal(e.firstStep!.prompts, 2);
    assert.equal(e.firstStep!.seeds.length, 2);
    assert.ok(e.promptOnly.oracles!.image.avgSteps <= e.promptOnly.oracles!.prompt.avgSteps + 1e-9, 'per-image bound below the per-prompt bound');
  }
  const onDisk = JSON.parse(await readFile(result.manifestPath, 'utf8'));
  assert.deepEqual(onDisk.evaluations, JSON.parse(JSON.stringify(result.evaluations)));
  const policy = (await loadPolicy(modelDir))!;
  t.after(() => policy.dispose());
  assert.ok(policy.refine, 'policy-first-step.onnx loads');

  // The engine lets it choose for its own settings, reuses the first call, and records both counts.
  const engine = new Engine({ cacheDir: path.join(dir, 'engine-cache'), providers: ['cpu'] });
  t.after(() => engine.dispose());
  const handle = await engine.open(modelDir);
  assert.equal((await handle.predict('a red apple')).refinedAfterFirstStep, true);
  const rendered = await handle.render({ prompt: 'a red apple', seed: 5 });
  assert.ok(rendered.refinedSteps !== undefined && [2, 4, 8].includes(rendered.refinedSteps));
  assert.equal(rendered.parameters.steps, rendered.refinedSteps);
  assert.match(formatParameters(rendered.parameters), new RegExp(`AdaDiff first-step steps: ${rendered.refinedSteps}`));
  const plain = await generate(model, { prompt: 'a red apple', seed: 5, steps: rendered.refinedSteps, ...settings });
  assert.ok(encodePng(plain.image).equals(encodePng(rendered.result.image)), 'exactly the chosen count\'s image');
  // Other settings than the policy's: the prompt-only choice, nothing refined.
  const other = await handle.render({ prompt: 'a red apple', seed: 5, scheduler: 'euler' });
  assert.equal(other.refinedSteps, undefined);
  assert.equal(other.parameters.steps, other.prediction.steps);
  const fixed = await handle.render({ prompt: 'a red apple', seed: 5, steps: 3 });
  assert.equal(fixed.refinedSteps, undefined);
});
