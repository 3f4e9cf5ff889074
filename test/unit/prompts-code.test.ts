import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findPrompts, type PromptSpan } from '../../server/prompts';
import { rangeOf, rangeWithin } from './prompts-helpers';

const texts = (spans: PromptSpan[]) => spans.map((s) => s.text);

describe('prompts: Python', () => {
  it('finds keyword arguments, variables, attributes, dict keys and parameter defaults', async () => {
    const text = [
      'image = pipe(prompt="a cat")',
      'prompt = "a dog"',
      'style_prompt: str = "oil painting"',
      'self.prompt = "a horse"',
      'cfg["prompt"] = "a cow"',
      'job = {"prompt": "a fox", "steps": 4}',
      'def make(prompt="a bird", *, user_prompt: str = "a fish", other="not me"):',
      '    pass',
      'title = "not a prompt"',
    ].join('\n');
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(texts(spans), ['a cat', 'a dog', 'oil painting', 'a horse', 'a cow', 'a fox', 'a bird', 'a fish']);
    assert.deepEqual(spans[0].range, rangeOf(text, '"a cat"'));
    assert.ok(spans.every((s) => s.kind === 'code-string'));
  });

  it('has exact UTF-16 ranges after emoji and non-ASCII text', async () => {
    const text = 'x = "😀é"; prompt = "🦊 in 雪"  # ✓\n  café = 1; pipe("naïve 🎨")\n';
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(texts(spans), ['🦊 in 雪', 'naïve 🎨']);
    assert.deepEqual(spans[0].range, rangeOf(text, '"🦊 in 雪"'));
    assert.deepEqual(spans[0].range.start, { line: 0, character: 20 });
    assert.deepEqual(spans[1].range, rangeOf(text, '"naïve 🎨"'));
  });

  it('takes the first argument of the configured callees, by name or dotted tail', async () => {
    const text = [
      'pipe("one")',
      'self.pipe("two", guidance_scale=7)',
      'client.images.generate("three")',
      'images.generate(model="m")',
      'txt2img(f"four")',
      'other("not me")',
      'pipe(name)',
      'pipe(*args)',
      'generate(["five", "six"])',
    ].join('\n');
    assert.deepEqual(texts(await findPrompts(text, 'python')), ['one', 'two', 'three', 'four', 'five', 'six']);
  });

  it('decodes prefixes, escapes, triple quotes and implicit concatenation', async () => {
    const text = [
      'prompt_a = "tab\\there\\x41\\u00e9\\U0001F600\\N{BULLET}\\q"',
      "prompt_b = r'raw\\n'",
      'prompt_c = U"upper"',
      'prompt_d = b"bytes are not prompts"',
      'prompt_e = f"{subject} in snow"',
      'prompt_f = f"plain {{braces}}"',
      'prompt_g = ("a watercolour "',
      '            "fox" \' at dawn\')',
      'prompt_h = """line one',
      'line two"""',
      'prompt_i = "a" + \'b\' + "c"',
      'prompt_j = "a" + name',
      'prompt_k = ""',
    ].join('\n');
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(texts(spans), [
      'tab\there\u0041\u00e9\u{1F600}\\N{BULLET}\\q',
      'raw\\n',
      'upper',
      'plain {braces}',
      'a watercolour fox at dawn',
      'line one\nline two',
      'abc',
    ]);
    // The range covers the concatenated literals, not the parentheses around them.
    assert.deepEqual(spans[4].range, {
      start: rangeOf(text, '"a watercolour "').start,
      end: rangeOf(text, "' at dawn'").end,
    });
  });

  it('attaches negative prompts in the same call, dict or scope', async () => {
    const text = [
      'pipe("a cat", negative_prompt="blurry")',
      'pipe(prompt="a dog", neg_prompt="dark", seed=3, num_inference_steps=20, width=64, height=32)',
      'job = {"negativePrompt": "noisy", "prompt": "a fox", "size": "128x96", "steps": "auto"}',
      'def scene():',
      '    prompt = "a bird"',
      '    negative_prompt = "low quality"',
      'prompt = "top level"',
    ].join('\n');
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(texts(spans), ['a cat', 'a dog', 'a fox', 'a bird', 'top level']);
    assert.deepEqual(spans.map((s) => s.negative), ['blurry', 'dark', 'noisy', 'low quality', undefined]);
    assert.deepEqual(spans[1].options, { seed: 3, steps: 20, stepsRange: rangeWithin(text, 'num_inference_steps=20', '20'), size: { width: 64, height: 32 } });
    assert.deepEqual(spans[2].options, { size: { width: 128, height: 96 }, steps: 'auto' });
  });

  it('takes the literal after an `adadiff: prompt` marker, with options', async () => {
    const text = [
      '# adadiff: prompt seed: 5, steps: 12, out: img/x.png',
      'CAPTION = (',
      '    "a lighthouse " "at dusk"',
      ')',
      'x = 1  # adadiff: prompt',
      'label = "marked"',
      '# adadiff: prompt',
      'unused = 2',
    ].join('\n');
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(texts(spans), ['a lighthouse at dusk', 'marked']);
    assert.deepEqual(spans[0].options, { seed: 5, steps: 12, out: 'img/x.png' });
    assert.equal(spans[0].target, 'img/x.png');
    assert.deepEqual(spans[1].range, rangeOf(text, '"marked"'));
  });

  it('lets settings add names and callees', async () => {
    const text = 'caption = "a boat"\nrender("a train")\nstudio.draw("a plane")\nprompt = "kept"\n';
    assert.deepEqual(texts(await findPrompts(text, 'python')), ['kept']);
    const spans = await findPrompts(text, 'python', { names: ['Caption'], callees: ['render', 'studio.draw'] });
    assert.deepEqual(texts(spans), ['a boat', 'a train', 'a plane', 'kept']);
  });
});

