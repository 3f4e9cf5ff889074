// The language server's handlers take their context as an argument (server/lsp/context.ts), so
// they run in-process here, against a context of the test's own, without a connection or a model.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancellationTokenSource, type Connection, LSPErrorCodes } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { ClientCommands } from '../../shared/protocol';
import { spansOfDocuments, type ServerContext } from '../../server/lsp/context';
import { PromptIndex } from '../../server/lsp/documents';
import { codeLenses, hover, resolveCodeLens, stepsQuickFixes } from '../../server/lsp/editor-features';
import { type ModelManager, ModelUnavailable } from '../../server/lsp/models';
import { SettingsCache } from '../../server/lsp/settings';
import { ModelError } from '../../server/model/errors';

const URI = 'file:///w/gen.py';
const TEXT = 'pipe(prompt="a red fox in the snow", num_inference_steps=30)\npipe(prompt="a lighthouse at dusk")\n';
const MD = 'file:///w/guide.md';

function context(predict: ModelManager['predict']): ServerContext {
  // The open documents, as didOpen would have given them.
  const open = new Map([
    [URI, TextDocument.create(URI, 'python', 1, TEXT)],
    [MD, TextDocument.create(MD, 'markdown', 1, '# Guide\n\n![a red fox in the snow](img/fox.png)\n')],
  ]);
  const documents = { get: (uri: string) => open.get(uri) };
  const settings = new SettingsCache({} as Connection, false);
  return {
    connection: {} as Connection,
    settings,
    models: { predict } as ModelManager,
    renderer: undefined as never,
    textThread: undefined as never,
    assets: undefined as never,
    training: undefined as never,
    cacheDir: '/tmp/unused',
    spansOf: spansOfDocuments(documents, new PromptIndex(), () => settings),
    progressFor: () => Promise.reject(new Error('no progress in these handlers')),
    refreshLenses: () => undefined,
  };
}

const unavailable = () => Promise.reject(new ModelUnavailable({ dir: '/m', bundled: false, providers: ['cpu'] }, new ModelError('/m/unet/model.onnx', 'is missing')));
const token = () => new CancellationTokenSource().token;

describe('language server handlers, in-process', () => {
  test('a hover on a prompt whose model cannot load says what is wrong, over the prompt', async () => {
    const h = await hover(context(unavailable), { textDocument: { uri: URI }, position: { line: 0, character: 16 } }, token());
    assert.ok(h && typeof h.contents === 'object' && 'value' in h.contents);
    assert.match(h.contents.value, /could not be loaded[\s\S]*\/m\/unet\/model\.onnx: is missing/);
    assert.deepEqual(h.range?.start, { line: 0, character: 12 });
  });

  test('no hover away from prompts, and none for a document that is not open', async () => {
    const ctx = context(unavailable);
    assert.equal(await hover(ctx, { textDocument: { uri: URI }, position: { line: 0, character: 50 } }, token()), null);
    assert.equal(await hover(ctx, { textDocument: { uri: 'file:///w/other.py' }, position: { line: 0, character: 16 } }, token()), null);
  });

  test('lenses: a step count to resolve and a Preview for each prompt, Generate asset where it has a target', async () => {
    const ctx = context(unavailable);
    const lenses = await codeLenses(ctx, { textDocument: { uri: URI } }, token());
    const titles = lenses.map((l) => l.command?.title ?? 'unresolved');
    assert.deepEqual(titles, ['unresolved', 'Preview', 'unresolved', 'Preview']);
    const md = await codeLenses(ctx, { textDocument: { uri: MD } }, token());
    assert.deepEqual(md.map((l) => l.command?.title ?? 'unresolved'), ['unresolved', 'Preview', 'Generate asset']);
    assert.equal(md[2].command?.command, ClientCommands.generateAsset);
    const resolved = await resolveCodeLens(ctx, lenses[0], token());
    assert.equal(resolved.command?.title, 'AdaDiff: model not loaded (hover for details)');
  });

  test('the steps quick fix offers nothing while the model cannot load', async () => {
    const actions = await stepsQuickFixes(context(unavailable), { textDocument: { uri: URI }, range: { start: { line: 0, character: 50 }, end: { line: 0, character: 50 } }, context: { diagnostics: [] } }, token());
    assert.deepEqual(actions, []);
  });

  test('a cancelled request answers RequestCancelled; a bug in the model layer is not hidden', async () => {
    const source = new CancellationTokenSource();
    source.cancel();
    await assert.rejects(hover(context(unavailable), { textDocument: { uri: URI }, position: { line: 0, character: 16 } }, source.token), { code: LSPErrorCodes.RequestCancelled });
    const broken = () => Promise.reject(new TypeError('predict is broken'));
    await assert.rejects(hover(context(broken), { textDocument: { uri: URI }, position: { line: 0, character: 16 } }, token()), TypeError);
  });
});
