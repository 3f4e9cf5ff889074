// Prompt -> exactly maxLength token ids for the CLIP text encoder. tokenizer.json goes straight to
// @huggingface/tokenizers; folders that ship only vocab.json + merges.txt (diffusers' conversion
// script copies the slow tokenizer's files) get the same CLIP byte-level BPE described as a
// tokenizer.json object, so both layouts run through one tokenizer implementation.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { PromptEncoding, PromptTokenizer } from './contract';
import { errorText } from '../errors';
import { ModelError } from './errors';
import { readBoundedText, readJsonObject, TOKENIZER_MAX_BYTES } from './json';

/** CLIP's context length; SD 1.x/2.x/XL all use it. */
const DEFAULT_MAX_LENGTH = 77;

/**
 * Prompts are a sentence or a paragraph; a pasted log or minified file must not stall hover. Text
 * past this many characters is not tokenized, so `dropped` is a lower bound for such input.
 */
const MAX_TOKENIZED_CHARS = 16_384;

/** CLIP's pre-tokenizer regex (openai/CLIP simple_tokenizer.py), as the HF tokenizer.json spells it. */
const CLIP_PATTERN = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/**
 * HF's CLIPTokenizer keeps only the first 49152 - 256 - 2 merges (the vocab is 256 bytes + their
 * `</w>` forms + merges + 2 specials); honouring the cap keeps ids identical for merges files
 * that carry more lines than the vocab has room for.
 */
const CLIP_MAX_MERGES = 49152 - 256 - 2;

type HfTokenizer = import('@huggingface/tokenizers', { with: { 'resolution-mode': 'import' } }).Tokenizer;

export interface TokenizerOptions {
  /** The text encoder's input length when it is fixed; caps tokenizer_config's model_max_length. */
  maxLength?: number;
}

export async function loadTokenizer(dir: string, opts: TokenizerOptions = {}): Promise<PromptTokenizer> {
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = (await exists(configFile)) ? await readJsonObject(configFile) : {};
  const jsonFile = path.join(dir, 'tokenizer.json');
  const [definition, definitionFile] = (await exists(jsonFile))
    ? [await readJsonObject(jsonFile, TOKENIZER_MAX_BYTES), jsonFile]
    : [await clipBpeDefinition(dir, config), path.join(dir, 'vocab.json')];

  // @huggingface/tokenizers ships as an ES module; this package compiles to CommonJS, where only
  // a dynamic import can load it.
  const { Tokenizer } = await import('@huggingface/tokenizers');
  let tokenizer: HfTokenizer;
  try {
    tokenizer = new Tokenizer(definition, config);
  } catch (error) {
    throw new ModelError(definitionFile, `is not a tokenizer @huggingface/tokenizers can load (${errorText(error)})`, { cause: error });
  }

  const idOf = (key: string, fallback: string): number => {
    const text = tokenText(config[key]) ?? fallback;
    const id = tokenizer.token_to_id(text);
    if (id === undefined) {
      throw new ModelError(definitionFile, `has no token ${JSON.stringify(text)} for ${key}${key in config ? ` (set in ${configFile})` : ''}`);
    }
    return id;
  };
  const bosId = idOf('bos_token', '<|startoftext|>');
  const eosId = idOf('eos_token', '<|endoftext|>');
  // SD 1.x pads with <|endoftext|>, SD 2.x with "!"; a config without pad_token pads with EOS,
  // as HF's CLIPTokenizer does.
  const padId = tokenText(config.pad_token) !== undefined ? idOf('pad_token', '<|endoftext|>') : eosId;

  const configured = config.model_max_length;
  // HF writes a huge sentinel (1e30) when a tokenizer has no limit of its own.
  let maxLength = typeof configured === 'number' && Number.isInteger(configured) && configured >= 2 && configured <= 4096 ? configured : DEFAULT_MAX_LENGTH;
  if (opts.maxLength !== undefined && opts.maxLength >= 2) maxLength = Math.min(maxLength, opts.maxLength);

  return {
    maxLength,
    bosId,
    eosId,
    padId,
    encode(text: string): PromptEncoding {
      const content = tokenizer.encode(cleanText(text), { add_special_tokens: false }).ids;
      const room = maxLength - 2;
      const kept = content.length > room ? content.slice(0, room) : content;
      const ids = [bosId, ...kept, eosId];
      while (ids.length < maxLength) ids.push(padId);
      return { ids, tokens: kept.length + 2, dropped: content.length - kept.length };
    },
  };
}

/** Text the tokenizer can always take: well-formed UTF-16, bounded length. */
function cleanText(text: string): string {
  let s = typeof text === 'string' ? text : String(text ?? '');
  if (s.length > MAX_TOKENIZED_CHARS) {
    // Cut between words where possible so the last kept word is not split into odd pieces.
    const cut = s.lastIndexOf(' ', MAX_TOKENIZED_CHARS);
    s = s.slice(0, cut > MAX_TOKENIZED_CHARS / 2 ? cut : MAX_TOKENIZED_CHARS);
  }
  // Lone surrogates would become U+FFFD in UTF-8 anyway; replacing them first keeps the
  // pre-tokenizer regex and the byte-level mapping on well-formed input.
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** A special token in tokenizer_config.json: a string, or an AddedToken object with `content`. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * The tokenizer.json HF's converter writes for a CLIP slow tokenizer (openai/clip-vit-*): NFC,
 * whitespace runs to one space, lower-case; CLIP's regex split; byte-level mapping; BPE with a
 * `</w>` end-of-word suffix.
 */
async function clipBpeDefinition(dir: string, config: Record<string, unknown>): Promise<Record<string, unknown>> {
  const vocabFile = path.join(dir, 'vocab.json');
  const mergesFile = path.join(dir, 'merges.txt');
  const vocab = await readJsonObject(vocabFile, TOKENIZER_MAX_BYTES);
  for (const [token, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new ModelError(vocabFile, `maps ${JSON.stringify(token)} to ${JSON.stringify(id)}; every token must map to a non-negative integer id`);
    }
  }
  const mergesText = await readBoundedText(mergesFile, TOKENIZER_MAX_BYTES, '; vocab.json needs merges.txt beside it');
  const merges: [string, string][] = [];
  const lines = mergesText.split(/\r?\n/);
  for (let i = 0; i < lines.length && merges.length < CLIP_MAX_MERGES; i++) {
    const line = lines[i];
    if (line.trim() === '' || (i === 0 && line.startsWith('#version'))) continue;
    const pair = line.split(' ');
    if (pair.length !== 2 || !pair[0] || !pair[1]) {
      throw new ModelError(mergesFile, `line ${i + 1} is not a merge of two symbols separated by one space: ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push([pair[0], pair[1]]);
  }

  const unk = tokenText(config.unk_token) ?? '<|endoftext|>';
  const specials = new Set(['<|startoftext|>', '<|endoftext|>', ...['bos_token', 'eos_token', 'pad_token', 'unk_token'].map((k) => tokenText(config[k]))]);
  const addedTokens = [...specials]
    .filter((t): t is string => t !== undefined && typeof vocab[t] === 'number')
    .map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }));
  return {
    version: '1.0',
    added_tokens: addedTokens,
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_PATTERN }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    // BOS/EOS/padding are added by encode() above, the same for both layouts.
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}
