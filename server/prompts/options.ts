// The one options syntax, shared by fenced `prompt` blocks, Markdown image titles and
// `adadiff: prompt` marker comments:
//
//   seed: 7, steps: 20, size: 64x64, out: img/cat.png, negative: blurry, low contrast
//
// Pairs are `key: value` (or `key=value`), separated by commas or written one per line. A comma
// only separates pairs when a known key follows it, so a negative prompt may itself contain commas.
// Keys: seed (integer >= 0), steps (integer >= 1, or `auto`), size (`WxH`, or `N` for a square),
// out (a path), negative (text). Values may be quoted with '...' or "...". Text with any unknown
// key is not an options line: a prompt such as "Style: watercolour" stays a prompt.
// Only the syntax is checked here: a number out of limits.ts's bounds is kept, so that the asset
// planner reports it and a render refuses it, rather than the option vanishing in silence.
import type { PromptOptions } from './types';

const KEYS = ['seed', 'steps', 'size', 'out', 'negative'] as const;
type Key = (typeof KEYS)[number];
const PAIR = /^\s*([A-Za-z]+)\s*[:=]\s*([\s\S]*?)\s*$/;
const SEPARATOR = new RegExp(`,(?=\\s*(?:${KEYS.join('|')})\\s*[:=])`, 'i');

/**
 * Parses a line (or a title, or a comment tail) made only of option pairs.
 * Returns undefined when the text is not an options line at all; a known key with an invalid
 * value still makes it an options line, the value is just left out.
 */
export function parseOptions(text: string): PromptOptions | undefined {
  if (!text.trim()) return undefined;
  const options: PromptOptions = {};
  for (const part of text.split(SEPARATOR)) {
    const m = PAIR.exec(part);
    if (!m) return undefined;
    const key = m[1].toLowerCase() as Key;
    if (!KEYS.includes(key)) return undefined;
    setOption(options, key, unquote(m[2]));
  }
  return options;
}

/** Later options win: used to merge a fence's info string with its option lines, and so on. */
export function mergeOptions(...all: (PromptOptions | undefined)[]): PromptOptions {
  const merged: PromptOptions = {};
  for (const o of all) {
    if (!o) continue;
    // A later steps value replaces the literal an earlier one was read from, or a quick fix would
    // rewrite a count the prompt does not use.
    if (o.steps !== undefined) delete merged.stepsRange;
    Object.assign(merged, o);
  }
  return merged;
}

function setOption(options: PromptOptions, key: Key, value: string): void {
  switch (key) {
    case 'seed': {
      const n = parseInteger(value);
      if (n !== undefined) options.seed = n;
      break;
    }
    case 'steps': {
      if (value.toLowerCase() === 'auto') options.steps = 'auto';
      else {
        const n = parseInteger(value);
        if (n !== undefined && n >= 1) options.steps = n;
      }
      break;
    }
    case 'size': {
      const size = parseSize(value);
      if (size) options.size = size;
      break;
    }
    case 'out':
      if (value) options.out = value;
      break;
    case 'negative':
      if (value) options.negative = value;
      break;
  }
}

export function parseInteger(value: string): number | undefined {
  if (!/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `512x768`, `512 × 768`, `512*768`, or `512` for a square. */
export function parseSize(value: string): { width: number; height: number } | undefined {
  const m = /^(\d+)(?:\s*[xX×*]\s*(\d+))?$/.exec(value.trim());
  if (!m) return undefined;
  const width = Number(m[1]);
  const height = Number(m[2] ?? m[1]);
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 1;
  return ok(width) && ok(height) ? { width, height } : undefined;
}

function unquote(value: string): string {
  const m = /^(['"])([\s\S]*)\1$/.exec(value);
  return m ? m[2] : value;
}
