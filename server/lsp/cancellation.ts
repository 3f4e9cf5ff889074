// LSP cancellation tokens as the AbortSignal the vscode-free core takes.
import type { CancellationToken } from 'vscode-languageserver';
import { cancelled } from './response-errors';

/** Aborted as soon as any of the tokens (a request's, a progress notification's Cancel) fires. */
export function abortSignal(...tokens: (CancellationToken | undefined)[]): AbortSignal {
  const abort = new AbortController();
  for (const token of tokens) {
    if (token?.isCancellationRequested) abort.abort();
    else token?.onCancellationRequested(() => abort.abort());
  }
  return abort.signal;
}

/** Settle with the work, or reject with RequestCancelled as soon as the token fires. */
export function untilCancelled<T>(work: Promise<T>, token: CancellationToken): Promise<T> {
  if (token.isCancellationRequested) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const sub = token.onCancellationRequested(() => reject(cancelled()));
    work.then(resolve, reject).finally(() => sub.dispose());
  });
}
