// Errors across a process boundary (the render worker's IPC channel, the text encoder it borrows):
// structured clone keeps an Error's message but not its class or fields, so both sides send this
// plain form and the receiver gets back the class it would have caught in-process, and with it
// the kind the language server and the CLI decide on.
import { PolicyError } from './adadiff/policy';
import { AssetError } from './assets/generate';
import { LockError } from './assets/lock';
import { AssetPathError } from './assets/paths';
import { CancelledError, type ErrorKind, FileError, kindOf } from './errors';
import { ModelError } from './model/errors';
import type { ProviderAttempt } from './model/contract';
import { NoProviderError } from './model/providers';
import { PoolError } from './pool/connection';
import { JobError } from './pool/jobs';

export interface WireError {
  kind: ErrorKind;
  name: string;
  message: string;
  /** Model and policy errors: the file at fault and what is wrong with it, as their constructors take them. */
  file?: string;
  problem?: string;
  /** No-provider errors: each provider's reason. */
  tried?: ProviderAttempt[];
  loadErrors?: string[];
  /** Internal errors: where it happened, for the log on the other side. */
  stack?: string;
}

export function toWire(error: unknown): WireError {
  const e = error instanceof Error ? error : new Error(String(error));
  const kind = kindOf(e);
  const wire: WireError = { kind, name: e.name, message: e.message };
  if (e instanceof FileError) Object.assign(wire, { file: e.file, problem: e.problem });
  if (e instanceof NoProviderError) Object.assign(wire, { tried: [...e.tried], loadErrors: [...e.loadErrors] });
  if (kind === 'internal' && e.stack) wire.stack = e.stack;
  return wire;
}

export function fromWire(wire: WireError): Error {
  switch (wire.kind) {
    case 'model':
      return new ModelError(wire.file ?? '', wire.problem ?? wire.message);
    case 'policy':
      return new PolicyError(wire.file ?? '', wire.problem ?? wire.message);
    case 'no-provider':
      return new NoProviderError(wire.tried ?? [], wire.loadErrors ?? []);
    case 'asset':
      return new AssetError(wire.message);
    case 'path':
      return new AssetPathError(wire.message);
    case 'lock':
      return new LockError(wire.message);
    case 'pool':
      return new PoolError(wire.message);
    case 'job':
      return new JobError(wire.message);
    case 'cancelled':
      return new CancelledError();
    case 'input':
      return new RangeError(wire.message);
    case 'usage':
    case 'internal':
      return Object.assign(new Error(wire.message), { name: wire.name, ...(wire.stack ? { stack: wire.stack } : {}) });
  }
}
