// A short soak in the test layer (the 500-preview one with its memory figures is `npm run bench --
// reliability`): previews one after another through the server hold the same ONNX Runtime sessions,
// one render worker, and no more threads or open files than after the first few.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PreviewRequest, SessionsRequest } from '../../shared/protocol';
import type { TestServer } from '../lsp/harness';
import { startFixtureServer } from './fixture-server';
import { childPids, processUse } from './procfs';

const PREVIEWS = 40;

describe('previews in a row', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  let server: TestServer;

  before(async () => {
    server = await startFixtureServer();
  });

  after(async () => {
    await server?.stop();
  });

  async function snapshot() {
    const [worker, ...others] = childPids(server.child.pid!);
    assert.ok(worker && others.length === 0, `one render worker, found ${[worker, ...others]}`);
    const held = await server.conn.sendRequest(SessionsRequest);
    return { worker, sessions: { main: held.main, worker: held.worker }, server: processUse(server.child.pid!)!, workerUse: processUse(worker)! };
  }

  test(`${PREVIEWS} previews leave the sessions, the worker, its threads and open files as they were`, async (t) => {
    const uri = server.open('soak.md', 'markdown', '![a fox](fox.png)\n');
    const preview = (i: number) => server.conn.sendRequest(PreviewRequest, { id: `soak-${i}`, uri, prompt: `a fox number ${i % 7}`, seed: i, steps: 3, size: { width: 32, height: 32 } });
    // Warm: sessions, calibration and the thread pools settle in the first few.
    for (let i = 0; i < 5; i++) await preview(i);
    const first = await snapshot();
    for (let i = 0; i < PREVIEWS; i++) await preview(i);
    const last = await snapshot();
    t.diagnostic(
      `server RSS ${first.server.rssMb.toFixed(0)} -> ${last.server.rssMb.toFixed(0)} MB, worker ${first.workerUse.rssMb.toFixed(0)} -> ${last.workerUse.rssMb.toFixed(0)} MB; ` +
        `threads ${first.server.threads}/${first.workerUse.threads} -> ${last.server.threads}/${last.workerUse.threads}; open files ${first.server.openFiles}/${first.workerUse.openFiles} -> ${last.server.openFiles}/${last.workerUse.openFiles}`,
    );
    assert.equal(last.worker, first.worker, 'the same render worker');
    assert.deepEqual(last.sessions, first.sessions, 'no session opened or lost');
    assert.ok(Object.values(first.sessions.worker).some((n) => n > 0), 'the worker holds the UNet and VAE');
    assert.ok(last.server.threads <= first.server.threads && last.workerUse.threads <= first.workerUse.threads, 'no thread left behind');
    assert.ok(last.server.openFiles <= first.server.openFiles && last.workerUse.openFiles <= first.workerUse.openFiles, 'no file left open');
    assert.equal(server.child.exitCode, null);
  });
});
