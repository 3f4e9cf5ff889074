// Layer 2: adadiff.server.generateAssets over stdio, on a scratch workspace: the images and the
// lock it writes, its work-done progress, cancellation from the request and from the progress,
// workspace trust, errors of the core, and hovers that keep answering while a batch runs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import {
  CancellationTokenSource,
  CodeLensRequest,
  ExecuteCommandRequest,
  type Hover,
  HoverRequest,
  type MarkupContent,
  type ProgressToken,
  ResponseError,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';
import { describeAsset, type Lock } from '../../server/assets';
import { AssetTargetRequest, ClientCommands, type GenerateAssetsArgs, type GenerateAssetsResult, type PromptCommandArgs, ServerCommands } from '../../shared/protocol';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { startServer, type TestServer } from './harness';
import { tempDir } from '../temp-dirs';

const GUIDE = [
  '# Guide',
  '',
  '![a red fox in the snow, watercolour](img/fox.png)', // 2
  '',
  '```prompt',
  'out: img/lighthouse.png',
  'seed: 3',
  'a lighthouse at dusk, oil painting',
  '```',
  '',
].join('\n');

/** Three images slow enough (1024x1024 on the fixture model) to cancel between them. */
const SLOW = ['a', 'b', 'c'].map((n) => ['```prompt', `out: ${n}.png`, 'size: 1024', 'steps: 20', `a slow painting number ${n}`, '```', ''].join('\n')).join('\n');

type Progress = { kind: string; title?: string; message?: string; percentage?: number; cancellable?: boolean };

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const readLock = (root: string): Lock => JSON.parse(readFileSync(join(root, 'adadiff.lock.json'), 'utf8'));
const hoverText = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';

/** Every lock entry names a file on disk with exactly that hash, and no write is half done. */
function assertConsistent(root: string): Lock {
  const lock = readLock(root);
  for (const [key, entry] of Object.entries(lock.assets)) {
    assert.ok(existsSync(join(root, key)), `${key} is in the lock and on disk`);
    assert.equal(sha256(join(root, key)), entry.sha256, `${key}: the lock's hash is the file's`);
    assert.equal(entry.replaces, undefined, `${key}: no write left half done`);
  }
  return lock;
}

function tempFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.tmp')) : [];
}

/** Runs the command with a client-side work-done token, collecting its progress. */
function generate(server: TestServer, args: GenerateAssetsArgs, onProgress?: (p: Progress, cancel: () => void) => void) {
  const token = `assets-${Math.random().toString(36).slice(2)}`;
  const progress: Progress[] = [];
  const cts = new CancellationTokenSource();
  const sub = server.conn.onProgress(WorkDoneProgress.type, token, (p) => {
    progress.push(p);
    onProgress?.(p, () => cts.cancel());
  });
  const result = server.conn
    .sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.generateAssets, arguments: [args], workDoneToken: token }, cts.token)
    .finally(() => sub.dispose()) as Promise<GenerateAssetsResult>;
  return { result, progress };
}

