// Drives fuzzed documents (documents.ts) through a running server: open, incremental didChange
// edits, hovers at random positions, CodeLens, resolve of its lenses (and of stale and made-up
// ones), close. Checks what every answer must satisfy whatever the input; the test layer and the
// bench both run it, with different counts.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type CodeLens,
  CodeLensRequest,
  CodeLensResolveRequest,
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  HoverRequest,
  type Position,
  type Range,
  type TextDocumentContentChangeEvent,
} from 'vscode-languageserver-protocol/node';
import type { TestServer } from '../lsp/harness';
import { fuzzDocument } from './documents';

export interface FuzzReport {
  seed: number;
  documents: number;
  requests: number;
  edits: number;
  /** Milliseconds per request kind. */
  latencies: Record<'hover' | 'codeLens' | 'resolve', number[]>;
  /** Prompts hovered (a hover that found a span). */
  hoversOnPrompts: number;
  failures: string[];
}

/**
 * The editor's side of the document, kept apart from the library the server uses: plain text,
 * lines ended by \r\n, \r or \n, and positions clamped as LSP says (a character past a line's
 * end is its end; a line past the last is the end of the text).
 */
class EditorText {
  constructor(public text: string) {}

  lines(): string[] {
    return this.text.split(/\r\n|\r|\n/);
  }

  offset(p: Position): number {
    const lines = this.lines();
    if (p.line >= lines.length) return this.text.length;
    const line = Math.max(0, p.line);
    let start = 0;
    for (let i = 0; i < line; i++) start += lines[i].length + (this.text.startsWith('\r\n', start + lines[i].length) ? 2 : 1);
    return start + Math.min(Math.max(0, p.character), lines[line].length);
  }

  apply(change: TextDocumentContentChangeEvent): void {
    if (!('range' in change)) {
      this.text = change.text;
      return;
    }
    const [a, b] = [this.offset(change.range.start), this.offset(change.range.end)];
    this.text = this.text.slice(0, Math.min(a, b)) + change.text + this.text.slice(Math.max(a, b));
  }

  inside(p: Position): boolean {
    const lines = this.lines();
    return Number.isInteger(p.line) && Number.isInteger(p.character) && p.line >= 0 && p.character >= 0 && p.line < lines.length && p.character <= lines[p.line].length;
  }
}

const ordered = (r: Range) => r.start.line < r.end.line || (r.start.line === r.end.line && r.start.character <= r.end.character);
const before = (a: Position, b: Position) => a.line < b.line || (a.line === b.line && a.character < b.character);

function checkRange(doc: EditorText, range: Range | undefined, what: string): string | undefined {
  if (!range) return undefined;
  if (!doc.inside(range.start) || !doc.inside(range.end) || !ordered(range)) return `${what} range ${JSON.stringify(range)} is not inside the document (${doc.lines().length} lines)`;
  return undefined;
}

/** Runs documents [from, from + count) of `seed`; a failing one is written to a file named in the failure. */
export async function runFuzz(server: TestServer, seed: number, count: number, from = 0): Promise<FuzzReport> {
  const report: FuzzReport = { seed, documents: 0, requests: 0, edits: 0, latencies: { hover: [], codeLens: [], resolve: [] }, hoversOnPrompts: 0, failures: [] };
  const timed = async <T>(kind: keyof FuzzReport['latencies'], request: Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const value = await request;
    report.latencies[kind].push(performance.now() - t0);
    report.requests++;
    return value;
  };
  for (let index = from; index < from + count; index++) {
    const input = fuzzDocument(seed, index);
    const uri = pathToFileURL(join(tmpdir(), `fuzz-${seed}`, `doc-${index}.${input.languageId}`)).href;
    const doc = new EditorText(input.text);
    let version = 1;
    const fail = (message: string) => {
      const file = join(tmpdir(), `adadiff-fuzz-${seed}-${index}.json`);
      writeFileSync(file, JSON.stringify(input, null, 1));
      report.failures.push(`document ${index} of seed ${seed} (${input.languageId}, written to ${file}; replay: ADADIFF_FUZZ_SEED=${seed} ADADIFF_FUZZ_FROM=${index} ADADIFF_FUZZ_COUNT=1): ${message}`);
    };
    try {
      await server.conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: input.languageId, version: 1, text: input.text } });
      for (const changes of input.edits) {
        for (const change of changes) doc.apply(change);
        report.edits++;
        await server.conn.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: ++version }, contentChanges: changes });
      }
      const [hovers, lenses] = await Promise.all([
        Promise.all(input.hovers.map((position) => timed('hover', server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position })).then((h) => ({ position, h })))),
        timed('codeLens', server.conn.sendRequest(CodeLensRequest.type, { textDocument: { uri } })),
      ]);
      for (const { position, h } of hovers) {
        if (!h) continue;
        const problem = checkRange(doc, h.range, 'hover');
        if (problem) fail(problem);
        else if (h.range && (before(position, h.range.start) || before(h.range.end, position))) fail(`hover at ${JSON.stringify(position)} answered for ${JSON.stringify(h.range)}`);
        if (h.range) report.hoversOnPrompts++;
      }
      const unresolved = (lenses ?? []).filter((l) => !l.command);
      // Random positions rarely land on a prompt: hover where the lenses say prompts start, too.
      for (const lens of unresolved.slice(0, 2)) {
        const position = { line: lens.range.start.line, character: lens.range.start.character + 1 };
        const h = await timed('hover', server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position }));
        const problem = checkRange(doc, h?.range, 'hover');
        if (problem) fail(problem);
        if (h?.range) report.hoversOnPrompts++;
      }
      for (const lens of lenses ?? []) {
        const problem = checkRange(doc, lens.range, 'CodeLens');
        if (problem) fail(problem);
      }
      // Its own lenses, one from an older version and one that names nothing.
      const toResolve: CodeLens[] = unresolved.slice(0, 3);
      if (unresolved[0]) toResolve.push({ ...unresolved[0], data: { uri, version: version - 1, index: 0 } });
      toResolve.push({ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, data: { uri, version, index: 10_000 } });
      const resolved = await Promise.all(toResolve.map((lens) => timed('resolve', server.conn.sendRequest(CodeLensResolveRequest.type, lens))));
      for (const lens of resolved) {
        if (typeof lens.command?.title !== 'string') fail(`resolve gave no title: ${JSON.stringify(lens)}`);
        const problem = checkRange(doc, lens.range, 'resolved CodeLens');
        if (problem) fail(problem);
      }
    } catch (err) {
      fail(`a request failed: ${(err as Error).message}`);
    } finally {
      await server.conn.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
    }
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      fail(`the server exited (${server.child.exitCode ?? server.child.signalCode}); stderr:\n${server.stderr().slice(-2000)}`);
      break;
    }
    report.documents++;
  }
  return report;
}
