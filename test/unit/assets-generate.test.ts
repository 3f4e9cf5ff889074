// generateAssets' bookkeeping, on a stand-in model that renders instantly (the real engine is
// driven by assets-cli.test.ts): incremental runs, check results, the lock after every image,
// edited and untracked files, model and policy changes, interrupted writes, cancel, trust.
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateAssets, type GenerateAssetsOptions } from '../../server/assets';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { assertLockMatchesFiles, assertPng, fakeEngine, sha, tempWorkspace, write } from './assets-helpers';

const README = ['# Fruit', '', '![red apple emoji](img/apple.png)', '![yellow banana on a plate](img/banana.png "seed: 4")', '', '```prompt', 'out: img/cherry.png, steps: 12', 'two cherries', '```', ''].join('\n');

describe('generateAssets', () => {
  let model: string;
  before(async () => {
    model = (await ensureFixtures()).optimum;
  });
  const run = (root: string, extra: Partial<GenerateAssetsOptions> = {}, engine = fakeEngine()) => generateAssets({ root, model, engine, ...extra });

  it('generates what is missing, then nothing; a changed prompt regenerates one image; check fails before and passes after', async () => {
    const root = tempWorkspace({ 'README.md': README });
    const before = await run(root, { check: true });
    assert.equal(before.ok, false);
    assert.equal(before.counts.missing, 3);
    assert.ok(!existsSync(path.join(root, 'adadiff.lock.json')), 'check writes nothing');

    const engine = fakeEngine();
    const first = await run(root, {}, engine);
    assert.equal(first.ok, true);
    assert.equal(first.counts.generated, 3);
    assert.deepEqual(engine.renders.sort(), ['red apple emoji', 'two cherries', 'yellow banana on a plate']);
    assert.equal(first.stepsUsed, 25 + 10 + 12);
    assert.equal(first.baselineSteps, 150);
    assert.ok(first.estimatedSeconds > 0 && first.estimatedSeconds < first.baselineEstimatedSeconds);
    const png = assertPng(path.join(root, 'img/banana.png'));
    assert.match(png.parameters, /^yellow banana on a plate\nSteps: 10, .*Seed: 4/);
    const lock = assertLockMatchesFiles(root);
    assert.deepEqual(Object.keys(lock), ['img/apple.png', 'img/banana.png', 'img/cherry.png']);

    assert.equal((await run(root, { check: true })).ok, true);
    const second = fakeEngine();
    assert.equal((await run(root, {}, second)).counts.generated, 0);
    assert.deepEqual(second.renders, []);

    writeFileSync(path.join(root, 'README.md'), README.replace('red apple emoji', 'green apple emoji'));
    const check = await run(root, { check: true });
    assert.equal(check.ok, false);
    assert.deepEqual(check.assets.filter((a) => a.state === 'stale').map((a) => [a.out, a.reasons]), [['img/apple.png', ['prompt changed']]]);
    const third = fakeEngine();
    const after = await run(root, {}, third);
    assert.deepEqual(third.renders, ['green apple emoji']);
    assert.equal(after.counts.generated, 1);
    assert.equal((await run(root, { check: true })).ok, true);
  });

  it('updates the lock after each image, so a crash keeps what is finished', async () => {
    const root = tempWorkspace({ 'README.md': README });
    const seen: number[] = [];
    await generateAssets(
      { root, model, engine: fakeEngine() },
      {
        onProgress: (p) => {
          if (p.phase === 'render' && p.step === 0) {
            const file = path.join(root, 'adadiff.lock.json');
            seen.push(existsSync(file) ? Object.keys(JSON.parse(readFileSync(file, 'utf8')).assets).length : 0);
          }
        },
      },
    );
    assert.deepEqual(seen, [0, 1, 2]);
  });

  it('reports progress with an ETA from the cost model that falls to zero', async () => {
    const root = tempWorkspace({ 'README.md': README });
    const etas: number[] = [];
    let plan;
    await generateAssets({ root, model, engine: fakeEngine() }, { onPlan: (p) => (plan = p), onProgress: (p) => p.phase === 'render' && etas.push(p.etaSeconds!) });
    assert.equal(plan!.todo.length, 3);
    assert.ok(Math.abs(etas[0] - plan!.estimatedSeconds) < 1e-9, 'the first ETA is the plan estimate');
    assert.ok(etas.at(-1)! < 0.01);
  });

  it('never overwrites a file edited since it was generated, unless forced', async () => {
    const root = tempWorkspace({ 'README.md': README });
    await run(root);
    write(root, 'img/apple.png', 'hand-edited');
    writeFileSync(path.join(root, 'README.md'), README.replace('red apple emoji', 'green apple emoji'));
    const check = await run(root, { check: true });
    assert.equal(check.ok, false);
    assert.equal(check.assets.find((a) => a.out === 'img/apple.png')!.state, 'modified');
    const engine = fakeEngine();
    const result = await run(root, {}, engine);
    assert.deepEqual(engine.renders, []);
    const apple = result.assets.find((a) => a.out === 'img/apple.png')!;
    assert.deepEqual([apple.state, apple.action], ['modified', 'skipped']);
    assert.equal(readFileSync(path.join(root, 'img/apple.png'), 'utf8'), 'hand-edited');
    const forced = await run(root, { force: true });
    assert.equal(forced.counts.generated, 1);
    assertPng(path.join(root, 'img/apple.png'));
    assertLockMatchesFiles(root);
  });

  it('never overwrites an existing file the lock does not know, unless forced; a prose image that exists does not fail --check', async () => {
    const root = tempWorkspace({ 'README.md': README, 'img/apple.png': 'a hand-made picture', 'img/cherry.png': 'another' });
    const check = await run(root, { check: true });
    const state = (out: string) => check.assets.find((a) => a.out === out)!.state;
    assert.deepEqual([state('img/apple.png'), state('img/cherry.png'), state('img/banana.png')], ['untracked', 'untracked', 'missing']);
    const result = await run(root);
    assert.equal(result.counts.generated, 1);
    assert.equal(readFileSync(path.join(root, 'img/apple.png'), 'utf8'), 'a hand-made picture');
    assert.equal(readFileSync(path.join(root, 'img/cherry.png'), 'utf8'), 'another');
    // The Markdown image may be a real screenshot; the fence explicitly names an output.
    const after = await run(root, { check: true });
    assert.equal(after.ok, false);
    rmSync(path.join(root, 'img/cherry.png'));
    await run(root);
    assert.equal((await run(root, { check: true })).ok, true, 'an untracked prose image alone passes --check');
    await run(root, { force: true });
    assertPng(path.join(root, 'img/apple.png'));
  });

  it('a different model or step policy makes assets stale', async () => {
    const fixtures = await ensureFixtures();
    const root = tempWorkspace({ 'README.md': README });
    await run(root);
    const other = await run(root, { check: true, model: fixtures['diffusers-script'] });
    assert.equal(other.counts.stale, 3);
    assert.match(other.assets[0].reasons[0], /^model changed/);

    const withPolicy = path.join(tempWorkspace(), 'model');
    cpSync(model, withPolicy, { recursive: true });
    write(withPolicy, 'adadiff/policy.onnx', 'policy bytes');
    write(withPolicy, 'adadiff/policy.json', '{}');
    const policy = await run(root, { check: true, model: withPolicy });
    assert.equal(policy.counts.stale, 3);
    assert.deepEqual(policy.assets[0].reasons, ['step policy changed']);
  });

  it('resumes after a write was interrupted between the lock update and the rename', async () => {
    const root = tempWorkspace({ 'README.md': README });
    await run(root);
    const lockFile = path.join(root, 'adadiff.lock.json');
    const lock = JSON.parse(readFileSync(lockFile, 'utf8'));
    // As if killed after recording the new apple but before renaming it into place.
    const old = sha(path.join(root, 'img/apple.png'));
    lock.assets['img/apple.png'] = { ...lock.assets['img/apple.png'], sha256: 'f'.repeat(64), replaces: old };
    // ... and a brand-new cherry whose file never appeared, plus a finished banana not yet cleaned up.
    rmSync(path.join(root, 'img/cherry.png'));
    lock.assets['img/cherry.png'].replaces = null;
    lock.assets['img/banana.png'].replaces = 'e'.repeat(64);
    writeFileSync(lockFile, JSON.stringify(lock));
    write(root, 'img/.apple.png.adadiff-999999-abcd.tmp', 'half a png');

    const check = await run(root, { check: true });
    const state = (out: string) => check.assets.find((a) => a.out === out)!.state;
    assert.deepEqual([state('img/apple.png'), state('img/banana.png'), state('img/cherry.png')], ['stale', 'current', 'missing']);
    const engine = fakeEngine();
    await run(root, {}, engine);
    assert.deepEqual(engine.renders.sort(), ['red apple emoji', 'two cherries']);
    const after = assertLockMatchesFiles(root);
    assert.ok(Object.values(after).every((e) => e.replaces === undefined));
    assert.ok(!existsSync(path.join(root, 'img/.apple.png.adadiff-999999-abcd.tmp')), 'a dead run\'s temp file is removed');
  });

  it('cancel stops between steps, keeps finished images and a consistent lock; the next run finishes', async () => {
    const root = tempWorkspace({ 'README.md': README });
    const controller = new AbortController();
    const result = await generateAssets(
      { root, model, engine: fakeEngine({ stepDelayMs: 1 }) },
      { signal: controller.signal, onProgress: (p) => p.phase === 'render' && p.done === 1 && p.step === 3 && controller.abort() },
    );
    assert.equal(result.cancelled, true);
    assert.equal(result.counts.generated, 1);
    assert.deepEqual(result.assets.map((a) => a.action), ['generated', 'cancelled', 'cancelled']);
    assert.deepEqual(Object.keys(assertLockMatchesFiles(root)), ['img/apple.png']);
    assert.equal((await run(root)).counts.generated, 2);
  });

  it('a failed render is reported and the others still generate', async () => {
    const root = tempWorkspace({ 'README.md': README });
    const result = await run(root, {}, fakeEngine({ fail: (r) => r.prompt === 'two cherries' }));
    assert.equal(result.ok, false);
    assert.equal(result.counts.generated, 2);
    assert.match(result.assets.find((a) => a.out === 'img/cherry.png')!.error!, /cannot render/);
    assertLockMatchesFiles(root);
  });

  it('drops lock entries nothing asks for any more, but never deletes images', async () => {
    const root = tempWorkspace({ 'README.md': README });
    await run(root);
    writeFileSync(path.join(root, 'README.md'), '![red apple emoji](img/apple.png)\n');
    const check = await run(root, { check: true });
    assert.deepEqual(check.orphans, ['img/banana.png', 'img/cherry.png']);
    assert.equal(check.ok, true);
    await run(root);
    assert.deepEqual(Object.keys(assertLockMatchesFiles(root)), ['img/apple.png']);
    assert.ok(existsSync(path.join(root, 'img/banana.png')));
  });

  it('`only` restricts a run to some outputs and keeps the other lock entries', async () => {
    const root = tempWorkspace({ 'README.md': README });
    const engine = fakeEngine();
    const result = await run(root, { only: ['img/banana.png'] }, engine);
    assert.deepEqual(engine.renders, ['yellow banana on a plate']);
    assert.equal(result.counts.targets, 1);
    await run(root);
    assert.equal((await run(root, { only: [path.join(root, 'img/apple.png')] })).counts.current, 1);
    assert.equal(Object.keys(assertLockMatchesFiles(root)).length, 3);
  });

  it('in an untrusted workspace it refuses to write, with a clear error; check and dry run still work', async () => {
    const root = tempWorkspace({ 'README.md': README });
    await assert.rejects(run(root, { trusted: false }), { name: 'AssetError', message: /workspace is not trusted/ });
    assert.equal((await run(root, { trusted: false, check: true })).counts.missing, 3);
    const dry = await run(root, { trusted: false, dryRun: true });
    assert.deepEqual(dry.assets.map((a) => a.action), ['would-generate', 'would-generate', 'would-generate']);
    assert.equal(dry.stepsUsed, 47);
    assert.ok(!existsSync(path.join(root, 'img')) && !existsSync(path.join(root, 'adadiff.lock.json')), 'nothing written');
  });

  it('refuses a corrupt lock file rather than overwriting it', async () => {
    const root = tempWorkspace({ 'README.md': README, 'adadiff.lock.json': '{ not json' });
    await assert.rejects(run(root), { name: 'LockError', message: /adadiff\.lock\.json is not valid JSON/ });
    assert.equal(readFileSync(path.join(root, 'adadiff.lock.json'), 'utf8'), '{ not json');
  });
});
