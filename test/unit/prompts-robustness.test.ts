import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findPrompts, scanPrompts } from '../../server/prompts';

async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await run();
  console.log(`# ${label}: ${(performance.now() - start).toFixed(0)} ms`);
  return result;
}

describe('prompts: hostile input', () => {
  const cases: [string, string, string][] = [
    ['python', 'unterminated strings', 'prompt = "never closed\nprompt2 = """also never\n'],
    ['python', 'nested brackets', '('.repeat(20_000) + 'prompt="x"' + ']'.repeat(20_000)],
    ['python', 'lone surrogates', 'prompt = "\ud800 fox \udfff"\npipe("\udc00")\n'],
    ['python', 'NUL and noise', '\u0000\uffff\u0001'.repeat(5_000) + '\nprompt = "after noise"\n'],
    ['typescript', 'nested braces', '{'.repeat(20_000)],
    ['typescript', 'unterminated template', 'const prompt = `abc ${'],
    ['typescript', 'long concatenation', 'const prompt = "a"' + ' + "b"'.repeat(20_000) + ';'],
    ['typescriptreact', 'unclosed JSX', '<A prompt="x">'.repeat(2_000)],
    ['javascript', 'regex-looking noise', '/'.repeat(10_000) + '"prompt"' + '`'.repeat(10_000)],
    ['markdown', 'nested link brackets', '['.repeat(20_000) + '![x](a.png)' + ']'.repeat(20_000)],
    ['markdown', 'nested quotes', '>'.repeat(10_000) + ' ![deep](a.png)'],
    ['markdown', 'nested list markers', '- '.repeat(1_000) + '![deep](a.png)'],
    ['markdown', 'unclosed fence', '```prompt\n' + 'a prompt line\n'.repeat(100)],
    ['markdown', 'lone surrogates', '![\ud800 fox](f\udc00.png)'],
  ];
  for (const [languageId, label, text] of cases) {
    it(`${languageId}: ${label} returns what it can and never throws`, async () => {
      const spans = await timed(`${languageId} ${label}`, () => findPrompts(text, languageId));
      assert.ok(Array.isArray(spans));
      for (const span of spans) {
        assert.equal(typeof span.text, 'string');
        assert.ok(span.range.start.line <= span.range.end.line);
      }
    });
  }

  it('still finds the good parts of a broken file', async () => {
    const text = 'pipe("a good cat")\ndef broken(:\n    prompt = "still found"\nx = "never closed\n';
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(spans.map((s) => s.text), ['a good cat', 'still found']);
    const lone = await findPrompts('prompt = "\ud800 fox"', 'python');
    assert.equal(lone[0].text, '\ud800 fox');
  });

  it('a NUL byte, inside a literal or out, hides no prompt (tree-sitter reads it as the end of input)', async () => {
    for (const languageId of ['python', 'typescript', 'javascript']) {
      const text = '\u0000'.repeat(1_000) + '\nprompt = "be\u0000fore"\nprompt = "after"\n';
      const spans = await findPrompts(text, languageId);
      assert.deepEqual(spans.map((s) => s.text), ['be\u0000fore', 'after'], languageId);
    }
  });
});

describe('prompts: a caller\'s time budget', () => {
  it('cuts a long scan short and says so; a short one is complete', async () => {
    for (const [languageId, text] of [
      ['python', 'x = ' + '1 + '.repeat(500_000) + '1'],
      ['markdown', '![a fox](f.png) '.repeat(100_000)],
    ]) {
      const t0 = performance.now();
      const scan = await scanPrompts(text, languageId, {}, { budgetMs: 50 });
      assert.equal(scan.cutOff, true, languageId);
      assert.ok(performance.now() - t0 < 2_000, `${languageId}: the budget of 50 ms held the scan ${performance.now() - t0} ms`);
      assert.deepEqual(await scanPrompts('prompt = "a cat"\n![a dog](dog.png)\n', languageId, {}, { budgetMs: 5_000 }).then((s) => s.cutOff), false);
    }
  });
});

