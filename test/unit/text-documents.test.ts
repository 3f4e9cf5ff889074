// The server's didChange (server/lsp/text-documents.ts): ranges past the end are clamped before
// the library applies them, so its line table stays in step with the text (the fuzz test's find).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { clampedTextDocuments } from '../../server/lsp/text-documents';

const lineStarts = (d: TextDocument) => Array.from({ length: d.lineCount }, (_, line) => d.offsetAt({ line, character: 0 }));
/** The line table a document built from its text from scratch has: what it must equal after any edit. */
const fresh = (d: TextDocument) => lineStarts(TextDocument.create('file:///fresh', 'x', 1, d.getText()));

describe('didChange with ranges past the end', () => {
  it('a range on lines the document lacks appends at the end, and the lines stay right for the next edit', () => {
    const edits = [
      { range: { start: { line: 4, character: 11 }, end: { line: 5, character: 7 } }, text: 'tail line\n' },
      { range: { start: { line: 1, character: 0 }, end: { line: 1, character: 1 } }, text: 'B' },
    ];
    const plain = TextDocument.update(TextDocument.create('file:///a', 'x', 1, 'a\nb'), edits.slice(0, 1), 2);
    assert.notDeepEqual(lineStarts(plain), fresh(plain), 'the library alone loses step (if this fails, it was fixed upstream)');
    let doc = clampedTextDocuments.create('file:///a', 'x', 1, 'a\nb');
    doc = clampedTextDocuments.update(doc, edits, 2);
    assert.equal(doc.getText(), 'a\nBtail line\n');
    assert.deepEqual(lineStarts(doc), fresh(doc));
  });

  it('negative, fractional and past-the-line positions clamp; changes in one event apply in order', () => {
    let doc = clampedTextDocuments.create('file:///b', 'x', 1, 'one\r\ntwo\n');
    doc = clampedTextDocuments.update(
      doc,
      [
        { range: { start: { line: -3, character: -1 }, end: { line: 0, character: 1.5 } }, text: '1' },
        { range: { start: { line: 0, character: 99 }, end: { line: 1, character: 0 } }, text: ' ' },
      ],
      2,
    );
    assert.equal(doc.getText(), '1ne two\n', 'the first change took "o"; the second joined the lines at the end of line 0');
    assert.deepEqual(lineStarts(doc), fresh(doc));
    doc = clampedTextDocuments.update(doc, [{ text: 'replaced\nwhole' }, { range: { start: { line: 1, character: 5 }, end: { line: 9, character: 9 } }, text: '!' }], 3);
    assert.equal(doc.getText(), 'replaced\nwhole!');
    assert.deepEqual(lineStarts(doc), fresh(doc));
  });
});
