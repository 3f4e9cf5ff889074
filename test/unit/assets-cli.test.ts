// `adadiff assets` end to end: the real CLI, the real engine, a tiny fixture model. Incremental
// runs, --check exit codes for CI, --json, and a kill -9 in the middle of a batch.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { assertLockMatchesFiles, assertPng, sha, tempWorkspace } from './assets-helpers';

const REPO = path.resolve(__dirname, '..', '..');
const CLI = ['--import', 'tsx', path.join(REPO, 'server', 'cli.ts'), 'assets'];
const cacheDir = tempWorkspace();
const env = { ...process.env, ADADIFF_CACHE_DIR: cacheDir, ADADIFF_PROVIDERS: 'cpu' };

function adadiff(args: string[]) {
  const r = spawnSync(process.execPath, [...CLI, ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('adadiff assets (CLI)', () => {
  let model: string;
  before(async () => {
    model = (await ensureFixtures()).optimum;
  });

  it('generates, then nothing; one changed prompt regenerates one image; --check fails before and passes after', () => {
    const readme = '# Icons\n\n![red apple emoji](img/apple.png)\n![a blue whale](img/whale.png "seed: 3, size: 32x32")\n\n```prompt\nout: img/sun.png, steps: 8\na yellow sun\n```\n';
    const root = tempWorkspace({ 'README.md': readme });
    const before = adadiff([root, '--check', '--model', model]);
    assert.equal(before.code, 1, before.stderr);
    assert.match(before.stdout, /missing +img\/apple\.png +\(README\.md:3\): not generated yet/);
    assert.ok(!existsSync(path.join(root, 'adadiff.lock.json')));

    const first = adadiff([root, '--model', model]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /generated 3 of 3 assets, 0 current in [\d.]+ s; 108 steps vs 150 at the fixed schedule \(28% fewer\)/);
    assert.match(first.stderr, /3 of 3 assets to generate: 108 steps \(fixed schedule: 150\), ETA ~/);
    const whale = assertPng(path.join(root, 'img/whale.png'));
    assert.deepEqual([whale.width, whale.height], [32, 32]);
    assert.match(whale.parameters, /^a blue whale\nSteps: 50, .*Seed: 3/);
    assert.match(assertPng(path.join(root, 'img/sun.png')).parameters, /Steps: 8,/);
    assertLockMatchesFiles(root);
    const shas = ['apple', 'whale', 'sun'].map((n) => sha(path.join(root, `img/${n}.png`)));

    assert.equal(adadiff([root, '--check', '--model', model]).code, 0);
    const second = adadiff([root, '--model', model, '--json']);
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout);
    assert.equal(summary.counts.generated, 0);
    assert.equal(summary.counts.current, 3);

    writeFileSync(path.join(root, 'README.md'), readme.replace('a blue whale', 'a grey whale'));
    const stale = adadiff([root, '--check', '--model', model]);
    assert.equal(stale.code, 1);
    assert.match(stale.stdout, /stale +img\/whale\.png +\(README\.md:4\): prompt changed/);
    const third = adadiff([root, '--model', model]);
    assert.match(third.stdout, /generated 1 of 3 assets, 2 current/);
    assert.notEqual(sha(path.join(root, 'img/whale.png')), shas[1]);
    assert.equal(sha(path.join(root, 'img/apple.png')), shas[0]);
    assert.equal(adadiff([root, '--check', '--model', model]).code, 0);
  });

  it('the same inputs give the same image on a fresh workspace (reproducible from the lock)', () => {
    const files = { 'README.md': '![red apple emoji](a.png "size: 32x32")\n' };
    const [a, b] = [tempWorkspace(files), tempWorkspace(files)];
    for (const root of [a, b]) assert.equal(adadiff([root, '--model', model]).code, 0);
    assert.equal(sha(path.join(a, 'a.png')), sha(path.join(b, 'a.png')));
  });

  it('--check lists modified files and exits 1; --dry-run writes nothing; usage errors exit 2', () => {
    const root = tempWorkspace({ 'README.md': '![red apple emoji](a.png "size: 32x32")\n![pear](b.png "size: 32x32")\n' });
    const dry = adadiff([root, '--dry-run', '--model', model]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would generate 2 of 2 assets/);
    assert.deepEqual(readdirSync(root), ['README.md']);
    assert.equal(adadiff([root, '--model', model]).code, 0);
    writeFileSync(path.join(root, 'a.png'), 'edited');
    const check = adadiff([root, '--check', '--model', model]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /modified, skipped {2}a\.png: edited since it was generated/);
    const run = adadiff([root, '--model', model]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /modified, skipped {2}a\.png/);
    assert.equal(readFileSync(path.join(root, 'a.png'), 'utf8'), 'edited');
    assert.equal(adadiff([root, '--force', '--model', model]).code, 0);
    assert.equal(adadiff([root, '--check', '--model', model]).code, 0);
    assert.equal(adadiff([root, '--check', '--force']).code, 2);
    assert.equal(adadiff([root, root]).code, 2);
  });

  it('exits 1 and writes nothing outside for an output that escapes the workspace', () => {
    const root = tempWorkspace({ 'adadiff.yaml': 'assets:\n  - prompt: escape\n    out: ../escaped.png\n' });
    const r = adadiff([root, '--model', model]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: adadiff\.yaml:2: entry 1: "..\/escaped\.png" leads outside the workspace/);
    assert.ok(!existsSync(path.join(root, '..', 'escaped.png')));
  });

  // The committed example must match the committed bundled model: when either changes, regenerate
  // with `adadiff assets examples/docs` (this is the CI use of --check).
  const examples = path.join(REPO, 'examples', 'docs');
  const bundled = path.join(REPO, 'models', 'default');
  const exampleReady = existsSync(path.join(examples, 'adadiff.lock.json')) && existsSync(path.join(bundled, 'model_index.json'));
  it('examples/docs is current with the bundled model', { skip: !exampleReady && 'no bundled model or no generated example yet' }, () => {
    const r = adadiff([examples, '--check', '--model', bundled]);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\nrun: adadiff assets examples/docs`);
  });

  it('kill -9 in the middle of a batch leaves intact images and a consistent lock; the next run resumes', async () => {
    const count = 10;
    const manifest = ['assets:', ...Array.from({ length: count }, (_, i) => `  - prompt: icon number ${i}\n    out: icons/${i}.png\n    steps: 50\n    size: 96x96\n    seed: ${i}`)].join('\n');
    const root = tempWorkspace({ 'adadiff.yaml': manifest });
    // Warm the calibration cache first, so the batch itself is all rendering.
    assert.equal(adadiff([root, '--dry-run', '--model', model]).code, 0);

    const child = spawn(process.execPath, [...CLI, root, '--model', model], { cwd: REPO, env, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lockFile = path.join(root, 'adadiff.lock.json');
    const deadline = Date.now() + 60_000;
    const finished = () => (existsSync(lockFile) ? Object.values<{ replaces?: unknown }>(JSON.parse(readFileSync(lockFile, 'utf8')).assets).filter((e) => e.replaces === undefined).length : 0);
    while (finished() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    assert.equal(await exited, null, 'killed, not finished');

    const pngs = readdirSync(path.join(root, 'icons')).filter((f) => f.endsWith('.png'));
    assert.ok(pngs.length >= 2 && pngs.length < count, `killed mid-batch (${pngs.length} images)`);
    const lock = assertLockMatchesFiles(root);
    for (const png of pngs) {
      assertPng(path.join(root, 'icons', png));
      assert.equal(lock[`icons/${png}`]?.sha256, sha(path.join(root, 'icons', png)), `${png} is in the lock`);
    }

    const resumed = adadiff([root, '--model', model, '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const summary = JSON.parse(resumed.stdout);
    assert.equal(summary.counts.generated, count - pngs.length);
    assert.equal(summary.counts.current, pngs.length);
    const after = assertLockMatchesFiles(root);
    assert.equal(Object.keys(after).length, count);
    assert.ok(Object.values(after).every((e) => e.replaces === undefined));
    assert.deepEqual(readdirSync(path.join(root, 'icons')).filter((f) => !f.endsWith('.png')), [], 'no temporary files left');
    assert.equal(adadiff([root, '--check', '--model', model]).code, 0);
  });
  it('a size the model cannot make fails that asset alone; the others are generated and locked', () => {
    // The bundled model's UNet takes 16x16 latents only (64x64 images).
    const bundled = path.join(REPO, 'models', 'default');
    const root = tempWorkspace({ 'README.md': '# Mixed\n\n![red apple emoji](img/apple.png)\n![a big cat face](img/big.png "size: 256x256")\n' });
    const r = adadiff([root, '--model', bundled, '--json']);
    assert.equal(r.code, 1, 'a failed asset fails the run');
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.counts.generated, 1);
    assert.equal(summary.counts.failed, 1);
    const big = summary.assets.find((a: { out: string }) => a.out === 'img/big.png');
    assert.equal(big.action, 'failed');
    assert.match(big.error, /256x256/);
    assertPng(path.join(root, 'img/apple.png'));
    assert.ok(!existsSync(path.join(root, 'img/big.png')));
    assert.deepEqual(Object.keys(assertLockMatchesFiles(root)), ['img/apple.png']);
  });
});
