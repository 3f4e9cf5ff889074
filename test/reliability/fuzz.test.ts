// Fuzzed Markdown, Python, JavaScript, TypeScript and TSX documents through the real server over
// stdio (fuzz.ts): zero crashes, zero failed requests, every range inside its document.
// ADADIFF_FUZZ_SEED replays a run, ADADIFF_FUZZ_FROM / ADADIFF_FUZZ_COUNT one document of it;
// `npm run bench -- reliability` runs the long count.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { percentile, type TestServer } from '../lsp/harness';
import { startFixtureServer } from './fixture-server';
import { fuzzSeed } from './documents';
import { runFuzz } from './fuzz';

/** What fits the test layer's time on a 2-core machine; the bench runs 10,000 and more. */
const COUNT = Number(process.env.ADADIFF_FUZZ_COUNT || 2_500);
const FROM = Number(process.env.ADADIFF_FUZZ_FROM || 0);

describe('fuzzed documents through the server', () => {
  let server: TestServer;

  before(async () => {
    server = await startFixtureServer();
  });

  after(async () => {
    await server?.stop();
  });

  test(`${COUNT} seeded random and mutated documents with random edits, hovers and lenses`, async (t) => {
    const seed = fuzzSeed();
    t.diagnostic(`seed ${seed} (replay: ADADIFF_FUZZ_SEED=${seed})`);
    const t0 = performance.now();
    const report = await runFuzz(server, seed, COUNT, FROM);
    const all = Object.values(report.latencies).flat();
    t.diagnostic(
      `${report.documents} documents, ${report.edits} didChange, ${report.requests} requests (${report.hoversOnPrompts} hovers on a prompt) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `latency p50 ${percentile(all, 50).toFixed(1)} ms, p99 ${percentile(all, 99).toFixed(1)} ms, max ${Math.max(...all).toFixed(0)} ms`,
    );
    assert.deepEqual(report.failures.slice(0, 5), [], `${report.failures.length} failures`);
    assert.equal(report.documents, COUNT);
    assert.ok(report.hoversOnPrompts > COUNT / 10, `only ${report.hoversOnPrompts} hovers landed on a prompt: the generator lost its prompts`);
    assert.equal(server.child.exitCode, null);
  });
});
