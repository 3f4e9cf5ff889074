// Prompts in Markdown, found with micromark (CommonMark, with positions) through mdast.
//
//  - An image whose target is a local image file (.png .jpg .jpeg .webp .gif; not http(s):,
//    data: or any other scheme, not protocol-relative `//host`): the alt text is the prompt and
//    the decoded path is the asset target. Inline `![alt](img/cat.png)` and reference images
//    `![alt][ref]`, `![alt][]`, `![alt]` with a `[ref]: img/cat.png` definition. A title made only
//    of options gives options: `![a cat](cat.png "seed: 7, steps: 20")`. Empty alt text is not a prompt.
//  - A fenced code block whose info string is `prompt`: its first lines may be options (syntax in
//    options.ts; also accepted after `prompt` in the info string), the rest is the prompt.
//
//        ```prompt
//        seed: 7, steps: 20, size: 64x64, out: img/cat.png, negative: blurry
//        a watercolour cat on a windowsill
//        ```
import { Script, createContext } from 'node:vm';
import type { Code, Definition, Image, ImageReference, Nodes } from 'mdast';
import type { CompileContext, Token } from 'mdast-util-from-markdown' with { 'resolution-mode': 'import' };
import { mergeOptions, parseOptions } from './options';
import { LineIndex } from './positions';
import type { PromptScan, PromptSpan, ScanOptions } from './types';

const IMAGE_EXTENSION = /\.(png|jpe?g|webp|gif)$/i;
const MAYBE_PROMPT_FENCE = /(?:`{3,}|~{3,})[ \t]*prompt/i;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * micromark is linear on ordinary text (about 1.5-3 µs a character) but quadratic on some hostile
 * shapes (100k nested `[`, 10k nested list markers on one line). It is synchronous and cannot be
 * cancelled, so it runs under a vm timeout, which interrupts it; such a document yields [].
 */
const budgetMs = (length: number) => 3_000 + Math.ceil(length / 200);
const sandbox = createContext({});
const runParse = new Script('globalThis.parse()');

type FromMarkdown = typeof import('mdast-util-from-markdown', { with: { 'resolution-mode': 'import' } }).fromMarkdown;
let parser: Promise<FromMarkdown> | undefined;

/** mdast-util-from-markdown is ESM-only; loaded once, on first use. */
function loadParser(): Promise<FromMarkdown> {
  parser ??= import('mdast-util-from-markdown').then((m) => m.fromMarkdown);
  return parser;
}

export async function findMarkdownPrompts(text: string, { token, budgetMs: budget }: ScanOptions = {}): Promise<PromptScan> {
  const none = { spans: [], cutOff: false };
  // Parsing costs about 1.5 µs a character; most documents hold no image and no prompt fence.
  if (!text.includes('![') && !MAYBE_PROMPT_FENCE.test(text)) return none;
  const fromMarkdown = await loadParser();
  if (token?.isCancellationRequested) return none;

  // mdast keeps the whole image's position only; the alt text's own extent comes from the
  // `labelText` token, recorded here as it is entered (mdast has no default handler for it).
  const altRanges = new WeakMap<object, { start: number; end: number }>();
  const parse = () =>
    fromMarkdown(text, {
      mdastExtensions: [
        {
          enter: {
            labelText(this: CompileContext, t: Token) {
              const owner = this.stack[this.stack.length - 2];
              if (owner?.type === 'image') altRanges.set(owner, { start: t.start.offset, end: t.end.offset });
            },
          },
        },
      ],
    });
  let tree: ReturnType<FromMarkdown>;
  try {
    sandbox.parse = parse;
    tree = runParse.runInContext(sandbox, { timeout: Math.max(1, Math.round(budget ?? budgetMs(text.length))) }) as ReturnType<FromMarkdown>;
  } catch (err) {
    // Over budget, or a stack overflow on absurd nesting: nothing can be found. Anything else is a bug.
    if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' || (err instanceof RangeError && /call stack/i.test(err.message))) return { spans: [], cutOff: true };
    throw err;
  } finally {
    sandbox.parse = undefined;
  }
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (token?.isCancellationRequested) return none;

  const images: (Image | ImageReference)[] = [];
  const fences: Code[] = [];
  const definitions = new Map<string, Definition>();
  const stack: Nodes[] = [tree];
  while (stack.length) {
    const node = stack.pop()!;
    if (node.type === 'image' || node.type === 'imageReference') images.push(node);
    else if (node.type === 'code' && node.lang?.toLowerCase() === 'prompt') fences.push(node);
    else if (node.type === 'definition' && !definitions.has(node.identifier)) definitions.set(node.identifier, node);
    if ('children' in node) for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
  }

  const lines = new LineIndex(text);
  const spans: PromptSpan[] = [];
  for (const image of images) {
    const alt = altRanges.get(image);
    const resource = image.type === 'image' ? image : definitions.get(image.identifier);
    const target = resource ? localImagePath(resource.url) : undefined;
    if (!alt || !image.alt?.trim() || target === undefined) continue;
    const options = mergeOptions(resource?.title ? parseOptions(resource.title) : undefined);
    const span: PromptSpan = { text: image.alt, range: lines.range(alt.start, alt.end), kind: 'markdown-image', options, target };
    if (options.negative !== undefined) span.negative = options.negative;
    spans.push(span);
  }
  for (const fence of fences) {
    const span = fenceSpan(fence, lines);
    if (span) spans.push(span);
  }
  return { spans: spans.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character), cutOff: false };
}

/** The decoded path when a URL names a local image file, else undefined. */
export function localImagePath(url: string): string | undefined {
  if (!url || SCHEME.test(url) || url.startsWith('//')) return undefined;
  const path = url.replace(/[?#].*$/, '');
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // A stray % is taken literally.
  }
  return IMAGE_EXTENSION.test(decoded) ? decoded : undefined;
}

function fenceSpan(fence: Code, lines: LineIndex): PromptSpan | undefined {
  const start = fence.position?.start.line;
  if (start === undefined) return undefined;
  const infoOptions = fence.meta ? parseOptions(fence.meta) : undefined;
  // mdast's value drops the fence's indentation and any container prefix (`> `, list indent), and
  // line i of it is source line start + i (1-based start is the opening fence, so 0-based + 1).
  const valueLines = fence.value.split(/\r\n|\r|\n/);
  const lineOptions = [];
  let first = 0;
  for (; first < valueLines.length; first++) {
    const options = parseOptions(valueLines[first]);
    if (!options) break;
    lineOptions.push(options);
  }
  while (first < valueLines.length && !valueLines[first].trim()) first++;
  let last = valueLines.length - 1;
  while (last >= first && !valueLines[last].trim()) last--;
  const options = mergeOptions(infoOptions, ...lineOptions);
  if (last < first) return undefined;

  const column = (i: number, inLine: number) => {
    const source = lines.lineText(start + i);
    const value = valueLines[i];
    return (source.endsWith(value) ? source.length - value.length : 0) + inLine;
  };
  const from = lines.lineStart(start + first) + column(first, valueLines[first].length - valueLines[first].trimStart().length);
  const to = lines.lineStart(start + last) + column(last, valueLines[last].trimEnd().length);
  const span: PromptSpan = {
    text: valueLines.slice(first, last + 1).map((l) => l.trim()).join('\n'),
    range: lines.range(from, to),
    kind: 'markdown-fence',
    options,
  };
  if (options.negative !== undefined) span.negative = options.negative;
  if (options.out !== undefined) span.target = options.out;
  return span;
}
