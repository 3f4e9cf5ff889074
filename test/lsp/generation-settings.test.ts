// Layer 2: adadiff.guidance and adadiff.scheduler reach previews and the hover of a model with a
// step policy (they once lost to the policy's manifest), the hover says what is used and that the
// policy was measured with its own, and assets keep the policy's whatever the settings, so that the
// CLI's `adadiff assets --check` agrees with what the editor wrote.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { ExecuteCommandRequest, type Hover, HoverRequest, type MarkupContent } from 'vscode-languageserver-protocol/node';
import type { Lock } from '../../server/assets';
import type { StepPrediction } from '../../server/engine';
import { hoverMarkdown } from '../../server/lsp/present';
import { parseParameters } from '../../server/pipeline/parameters';
import { readPngText } from '../../server/pipeline/png';
import { type GenerateAssetsResult, PreviewRequest, ServerCommands } from '../../shared/protocol';
import type { PromptSpan } from '../../server/prompts/types';
import { CLI } from '../build';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { fixtureWithPolicy } from '../fixtures/with-policy';
import { startServer, type TestServer } from './harness';
import { tempDir } from '../temp-dirs';

const DOC = '![a red fox in the snow](img/fox.png "size: 16x16, steps: 3")\n';
const run = promisify(execFile);
const hoverText = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';
const sampler = (png: Buffer) => {
  const { fields } = parseParameters(readPngText(png).parameters);
  return { sampler: fields.Sampler, guidance: fields['CFG scale'] };
};

describe('adadiff.guidance and adadiff.scheduler with a step policy (trained with DDIM, guidance 7)', () => {
  let server: TestServer;
  let root: string;
  let model: string;

  before(async () => {
    model = await fixtureWithPolicy((await ensureFixtures()).optimum);
    root = tempDir('adadiff-generation-ws-');
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'docs', 'fox.md'), DOC);
    server = await startServer({
      workspace: root,
      init: { trusted: true },
      // Documents under plain/ keep the defaults: guidance 0 and scheduler auto, "not set".
      settings: (uri) => (uri?.includes('/plain/') ? { model: { path: model } } : { model: { path: model }, guidance: 3, scheduler: 'euler' }),
    });
  });

  after(async () => {
    await server?.stop();
  });

  const preview = async (uri: string) => {
    const r = await server.conn.sendRequest(PreviewRequest, { id: uri, uri, prompt: 'a red fox in the snow', steps: 3, size: { width: 16, height: 16 } });
    return sampler(Buffer.from(r.png, 'base64'));
  };

  test('a preview uses the settings over the policy\'s; unset settings leave the policy\'s', async () => {
    const set = server.open('set.md', 'markdown', DOC);
    const plain = server.open('plain/unset.md', 'markdown', DOC);
    assert.deepEqual(await preview(set), { sampler: 'Euler', guidance: '3' });
    assert.deepEqual(await preview(plain), { sampler: 'DDIM', guidance: '7' });
  });

  test('the hover says what a preview uses, and where that is not the policy\'s, that its steps were measured for its own', async () => {
    const hover = async (uri: string) => hoverText(await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 4 } }));
    const set = await hover(server.open('set-hover.md', 'markdown', DOC));
    assert.match(set, /^Model: `[^`]+` · Euler, guidance 3$/m);
    assert.match(set, /^⚠ The step policy was trained with DDIM, guidance 7: its steps and saving were measured for those\.$/m);
    const plain = await hover(server.open('plain/hover.md', 'markdown', DOC));
    assert.match(plain, /^Model: `[^`]+` · DDIM, guidance 7$/m);
    assert.doesNotMatch(plain, /trained with/);
  });

  test("Generate All Assets keeps the policy's scheduler and guidance, and the CLI's --check agrees", async () => {
    const { summary } = (await server.conn.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.generateAssets, arguments: [{}] })) as GenerateAssetsResult;
    assert.equal(summary.counts.generated, 1, JSON.stringify(summary));
    const lock: Lock = JSON.parse(readFileSync(join(root, 'adadiff.lock.json'), 'utf8'));
    const entry = lock.assets['docs/img/fox.png'];
    assert.deepEqual([entry.scheduler, entry.guidance], ['ddim', 7]);
    assert.deepEqual(sampler(readFileSync(join(root, 'docs', 'img', 'fox.png'))), { sampler: 'DDIM', guidance: '7' });
    // The same asset from the CLI, in a copy of the workspace: the very same bytes.
    const copy = tempDir('adadiff-generation-cli-');
    mkdirSync(join(copy, 'docs'));
    cpSync(join(root, 'docs', 'fox.md'), join(copy, 'docs', 'fox.md'));
    await run(process.execPath, [CLI, 'assets', copy, '--model', model]);
    assert.ok(readFileSync(join(copy, 'docs', 'img', 'fox.png')).equals(readFileSync(join(root, 'docs', 'img', 'fox.png'))), 'the CLI writes what the editor wrote');
    const check = await run(process.execPath, [CLI, 'assets', root, '--check', '--model', model]);
    assert.match(check.stdout, /all 1 assets are current/);
  });
});

describe('the hover\'s sampler line (present.ts)', () => {
  const span: PromptSpan = { text: 'a fox', range: { start: { line: 0, character: 2 }, end: { line: 0, character: 7 } }, kind: 'markdown-image', options: {}, target: 'fox.png' };
  const prediction: StepPrediction = {
    steps: 15, baselineSteps: 50, candidates: [15], probabilities: [1], policy: true, estimatedSeconds: 0.4, baselineSeconds: 1.3,
    saving: 0.7, droppedTokens: 0, provider: 'cpu', refinedAfterFirstStep: false,
  };
  const md = (generation?: Parameters<typeof hoverMarkdown>[0]['generation']) => hoverMarkdown({ uri: 'file:///w/a.md', span, prediction, generation, modelName: 'tiny' });

  test('names the scheduler and guidance; warns only where the policy was trained with others', () => {
    assert.match(md({ scheduler: 'dpmpp-2m-karras', guidance: 7.5 }), /^Model: `tiny` · DPM\+\+ 2M Karras, guidance 7\.5$/m);
    assert.doesNotMatch(md({ scheduler: 'ddim', guidance: 7 }), /⚠/);
    const other = md({ scheduler: 'euler', guidance: 3, policyMeasuredWith: { scheduler: 'ddim', guidance: 7 } });
    assert.match(other, /^⚠ The step policy was trained with DDIM, guidance 7: its steps and saving were measured for those\.$/m);
    assert.match(md(), /^Model: `tiny`$/m, 'without a generation, the line as before');
  });
});
