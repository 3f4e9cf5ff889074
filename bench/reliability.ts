// `npm run bench -- reliability`: the long runs of test/reliability, with their figures.
//  - fuzz: ADADIFF_FUZZ_COUNT (10,000) seeded documents through the server, latency percentiles;
//  - hostile documents: each request's latency against the 1 s target;
//  - soak: ADADIFF_SOAK_PREVIEWS (500) previews through the server: memory, threads, open files
//    and render workers of the server and its worker before and after;
//  - concurrency: 200 hovers on fresh prompts while a preview, an asset batch and a policy
//    training run in the render worker, beside the same burst with nothing running;
//  - kill -9 of `adadiff assets` and `train-policy`, ADADIFF_KILL_ROUNDS (20) times each.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CodeLensRequest, ExecuteCommandRequest, HoverRequest } from 'vscode-languageserver-protocol/node';
import { PreviewRequest, ServerCommands, SessionsRequest } from '../shared/protocol';
import { ensureFixtures } from '../test/fixtures/make-fixtures';
import { startServer, type TestServer } from '../test/lsp/harness';
import { fuzzSeed } from '../test/reliability/documents';
import { runFuzz } from '../test/reliability/fuzz';
import { HOSTILE_DOCUMENTS, probeHostile } from '../test/reliability/hostile';
import { killAssets, killTraining } from '../test/reliability/kill-cli';
import { childPids, type ProcessUse, processUse } from '../test/reliability/procfs';
import type { BenchSection } from './run';
import { percentile, resolveBenchModel } from './util';

const count = (name: string, fallback: number) => Number(process.env[name] || fallback);
const ms = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p95: round(percentile(xs, 95)), p99: round(percentile(xs, 99)), max: round(Math.max(...xs)) });
const round = (x: number) => Math.round(x * 10) / 10;

async function withServer<T>(model: string, run: (server: TestServer) => Promise<T>, workspace?: string): Promise<T> {
  const server = await startServer({ workspace, init: { trusted: true, bundledModelPath: model }, settings: () => ({ model: { path: model } }) });
  try {
    return await run(server);
  } finally {
    await server.stop();
  }
}

async function fuzz(model: string) {
  const seed = fuzzSeed();
  const documents = count('ADADIFF_FUZZ_COUNT', 10_000);
  return withServer(model, async (server) => {
    const t0 = performance.now();
    const r = await runFuzz(server, seed, documents);
    const all = Object.values(r.latencies).flat();
    const figures = {
      seed,
      documents: r.documents,
      didChange: r.edits,
      requests: r.requests,
      hoversOnPrompts: r.hoversOnPrompts,
      failures: r.failures.length,
      firstFailures: r.failures.slice(0, 3),
      seconds: round((performance.now() - t0) / 1000),
      latencyMs: ms(all),
      hoverMs: ms(r.latencies.hover),
      codeLensMs: ms(r.latencies.codeLens),
      resolveMs: ms(r.latencies.resolve),
      serverUp: server.child.exitCode === null,
    };
    console.log(`fuzz: seed ${seed}, ${r.documents} documents, ${r.requests} requests, ${r.failures.length} failures; p50 ${figures.latencyMs.p50} ms, p99 ${figures.latencyMs.p99} ms, max ${figures.latencyMs.max} ms`);
    return figures;
  });
}

async function hostile(model: string) {
  return withServer(model, async (server) => {
    const small = server.open('small.md', 'markdown', '![a small fox](fox.png)\n');
    await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri: small }, position: { line: 0, character: 4 } });
    const rows = [];
    for (const doc of HOSTILE_DOCUMENTS) {
      const p = await probeHostile(server, doc, small);
      const worst = Math.max(...p.timings.map(([, t]) => t));
      rows.push({ name: doc.name, mb: round(p.chars / 1e6), prompts: p.spans, cutOff: p.cutOff, worstMs: round(worst), smallAlongsideMs: round(p.timings.find(([k]) => k.startsWith('small'))![1]), problems: p.problems });
      console.log(`hostile: ${doc.name.padEnd(52)} worst request ${worst.toFixed(0).padStart(5)} ms${p.cutOff ? ' (cut off, said so)' : ''}`);
    }
    return { documents: rows.length, withinOneSecond: rows.filter((r) => r.worstMs < 1000).length, worstMs: Math.max(...rows.map((r) => r.worstMs)), serverUp: server.child.exitCode === null, rows };
  });
}

