import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findPrompts, localImagePath, parseOptions } from '../../server/prompts';
import { rangeOf } from './prompts-helpers';

const md = (text: string) => findPrompts(text, 'markdown');

describe('prompts: Markdown images', () => {
  it('takes the alt text of a local image, with its exact UTF-16 range', async () => {
    const text = '# Café 😀\n\nSee 🎉 ![a red fox in snow](img/fox.png) here.\n';
    const [span, ...rest] = await md(text);
    assert.equal(rest.length, 0);
    assert.equal(span.kind, 'markdown-image');
    assert.equal(span.text, 'a red fox in snow');
    assert.equal(span.target, 'img/fox.png');
    assert.deepEqual(span.range, rangeOf(text, 'a red fox in snow'));
    assert.deepEqual(span.range.start, { line: 2, character: 9 }); // "See 🎉 ![" is 9 UTF-16 units
    assert.deepEqual(span.options, {});
  });

  it('decodes the alt text and the path; the range still covers the source', async () => {
    const text = '![a *bold* cat &amp; dog](<pics/my cat.webp> "x") ![b](pics/a%20b.JPG?v=2#top)';
    const spans = await md(text);
    assert.equal(spans.length, 2);
    assert.equal(spans[0].text, 'a bold cat & dog');
    assert.deepEqual(spans[0].range, rangeOf(text, 'a *bold* cat &amp; dog'));
    assert.equal(spans[0].target, 'pics/my cat.webp');
    assert.equal(spans[1].target, 'pics/a b.JPG');
  });

  it('skips remote, data, protocol-relative and non-image targets, and empty alt text', async () => {
    const text = [
      '![remote](https://example.com/a.png)',
      '![plain](http://example.com/a.png)',
      '![data](data:image/png;base64,AAAA)',
      '![proto](//cdn.example.com/a.png)',
      '![file](file:///tmp/a.png)',
      '![doc](notes/readme.md)',
      '![](img/empty.png)',
      '![   ](img/blank.png)',
      '`![code](img/code.png)`',
      '',
      '    ![indented code](img/indented.png)',
      '',
      '![kept](./img/ok.gif)',
    ].join('\n\n');
    const spans = await md(text);
    assert.deepEqual(spans.map((s) => s.text), ['kept']);
    assert.equal(spans[0].target, './img/ok.gif');
  });

  it('resolves reference images: full, collapsed and shortcut', async () => {
    const text = '![a full ref][f]\n\n![Collapsed][]\n\n![shortcut]\n\n![remote][r]\n\n[f]: img/full.png\n[collapsed]: <img/c.jpeg> "seed: 9"\n[shortcut]: img/s.png\n[r]: https://x.org/r.png\n';
    const spans = await md(text);
    assert.deepEqual(
      spans.map((s) => [s.text, s.target]),
      [['a full ref', 'img/full.png'], ['Collapsed', 'img/c.jpeg'], ['shortcut', 'img/s.png']],
    );
    assert.deepEqual(spans[0].range, rangeOf(text, 'a full ref'));
    assert.deepEqual(spans[1].options, { seed: 9 });
  });

  it('reads options from an image title made only of options', async () => {
    const text = '![a cat](cat.png "seed: 7, steps: 20, negative: blurry, dark") ![b](b.png "A nice picture")';
    const [a, b] = await md(text);
    assert.deepEqual(a.options, { seed: 7, steps: 20, negative: 'blurry, dark' });
    assert.equal(a.negative, 'blurry, dark');
    assert.deepEqual(b.options, {});
  });

  it('finds images inside lists, block quotes and links; CRLF line ends', async () => {
    const text = '- item\r\n  > quote ![in a quote](q.png)\r\n\r\n[![linked](l.png)](https://example.com)\r\n';
    const spans = await md(text);
    assert.deepEqual(spans.map((s) => s.text), ['in a quote', 'linked']);
    assert.deepEqual(spans[0].range, rangeOf(text, 'in a quote'));
    assert.deepEqual(spans[1].range, { start: { line: 3, character: 3 }, end: { line: 3, character: 9 } });
  });
});

