// LSP cancellation tokens as the AbortSignal the vscode-free core takes.
import type { CancellationToken } from 'vscode-languageserver';

/** Aborted as soon as any of the tokens (a request's, a progress notification's Cancel) fires. */
export function abortSignal(...tokens: (CancellationToken | undefined)[]): AbortSignal {
  const abort = new AbortController();
  for (const token of tokens) {
    if (token?.isCancellationRequested) abort.abort();
    else token?.onCancellationRequested(() => abort.abort());
  }
  return abort.signal;
}
