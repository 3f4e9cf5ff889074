// Layer 2: training a step policy through the language server (adadiff.server.trainPolicy), over
// stdio: refusals, the estimate, a real training run on a copy of the fixture model (progress,
// files, status, hovers and previews with the new policy), and cancellation with a resumable table.
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import {
  CancellationTokenSource,
  ExecuteCommandRequest,
  HoverRequest,
  LSPErrorCodes,
  type MarkupContent,
  type ProgressToken,
  ResponseError,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressBegin,
  type WorkDoneProgressReport,
} from 'vscode-languageserver-protocol/node';
import { PreviewRequest, type PromptsFileResult, ServerCommands, type TrainEstimate, type TrainEstimateArgs, type TrainPolicyArgs, type TrainPolicyResult, type WorkspacePromptsResult } from '../../shared/protocol';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { startServer, type TestServer } from './harness';
import { tempDir } from '../temp-dirs';

const PROMPTS = [
  'a red circle',
  'a blue square on white',
  'a cat',
  'a castle on a hill at sunset, ornate towers, dramatic clouds, oil painting',
  'portrait of an old sailor with a pipe, detailed wrinkles, rembrandt lighting',
  'a green apple',
  'a busy market street in the rain at night, neon signs, reflections, crowds with umbrellas',
  'a yellow star',
  'two dogs playing with a ball in a park',
  'an isometric city block with shops, trees, cars and tiny people, pastel colours',
];

const MD = '# Art\n\n![a lighthouse on a cliff at dusk](img/lighthouse.png)\n';
const hoverText = async (server: TestServer, uri: string) =>
  ((await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 2, character: 6 } }))?.contents as MarkupContent | undefined)?.value ?? '';

function command<T>(server: TestServer, name: string, args: object, token?: CancellationTokenSource): Promise<T> {
  return server.conn.sendRequest(ExecuteCommandRequest.type, { command: name, arguments: [args] }, token?.token) as Promise<T>;
}

const train = (server: TestServer, args: TrainPolicyArgs, token?: CancellationTokenSource) => command<TrainPolicyResult>(server, ServerCommands.trainPolicy, args, token);
const estimate = (server: TestServer, args: TrainEstimateArgs) => command<TrainEstimate>(server, ServerCommands.estimateTraining, args);

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof ResponseError && err.code === LSPErrorCodes.RequestFailed && message.test(err.message));
}

interface Progress {
  token: ProgressToken;
  begin?: WorkDoneProgressBegin;
  reports: WorkDoneProgressReport[];
  ended: boolean;
}

