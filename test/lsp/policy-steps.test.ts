// Layer 2: where code fixes a prompt's steps, the lens and hover say what the step policy would
// pick and what that saves against the code's count, and a quick fix writes the policy's count
// over the code's integer literal.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type CodeAction,
  CodeActionRequest,
  type CodeLens,
  CodeLensRequest,
  CodeLensResolveRequest,
  DidChangeTextDocumentNotification,
  HoverRequest,
  type MarkupContent,
  type Position,
} from 'vscode-languageserver-protocol/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { fixtureWithPolicy } from '../fixtures/with-policy';
import { rangeWithin } from '../unit/prompts-helpers';
import { startServer, type TestServer } from './harness';

/** Non-ASCII before the literal, so a range counted in code points or bytes would miss it. */
const PROMPT = '🐱 a cat face emoji with big eyes, café';

const EXTENSIONS = { markdown: 'md', python: 'py', javascript: 'js', typescript: 'ts', typescriptreact: 'tsx' };
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Calibration {
  unetMs: number;
  fixedMs: number;
}

describe('where code fixes the steps', () => {
  let server: TestServer;
  let files = 0;
  /** The steps the policy picks for PROMPT, and a fixed count that differs from them. */
  let policy: number;
  let fixed: number;
  let cal: Calibration;

  const open = (languageId: keyof typeof EXTENSIONS, text: string, folder = '') => server.open(`${folder}doc${files++}.${EXTENSIONS[languageId]}`, languageId, text);

  async function lensTitle(uri: string): Promise<string> {
    const lenses: CodeLens[] = (await server.conn.sendRequest(CodeLensRequest.type, { textDocument: { uri } })) ?? [];
    const cost = lenses.find((l) => !l.command);
    assert.ok(cost, 'a lens to resolve');
    return (await server.conn.sendRequest(CodeLensResolveRequest.type, cost)).command!.title;
  }

  async function hoverAt(uri: string, line: number, character: number): Promise<string> {
    const h = await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line, character } });
    return (h?.contents as MarkupContent | undefined)?.value ?? '';
  }

  async function actionsAt(uri: string, position: Position, only?: string[]): Promise<CodeAction[]> {
    const range = { start: position, end: position };
    const actions = await server.conn.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range, context: { diagnostics: [], only } });
    return (actions ?? []) as CodeAction[];
  }

  /** The one quick fix at `position`, checked to rewrite exactly the literal in `context`; returns the text after it. */
  async function applyFix(uri: string, languageId: string, text: string, position: Position, context: string): Promise<string> {
    const actions = await actionsAt(uri, position);
    assert.equal(actions.length, 1, JSON.stringify(actions));
    const [action] = actions;
    assert.equal(action.title, `Use the step policy's ${policy} steps (instead of ${fixed})`);
    assert.equal(action.kind, 'quickfix');
    const edits = action.edit?.changes?.[uri];
    assert.deepEqual(edits, [{ range: rangeWithin(text, context, String(fixed)), newText: String(policy) }]);
    return TextDocument.applyEdits(TextDocument.create(uri, languageId, 1, text), edits!);
  }

  /** The saving the policy's count gives against `steps`, in whole percent, from the calibration the status reports. */
  const savingAgainst = (steps: number) => Math.round(100 * (1 - (cal.fixedMs + policy * cal.unetMs) / (cal.fixedMs + steps * cal.unetMs)));

  let noPolicy: string;

  before(async () => {
    const fixtures = await ensureFixtures();
    noPolicy = fixtures.optimum;
    const withPolicy = await fixtureWithPolicy(fixtures.optimum);
    server = await startServer({
      init: { trusted: true },
      settings: (uri) => ({ model: { path: uri?.includes('/nopolicy/') ? fixtures.optimum : withPolicy } }),
    });
    const auto = await hoverAt(open('markdown', `![${PROMPT}](img/cat.png)\n`), 0, 5);
    const m = /\*\*AdaDiff: (\d+) steps\*\* instead of 50/.exec(auto);
    assert.ok(m, auto);
    policy = Number(m[1]);
    // Not the baseline: a saving against the baseline and one against the code's count then differ.
    fixed = policy === 30 ? 20 : 30;
    const ready = await server.waitForCost(withPolicy);
    const ms = /UNet step ([\d.]+) ms, text encoder ([\d.]+) ms, VAE ([\d.]+) ms/.exec(ready.detail ?? '');
    assert.ok(ms, ready.detail);
    cal = { unetMs: Number(ms[1]), fixedMs: Number(ms[2]) + Number(ms[3]) };
  });

  after(async () => {
    await server?.stop();
  });

  test('lens and hover on a count fixed in code: the policy\'s count, its time, and the saving against the code\'s count', async () => {
    const py = ['image = pipe(', `    prompt="${PROMPT}",`, `    num_inference_steps=${fixed},`, ')', ''].join('\n');
    const uri = open('python', py);
    const title = await lensTitle(uri);
    const m = new RegExp(`^${fixed} steps · ~[\\d.]+ (ms|s) · policy: ${policy} steps, ([-+]\\d+)%$`).exec(title);
    assert.ok(m, title);
    // Rounded calibration figures: allow one percent either way.
    assert.ok(Math.abs(-Number(m[2]) - savingAgainst(fixed)) <= 1, `${title}: ${savingAgainst(fixed)}% expected`);
    const hover = await hoverAt(uri, 1, 15);
    assert.match(hover, new RegExp(`^\\*\\*AdaDiff: ${fixed} steps\\*\\* \\(fixed in the code\\)`, 'm'));
    assert.match(hover, new RegExp(`^The step policy would choose \\*\\*${policy} steps\\*\\*: ~[\\d.]+ (ms|s), ${escape(m[2])}% time against these ${fixed} \\(a quick fix writes them into the code\\)\\.$`, 'm'));
  });

  test('the lens says nothing extra where the code\'s count is the policy\'s, or the model has no policy', async () => {
    const same = open('typescript', `generate({ prompt: "${PROMPT}", steps: ${policy} });\n`);
    assert.match(await lensTitle(same), new RegExp(`^${policy} steps · ~[\\d.]+ (ms|s) · ([-+]\\d+%|±0%)$`));
    assert.match(await hoverAt(same, 0, 25), new RegExp(`The step policy would choose these ${policy} steps too\\.`));
    const none = open('typescript', `generate({ prompt: "${PROMPT}", steps: ${fixed} });\n`, 'nopolicy/');
    assert.match(await lensTitle(none), new RegExp(`^${fixed} steps · `)); // loads that model; its cost follows
    await server.waitForCost(noPolicy);
    assert.match(await lensTitle(none), new RegExp(`^${fixed} steps · ~[\\d.]+ (ms|s) · -\\d+%$`));
    assert.doesNotMatch(await hoverAt(none, 0, 25), /step policy would/);
  });

  test('quick fix in Python: rewrites exactly the literal after non-ASCII text in a multi-line call; the result takes the policy\'s count', async () => {
    const py = [
      'image = pipe(', // 0
      `    prompt="${PROMPT}",`,
      `    negative_prompt="flou, déformé 😕", num_inference_steps=${fixed},`, // 2
      ')',
      '',
    ].join('\n');
    const uri = open('python', py);
    const literal = `num_inference_steps=${fixed}`;
    const applied = await applyFix(uri, 'python', py, { line: 1, character: 15 }, literal);
    assert.equal(applied, py.replace(literal, `num_inference_steps=${policy}`));
    const onLiteral = await actionsAt(uri, rangeWithin(py, literal, String(fixed)).start);
    assert.equal(onLiteral.length, 1, 'offered on the literal too');
    assert.deepEqual(await actionsAt(uri, { line: 0, character: 2 }), [], 'not away from the prompt and its literal');

    await server.conn.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 2 }, contentChanges: [{ text: applied }] });
    assert.match(await lensTitle(uri), new RegExp(`^${policy} steps · ~[\\d.]+ (ms|s) · ([-+]\\d+%|±0%)$`));
    assert.deepEqual(await actionsAt(uri, { line: 1, character: 15 }), [], 'done: the code now has the policy\'s count');
  });

  test('quick fix in JavaScript, TypeScript and TSX: the property of the prompt\'s object, of the object beside it, or a JSX attribute', async () => {
    const cases: [keyof typeof EXTENSIONS, string, string][] = [
      ['javascript', `generate({ prompt: "${PROMPT}", steps: ${fixed} });\n`, `steps: ${fixed}`],
      ['typescript', `await pipe("${PROMPT}", {\n  guidance_scale: 7,\n  num_inference_steps: ${fixed} as number,\n});\n`, `num_inference_steps: ${fixed}`],
      ['typescriptreact', `export const Cat = () => <Image prompt="${PROMPT}" steps={${fixed}} />;\n`, `steps={${fixed}}`],
    ];
    for (const [languageId, text, context] of cases) {
      const uri = open(languageId, text);
      const at = rangeWithin(text, PROMPT, 'a cat').start;
      const applied = await applyFix(uri, languageId, text, at, context);
      assert.equal(applied, text.replace(context, context.replace(String(fixed), String(policy))), languageId);
    }
  });

  test('no quick fix for a variable, the policy\'s own count, a model without a policy, or a request for other kinds', async () => {
    const at = { line: 0, character: 15 };
    const call = (steps: string | number) => `pipe(prompt="${PROMPT}", num_inference_steps=${steps})\n`;
    assert.deepEqual(await actionsAt(open('python', call('steps')), at), [], 'a variable');
    assert.deepEqual(await actionsAt(open('python', call(policy)), at), [], 'already the policy\'s count');
    assert.deepEqual(await actionsAt(open('python', call(fixed), 'nopolicy/'), at), [], 'no policy');
    const uri = open('python', call(fixed));
    assert.deepEqual(await actionsAt(uri, at, ['refactor']), [], 'only refactorings asked for');
    assert.equal((await actionsAt(uri, at, ['quickfix'])).length, 1, 'quick fixes asked for');
  });
});