/** The server and its render worker, as /proc sees them, and the ONNX Runtime sessions each holds (adadiff/sessions). */
async function snapshot(server: TestServer) {
  const workers = childPids(server.child.pid!);
  const use = (u: ProcessUse | undefined) => u && { rssMb: round(u.rssMb), threads: u.threads, openFiles: u.openFiles };
  const held = await server.conn.sendRequest(SessionsRequest);
  const total = (parts: Record<string, number>) => Object.values(parts).reduce((a, b) => a + b, 0);
  return {
    server: use(processUse(server.child.pid!)),
    workers: workers.length,
    worker: workers[0] === undefined ? undefined : use(processUse(workers[0])),
    sessions: { server: total(held.main), worker: total(held.worker) },
  };
}

async function soak(model: string) {
  const previews = count('ADADIFF_SOAK_PREVIEWS', 500);
  return withServer(model, async (server) => {
    const uri = server.open('soak.md', 'markdown', '![a fox](fox.png)\n');
    const preview = (i: number) => server.conn.sendRequest(PreviewRequest, { id: `soak-${i}`, uri, prompt: `a fox number ${i % 50}`, seed: i });
    // Warm: sessions, calibration and the allocator's pools settle in the first few.
    for (let i = 0; i < 10; i++) await preview(i);
    const before = await snapshot(server);
    const t0 = performance.now();
    const seconds: number[] = [];
    for (let i = 0; i < previews; i++) {
      const t = performance.now();
      await preview(i);
      seconds.push((performance.now() - t) / 1000);
    }
    const after = await snapshot(server);
    const growth = before.server && after.server ? round(after.server.rssMb - before.server.rssMb) : undefined;
    const workerGrowth = before.worker && after.worker ? round(after.worker.rssMb - before.worker.rssMb) : undefined;
    console.log(`soak: ${previews} previews in ${((performance.now() - t0) / 1000).toFixed(0)} s; server RSS ${before.server?.rssMb} -> ${after.server?.rssMb} MB (${growth}), worker ${before.worker?.rssMb} -> ${after.worker?.rssMb} MB (${workerGrowth}); threads ${before.server?.threads}/${before.worker?.threads} -> ${after.server?.threads}/${after.worker?.threads}; open files ${before.server?.openFiles}/${before.worker?.openFiles} -> ${after.server?.openFiles}/${after.worker?.openFiles}; workers ${before.workers} -> ${after.workers}; sessions ${before.sessions.server}/${before.sessions.worker} -> ${after.sessions.server}/${after.sessions.worker}`);
    return { previews, previewSecondsMedian: round(percentile(seconds, 50) * 1000) / 1000, before, after, serverRssGrowthMb: growth, workerRssGrowthMb: workerGrowth };
  });
}