/** Records the server-created work-done progress (window/workDoneProgress/create, then $/progress). */
function recordProgress(server: TestServer): Progress[] {
  const all: Progress[] = [];
  server.conn.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    const p: Progress = { token, reports: [], ended: false };
    all.push(p);
    server.conn.onProgress(WorkDoneProgress.type, token, (v) => {
      if (v.kind === 'begin') p.begin = v;
      else if (v.kind === 'report') p.reports.push(v);
      else p.ended = true;
    });
    return null;
  });
  return all;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('training a step policy over stdio', () => {
  let server: TestServer;
  let root: string;
  let fixture: string;
  /** Model folders by settings scope: train/ trains fast at 64x64, slow/ at 1024x1024 (about a second per prompt and seed, to cancel in). */
  const models: Record<string, string> = {};
  let progress: Progress[];

  before(async () => {
    fixture = (await ensureFixtures()).optimum;
    root = tempDir('adadiff-train-lsp-');
    for (const name of ['train', 'slow']) {
      models[name] = join(root, 'models', name);
      cpSync(fixture, models[name], { recursive: true });
      rmSync(join(models[name], 'adadiff'), { recursive: true, force: true });
    }
    const scope = (uri: string | undefined) => Object.keys(models).find((name) => uri?.includes(`/${name}/`));
    server = await startServer({
      workspace: join(root, 'ws'),
      init: { trusted: true, bundledModelPath: fixture },
      settings: (uri) => {
        const name = scope(uri);
        if (!name) return { model: { path: '' }, size: '64x64' }; // the bundled model
        return { model: { path: models[name] }, size: name === 'slow' ? '1024x1024' : '64x64' };
      },
    });
    progress = recordProgress(server);
  });

  after(async () => {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const scopeUri = (name: string) => `file://${root}/ws/${name}/doc.md`;

  test('refused: fewer than 8 prompts, the bundled model, an unwritable model folder', async (t) => {
    await refused(train(server, { uri: scopeUri('train'), prompts: PROMPTS.slice(0, 7) }), /at least 8 prompts \(got 7\)/);
    await refused(estimate(server, { uri: scopeUri('train'), prompts: 3 }), /at least 8 prompts/);
    await refused(train(server, { uri: scopeUri('bundled'), prompts: PROMPTS }), /bundled model .* copy .* adadiff\.model\.path/s);
    await refused(estimate(server, { uri: scopeUri('bundled') }), /bundled model/);
    assert.equal(existsSync(join(fixture, 'adadiff', 'policy.onnx')), false, 'nothing was written into the bundled model');
    if (process.getuid?.() === 0) return t.skip('root may write anywhere: no unwritable folder to try');
    const locked = join(root, 'models', 'locked');
    cpSync(fixture, locked, { recursive: true });
    chmodSync(locked, 0o555);
    t.after(() => chmodSync(locked, 0o755));
    models.locked = locked;
    await refused(estimate(server, { uri: scopeUri('locked') }), /Cannot write to the model folder/);
  });

  test('estimate: images, UNet steps and seconds from the calibrated cost', async () => {
    const e = await estimate(server, { uri: scopeUri('train'), prompts: 10, seeds: [0], candidates: [2, 4, 8] });
    assert.equal(e.modelPath, models.train);
    assert.equal(e.policy, false);
    assert.deepEqual([e.trainPrompts, e.heldOutPrompts], [8, 2], 'every fifth prompt held out');
    // 8 x (2+4+8) for the table; 2 x (2+4+8 and the mean, 5) for the evaluation.
    assert.equal(e.images, 8 * 3 + 2 * 4);
    assert.equal(e.unetSteps, 8 * 14 + 2 * 19);
    assert.ok(e.seconds > 0);
    const more = await estimate(server, { uri: scopeUri('train'), prompts: 20, seeds: [0, 1], candidates: [2, 4, 8] });
    assert.ok(more.seconds > 3 * e.seconds, 'twice the prompts and seeds: about four times the cost');
    assert.equal(e.minPrompts, 8, 'the client warns below the figure the server refuses at');
  });

  test('a prompts file, read by the server as train-policy --prompts reads it', async () => {
    const file = join(root, 'picked.txt');
    writeFileSync(file, '# my prompts\r\n a red fox \n\n#skipped\na blue lighthouse\n');
    const r = await command<PromptsFileResult>(server, ServerCommands.promptsFile, { uri: pathToFileURL(file).href });
    assert.deepEqual(r.prompts, ['a red fox', 'a blue lighthouse']);
    await refused(command(server, ServerCommands.promptsFile, { uri: pathToFileURL(join(root, 'missing.txt')).href }), /Cannot read the prompts file .*missing\.txt \(ENOENT\)/);
    await refused(command(server, ServerCommands.promptsFile, { uri: 'untitled:Untitled-1' }), /file: URI/);
  });

  test('the workspace prompts: Markdown and code, deduplicated, node_modules and hidden folders skipped', async () => {
    const ws = join(root, 'ws');
    for (const dir of ['docs', 'node_modules/pkg', '.git']) mkdirSync(join(ws, dir), { recursive: true });
    writeFileSync(join(ws, 'docs', 'a.md'), '![a fox in the snow](fox.png)\n\n![a fox in the snow](fox2.png)\n');
    writeFileSync(join(ws, 'gen.py'), 'image = pipe(prompt="a castle at dawn").images[0]\n');
    writeFileSync(join(ws, 'node_modules', 'pkg', 'x.md'), '![a dependency prompt](x.png)\n');
    writeFileSync(join(ws, '.git', 'x.md'), '![a hidden prompt](x.png)\n');
    // An open document counts with its unsaved text.
    server.open('open.md', 'markdown', '![an unsaved prompt](u.png)\n');
    writeFileSync(join(ws, 'open.md'), '![the saved text](u.png)\n');
    const r = await command<WorkspacePromptsResult>(server, ServerCommands.workspacePrompts, {});
    assert.deepEqual(r.prompts, ['a fox in the snow', 'a castle at dawn', 'an unsaved prompt']);
    assert.equal(r.files, 3);
    assert.equal(r.truncated, false);
  });

  test('trains on the worker: progress, policy files, status, hovers and previews use the new policy', async () => {
    const uri = server.open('train/doc.md', 'markdown', MD);
    const before = await hoverText(server, uri);
    assert.match(before, /no trained step policy/);
    assert.match(before, /\[Train a step policy\]\(command:adadiff\.trainPolicy\?/);
    // The worker loads the model for this preview; training must make it load the new policy.
    const preview = { id: 'p', uri, prompt: 'a lighthouse on a cliff at dusk', seed: 1, size: { width: 64, height: 64 } };
    assert.equal((await server.conn.sendRequest(PreviewRequest, preview)).policy, false);

    const started = progress.length;
    const result = await train(server, { uri, prompts: PROMPTS, seeds: [0], candidates: [2, 4, 8], epochs: 20 });
    assert.equal(result.modelPath, models.train);
    assert.deepEqual([result.trainPrompts, result.heldOutPrompts], [8, 2]);
    assert.equal(result.onnxPath, join(models.train, 'adadiff', 'policy.onnx'));
    assert.ok(existsSync(result.onnxPath) && existsSync(result.manifestPath));
    const manifest = JSON.parse(readFileSync(result.manifestPath, 'utf8'));
    assert.deepEqual(manifest.candidates, [2, 4, 8]);
    assert.equal(manifest.training.prompts, 8);
    assert.equal(manifest.evaluation.prompts, 2, 'evaluated on the held-out fifth');
    const e = result.evaluation!;
    assert.equal(e.baselineSteps, 8);
    assert.ok(e.avgSteps >= 2 && e.avgSteps <= 8);
    assert.ok(Math.abs(e.savingPct - 100 * (1 - e.avgSteps / 8)) < 1e-9);
    assert.ok(e.shareMeetingTau !== null && e.shareMeetingTau >= 0 && e.shareMeetingTau <= 1);
    assert.ok(e.meanQuality > -1 && e.meanQuality <= 1);

    // Server-initiated work-done progress through every phase, cancellable, ended.
    const mine = progress.slice(started);
    assert.equal(mine.length, 1);
    const p = mine[0];
    assert.match(p.begin?.title ?? '', /training a step policy for/);
    assert.equal(p.begin?.cancellable, true);
    const messages = p.reports.map((r) => r.message ?? '');
    for (const phase of [/^text features \d+\/8$/, /^reward table \d+\/8/, /^training epoch \d+\/20$/, /^evaluation/]) {
      assert.ok(messages.some((m) => phase.test(m)), `a report matches ${phase}: ${JSON.stringify(messages)}`);
    }
    const percentages = p.reports.map((r) => r.percentage ?? 0);
    assert.deepEqual(percentages, [...percentages].sort((a, b) => a - b), 'the percentage only grows');
    assert.ok(p.ended);

    // The model is loaded again: a fresh status says it has a policy; hovers and previews use it.
    const status = await server.waitForStatus((s) => s.state === 'ready' && s.policy === true && s.model?.path === models.train);
    assert.match(status.detail ?? '', /candidates 2, 4, 8/);
    const now = await hoverText(server, uri);
    assert.match(now, /\*\*AdaDiff: [248] steps\*\* instead of 8/);
    assert.match(now, /```text\n[\s\S]*◀[\s\S]*```/);
    assert.doesNotMatch(now, /Train a step policy/);
    const after = await server.conn.sendRequest(PreviewRequest, { ...preview, id: 'p2' });
    assert.equal(after.policy, true);
    assert.equal(after.baselineSteps, 8);
  });

  test('hovers answer while a slow training runs; Cancel stops it, writes no policy, and a re-run resumes from the cached table', async () => {
    const uri = server.open('slow/doc.md', 'markdown', MD);
    assert.match(await hoverText(server, uri), /no trained step policy/); // loads and calibrates the model
    const started = progress.length;
    const args: TrainPolicyArgs = { uri, prompts: PROMPTS, seeds: [0, 1], candidates: [5, 10, 20, 40] };
    let settled = false;
    const run = train(server, args).finally(() => (settled = true));
    const p = await until('the training progress', () => progress[started]);
    await until('a reward table row', () => (p.reports.some((r) => /^reward table [1-9]/.test(r.message ?? '')) ? true : undefined), 120_000);

    // The table's UNet calls run on the worker: a hover is answered at once, the training goes on.
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      assert.match(await hoverText(server, uri), /AdaDiff/);
      times.push(performance.now() - t0);
    }
    assert.ok(Math.max(...times) < 1000, `hovers took ${times.map((t) => t.toFixed(0)).join(', ')} ms during training`);
    assert.equal(settled, false, 'still training');
    assert.match(p.reports.at(-1)?.message ?? '', /reward table \d+\/16(, ~.* left)?$/);
    const refusedWhileRunning = train(server, args);
    await refused(refusedWhileRunning, /being trained already/);

    // The notification's Cancel (window/workDoneProgress/cancel).
    await server.conn.sendNotification(WorkDoneProgressCancelNotification.type, { token: p.token });
    await assert.rejects(run, (err: unknown) => err instanceof ResponseError && err.code === LSPErrorCodes.RequestCancelled && /resumes/.test(err.message));
    assert.ok(p.ended);
    assert.equal(existsSync(join(models.slow, 'adadiff')), false, 'no policy written');

    // Again, cancelled by the request's own token this time: the rows made before come from the cache.
    const cts = new CancellationTokenSource();
    const again = train(server, args, cts);
    const q = await until('the second progress', () => progress[started + 1]);
    const cachedReport = await until('a report with cached rows', () => q.reports.find((r) => /from the cache/.test(r.message ?? '')), 60_000);
    assert.match(cachedReport.message!, /reward table \d+\/16 \(\d+ from the cache\)/);
    cts.cancel();
    await assert.rejects(again, (err: unknown) => err instanceof ResponseError && err.code === LSPErrorCodes.RequestCancelled);
    assert.equal(existsSync(join(models.slow, 'adadiff')), false);
  });

  test('an untrusted workspace trains nothing', async () => {
    const untrusted = await startServer({ init: { trusted: false, bundledModelPath: fixture }, settings: () => ({ model: { path: models.train } }) });
    try {
      await refused(command(untrusted, ServerCommands.trainPolicy, { prompts: PROMPTS }), /untrusted workspace/);
      await refused(command(untrusted, ServerCommands.estimateTraining, {}), /untrusted workspace/);
    } finally {
      await untrusted.stop();
    }
  });
});
