// How the server applies didChange: vscode-languageserver-textdocument's update, with each change's
// range first clamped to the document. The library clamps offsets but not its line table: a range
// on a line past the end (a client bug, or a change racing a truncation) left the table out of step
// with the text, so every later edit landed at the wrong place and the server's text drifted from
// the editor's (found by the fuzz test: 235 of 10,000 documents).
import type { TextDocumentsConfiguration } from 'vscode-languageserver';
import { type Position, TextDocument, type TextDocumentContentChangeEvent } from 'vscode-languageserver-textdocument';

/** A position the document really has: lines and characters past the end move to the end, negative ones to 0. */
function clamp(doc: TextDocument, p: Position): Position {
  const whole = (n: number) => (Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0);
  return doc.positionAt(doc.offsetAt({ line: whole(p.line), character: whole(p.character) }));
}

export const clampedTextDocuments: TextDocumentsConfiguration<TextDocument> = {
  create: TextDocument.create,
  update(doc: TextDocument, changes: TextDocumentContentChangeEvent[], version: number): TextDocument {
    // One at a time: each change's range is in the text the previous one left.
    for (const change of changes) {
      const clamped = 'range' in change ? { range: { start: clamp(doc, change.range.start), end: clamp(doc, change.range.end) }, text: change.text } : change;
      doc = TextDocument.update(doc, [clamped], version);
    }
    return doc;
  },
};
