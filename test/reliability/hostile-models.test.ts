// Hostile model folders (hostile-models.ts) through the real server: the hover and the error
// status say what is wrong with which file, a preview fails with that message, the server's memory
// stays bounded (no 1 GB read, no terabyte allocation), and a good model still answers after.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Hover, HoverRequest, type MarkupContent } from 'vscode-languageserver-protocol/node';
import { PreviewRequest } from '../../shared/protocol';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { fixtureWithPolicy } from '../fixtures/with-policy';
import { startServer, type TestServer } from '../lsp/harness';
import { HOSTILE_MODELS, makeHostileModel } from './hostile-models';
import { processUse } from './procfs';

const hoverText = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';

describe('hostile model folders through the server', () => {
  let server: TestServer;
  let good: string;
  const dirs = new Map<string, string>();
  const roots: string[] = [];

  before(async () => {
    good = (await ensureFixtures()).optimum;
    const withPolicy = await fixtureWithPolicy(good);
    HOSTILE_MODELS.forEach((model, i) => {
      const made = makeHostileModel(model, model.withPolicy ? withPolicy : good);
      dirs.set(`/hostile-${i}/`, made.dir);
      roots.push(made.root);
    });
    server = await startServer({
      init: { trusted: true, bundledModelPath: good },
      settings: (uri) => ({ model: { path: [...dirs].find(([key]) => uri?.includes(key))?.[1] ?? good }, size: '32x32' }),
    });
  });

  after(async () => {
    await server?.stop();
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });

  HOSTILE_MODELS.forEach((model, i) => {
    test(model.name, async (t) => {
      const uri = server.open(`hostile-${i}/doc.md`, 'markdown', '![a fox in the snow](fox.png)\n');
      const t0 = performance.now();
      const text = hoverText(await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 } }));
      const hoverMs = performance.now() - t0;
      const preview = server.conn.sendRequest(PreviewRequest, { id: `hostile-${i}`, uri, prompt: 'a fox', steps: 2 });
      const rss = processUse(server.child.pid!)?.rssMb;
      t.diagnostic(`hover ${hoverMs.toFixed(0)} ms; server RSS ${rss?.toFixed(0)} MB; ${text.split('\n').find((l) => l.startsWith('`')) ?? text.split('\n')[0]}`);
      if (model.error && model.unet) {
        assert.match(text, /AdaDiff: \d+ steps/);
        await assert.rejects(preview, (err: Error) => model.error!.test(err.message));
        // The cost the first hover asked the worker to measure failed the same way: hovers say why.
        const hover = () => server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 } }).then(hoverText);
        let later = await hover();
        for (let i = 0; i < 50 && !/could not be measured/i.test(later); i++) later = await new Promise((r) => setTimeout(r, 100)).then(hover);
        assert.match(later, /the cost could not be measured/i);
        assert.match(later, model.error);
      } else if (model.error) {
        assert.match(text, /the model could not be loaded/);
        assert.match(text, model.error);
        await assert.rejects(preview, (err: Error) => model.error!.test(err.message));
      } else {
        assert.match(text, /AdaDiff: \d+ steps/);
        assert.equal((await preview).steps, 2);
      }
      if (rss !== undefined) assert.ok(rss < 900, `the server holds ${rss.toFixed(0)} MB`);
      assert.equal(server.child.exitCode, null);
    });
  });

  test('a good model still answers', async () => {
    const uri = server.open('good/doc.md', 'markdown', '![a fox in the snow](fox.png)\n');
    assert.match(hoverText(await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 } })), /AdaDiff: \d+ steps/);
  });
});
