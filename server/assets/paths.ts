// Where an asset may be written, and how. A repository's Markdown and manifests are untrusted
// input: a target such as `../../.bashrc.png`, `/etc/x.png` or `img/x.png` where `img` is a
// symlink to somewhere else must never make us write outside the workspace root. Checks are lexical
// first (absolute paths, `..`), then on the real file system (every existing path component is
// lstat-ed; symlinks must resolve inside the root), and once more on the real parent directory
// right before the write, since rendering takes long enough for the tree to change.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { AdaDiffError } from '../errors';

export class AssetPathError extends AdaDiffError {
  override readonly name = 'AssetPathError';
  readonly kind = 'path';
}

/** A target inside the root: `key` is root-relative with `/` separators (the lock file's key). */
export interface TargetPath {
  key: string;
  file: string;
}

/**
 * Resolves `target` as written in a document or manifest that lives in `fromDir` (inside `root`).
 * Lexical only: refuses absolute paths (POSIX, Windows drive or UNC), `..` that climbs out of the
 * root, NUL bytes and empty names. Backslashes count as separators, so a path means the same on
 * every platform.
 */
export function resolveTarget(root: string, fromDir: string, target: string): TargetPath {
  const written = target.replace(/\\/g, '/');
  if (!written.trim() || written.includes('\0')) throw new AssetPathError(`"${target}" is not a usable file name`);
  if (written.startsWith('/') || /^[A-Za-z]:/.test(written)) {
    throw new AssetPathError(`"${target}" is an absolute path; asset outputs must be relative paths inside the workspace`);
  }
  const base = path.relative(root, fromDir).split(path.sep).join('/');
  const key = path.posix.normalize(path.posix.join(base || '.', written));
  if (key === '..' || key.startsWith('../') || path.posix.isAbsolute(key)) {
    throw new AssetPathError(`"${target}" leads outside the workspace (${path.resolve(root)})`);
  }
  if (key === '.' || key.endsWith('/')) throw new AssetPathError(`"${target}" names a folder, not a file`);
  return { key, file: path.join(root, ...key.split('/')) };
}

const isInside = (realRoot: string, real: string) => {
  const rel = path.relative(realRoot, real);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/**
 * Walks the existing components of `key` below `root`: each symlink must resolve inside the root
 * (a dangling one is refused: following it could create a file anywhere), each intermediate
 * component must be a directory, and the file itself must not be a symlink (replacing it would
 * silently break whatever the link was for). Returns whether the file exists.
 */
export async function checkOnDisk(root: string, key: string): Promise<{ exists: boolean }> {
  const realRoot = await realpath(root);
  const parts = key.split('/');
  let current = root;
  for (let i = 0; i < parts.length; i++) {
    current = path.join(current, parts[i]);
    const shown = parts.slice(0, i + 1).join('/');
    const stat = await lstat(current).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (!stat) return { exists: false };
    const last = i === parts.length - 1;
    if (stat.isSymbolicLink()) {
      const real = await realpath(current).catch(() => undefined);
      if (real === undefined) throw new AssetPathError(`${shown} is a dangling symbolic link; refusing to write through it`);
      if (!isInside(realRoot, real)) throw new AssetPathError(`${shown} is a symbolic link that leads outside the workspace (to ${real})`);
      if (last) throw new AssetPathError(`${shown} is a symbolic link; refusing to replace it with a generated image`);
      if (!(await lstat(real)).isDirectory()) throw new AssetPathError(`${shown} is not a folder`);
    } else if (last) {
      if (!stat.isFile()) throw new AssetPathError(`${shown} exists and is not a regular file`);
      return { exists: true };
    } else if (!stat.isDirectory()) {
      throw new AssetPathError(`${shown} is not a folder`);
    }
  }
  return { exists: false };
}

/**
 * Writes `data` to root/key atomically: a temporary file beside the target (created exclusively,
 * so it can't be a planted symlink), fsync, rename over the target, fsync of the folder so the
 * rename itself survives a crash. A reader, or a kill -9, sees the old file or the new one, never
 * half of one.
 */
export async function writeAtomic(root: string, key: string, data: Buffer | string): Promise<void> {
  await checkOnDisk(root, key);
  const file = path.join(root, ...key.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  // The last word: the folder we are about to write into, as the file system resolves it now.
  const realRoot = await realpath(root);
  const dir = await realpath(path.dirname(file));
  if (!isInside(realRoot, dir)) throw new AssetPathError(`${key} leads outside the workspace (its folder is ${dir})`);
  const target = path.join(dir, path.basename(file));
  const tmp = path.join(dir, `${tempPrefix(target)}${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    const existing = await lstat(target).catch(() => undefined);
    if (existing?.isSymbolicLink()) throw new AssetPathError(`${key} became a symbolic link; refusing to replace it`);
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/** Temporary files are dot-files named after their target, so leftovers of a killed run can be found. */
const tempPrefix = (file: string) => `.${path.basename(file)}.adadiff-`;

/**
 * Removes temporary files a killed run left beside `file`: only ours (recognised by name), and
 * only those of a process that is gone, so a run going on beside this one keeps its own.
 */
export async function removeStaleTemps(file: string): Promise<void> {
  const prefix = tempPrefix(file);
  const names = await readdir(path.dirname(file)).catch(() => [] as string[]);
  for (const name of names) {
    const pid = new RegExp(`^${escapeRegExp(prefix)}(\\d+)-[0-9a-f]+\\.tmp$`).exec(name)?.[1];
    if (pid !== undefined && !isAlive(Number(pid))) await unlink(path.join(path.dirname(file), name)).catch(() => undefined);
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDir(dir: string): Promise<void> {
  // Windows cannot open a folder for fsync; there the rename is as durable as NTFS makes it.
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // EINVAL/EPERM on file systems without directory fsync.
  } finally {
    await handle.close();
  }
}
