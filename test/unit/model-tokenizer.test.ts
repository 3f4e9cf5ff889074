// CLIP tokenization from both tokenizer layouts. The expected ids are worked out by hand from the
// tiny vocab and merges below, following openai/CLIP's simple_tokenizer: lower-case, split with
// CLIP's regex, append `</w>` to each word's last symbol, then apply merges lowest rank first.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { ModelError } from '../../server/model/errors';
import { loadTokenizer } from '../../server/model/tokenizer';
import { tempDirAsync } from '../temp-dirs';

const TOKENS = [
  '<|startoftext|>', '<|endoftext|>', '!', '!</w>', 'a', 'b', 'e', 'h', 'i', 'l', 'o', 's', 't', "'",
  'l</w>', 'o</w>', 's</w>', 't</w>', 'b</w>', '4</w>', '2</w>',
  'he', 'll', 'llo</w>', 'hello</w>', "'s</w>", 'it</w>', 'ab</w>', 'a</w>',
];
const VOCAB: Record<string, number> = Object.fromEntries(TOKENS.map((t, i) => [t, i]));
const MERGES = ['h e', 'l l', 'll o</w>', 'he llo</w>', "' s</w>", 'i t</w>', 'a b</w>'];
const id = (t: string) => VOCAB[t];
const BOS = id('<|startoftext|>');
const EOS = id('<|endoftext|>');

/** What HF's converter writes for a CLIP tokenizer, trimmed to the tiny vocab. */
function hfTokenizerJson() {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [BOS, EOS].map((i) => ({ id: i, content: TOKENS[i], single_word: false, lstrip: false, rstrip: false, normalized: true, special: true })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', EOS], cls: ['<|startoftext|>', BOS], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: '<|endoftext|>', continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, vocab: VOCAB, merges: MERGES },
  };
}

async function tokenizerDir(kind: 'bpe-files' | 'tokenizer.json', config: Record<string, unknown>): Promise<string> {
  const dir = await tempDirAsync('adadiff-tok-');
  if (kind === 'bpe-files') {
    await fs.writeFile(path.join(dir, 'vocab.json'), JSON.stringify(VOCAB));
    await fs.writeFile(path.join(dir, 'merges.txt'), `#version: 0.2\n${MERGES.join('\n')}\n`);
  } else {
    await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(hfTokenizerJson()));
  }
  await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

const SD1_CONFIG = { model_max_length: 77, bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: '<|endoftext|>' };

const CASES: [string, string[]][] = [
  ['Hello hello!', ['hello</w>', 'hello</w>', '!</w>']],
  // No merge joins "l" with "l</w>": the suffix makes the last symbol a different symbol.
  ['HELL', ['he', 'l', 'l</w>']],
  ["it's", ['it</w>', "'s</w>"]],
  // CLIP splits numbers into single digits.
  ['42', ['4</w>', '2</w>']],
  ['AB \t\n  ab', ['ab</w>', 'ab</w>']],
  ['', []],
];

for (const kind of ['bpe-files', 'tokenizer.json'] as const) {
  test(`CLIP BPE from ${kind} gives the hand-derived ids`, async () => {
    const tok = await loadTokenizer(await tokenizerDir(kind, SD1_CONFIG));
    assert.equal(tok.maxLength, 77);
    for (const [text, expected] of CASES) {
      const enc = tok.encode(text);
      assert.equal(enc.ids.length, 77, text);
      assert.deepEqual(enc.ids.slice(0, expected.length + 2), [BOS, ...expected.map(id), EOS], text);
      assert.ok(enc.ids.slice(expected.length + 2).every((i) => i === EOS), `${text}: SD 1.x pads with <|endoftext|>`);
      assert.equal(enc.tokens, expected.length + 2);
      assert.equal(enc.dropped, 0);
    }
  });
}

test('SD 2.x pads with "!" from tokenizer_config.json', async () => {
  const tok = await loadTokenizer(await tokenizerDir('bpe-files', { ...SD1_CONFIG, pad_token: { content: '!', __type: 'AddedToken' } }));
  assert.equal(tok.padId, id('!'));
  assert.deepEqual(tok.encode('ab').ids.slice(0, 5), [BOS, id('ab</w>'), EOS, id('!'), id('!')]);
});

