// adadiff.lock.json: for every generated asset, the inputs it was made from and the SHA-256 of the
// file written, so a later run regenerates only what changed and never replaces a file somebody
// edited. It is meant to be committed: stable key order, no timestamps, one entry per output path.
//
// Crash safety: an image is written in two lock updates. Before the rename the entry already
// carries the new sha256 plus `replaces` (the sha256 of the file it replaces, or null for none);
// after the rename `replaces` is dropped. A kill -9 between the two leaves an entry whose file is
// either the new image (done) or exactly the old one (interrupted: regenerate, it was ours to
// replace); anything else is a file edited by hand.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { AssetPathError, checkOnDisk, writeAtomic } from './paths';
import { AdaDiffError } from '../errors';

export const LOCK_FILE = 'adadiff.lock.json';
export const LOCK_VERSION = 1;

export interface LockEntry {
  prompt: string;
  negative?: string;
  seed: number;
  steps: { requested: number | 'auto'; used: number; baseline: number };
  /** The size asked for ("WxH"), or "default" for the model's own. */
  sizeRequested: string;
  /** The size written ("WxH"). */
  size: string;
  scheduler: string;
  guidance: number;
  model: { name: string; hash: string; policy: string | null };
  sha256: string;
  /** Root-relative file that asked for this asset (informational). */
  source: string;
  /** Present only while the file is being replaced: the sha256 of what is there before, null if nothing. */
  replaces?: string | null;
}

export interface Lock {
  version: typeof LOCK_VERSION;
  assets: Record<string, LockEntry>;
}

export class LockError extends AdaDiffError {
  override readonly name = 'LockError';
  readonly kind = 'lock';
}

export const emptyLock = (): Lock => ({ version: LOCK_VERSION, assets: {} });

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

export async function readLock(root: string): Promise<Lock> {
  const file = path.join(root, LOCK_FILE);
  try {
    if (!(await checkOnDisk(root, LOCK_FILE)).exists) return emptyLock();
  } catch (err) {
    if (err instanceof AssetPathError) throw new LockError(`${file}: ${err.message}`);
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new LockError(`${file} is not valid JSON (${(err as Error).message}); fix it or delete it (every asset is then treated as new)`);
  }
  return validateLock(data, file);
}

function validateLock(data: unknown, file: string): Lock {
  const object = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!object(data) || !object(data.assets)) throw new LockError(`${file} has no "assets" object; fix it or delete it`);
  if (data.version !== LOCK_VERSION) throw new LockError(`${file} has version ${JSON.stringify(data.version)}; this adadiff reads version ${LOCK_VERSION}`);
  for (const [key, entry] of Object.entries(data.assets)) {
    const ok =
      object(entry) &&
      typeof entry.prompt === 'string' &&
      typeof entry.seed === 'number' &&
      typeof entry.sha256 === 'string' &&
      object(entry.steps) &&
      object(entry.model) &&
      typeof entry.model.hash === 'string' &&
      typeof entry.size === 'string' &&
      typeof entry.sizeRequested === 'string';
    if (!ok) throw new LockError(`${file}: the entry for "${key}" is incomplete; fix it or delete the entry`);
  }
  return data as unknown as Lock;
}

/** Stable text: assets sorted by path, fields in a fixed order, so the lock diffs cleanly. */
export function serializeLock(lock: Lock): string {
  const assets: Record<string, LockEntry> = {};
  for (const key of Object.keys(lock.assets).sort()) {
    const e = lock.assets[key];
    assets[key] = {
      prompt: e.prompt,
      ...(e.negative !== undefined ? { negative: e.negative } : {}),
      seed: e.seed,
      steps: { requested: e.steps.requested, used: e.steps.used, baseline: e.steps.baseline },
      sizeRequested: e.sizeRequested,
      size: e.size,
      scheduler: e.scheduler,
      guidance: e.guidance,
      model: { name: e.model.name, hash: e.model.hash, policy: e.model.policy },
      sha256: e.sha256,
      source: e.source,
      ...(e.replaces !== undefined ? { replaces: e.replaces } : {}),
    };
  }
  return `${JSON.stringify({ version: LOCK_VERSION, assets }, null, 2)}\n`;
}

/**
 * Applies `change` to the lock as it is on disk now and writes it back atomically. Re-reading
 * first keeps entries another run (the editor and a terminal at once) wrote meanwhile.
 */
export async function updateLock(root: string, change: (lock: Lock) => void): Promise<Lock> {
  const lock = await readLock(root);
  change(lock);
  await writeAtomic(root, LOCK_FILE, serializeLock(lock));
  return lock;
}