describe('adadiff.server.generateAssets', () => {
  let server: TestServer;
  let root: string;

  before(async () => {
    const fixtures = await ensureFixtures();
    root = tempDir('adadiff-assets-ws-');
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'docs', 'guide.md'), GUIDE);
    server = await startServer({ workspace: root, init: { trusted: true }, settings: () => ({ model: { path: fixtures.optimum } }) });
  });

  after(async () => {
    await server?.stop();
  });

  test('generates the missing images and the lock, with the plan and per-asset progress', async () => {
    const { result, progress } = generate(server, {});
    const { summary, message } = await result;
    assert.equal(summary.root, root);
    assert.deepEqual(summary.assets.map((a) => [a.out, a.action]), [
      ['docs/img/fox.png', 'generated'],
      ['docs/img/lighthouse.png', 'generated'],
    ]);
    assert.equal(summary.counts.generated, 2);
    for (const a of summary.assets) assert.equal(a.description, describeAsset(a), 'each asset comes with the line adadiff assets prints');
    assert.ok(summary.ok && !summary.cancelled);
    assert.ok(summary.stepsUsed > 0 && summary.baselineSteps >= summary.stepsUsed);
    assert.match(message, /^generated 2 of 2 assets, 0 current in [\d.]+ s; \d+ steps vs \d+ at the fixed schedule/);
    for (const out of ['docs/img/fox.png', 'docs/img/lighthouse.png']) {
      const png = PNG.sync.read(readFileSync(join(root, out)));
      assert.ok(png.width > 0 && png.height > 0);
    }
    const lock = assertConsistent(root);
    assert.deepEqual(Object.keys(lock.assets).sort(), ['docs/img/fox.png', 'docs/img/lighthouse.png']);
    assert.equal(lock.assets['docs/img/lighthouse.png'].seed, 3);

    assert.equal(progress[0].kind, 'begin');
    assert.equal(progress[0].cancellable, true);
    assert.equal(progress.at(-1)!.kind, 'end');
    const messages = progress.map((p) => p.message ?? '');
    assert.ok(messages.some((m) => /^2 of 2 assets to generate: \d+ steps \(fixed schedule: \d+\), ETA ~/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /^1\/2 docs\/img\/fox\.png · ETA ~/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /^2\/2 docs\/img\/lighthouse\.png · ETA ~/.test(m)), messages.join('\n'));
    const percentages = progress.flatMap((p) => (p.kind === 'report' && p.percentage !== undefined ? [p.percentage] : []));
    assert.ok(percentages.some((p) => p >= 50), `percentages ${percentages}`);
    assert.deepEqual(percentages, [...percentages].sort((a, b) => a - b), 'the bar never goes back');
  });

  test('Generate asset is offered on every target the asset core knows: Markdown images and fences with out:', async () => {
    const uri = server.open('docs/guide.md', 'markdown', GUIDE);
    const lenses = (await server.conn.sendRequest(CodeLensRequest.type, { textDocument: { uri } })) ?? [];
    const targets = lenses.filter((l) => l.command?.command === ClientCommands.generateAsset).map((l) => (l.command!.arguments![0] as PromptCommandArgs).target);
    assert.deepEqual(targets, ['img/fox.png', 'img/lighthouse.png']);
  });

  test('a second run generates nothing', async () => {
    const before = sha256(join(root, 'docs/img/fox.png'));
    const { summary, message } = await generate(server, {}).result;
    assert.equal(summary.counts.generated, 0);
    assert.equal(summary.counts.current, 2);
    assert.match(message, /^generated 0 of 2 assets, 2 current/);
    assert.equal(sha256(join(root, 'docs/img/fox.png')), before);
  });

  test('cancelling the request mid-run keeps the finished image and a consistent lock', async () => {
    mkdirSync(join(root, 'slow'));
    writeFileSync(join(root, 'slow', 'slow.md'), SLOW);
    let cancelledAt: string | undefined;
    const { result } = generate(server, {}, (p, cancel) => {
      if (!cancelledAt && p.message?.startsWith('2/3 slow/b.png')) cancel(), (cancelledAt = p.message);
    });
    const { summary, message } = await result;
    assert.ok(cancelledAt, 'cancelled while the second image rendered');
    assert.equal(summary.cancelled, true);
    assert.match(message, /\(cancelled\)$/);
    assert.deepEqual(summary.assets.filter((a) => a.out.startsWith('slow/')).map((a) => [a.out, a.action]), [
      ['slow/a.png', 'generated'],
      ['slow/b.png', 'cancelled'],
      ['slow/c.png', 'cancelled'],
    ]);
    const lock = assertConsistent(root);
    assert.ok(lock.assets['slow/a.png']);
    assert.ok(!lock.assets['slow/b.png'] && !existsSync(join(root, 'slow/b.png')), 'nothing of the interrupted image');
    assert.deepEqual(tempFiles(join(root, 'slow')), []);
    const check = (await generate(server, { check: true }).result).summary;
    assert.deepEqual(check.assets.filter((a) => a.outOfDate).map((a) => [a.out, a.state]), [
      ['slow/b.png', 'missing'],
      ['slow/c.png', 'missing'],
    ]);
  });

  test("the progress's own cancel button stops a run the server started its progress for", async () => {
    let token: ProgressToken | undefined;
    let cancelled = false;
    // No workDoneToken: the server creates the progress (that is what gives it a cancel button).
    server.conn.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      token = params.token;
      server.conn.onProgress(WorkDoneProgress.type, params.token, (p) => {
        if (!cancelled && p.kind === 'report' && p.message?.startsWith('2/2 slow/c.png')) {
          cancelled = true;
          void server.conn.sendNotification(WorkDoneProgressCancelNotification.type, { token: params.token });
        }
      });
      return null;
    });
    const result = (await server.conn.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.generateAssets, arguments: [{}] })) as GenerateAssetsResult;
    assert.ok(token !== undefined && cancelled);
    assert.equal(result.summary.cancelled, true);
    assert.deepEqual(result.summary.assets.filter((a) => a.action !== 'skipped').map((a) => [a.out, a.action]), [
      ['slow/b.png', 'generated'],
      ['slow/c.png', 'cancelled'],
    ]);
    assertConsistent(root);
  });

  test('hovers answer while a batch renders; only: restricts the run to one output', async (t) => {
    const uri = server.open('docs/guide.md', 'markdown', GUIDE);
    const hoverAt = { textDocument: { uri }, position: { line: 2, character: 5 } };
    assert.match(hoverText(await server.conn.sendRequest(HoverRequest.type, hoverAt)), /AdaDiff/); // warm
    writeFileSync(join(root, 'slow', 'big.md'), ['```prompt', 'out: big.png', 'size: 2048', 'steps: 12', 'a very big painting', '```', ''].join('\n'));
    let rendering!: () => void;
    const started = new Promise<void>((r) => (rendering = r));
    const run = generate(server, { only: ['slow/big.png'] }, (p) => {
      if (p.message?.startsWith('1/1 slow/big.png')) rendering();
    });
    let finished = false;
    void run.result.finally(() => (finished = true));
    await started;
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      assert.match(hoverText(await server.conn.sendRequest(HoverRequest.type, hoverAt)), /AdaDiff/);
      times.push(performance.now() - t0);
    }
    assert.equal(finished, false, 'the batch was still running while the hovers were answered');
    const { summary } = await run.result;
    assert.deepEqual(summary.assets.map((a) => [a.out, a.action]), [['slow/big.png', 'generated']]);
    assert.ok(!existsSync(join(root, 'slow/c.png')), 'only the named output');
    const big = summary.assets[0];
    const stepMs = ((big.seconds ?? 0) * 1000) / (big.steps ?? 1);
    t.diagnostic(`hovers during the batch: ${times.map((x) => x.toFixed(1)).join(', ')} ms; a 2048x2048 step ~${stepMs.toFixed(0)} ms`);
    assert.ok(Math.max(...times) < 250, `hovers took ${times.join(', ')} ms`);
    // A hover run on the thread doing the UNet would wait about half a step on average.
    if (stepMs > 40) assert.ok(Math.max(...times) < stepMs / 2, `hovers took ${times.join(', ')} ms, a step ${stepMs.toFixed(0)} ms`);
  });

  test("errors of the core come back as the core's message, and the server keeps running", async () => {
    const lockFile = join(root, 'adadiff.lock.json');
    const good = readFileSync(lockFile);
    writeFileSync(lockFile, '{ "version": 1, "assets": ');
    try {
      await assert.rejects(generate(server, {}).result, (err: unknown) => err instanceof ResponseError && /adadiff\.lock\.json/.test(err.message));
    } finally {
      writeFileSync(lockFile, good);
    }
    await assert.rejects(generate(server, { folder: pathToFileURL(tmpdir()).href }).result, (err: unknown) => err instanceof ResponseError && /is not a workspace folder/.test(err.message));
    await assert.rejects(generate(server, { check: true, force: true }).result, (err: unknown) => err instanceof ResponseError && /check only reports/.test(err.message));
    const { summary } = await generate(server, { dryRun: true }).result;
    assert.deepEqual(summary.assets.filter((a) => a.action === 'would-generate').map((a) => a.out), ['slow/c.png']);
    assert.equal(server.child.exitCode, null);
  });
});