test('truncation keeps BOS and EOS and counts what it dropped', async () => {
  const tok = await loadTokenizer(await tokenizerDir('tokenizer.json', { ...SD1_CONFIG, model_max_length: 6 }));
  assert.equal(tok.maxLength, 6);
  const enc = tok.encode('ab ab ab ab ab ab');
  assert.deepEqual(enc.ids, [BOS, ...Array(4).fill(id('ab</w>')), EOS]);
  assert.equal(enc.tokens, 6);
  assert.equal(enc.dropped, 2);
});

test("the text encoder's input length caps model_max_length", async () => {
  const tok = await loadTokenizer(await tokenizerDir('bpe-files', SD1_CONFIG), { maxLength: 8 });
  assert.equal(tok.maxLength, 8);
  assert.equal(tok.encode('hello').ids.length, 8);
});

test('hostile text never throws and always gives maxLength ids', async () => {
  const tok = await loadTokenizer(await tokenizerDir('bpe-files', SD1_CONFIG));
  const texts = [
    'a'.repeat(1_000_000),
    'ab '.repeat(200_000),
    '\u0000\u0007\u001b[31m\u007f',
    '\uD800 lone high, lone low \uDC00, reversed \uDC00\uD800',
    '😀🎉👩‍👩‍👧 emoji',
    '<|endoftext|> <|startoftext|>',
    'Ünïcödé ﬁ Ⅻ ١٢٣',
  ];
  for (const text of texts) {
    const started = performance.now();
    const enc = tok.encode(text);
    assert.equal(enc.ids.length, 77);
    assert.equal(enc.ids[0], BOS);
    assert.ok(enc.ids.every((i) => Number.isInteger(i) && i >= 0 && i < TOKENS.length));
    assert.ok(performance.now() - started < 2000, `${JSON.stringify(text.slice(0, 20))} took too long`);
  }
  assert.ok(tok.encode('ab '.repeat(200_000)).dropped > 1000);
});

test('broken tokenizer folders name the file and the problem', async () => {
  const empty = await tempDirAsync('adadiff-tok-');
  await assert.rejects(loadTokenizer(empty), (e: unknown) => e instanceof ModelError && e.file === path.join(empty, 'vocab.json') && /missing/.test(e.message));

  const badJson = await tokenizerDir('bpe-files', SD1_CONFIG);
  await fs.writeFile(path.join(badJson, 'tokenizer_config.json'), '{"model_max_length": 77,');
  await assert.rejects(loadTokenizer(badJson), (e: unknown) => e instanceof ModelError && e.message.startsWith(path.join(badJson, 'tokenizer_config.json')) && /not valid JSON/.test(e.message));

  const badMerges = await tokenizerDir('bpe-files', SD1_CONFIG);
  await fs.writeFile(path.join(badMerges, 'merges.txt'), '#version: 0.2\nh e\nthree parts here\n');
  await assert.rejects(loadTokenizer(badMerges), (e: unknown) => e instanceof ModelError && /merges\.txt: line 3/.test(e.message));

  const noBos = await tokenizerDir('bpe-files', { ...SD1_CONFIG, bos_token: '<s>' });
  await assert.rejects(loadTokenizer(noBos), (e: unknown) => e instanceof ModelError && /has no token "<s>" for bos_token/.test(e.message));
});

test("a fixture's tokenizer.json and its vocab.json + merges.txt give the same ids", async () => {
  const source = path.join((await ensureFixtures()).optimum, 'tokenizer');
  const bpeOnly = await tempDirAsync('adadiff-tok-');
  for (const name of ['vocab.json', 'merges.txt', 'tokenizer_config.json']) await fs.copyFile(path.join(source, name), path.join(bpeOnly, name));
  const [fromJson, fromBpe] = await Promise.all([loadTokenizer(source), loadTokenizer(bpeOnly)]);
  for (const text of ['a red apple', 'A photo of an astronaut riding a horse, 4k, trending!', "it's 2024 — 😀"]) {
    assert.deepEqual(fromBpe.encode(text), fromJson.encode(text), text);
  }
});
