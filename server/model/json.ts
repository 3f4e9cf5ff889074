// Model folders carry several small JSON files (model_index, scheduler, tokenizer and part
// configs); a broken one is reported the same way wherever it is read.

import { promises as fs } from 'node:fs';
import { ModelError, errorText } from './errors';

export async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelError(file, code === 'ENOENT' ? 'is missing' : `cannot be read (${errorText(error)})`, { cause: error });
  }
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