describe('prompts: JavaScript and TypeScript', () => {
  it('finds variables, properties, fields, defaults and callee arguments', async () => {
    const text = [
      'const prompt = "a cat";',
      'let heroPrompt = \'a dog\' as const;',
      'obj.prompt = `a fox`;',
      'const job = { prompt: "a bird", "userPrompt": "a fish", [key]: "computed", title: "no" };',
      'function make(prompt: string = "a cow", { negativePrompt = "x" } = {}) {}',
      'class Scene { prompt = "a horse"; #prompt2 = "private"; }',
      'await openai.images.generate({ model: "m", prompt: "a robot", size: "1024x1024", n: 1 });',
      'new Pipeline().generate(`template`);',
      'const t = `a ${subject}`;',
    ].join('\n');
    const spans = await findPrompts(text, 'typescript');
    assert.deepEqual(texts(spans), ['a cat', 'a dog', 'a fox', 'a bird', 'a fish', 'a cow', 'a horse', 'private', 'a robot', 'template']);
    assert.deepEqual(spans[1].range, rangeOf(text, "'a dog'"));
    assert.deepEqual(spans[8].options, { size: { width: 1024, height: 1024 } });
  });

  it('decodes escapes and concatenation, with exact ranges after emoji', async () => {
    const text = '/* 🎉 */ const promptA = "tab\\t\\u{1F98A}\\x41\\\nnext" + \'!\';\nconst promptB = `multi\r\nline \\` tick`;\n';
    const spans = await findPrompts(text, 'javascript');
    assert.deepEqual(texts(spans), ['tab\t🦊Anext!', 'multi\nline ` tick']);
    assert.deepEqual(spans[0].range, {
      start: rangeOf(text, '"tab').start,
      end: rangeOf(text, "'!'").end,
    });
    assert.deepEqual(spans[0].range.start, { line: 0, character: 25 });
  });

  it('attaches negatives and sibling options in objects and calls', async () => {
    const text = [
      'generate("a cat", { negativePrompt: "blurry", seed: 9, numInferenceSteps: 14 });',
      'pipe({ prompt: "a dog", negative_prompt: "dark", steps: 30, width: 64, height: 64 });',
      'function scene() { const prompt = "a bird"; const negativePrompt = "noise"; }',
    ].join('\n');
    const spans = await findPrompts(text, 'typescript');
    assert.deepEqual(texts(spans), ['a cat', 'a dog', 'a bird']);
    // The object beside a callee's first argument holds that prompt's options and negative.
    assert.equal(spans[0].negative, 'blurry');
    assert.deepEqual(spans[0].options, { seed: 9, steps: 14, stepsRange: rangeWithin(text, 'numInferenceSteps: 14', '14') });
    assert.equal(spans[1].negative, 'dark');
    assert.deepEqual(spans[1].options, { steps: 30, stepsRange: rangeWithin(text, 'steps: 30', '30'), size: { width: 64, height: 64 } });
    assert.equal(spans[2].negative, 'noise');
  });

  it('reads JSX/TSX attributes and marker comments', async () => {
    const text = [
      'export const Hero = () => (',
      '  <Image prompt="a castle &amp; moat" negativePrompt="fog" seed={7} alt={"no"} />',
      ');',
      '// adadiff: prompt steps: 8',
      'const caption = "marked";',
      '/* adadiff: prompt */ render("also marked");',
    ].join('\n');
    for (const languageId of ['javascriptreact', 'typescriptreact']) {
      const spans = await findPrompts(text, languageId);
      assert.deepEqual(texts(spans), ['a castle & moat', 'marked', 'also marked'], languageId);
      assert.equal(spans[0].negative, 'fog');
      assert.deepEqual(spans[0].options, { seed: 7 });
      assert.deepEqual(spans[0].range, rangeOf(text, '"a castle &amp; moat"'));
      assert.deepEqual(spans[1].options, { steps: 8 });
    }
  });

  it('lets settings add callees with dotted tails', async () => {
    const text = 'sd.render("a kite");\nrender("not unless configured as render");\n';
    assert.deepEqual(texts(await findPrompts(text, 'javascript', { callees: ['sd.render'] })), ['a kite']);
  });
});

