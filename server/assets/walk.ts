// The one way AdaDiff walks a workspace (asset targets, the prompts a policy trains on): depth
// first, entries sorted so a workspace always yields its files in the same order, symlinked folders
// never followed (they could loop or lead outside), regular files only.
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';

export interface WalkOptions {
  /** Whether to descend into a folder of this name. */
  enter(name: string): boolean;
  /** A folder that cannot be listed is skipped; this hears why. */
  onUnreadable?(dir: string, err: unknown): void;
  /** Stops the walk (the caller decides what an abort means). */
  signal?: AbortSignal;
}

export async function* walkFiles(dir: string, options: WalkOptions): AsyncGenerator<string> {
  if (options.signal?.aborted) return;
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    options.onUnreadable?.(dir, err);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (options.signal?.aborted) return;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (options.enter(entry.name)) yield* walkFiles(full, options);
    } else if (entry.isFile()) {
      yield full;
    }
  }
}
