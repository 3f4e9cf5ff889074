// Shared by the prompts-*.test.ts files: expected ranges computed independently of the finder.
import type { Range } from '../../server/prompts';

/** The LSP range of the `nth` occurrence of `needle` in `text`, UTF-16 columns. */
export function rangeOf(text: string, needle: string, nth = 0): Range {
  let offset = -1;
  for (let i = 0; i <= nth; i++) {
    offset = text.indexOf(needle, offset + 1);
    if (offset < 0) throw new Error(`${JSON.stringify(needle)} not found`);
  }
  return rangeAt(text, offset, needle.length);
}

/** The range of `part` within the first `context` in `text`: for short needles such as `50` that stand elsewhere too. */
export function rangeWithin(text: string, context: string, part: string): Range {
  const outer = text.indexOf(context);
  const inner = context.indexOf(part);
  if (outer < 0 || inner < 0) throw new Error(`${JSON.stringify(part)} in ${JSON.stringify(context)} not found`);
  return rangeAt(text, outer + inner, part.length);
}

function rangeAt(text: string, offset: number, length: number): Range {
  return { start: positionOf(text, offset), end: positionOf(text, offset + length) };
}

function positionOf(text: string, offset: number) {
  const lines = text.slice(0, offset).split(/\r\n|\r|\n/);
  return { line: lines.length - 1, character: lines[lines.length - 1].length };
}