describe('prompts: Markdown prompt fences', () => {
  it('parses the options line and takes the rest as the prompt', async () => {
    const text = 'Intro\n\n```prompt\nseed: 7, steps: 20, size: 64x48, out: img/cat.png, negative: blurry\na watercolour cat\non a windowsill 🌸\n```\n';
    const [span, ...rest] = await md(text);
    assert.equal(rest.length, 0);
    assert.equal(span.kind, 'markdown-fence');
    assert.equal(span.text, 'a watercolour cat\non a windowsill 🌸');
    assert.deepEqual(span.options, { seed: 7, steps: 20, size: { width: 64, height: 48 }, out: 'img/cat.png', negative: 'blurry' });
    assert.equal(span.target, 'img/cat.png');
    assert.equal(span.negative, 'blurry');
    assert.deepEqual(span.range, {
      start: rangeOf(text, 'a watercolour cat').start,
      end: rangeOf(text, 'on a windowsill 🌸').end,
    });
  });

  it('accepts options one per line, in the info string, with steps auto and no options at all', async () => {
    const text = [
      '~~~prompt out: a.png',
      'seed: 1',
      'steps: auto',
      '',
      'first prompt',
      '~~~',
      '',
      '```Prompt',
      'Style: watercolour, soft light',
      '```',
    ].join('\n');
    const [a, b] = await md(text);
    assert.equal(a.text, 'first prompt');
    assert.deepEqual(a.options, { out: 'a.png', seed: 1, steps: 'auto' });
    assert.deepEqual(a.range, rangeOf(text, 'first prompt'));
    assert.equal(b.text, 'Style: watercolour, soft light');
    assert.deepEqual(b.options, {});
  });

  it('handles fences in block quotes, unclosed at the end, empty, and other languages', async () => {
    const text = '> ```prompt\n>   a quoted prompt  \n> ```\n\n```prompt\nseed: 3\n```\n\n```python\nprompt = "x"\n```\n\n```prompt\nlast one, never closed\n';
    const spans = await md(text);
    assert.deepEqual(spans.map((s) => s.text), ['a quoted prompt', 'last one, never closed']);
    assert.deepEqual(spans[0].range, rangeOf(text, 'a quoted prompt'));
    assert.deepEqual(spans[1].range, rangeOf(text, 'last one, never closed'));
  });
});

describe('prompts: options syntax', () => {
  it('parses every key and rejects text that is not only options', () => {
    assert.deepEqual(parseOptions('seed=42; '), {}); // an options line whose value is invalid
    assert.deepEqual(parseOptions('seed=42, size: 512, out: "a b.png"'), { seed: 42, size: { width: 512, height: 512 }, out: 'a b.png' });
    assert.deepEqual(parseOptions('steps: 0, size: 1x0, seed: -1'), {});
    assert.deepEqual(parseOptions('negative: a, b, c, steps: 5'), { negative: 'a, b, c', steps: 5 });
    assert.equal(parseOptions('a cat, seed: 1'), undefined);
    assert.equal(parseOptions('colour: red'), undefined);
    assert.equal(parseOptions(''), undefined);
  });

  it('recognises local image paths', () => {
    assert.equal(localImagePath('a/b.PNG'), 'a/b.PNG');
    assert.equal(localImagePath('/abs/b.jpeg'), '/abs/b.jpeg');
    assert.equal(localImagePath('a%zz.png'), 'a%zz.png');
    assert.equal(localImagePath('HTTPS://x/b.png'), undefined);
    assert.equal(localImagePath('c:/x.png'), undefined); // a scheme as far as URLs go
    assert.equal(localImagePath('b.svg'), undefined);
  });
});

describe('prompts: languages', () => {
  it('returns nothing for unknown languages and maps extra ones through settings', async () => {
    const text = '![a cat](cat.png)';
    assert.deepEqual(await findPrompts(text, 'plaintext'), []);
    assert.deepEqual(await findPrompts(text, 'mdx'), []);
    const spans = await findPrompts(text, 'mdx', { languages: ['mdx=markdown'] });
    assert.equal(spans.length, 1);
  });
});
