// Layer 2: where code fixes a prompt's steps, the lens and hover say what the step policy would
// pick and what that saves against the code's count.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CodeLens, CodeLensRequest, CodeLensResolveRequest, HoverRequest, type MarkupContent } from 'vscode-languageserver-protocol/node';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { fixtureWithPolicy } from '../fixtures/with-policy';
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

  /** The saving the policy's count gives against `steps`, in whole percent, from the calibration the status reports. */
  const savingAgainst = (steps: number) => Math.round(100 * (1 - (cal.fixedMs + policy * cal.unetMs) / (cal.fixedMs + steps * cal.unetMs)));

  before(async () => {
    const fixtures = await ensureFixtures();
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
    const ready = await server.waitForStatus((s) => s.state === 'ready' && s.model?.path === withPolicy);
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
    assert.match(await lensTitle(none), new RegExp(`^${fixed} steps · ~[\\d.]+ (ms|s) · -\\d+%$`));
    assert.doesNotMatch(await hoverAt(none, 0, 25), /step policy would/);
  });
});
