// The one mapping from the core's errors to LSP response errors: a cancellation answers
// RequestCancelled (the client drops it quietly), anything else RequestFailed with the message,
// which the client shows as is. Internal errors also go to the log with their stack.
import { LSPErrorCodes, ResponseError } from 'vscode-languageserver';
import { kindOf } from '../errors';

export const failed = (message: string): ResponseError<void> => new ResponseError(LSPErrorCodes.RequestFailed, message);

export const cancelled = (message = 'cancelled'): ResponseError<void> => new ResponseError(LSPErrorCodes.RequestCancelled, message);

export const isCancellation = (error: unknown): boolean => kindOf(error) === 'cancelled';

export function toResponseError(error: unknown, log: (line: string) => void = console.error): ResponseError<void> {
  if (error instanceof ResponseError) return error;
  const kind = kindOf(error);
  if (kind === 'cancelled') return cancelled();
  if (kind === 'internal') log(`adadiff: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
  return failed((error as Error)?.message ?? String(error));
}
