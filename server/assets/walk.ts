// The one way AdaDiff walks a workspace (asset targets, the prompts a policy trains on): depth
// first, entries sorted so a workspace always yields its files in the same order, symlinked folders
// never followed (they could loop or lead outside), regular files only, and what the workspace's
// .gitignore files exclude left out (gitignore.ts).
import type { Dirent } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { type IgnoreScope, ignoreScope, isIgnored } from './gitignore';

export interface WalkOptions {
  /** Whether to descend into a folder of this name. */
  enter(name: string): boolean;
  /** A folder that cannot be listed is skipped; this hears why. */
  onUnreadable?(dir: string, err: unknown): void;
  /** Stops the walk (the caller decides what an abort means). */
  signal?: AbortSignal;
}

export function walkFiles(root: string, options: WalkOptions): AsyncGenerator<string> {
  return walk(root, '', options, []);
}

async function* walk(root: string, rel: string, options: WalkOptions, scopes: readonly IgnoreScope[]): AsyncGenerator<string> {
  if (options.signal?.aborted) return;
  const dir = rel ? path.join(root, rel) : root;
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    options.onUnreadable?.(dir, err);
    return;
  }
  const gitignore = entries.some((e) => e.name === '.gitignore' && e.isFile())
    ? await readFile(path.join(dir, '.gitignore'), 'utf8').catch(() => undefined) // unreadable: as if absent
    : undefined;
  const active = gitignore === undefined ? scopes : [...scopes, ignoreScope(rel, gitignore)];
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (options.signal?.aborted) return;
    const isDir = entry.isDirectory();
    if (!isDir && !entry.isFile()) continue;
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    if (isIgnored(active, childRel, isDir)) continue;
    if (isDir) {
      if (options.enter(entry.name)) yield* walk(root, childRel, options, active);
    } else {
      yield path.join(dir, entry.name);
    }
  }
}
