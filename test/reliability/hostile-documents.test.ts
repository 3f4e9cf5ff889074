// Hostile documents through the real server: each request on them answers promptly, or the scan is
// cut off and the editor says so (SCAN_BUDGET_MS); a small document's hover sent at the same time
// does not wait behind them; the server stays up. The 1 s target itself is measured by
// `npm run bench -- reliability` (timed assertions here are loose, so a busy machine cannot fail them).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CodeLensRequest, CodeLensResolveRequest, type Hover, HoverRequest, type MarkupContent } from 'vscode-languageserver-protocol/node';
import type { TestServer } from '../lsp/harness';
import { startFixtureServer } from './fixture-server';
import { HOSTILE_DOCUMENTS, probeHostile } from './hostile';

/** Well above the 1 s target and well below the 7-29 s these documents held the server before the scan budget. */
const LOOSE_MS = 3_000;

const hoverText = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';

describe('hostile documents through the server', () => {
  let server: TestServer;
  let small: string;

  before(async () => {
    server = await startFixtureServer();
    small = server.open('small.md', 'markdown', '![a small fox](fox.png)\n');
    assert.match(hoverText(await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri: small }, position: { line: 0, character: 4 } })), /AdaDiff: \d+ steps/);
  });

  after(async () => {
    await server?.stop();
  });

  for (const hostile of HOSTILE_DOCUMENTS) {
    test(hostile.name, async (t) => {
      const probe = await probeHostile(server, hostile, small);
      t.diagnostic(`${(probe.chars / 1e6).toFixed(2)} MB: ${probe.spans} prompts${probe.cutOff ? ', scan cut off' : ''}; ${probe.timings.map(([k, ms]) => `${k} ${ms.toFixed(0)} ms`).join(', ')}`);
      for (const [kind, ms] of probe.timings) assert.ok(ms < LOOSE_MS, `${kind} took ${ms.toFixed(0)} ms`);
      for (const problem of probe.problems) assert.fail(problem);
      if (hostile.expect === 'cut off') {
        assert.ok(probe.cutOff, 'the scan is cut off');
        assert.match(probe.hoverText, /stopped looking for prompts/, 'a hover where nothing was found says why');
      } else if (hostile.expect !== 'either') {
        assert.ok(!probe.cutOff, 'scanned in full');
        assert.ok(probe.spans >= hostile.expect, `found ${probe.spans} prompts, expected ${hostile.expect}`);
      }
      assert.equal(server.child.exitCode, null, 'the server is up');
    });
  }

  test('the server still answers as before', async () => {
    const uri = server.open('after.py', 'python', 'pipe(prompt="a lighthouse after the storm")\n');
    const lenses = await server.conn.sendRequest(CodeLensRequest.type, { textDocument: { uri } });
    const resolved = await server.conn.sendRequest(CodeLensResolveRequest.type, lenses!.find((l) => !l.command)!);
    assert.match(resolved.command!.title, /^\d+ steps/);
  });
});