async function concurrency(model: string) {
  const root = mkdtempSync(join(tmpdir(), 'adadiff-bench-concurrency-'));
  const copy = join(root, 'model');
  cpSync(model, copy, { recursive: true });
  const ws = join(root, 'ws');
  mkdirSync(ws);
  writeFileSync(join(ws, 'README.md'), Array.from({ length: 12 }, (_, i) => `![an icon of a lantern, variant ${i}](img/lantern-${i}.png)\n`).join('\n'));
  const hovers = 200;
  // Twice as many prompts as hovers: the first half is hovered with nothing running, for the side-by-side figure.
  const doc = Array.from({ length: 2 * hovers }, (_, i) => `p${i} = pipe(prompt="a brand new prompt number ${i} about owls and lanterns")`).join('\n') + '\n';
  try {
    return await withServer(
      copy,
      async (server) => {
        const uri = server.open('many.py', 'python', doc);
        await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri: server.open('warm.md', 'markdown', '![warm](w.png)\n') }, position: { line: 0, character: 3 } });
        /** One hover every 10 ms, each on a prompt never hovered (text encoder + policy each time). */
        const hoverBurst = async (firstLine: number) => {
          const times: number[] = [];
          let answered = 0;
          await Promise.all(
            Array.from({ length: hovers }, async (_, i) => {
              await new Promise((r) => setTimeout(r, i * 10));
              const t0 = performance.now();
              const h = await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: firstLine + i, character: 20 } });
              times.push(performance.now() - t0);
              if (h) answered++;
            }),
          );
          return { times, answered };
        };
        // Parsed before either burst (a lens request parses, predicts nothing), so neither waits on it.
        await server.conn.sendRequest(CodeLensRequest.type, { textDocument: { uri } });
        const idle = await hoverBurst(0);
        const started = performance.now();
        const jobs = {
          preview: server.conn.sendRequest(PreviewRequest, { id: 'busy', uri, prompt: 'a long preview', steps: 50 }).then(() => 'done', (e: Error) => `failed: ${e.message}`),
          assets: server.conn.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.generateAssets, arguments: [{ folder: pathToFileURL(ws).href }] }).then(() => 'done', (e: Error) => `failed: ${e.message}`),
          training: server.conn
            .sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.trainPolicy, arguments: [{ uri, prompts: Array.from({ length: 8 }, (_, i) => `a training prompt ${i}, with some detail`), seeds: [0], candidates: [4, 8, 16], epochs: 30 }] })
            .then(() => 'done', (e: Error) => `failed: ${e.message}`),
        };
        const busy = await hoverBurst(hovers);
        const hoversSeconds = (performance.now() - started) / 1000;
        const outcomes = { preview: await jobs.preview, assets: await jobs.assets, training: await jobs.training };
        const figures = {
          hovers,
          answered: busy.answered,
          hoversSeconds: round(hoversSeconds),
          jobsSeconds: round((performance.now() - started) / 1000),
          hoverMs: ms(busy.times),
          idleAnswered: idle.answered,
          idleHoverMs: ms(idle.times),
          jobs: outcomes,
        };
        console.log(
          `concurrency: ${busy.answered}/${hovers} hovers answered during a preview, an asset batch and a training run; p50 ${figures.hoverMs.p50} ms, p95 ${figures.hoverMs.p95} ms, max ${figures.hoverMs.max} ms ` +
            `(the same burst with nothing running: ${idle.answered}/${hovers}, p50 ${figures.idleHoverMs.p50} ms, p95 ${figures.idleHoverMs.p95} ms); jobs ${JSON.stringify(outcomes)}`,
        );
        return figures;
      },
      ws,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function kills() {
  const model = (await ensureFixtures()).optimum;
  const rounds = count('ADADIFF_KILL_ROUNDS', 20);
  const seed = fuzzSeed();
  const out = [];
  for (const report of [await killAssets(model, rounds, seed), await killTraining(model, rounds, seed)]) {
    console.log(`kill -9: ${report.command}, ${report.rounds} kills (${report.killedRunning} caught it running), ${report.problems.length} problems; the run after: exit ${report.finalRunCode} in ${report.finalRunSeconds.toFixed(1)} s`);
    out.push({ ...report, problems: report.problems.slice(0, 5), problemCount: report.problems.length });
  }
  return out;
}

export const benchReliability: BenchSection = {
  name: 'reliability',
  async run() {
    const fixture = (await ensureFixtures()).optimum;
    const { dir: model, note } = await resolveBenchModel();
    return {
      ...(note ? { note } : {}),
      model,
      fuzz: await fuzz(fixture),
      hostileDocuments: await hostile(fixture),
      soak: await soak(model),
      concurrency: await concurrency(model),
      kill9: await kills(),
    };
  },
};
