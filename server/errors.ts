// The one family of errors the core throws on purpose. Each stage keeps its own class next to the
// code that throws it (ModelError in model/, AssetError in assets/, ...), and every class says its
// `kind`: that is what the front ends decide on, never the class name as a string. The render worker
// sends errors by kind (error-wire.ts), the language server maps kinds to LSP response errors
// (lsp/response-errors.ts) and the CLI to exit codes (cli.ts).

export type ErrorKind =
  /** A model folder cannot be opened or run; the message names the file at fault. */
  | 'model'
  /** A step policy (policy.onnx, policy.json) is unusable. */
  | 'policy'
  /** No execution provider could create a session. */
  | 'no-provider'
  /** An asset run cannot go on (untrusted workspace, a changed file, a bad target). */
  | 'asset'
  /** A target path escapes the workspace or is not a file we may write. */
  | 'path'
  /** The asset lock file is unreadable or unsafe. */
  | 'lock'
  /** A pool of workers cannot be used: Redis unreachable or unsafe, no worker that has the model. */
  | 'pool'
  /** A pool job or its result is malformed, too big, or for another model. */
  | 'job'
  /** The user cancelled. */
  | 'cancelled'
  /** The command line was wrong. */
  | 'usage'
  /** A request's parameter is out of its range (steps, seed, size, guidance): JavaScript's RangeError. */
  | 'input'
  /** Anything else: a bug, or a foreign error nobody wrapped. Its stack is worth showing. */
  | 'internal';

export abstract class AdaDiffError extends Error {
  abstract readonly kind: Exclude<ErrorKind, 'input' | 'internal'>;
}

/** An error about one file: `message` reads "<file>: <problem>", so the user knows what to open. */
export abstract class FileError extends AdaDiffError {
  constructor(
    /** The file or folder at fault, as a path the user can open. */
    readonly file: string,
    /** What is wrong with it, as a sentence fragment that reads after "<file>: ". */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

export class CancelledError extends AdaDiffError {
  override readonly name = 'CancelledError';
  readonly kind = 'cancelled';
  constructor() {
    super('generation cancelled');
  }
}

export function kindOf(error: unknown): ErrorKind {
  if (error instanceof AdaDiffError) return error.kind;
  if (error instanceof RangeError) return 'input';
  // fetch's and AbortSignal.timeout's cancellations.
  if (error instanceof Error && error.name === 'AbortError') return 'cancelled';
  return 'internal';
}

/** Errors whose message is the whole story for the user: all but internal ones. */
export const isExpected = (error: unknown): boolean => kindOf(error) !== 'internal';

/** The text of whatever was thrown, for wrapping foreign errors (onnxruntime's, JSON.parse's). */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // onnxruntime messages often end in a newline and carry its source location first; keep them
  // on one line so the wrapped message stays readable in a status bar.
  return text.replace(/\s+/g, ' ').trim();
}