describe('adadiff.server.generateAssets in an untrusted workspace', () => {
  let server: TestServer;
  let root: string;

  before(async () => {
    const fixtures = await ensureFixtures();
    root = tempDir('adadiff-assets-untrusted-');
    writeFileSync(join(root, 'README.md'), GUIDE);
    server = await startServer({ workspace: root, init: { trusted: false, bundledModelPath: fixtures.optimum }, settings: () => ({}) });
  });

  after(async () => {
    await server?.stop();
  });

  test('refuses to write; a dry run still plans, and writes nothing', async () => {
    await assert.rejects(generate(server, {}).result, (err: unknown) => err instanceof ResponseError && /not trusted/.test(err.message));
    const { summary, message } = await generate(server, { dryRun: true }).result;
    assert.deepEqual(summary.assets.map((a) => a.action), ['would-generate', 'would-generate']);
    assert.match(message, /^would generate 2 of 2 assets/);
    assert.deepEqual(readdirSync(root), ['README.md'], 'no image, no lock file');
  });
});

describe('adadiff/assetTarget: whether Generate asset goes through the asset core', () => {
  let server: TestServer;
  let root: string;

  before(async () => {
    root = tempDir('adadiff-asset-target-');
    for (const dir of ['docs/nested/inner', 'docs/.drafts', 'node_modules/pkg', 'build']) mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, '.gitignore'), 'build/\n');
    writeFileSync(join(root, 'docs', '.gitignore'), 'private.md\n');
    // Loads no model: the answer is the walk's rules, read from disk.
    server = await startServer({ workspace: root, init: { trusted: true }, settings: () => ({}) });
  });

  after(async () => {
    await server?.stop();
  });

  const managed = async (rel: string, target: string | undefined = 'img/x.png', base = root) =>
    (await server.conn.sendRequest(AssetTargetRequest, { uri: pathToFileURL(join(base, rel)).href, target: target as string })).managed;

  test('yes for a Markdown file the walk reads; no for what it skips, for code and for files outside the workspace', async () => {
    assert.equal(await managed('README.md'), true);
    assert.equal(await managed('docs/nested/inner/Guide.MARKDOWN'), true);
    assert.equal(await managed('docs/.drafts/x.md'), false, 'hidden folder');
    assert.equal(await managed('node_modules/pkg/README.md'), false, 'node_modules');
    assert.equal(await managed('build/out.md'), false, "the root's .gitignore");
    assert.equal(await managed('docs/private.md'), false, "docs/.gitignore, below its own folder");
    assert.equal(await managed('private.md'), true, "docs/.gitignore does not reach above docs/");
    assert.equal(await managed('gen.py'), false, 'the lens of a code prompt saves through the panel');
    assert.equal(await managed('README.md', ''), false, 'no target');
    assert.equal(await managed('README.md', 'x.png', tmpdir()), false, 'outside every workspace folder');
    assert.equal((await server.conn.sendRequest(AssetTargetRequest, { uri: 'untitled:Untitled-1', target: 'x.png' })).managed, false);
  });
});
