// One error type for every way a model folder can fail to open or run. The CLI, `adadiff doctor`
// and the language server's status item all show `message` as is, so it always names the file
// that is wrong and says what is wrong with it (and, where we know, what a correct one looks like).

export class ModelError extends Error {
  override readonly name = 'ModelError';

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

/** The text of whatever was thrown, for wrapping foreign errors (onnxruntime's, JSON.parse's). */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // onnxruntime messages often end in a newline and carry its source location first; keep them
  // on one line so the wrapped message stays readable in a status bar.
  return text.replace(/\s+/g, ' ').trim();
}
