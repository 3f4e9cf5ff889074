// Prompt spans per document version: parsed once per version however many hovers, lenses and
// resolves ask, and dropped when the document closes.
import type { Position, Range } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { findPrompts } from '../prompts';
import type { PromptFinderSettings, PromptSpan } from '../prompts/types';

interface Parsed {
  version: number;
  settingsKey: string;
  spans: Promise<PromptSpan[]>;
}

export class PromptIndex {
  private readonly parsed = new Map<string, Parsed>();

  spans(doc: TextDocument, settings: PromptFinderSettings): Promise<PromptSpan[]> {
    const settingsKey = JSON.stringify(settings);
    const cached = this.parsed.get(doc.uri);
    if (cached && cached.version === doc.version && cached.settingsKey === settingsKey) return cached.spans;
    // Shared by every request on this version, so no single request's token cancels it.
    const spans = findPrompts(doc.getText(), doc.languageId, settings);
    const entry = { version: doc.version, settingsKey, spans };
    spans.catch(() => this.parsed.get(doc.uri) === entry && this.parsed.delete(doc.uri));
    this.parsed.set(doc.uri, entry);
    return spans;
  }

  forget(uri: string): void {
    this.parsed.delete(uri);
  }

  clear(): void {
    this.parsed.clear();
  }
}

const before = (a: Position, b: Position) => a.line < b.line || (a.line === b.line && a.character < b.character);

/** Whether two ranges share a position, ends inclusive: a cursor just after a closing quote still touches the literal. */
export const touches = (a: Range, b: Range): boolean => !before(a.end, b.start) && !before(b.end, a.start);

/** The span under the cursor. */
export function spanAt(spans: readonly PromptSpan[], pos: Position): PromptSpan | undefined {
  return spans.find((s) => touches(s.range, { start: pos, end: pos }));
}
