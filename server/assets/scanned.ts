// Which files the asset walk reads, as one rule for the walk (targets.ts) and for the server's
// answer to adadiff/assetTarget (lsp/assets-command.ts): the editor sends a lens's "Generate asset"
// through the asset core only for documents the core will find.

export const MARKDOWN_FILE = /\.(md|markdown)$/i;

/** node_modules and hidden folders (.git, .vscode, ...) are not walked (nor what .gitignore files exclude: gitignore.ts). */
export const isScannedFolder = (name: string): boolean => !name.startsWith('.') && name !== 'node_modules';

/** Whether a Markdown file at this root-relative path (`/` or `\` separators) is one the walk reads. */
export function isScannedMarkdown(relativePath: string): boolean {
  const parts = relativePath.split(/[\\/]/);
  const name = parts.pop() ?? '';
  return MARKDOWN_FILE.test(name) && !parts.includes('..') && parts.every(isScannedFolder);
}
