import type { Range } from 'vscode-languageserver-textdocument';

export type { Range };

/** Generation options attached to a prompt (syntax: see options.ts). */
export interface PromptOptions {
  seed?: number;
  steps?: number | 'auto';
  /**
   * Code: the integer literal `steps` was read from (its digits only), so an editor can rewrite
   * the count in place. Absent when the steps come from anything else (`auto`, a marker comment).
   */
  stepsRange?: Range;
  size?: { width: number; height: number };
  out?: string;
  negative?: string;
}

export interface PromptSpan {
  /** The prompt: the unescaped string value, the decoded alt text, or the fence's prompt lines. */
  text: string;
  /**
   * LSP range, UTF-16 columns. Markdown images: exactly the alt text between `![` and `]`.
   * Fences: the prompt lines (options lines excluded), trimmed. Code: the whole literal expression
   * including quotes and prefixes (`r"..."`), from the first to the last part of an implicit or
   * `+` concatenation.
   */
  range: Range;
  kind: 'markdown-image' | 'markdown-fence' | 'code-string';
  /** Negative prompt attached to this prompt. */
  negative?: string;
  options: PromptOptions;
  /** Markdown image: the local image path (decoded). Fence or code: its `out` option. */
  target?: string;
}

export interface PromptFinderSettings {
  /** A name (variable, keyword argument, property, parameter) containing one of these, case-insensitive, holds a prompt. */
  names: string[];
  /** Calls whose first argument is a prompt: a function name or a dotted tail such as `images.generate`. */
  callees: string[];
  /** Language ids to scan; `id=grammar` maps another id onto one of the built-in grammars (e.g. `mdx=markdown`). */
  languages: string[];
}

/** The shape of an LSP CancellationToken, so that one can be passed straight through. */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
}

/** How a scan may run: its cancellation, and a time budget that overrides the finder's own. */
export interface ScanOptions {
  token?: CancellationLike;
  /** Stop after this many milliseconds and return what was found (default: generous, per document size). */
  budgetMs?: number;
}

/** A scan's result: the spans, and whether the time budget cut it short (then more may exist). */
export interface PromptScan {
  spans: PromptSpan[];
  cutOff: boolean;
}