describe('prompts: cancellation and reuse', () => {
  it('returns nothing once the token is cancelled, before or between phases', async () => {
    const text = 'prompt = "a cat"\n![a dog](dog.png)\n';
    for (const languageId of ['python', 'markdown']) {
      assert.deepEqual(await findPrompts(text, languageId, {}, { isCancellationRequested: true }), []);
      const token = { isCancellationRequested: false };
      const pending = findPrompts(text, languageId, {}, token);
      setImmediate(() => (token.isCancellationRequested = true));
      assert.deepEqual(await pending, []);
    }
  });

  it('serves concurrent calls in several languages from the shared parsers', async () => {
    const docs: [string, string, string][] = [
      ['python', 'prompt = "py"', 'py'],
      ['javascript', 'const prompt = "js"', 'js'],
      ['typescript', 'const prompt: string = "ts"', 'ts'],
      ['typescriptreact', 'const e = <I prompt="tsx" />', 'tsx'],
      ['javascriptreact', 'const e = <I prompt="jsx" />', 'jsx'],
      ['markdown', '![md](m.png)', 'md'],
    ];
    const all = [...docs, ...docs];
    const results = await Promise.all(all.map(([id, text]) => findPrompts(text, id)));
    assert.deepEqual(results.map((r) => r.map((s) => s.text)), all.map(([, , expected]) => [expected]));
  });
});

describe('prompts: large documents', () => {
  const n = 10_000;
  const filler = 'lorem ipsum dolor sit amet '.repeat(4);

  it(`python: ${n} prompts`, async () => {
    let text = '';
    for (let i = 0; i < n; i++) {
      text += `def render_${i}(pipe):\n    # ${filler}\n    return pipe(prompt="cat ${i} 🎉", negative_prompt="blurry", num_inference_steps=${(i % 50) + 1})\n\n`;
    }
    const spans = await timed(`python ${(text.length / 1e6).toFixed(1)} MB, ${n} prompts`, () => findPrompts(text, 'python'));
    assert.equal(spans.length, n);
    assert.equal(spans[n - 1].text, `cat ${n - 1} 🎉`);
    assert.equal(spans[n - 1].negative, 'blurry');
    assert.equal(spans[n - 1].range.start.line, 4 * (n - 1) + 2);
  });

  it(`typescript: ${n} prompts`, async () => {
    let text = '';
    for (let i = 0; i < n; i++) {
      text += `export const job${i} = { prompt: "dog ${i}", negativePrompt: 'dark', seed: ${i} }; // ${filler}\n`;
    }
    const spans = await timed(`typescript ${(text.length / 1e6).toFixed(1)} MB, ${n} prompts`, () => findPrompts(text, 'typescript'));
    assert.equal(spans.length, n);
    assert.deepEqual(spans[n - 1].options, { seed: n - 1 });
  });

  it(`markdown: ${n} prompts`, async () => {
    let text = '';
    for (let i = 0; i < n; i++) text += `## Part ${i}\n\n${filler}\n\n![a house ${i}](img/house-${i}.png)\n\n`;
    const spans = await timed(`markdown ${(text.length / 1e6).toFixed(1)} MB, ${n} prompts`, () => findPrompts(text, 'markdown'));
    assert.equal(spans.length, n);
    assert.equal(spans[n - 1].target, `img/house-${n - 1}.png`);
  });

  it('python: a 5 MB document', async () => {
    const line = `x = compute(${'1, '.repeat(40)}2)  # ${filler}\n`;
    let text = '';
    while (text.length < 5_000_000) text += line.repeat(100) + 'prompt = "a needle in a haystack"\n';
    const spans = await timed(`python ${(text.length / 1e6).toFixed(1)} MB`, () => findPrompts(text, 'python'));
    assert.equal(spans.length, text.split('prompt = ').length - 1);
  });
});
