// The workspace's .gitignore files, as the asset walk and the server's answer to the editor
// (adadiff/assetTarget) read them: what git does not track (build output, virtual environments,
// generated data) is not the project's prose or code, and a CI checkout running `adadiff assets
// --check` does not have it either. Each .gitignore applies below its own folder, as in git; not
// read: .gitignore files above the walked folder, .git/info/exclude and the user's global
// excludes. No Node imports: the caller reads the files.
import ignore, { type Ignore } from 'ignore';

/** One .gitignore: its folder (root-relative, `/`-separated, '' for the root) and its rules. */
export interface IgnoreScope {
  dir: string;
  rules: Ignore;
}

export function ignoreScope(dir: string, text: string): IgnoreScope {
  return { dir, rules: ignore().add(text) };
}

/** Whether the scopes exclude this root-relative, `/`-separated path (a folder's ends without `/`). */
export function isIgnored(scopes: readonly IgnoreScope[], relPath: string, isDir: boolean): boolean {
  return scopes.some(({ dir, rules }) => {
    const below = dir ? relPath.slice(dir.length + 1) : relPath;
    return rules.ignores(isDir ? `${below}/` : below);
  });
}

/**
 * The same answer the walk gives, for one file: the .gitignore of the root and of each folder down
 * to the file's, each folder on the way and the file checked against those above it.
 * `readText(relPath)` returns a file's text, or undefined when there is none.
 */
export async function isIgnoredFile(relPath: string, readText: (relPath: string) => Promise<string | undefined>): Promise<boolean> {
  const parts = relPath.split(/[\\/]/);
  const scopes: IgnoreScope[] = [];
  for (let depth = 0; depth < parts.length; depth++) {
    const dir = parts.slice(0, depth).join('/');
    const text = await readText(dir ? `${dir}/.gitignore` : '.gitignore');
    if (text !== undefined) scopes.push(ignoreScope(dir, text));
    const here = parts.slice(0, depth + 1).join('/');
    if (isIgnored(scopes, here, depth < parts.length - 1)) return true;
  }
  return false;
}
