// Model folders carry several small JSON files (model_index, scheduler, tokenizer and part
// configs); a broken one is reported the same way wherever it is read. A model folder is whatever
// the user (or a downloaded repository) put there, so every read is bounded: a regular file only
// (a symlink to /dev/zero would otherwise be read until memory ran out), of a size fit for its
// kind, and JSON no deeper than any real config.

import { promises as fs } from 'node:fs';
import { errorText } from '../errors';
import { ModelError } from './errors';

const MiB = 1024 * 1024;

/** model_index.json, scheduler and part configs, tokenizer_config.json: a few kB each in every exporter's output. */
export const CONFIG_MAX_BYTES = 4 * MiB;

/** tokenizer.json, vocab.json, merges.txt: CLIP's tokenizer.json is 2 MB, the largest LLM tokenizers about 30 MB. */
export const TOKENIZER_MAX_BYTES = 64 * MiB;

/** Real configs nest a handful of levels (tokenizer.json about 5); past this a file is not one. */
const MAX_JSON_DEPTH = 64;

const size = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : `${(bytes / MiB).toFixed(1)} MB`);

/** The text of a model folder's file, refused (with the reason) when it is not a regular file or exceeds `maxBytes`. */
export async function readBoundedText(file: string, maxBytes: number, hint = ''): Promise<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelError(file, code === 'ENOENT' ? `is missing${hint}` : `cannot be read (${errorText(error)})${hint}`, { cause: error });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ModelError(file, 'is not a regular file (a device, pipe or folder, perhaps through a symlink); a model folder holds plain files');
    if (stat.size > maxBytes) throw new ModelError(file, `is ${size(stat.size)}, larger than such a file ever is (at most ${size(maxBytes)} is read); is it the right file, or a damaged download?`);
    return await handle.readFile('utf8');
  } catch (error) {
    if (error instanceof ModelError) throw error;
    throw new ModelError(file, `cannot be read (${errorText(error)})${hint}`, { cause: error });
  } finally {
    await handle.close();
  }
}

export async function readJsonObject(file: string, maxBytes = CONFIG_MAX_BYTES): Promise<Record<string, unknown>> {
  const text = await readBoundedText(file, maxBytes);
  const depth = nestingDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new ModelError(file, `is nested ${depth} levels deep, and no model file nests more than ${MAX_JSON_DEPTH}; is it damaged?`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelError(file, `is not valid JSON (${errorText(error)})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelError(file, `must hold a JSON object, found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

/** The deepest nesting of arrays and objects, brackets inside strings not counted; one pass, no recursion. */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}
