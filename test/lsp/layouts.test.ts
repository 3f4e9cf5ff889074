// Layer 2: the language server on SDXL and SDXL-Turbo folders with no settings but the model path:
// the hover says the sampler, guidance and steps the model's own files choose, and a preview
// renders the model's size with them.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Hover, HoverRequest, type MarkupContent } from 'vscode-languageserver-protocol/node';
import { parseParameters } from '../../server/pipeline/parameters';
import { decodePng, readPngText } from '../../server/pipeline/png';
import { PreviewRequest } from '../../shared/protocol';
import { ensureLayoutFixtures } from '../fixtures/make-fixtures';
import { startServer, type TestServer } from './harness';
import { tempDir } from '../temp-dirs';

const DOC = '![a red fox in the snow](img/fox.png)\n';
const hoverText = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';

describe('SDXL and SDXL-Turbo folders in the language server', () => {
  let server: TestServer;

  before(async () => {
    const fixtures = await ensureLayoutFixtures();
    server = await startServer({
      workspace: tempDir('adadiff-layouts-ws-'),
      init: { trusted: true },
      settings: (uri) => ({ model: { path: uri?.includes('/turbo/') ? fixtures['sdxl-turbo'] : fixtures.sdxl } }),
    });
  });

  after(async () => {
    await server?.stop();
  });

  for (const c of [
    { folder: 'turbo', sampler: 'Euler a', guidance: '0', steps: 4, size: 64 },
    { folder: 'xl', sampler: 'Euler', guidance: '7', steps: 50, size: 128 },
  ]) {
    test(`${c.folder}: the hover and a preview use ${c.sampler}, guidance ${c.guidance}, ${c.steps} steps, ${c.size} px`, async () => {
      const uri = server.open(`${c.folder}/doc.md`, 'markdown', DOC);
      const hover = hoverText(await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 } }));
      assert.match(hover, new RegExp(`^Model: \`[^\`]+\` · ${c.sampler}, guidance ${c.guidance}$`, 'm'));
      assert.match(hover, new RegExp(`\\b${c.steps} steps\\b`));
      const r = await server.conn.sendRequest(PreviewRequest, { id: uri, uri, prompt: 'a red fox in the snow' });
      const png = Buffer.from(r.png, 'base64');
      assert.deepEqual([decodePng(png).width, decodePng(png).height], [c.size, c.size]);
      const { fields } = parseParameters(readPngText(png).parameters);
      assert.deepEqual([fields.Sampler, fields['CFG scale'], fields.Steps], [c.sampler, c.guidance, String(c.steps)]);
    });
  }
});
