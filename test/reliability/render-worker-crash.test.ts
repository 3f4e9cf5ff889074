// The render worker killed with SIGKILL in the middle of a preview: the preview fails with a
// message, hovers go on, a new worker starts and the next preview works. Three rounds, so a second
// crash is handled like the first. (As a worker thread, its death aborted the whole server.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HoverRequest, type MarkupContent, ResponseError } from 'vscode-languageserver-protocol/node';
import { PreviewProgressNotification, PreviewRequest } from '../../shared/protocol';
import type { TestServer } from '../lsp/harness';
import { startFixtureServer } from './fixture-server';
import { childPids } from './procfs';

/** The server's child processes: its render worker, once one runs. */
const workers = (server: TestServer) => childPids(server.child.pid!);

describe('the render worker killed mid-preview', { skip: process.platform !== 'linux' && 'finds the worker with Linux ps' }, () => {
  let server: TestServer;

  before(async () => {
    server = await startFixtureServer();
  });

  after(async () => {
    await server?.stop();
  });

  test('the preview fails with a message, a new worker starts, the next preview works', async (t) => {
    const uri = server.open('doc.md', 'markdown', '![a fox in the snow](fox.png)\n');
    const killed = new Set<number>();
    for (let round = 1; round <= 3; round++) {
      const id = `long-${round}`;
      const threeSteps = new Promise<void>((resolve) => {
        let steps = 0;
        const sub = server.conn.onNotification(PreviewProgressNotification, (p) => {
          if (p.id === id && ++steps === 3) (sub.dispose(), resolve());
        });
      });
      // Slow steps (a large image), so the kill lands in the middle of the denoising loop.
      const long = server.conn.sendRequest(PreviewRequest, { id, uri, prompt: 'a fox in the snow', steps: 50, size: { width: 1024, height: 1024 } });
      long.catch(() => undefined);
      await threeSteps;
      const [worker, ...others] = workers(server);
      assert.ok(worker && others.length === 0, `one render worker, found ${[worker, ...others]}`);
      assert.ok(!killed.has(worker), 'a new worker, not the one killed before');
      killed.add(worker);
      const t0 = performance.now();
      process.kill(worker, 'SIGKILL');
      await assert.rejects(long, (err: unknown) => err instanceof ResponseError && /render worker stopped \(killed by SIGKILL\).*the next preview starts a new one/.test(err.message));
      t.diagnostic(`round ${round}: the preview failed ${(performance.now() - t0).toFixed(0)} ms after the kill`);
      const h = await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 } });
      assert.match((h?.contents as MarkupContent).value, /AdaDiff: \d+ steps/, 'hovers go on');
      const next = await server.conn.sendRequest(PreviewRequest, { id: `next-${round}`, uri, prompt: 'after the crash', steps: 3, size: { width: 32, height: 32 } });
      assert.equal(next.steps, 3);
      assert.ok(next.png.length > 0);
      assert.equal(workers(server).length, 1, 'one worker again');
    }
    assert.equal(server.child.exitCode, null);
  });
});
