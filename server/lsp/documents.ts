// Prompt spans per document version: parsed once per version however many hovers, lenses and
// resolves ask, and dropped when the document closes.
import type { Position, Range } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { scanPrompts } from '../prompts';
import type { PromptFinderSettings, PromptScan, PromptSpan } from '../prompts/types';

/**
 * How long one document's scan may hold the server's thread. The parsers are synchronous, and a
 * hostile document (5 MB on one line, 100k nested brackets) would otherwise take the finder's own
 * budget of seconds, during which no hover of any document is answered; past this the editor says
 * the scan was cut off (present.ts) and the spans found so far are kept. About 2 MB of ordinary
 * code fits.
 */
export const SCAN_BUDGET_MS = 500;

interface Parsed {
  version: number;
  settingsKey: string;
  scan: Promise<PromptScan>;
}

export class PromptIndex {
  private readonly parsed = new Map<string, Parsed>();

  scan(doc: TextDocument, settings: PromptFinderSettings): Promise<PromptScan> {
    const settingsKey = JSON.stringify(settings);
    const cached = this.parsed.get(doc.uri);
    if (cached && cached.version === doc.version && cached.settingsKey === settingsKey) return cached.scan;
    // Shared by every request on this version, so no single request's token cancels it.
    const scan = scanPrompts(doc.getText(), doc.languageId, settings, { budgetMs: SCAN_BUDGET_MS });
    const entry = { version: doc.version, settingsKey, scan };
    scan.catch(() => this.parsed.get(doc.uri) === entry && this.parsed.delete(doc.uri));
    this.parsed.set(doc.uri, entry);
    return scan;
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
