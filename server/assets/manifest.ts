// adadiff.yaml / adadiff.yml / adadiff.json: asset prompts for repositories without Markdown.
//
//   model: ../models/mine          # optional default for every entry, relative to this file
//   assets:
//     - prompt: a red apple emoji
//       out: img/apple.png         # relative to this file, inside the workspace
//       seed: 7                    # optional, default 0
//       size: 64x64                # optional "WxH" or N, default the model's size
//       steps: auto                # optional auto | N, default auto (the policy's choice)
//       negative: blurry           # optional
//       model: ../models/other     # optional, overrides the default
//
// A bare list of entries is accepted too. Entries are checked one by one: a bad entry is reported
// with its file, line and index and left out; the others still count. JSON is parsed by the same
// YAML 1.2 parser (JSON is a subset) so its errors carry line numbers as well.
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { integerRule, isIntegerIn, SEED, STEPS } from '../limits';

export const MANIFEST_NAMES = ['adadiff.yaml', 'adadiff.yml', 'adadiff.json'];

export interface ManifestEntry {
  /** 1-based position in the list, and the line it starts on. */
  index: number;
  line: number;
  prompt: string;
  out: string;
  seed?: number;
  size?: { width: number; height: number };
  steps?: number | 'auto';
  negative?: string;
  /** As written, relative to the manifest's folder. */
  model?: string;
}

export interface ManifestProblem {
  line: number;
  message: string;
}

const KEYS = ['prompt', 'out', 'seed', 'size', 'steps', 'negative', 'model'];
const TOP_KEYS = ['assets', 'model'];

export function parseManifest(text: string, name: string): { entries: ManifestEntry[]; problems: ManifestProblem[] } {
  const problems: ManifestProblem[] = [];
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (node: Node | null | undefined) => (node?.range ? lineCounter.linePos(node.range[0]).line : 1);
  if (name.endsWith('.json')) {
    try {
      JSON.parse(text);
    } catch (err) {
      return { entries: [], problems: [{ line: 1, message: `is not valid JSON: ${(err as Error).message}` }] };
    }
  }
  if (doc.errors.length) {
    return { entries: [], problems: doc.errors.map((e) => ({ line: e.linePos?.[0].line ?? 1, message: e.message.split('\n')[0] })) };
  }

  let list: Node | null | undefined = doc.contents;
  let defaultModel: string | undefined;
  if (isMap(list)) {
    const top = list.toJSON() as Record<string, unknown>;
    const unknown = Object.keys(top).filter((k) => !TOP_KEYS.includes(k));
    if (unknown.length) problems.push({ line: 1, message: `unknown top-level key ${unknown.map((k) => `"${k}"`).join(', ')} (expected ${TOP_KEYS.join(', ')})` });
    if (top.model !== undefined) {
      if (typeof top.model === 'string' && top.model.trim()) defaultModel = top.model;
      else problems.push({ line: 1, message: '"model" must be a path to a model folder' });
    }
    list = list.get('assets', true) as Node | undefined;
  }
  if (list === null || list === undefined) return { entries: [], problems: [...problems, { line: 1, message: 'has no "assets" list' }] };
  if (!isSeq(list)) return { entries: [], problems: [...problems, { line: lineOf(list), message: '"assets" must be a list of entries' }] };

  const entries: ManifestEntry[] = [];
  list.items.forEach((item, i) => {
    const line = lineOf(item as Node);
    const value = (item as Node | null)?.toJSON();
    const result = validateEntry(value, i + 1, line);
    if (typeof result === 'string') problems.push({ line, message: result });
    else entries.push({ ...result, model: result.model ?? defaultModel });
  });
  return { entries, problems };
}

function validateEntry(value: unknown, index: number, line: number): ManifestEntry | string {
  const where = (out?: unknown) => `entry ${index}${typeof out === 'string' && out ? ` (${out})` : ''}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where()} must be a mapping with at least "prompt" and "out"`;
  const e = value as Record<string, unknown>;
  const fail = (message: string) => `${where(e.out)}: ${message}`;
  const unknown = Object.keys(e).filter((k) => !KEYS.includes(k));
  if (unknown.length) return fail(`unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (expected ${KEYS.join(', ')})`);
  if (typeof e.prompt !== 'string' || !e.prompt.trim()) return fail('"prompt" must be non-empty text');
  if (typeof e.out !== 'string' || !e.out.trim()) return fail('"out" must be a file path such as img/cat.png');
  const entry: ManifestEntry = { index, line, prompt: e.prompt.trim(), out: e.out.trim() };
  if (e.seed !== undefined) {
    if (!isIntegerIn(e.seed, SEED)) return fail(`"seed" must be ${integerRule(SEED)}, got ${JSON.stringify(e.seed)}`);
    entry.seed = e.seed as number;
  }
  if (e.steps !== undefined) {
    if (e.steps === 'auto') entry.steps = 'auto';
    else if (isIntegerIn(e.steps, STEPS)) entry.steps = e.steps;
    else return fail(`"steps" must be auto or ${integerRule(STEPS)}, got ${JSON.stringify(e.steps)}`);
  }
  if (e.size !== undefined) {
    const m = typeof e.size === 'number' ? [String(e.size), String(e.size), String(e.size)] : typeof e.size === 'string' ? /^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$/.exec(e.size) : null;
    if (!m) return fail(`"size" must look like 512x512 (or 512 for a square), got ${JSON.stringify(e.size)}`);
    entry.size = { width: Number(m[1]), height: Number(m[2]) };
  }
  if (e.negative !== undefined) {
    if (typeof e.negative !== 'string') return fail('"negative" must be text');
    if (e.negative.trim()) entry.negative = e.negative.trim();
  }
  if (e.model !== undefined) {
    if (typeof e.model !== 'string' || !e.model.trim()) return fail('"model" must be a path to a model folder');
    entry.model = e.model.trim();
  }
  return entry;
}