describe('prompts: the integer literal that fixes the steps', () => {
  const stepsOf = (spans: PromptSpan[]) => spans.map((s) => [s.options.steps, s.options.stepsRange]);

  it('Python: a keyword argument or dict entry, in one-line and multi-line calls after non-ASCII text', async () => {
    const text = [
      'pipe(prompt="a cat", num_inference_steps=50)',
      'image = pipe(',
      '    "🦊 im Schnee, café 雪",  # ✓ ünïcödé',
      '    guidance_scale=7.5,',
      '    num_inference_steps=(4_0),',
      ')',
      'job = {"prompt": "🎨 naïve", "steps": 12}',
    ].join('\n');
    const spans = await findPrompts(text, 'python');
    assert.deepEqual(stepsOf(spans), [
      [50, rangeWithin(text, 'num_inference_steps=50', '50')],
      [40, rangeWithin(text, 'num_inference_steps=(4_0)', '4_0')],
      [12, rangeWithin(text, '"steps": 12', '12')],
    ]);
    assert.deepEqual(spans[1].options.stepsRange, { start: { line: 4, character: 25 }, end: { line: 4, character: 28 } });
    assert.deepEqual(spans[2].options.stepsRange!.start, { line: 6, character: 38 }, 'UTF-16 columns: 🎨 counts two');
  });

  it('JavaScript and TypeScript: a property of the prompt\'s object or of the object beside it', async () => {
    const text = [
      'generate({ prompt: "🦊 雪", steps: 50 });',
      'await pipe("été 🎨 café", {',
      '  guidance_scale: 7,',
      '  num_inference_steps: 30 as number,',
      '});',
    ].join('\n');
    for (const languageId of ['javascript', 'typescript']) {
      // `as number` is TypeScript; JavaScript parses the line with an error, so give it plain JS.
      const source = languageId === 'javascript' ? text.replace(' as number', '') : text;
      const spans = await findPrompts(source, languageId);
      assert.deepEqual(stepsOf(spans), [
        [50, rangeWithin(source, 'steps: 50', '50')],
        [30, rangeWithin(source, 'num_inference_steps: 30', '30')],
      ], languageId);
      assert.deepEqual(spans[1].options.stepsRange, { start: { line: 3, character: 23 }, end: { line: 3, character: 25 } }, languageId);
    }
  });

  it('TSX: a JSX attribute and a call in a component', async () => {
    const text = [
      'export const Hero = () => <Image prompt="a castle 🏰" steps={20} />;',
      'const run = () => pipe("a 🦊", { steps: 8 });',
    ].join('\n');
    const spans = await findPrompts(text, 'typescriptreact');
    assert.deepEqual(stepsOf(spans), [
      [20, rangeWithin(text, 'steps={20}', '20')],
      [8, rangeWithin(text, 'steps: 8', '8')],
    ]);
  });

  it('no range where the count is not an integer literal, or where a marker comment fixes the steps instead', async () => {
    const py = [
      'pipe(prompt="a", num_inference_steps=steps)',
      'pipe(prompt="b", num_inference_steps="auto")',
      'pipe(prompt="c", num_inference_steps=12.5)',
      'pipe(prompt="d", num_inference_steps=-5)',
      '# adadiff: prompt steps: 12',
      'pipe("e", num_inference_steps=50)',
    ].join('\n');
    assert.deepEqual(stepsOf(await findPrompts(py, 'python')), [
      [undefined, undefined],
      ['auto', undefined],
      [undefined, undefined],
      [undefined, undefined],
      [12, undefined],
    ]);
    const ts = 'generate({ prompt: "a", steps: count });\npipe("b", { steps: 0x10 });\ngenerate({ prompt: "c", steps: 5, numSteps: "auto" });\n';
    assert.deepEqual(stepsOf(await findPrompts(ts, 'typescript')), [
      [undefined, undefined],
      [undefined, undefined],
      ['auto', undefined],
    ]);
  });
});
