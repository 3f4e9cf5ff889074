// Hostile documents and how one is probed through a server: lenses, hovers and a resolve on it,
// with a small document's hover sent at the same moment (it must not wait behind the big one).
// Shared by the test layer and the bench.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { type CodeLens, CodeLensRequest, CodeLensResolveRequest, DidOpenTextDocumentNotification, type Hover, HoverRequest, type MarkupContent, type Range } from 'vscode-languageserver-protocol/node';
import type { TestServer } from '../lsp/harness';

export interface HostileDocument {
  name: string;
  languageId: string;
  text: () => string;
  /** 'cut off': the scan cannot finish within the budget; a number: at least that many prompts found; 'either': one or the other. */
  expect: 'cut off' | number | 'either';
}

const MB5 = 5_000_000;
const fill = (unit: string, chars: number) => unit.repeat(Math.ceil(chars / unit.length));
const lines = (n: number, line: (i: number) => string) => Array.from({ length: n }, (_, i) => line(i)).join('\n') + '\n';

export const HOSTILE_DOCUMENTS: HostileDocument[] = [
  { name: '5 MB on one line: Python arithmetic', languageId: 'python', text: () => 'x = ' + fill('1 + ', MB5) + '1', expect: 'cut off' },
  { name: '5 MB on one line: a TypeScript array of prompts', languageId: 'typescript', text: () => 'const prompts = [' + fill('"a cat", ', MB5) + '];', expect: 'cut off' },
  { name: '5 MB on one line: Markdown images', languageId: 'markdown', text: () => fill('![a fox](f.png) ', MB5), expect: 'cut off' },
  { name: '100,000 prompts in one file: Python', languageId: 'python', text: () => lines(100_000, (i) => `p${i} = pipe(prompt="a cat number ${i}")`), expect: 'cut off' },
  { name: '100,000 prompts in one file: Markdown', languageId: 'markdown', text: () => lines(100_000, (i) => `![a cat number ${i}](c${i}.png)`), expect: 'cut off' },
  { name: '100,000 prompts in one file: TSX', languageId: 'typescriptreact', text: () => lines(100_000, (i) => `const e${i} = <Image prompt="a cat ${i}" />;`), expect: 'cut off' },
  { name: 'deeply nested: 100,000 Python parentheses', languageId: 'python', text: () => '('.repeat(100_000) + 'prompt="deep"' + ')'.repeat(100_000), expect: 'either' },
  { name: 'deeply nested: 100,000 TSX braces and elements', languageId: 'typescriptreact', text: () => '{<a>'.repeat(50_000), expect: 'either' },
  { name: 'deeply nested: 100,000 Markdown block quotes', languageId: 'markdown', text: () => '>'.repeat(100_000) + ' ![deep](d.png)', expect: 'either' },
  { name: 'lone UTF-16 surrogates', languageId: 'python', text: () => 'prompt = "\ud800 a fox \udfff"\npipe("\udc00 owl")\nx = "\ud83d"\n', expect: 2 },
  { name: 'lone UTF-16 surrogates: Markdown', languageId: 'markdown', text: () => '![\ud800 fox](f\udc00.png)\n\n```prompt\n\udfff lone\n```\n', expect: 2 },
  { name: 'NUL bytes', languageId: 'typescript', text: () => '\u0000'.repeat(10_000) + '\nconst prompt = "after\u0000the NULs";\n\u0000', expect: 1 },
  { name: 'a 100,000-character prompt: Python', languageId: 'python', text: () => `prompt = "${fill('a fox ', 100_000)}"\n`, expect: 1 },
  { name: 'a 100,000-character prompt: Markdown alt text', languageId: 'markdown', text: () => `![${fill('a fox ', 100_000)}](fox.png)\n`, expect: 1 },
  {
    name: 'right-to-left and combining characters',
    languageId: 'javascript',
    text: () => 'const prompt = "\u202eשלום עולם\u202c a cafe\u0301\u0301\u0301";\npipe("مرحبا 👩‍👩‍👧 e\u0301");\n// \u202e"); pipe("hidden\n',
    expect: 2,
  },
];

export interface HostileProbe {
  chars: number;
  spans: number;
  cutOff: boolean;
  /** [request, ms]: the document's lenses, hovers and resolve, and the small document's hover sent alongside. */
  timings: [string, number][];
  hoverText: string;
  problems: string[];
}

const text = (h: Hover | null) => (h?.contents as MarkupContent | undefined)?.value ?? '';

export async function probeHostile(server: TestServer, hostile: HostileDocument, smallUri: string, name = hostile.name): Promise<HostileProbe> {
  const content = hostile.text();
  const uri = pathToFileURL(join(tmpdir(), 'hostile', `${name.replace(/\W+/g, '-')}.${hostile.languageId}`)).href;
  await server.conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: hostile.languageId, version: 1, text: content } });
  const timings: [string, number][] = [];
  const timed = async <T>(label: string, request: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const value = await request;
    timings.push([label, performance.now() - t0]);
    return value;
  };
  const lineLengths = content.split('\n').map((l) => l.length);
  const problems: string[] = [];
  const check = (what: string, range: Range | undefined) => {
    if (!range) return;
    const ok = (p: Range['start']) => p.line >= 0 && p.line < lineLengths.length && p.character >= 0 && p.character <= lineLengths[p.line];
    if (!ok(range.start) || !ok(range.end)) problems.push(`${what}: ${JSON.stringify(range)} is not inside the document`);
  };
  const [lenses] = await Promise.all([
    timed('lenses', server.conn.sendRequest(CodeLensRequest.type, { textDocument: { uri } })),
    timed('small document hover alongside', server.conn.sendRequest(HoverRequest.type, { textDocument: { uri: smallUri }, position: { line: 0, character: 4 } })).then((h) => {
      if (!/AdaDiff/.test(text(h))) problems.push(`the small document's hover said ${JSON.stringify(text(h))}`);
    }),
  ]);
  const all: CodeLens[] = lenses ?? [];
  for (const lens of all) check('lens', lens.range);
  const unresolved = all.filter((l) => !l.command);
  const cutOff = all.some((l) => /stopped looking for prompts/.test(l.command?.title ?? ''));
  const top = await timed('hover at the start', server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 0 } }));
  check('hover', top?.range);
  if (unresolved[0]) {
    const at = { line: unresolved[0].range.start.line, character: unresolved[0].range.start.character + 1 };
    const h = await timed('hover on a prompt', server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: at }));
    check('hover on a prompt', h?.range);
    if (!/AdaDiff/.test(text(h))) problems.push(`hover on a prompt said ${JSON.stringify(text(h).slice(0, 200))}`);
    const resolved = await timed('resolve', server.conn.sendRequest(CodeLensResolveRequest.type, unresolved[0]));
    if (!resolved.command?.title) problems.push('a lens resolved without a title');
  }
  const middle = Math.floor(lineLengths.length / 2);
  const mid = await timed('hover in the middle', server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: middle, character: Math.floor(lineLengths[middle] / 2) } }));
  check('hover in the middle', mid?.range);
  return { chars: content.length, spans: unresolved.length, cutOff, timings, hoverText: text(top) || text(mid), problems };
}
