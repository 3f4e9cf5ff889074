// Writing an image into the workspace: only when the workspace is trusted, only inside one of its
// folders, and atomically (a temporary file beside the target, then a rename), so an editor or a
// build watching the asset never sees half a PNG.
import * as vscode from 'vscode';

export class WriteRefused extends Error {}

export function workspaceRelative(uri: vscode.Uri): string | undefined {
  const folder = vscode.workspace.getWorkspaceFolder(uri);
  return folder ? vscode.workspace.asRelativePath(uri, (vscode.workspace.workspaceFolders?.length ?? 0) > 1) : undefined;
}

export async function writeWorkspaceFile(target: vscode.Uri, bytes: Uint8Array): Promise<string> {
  if (!vscode.workspace.isTrusted) throw new WriteRefused('AdaDiff writes no files in an untrusted workspace.');
  const relative = workspaceRelative(target);
  if (relative === undefined) throw new WriteRefused(`${target.fsPath} is outside the workspace folders.`);
  const dir = vscode.Uri.joinPath(target, '..');
  await vscode.workspace.fs.createDirectory(dir);
  const temp = vscode.Uri.joinPath(dir, `.${target.path.split('/').pop()}.${process.pid}.${Date.now()}.tmp`);
  await vscode.workspace.fs.writeFile(temp, bytes);
  try {
    await vscode.workspace.fs.rename(temp, target, { overwrite: true });
  } catch (err) {
    await vscode.workspace.fs.delete(temp).then(undefined, () => undefined);
    throw err;
  }
  return relative;
}

/** `target` (from a Markdown image or an `out` option) resolved against the document it is in. */
export function targetUri(documentUri: string | undefined, target: string): vscode.Uri | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined;
  if (target.startsWith('/')) {
    const folder = documentUri ? vscode.workspace.getWorkspaceFolder(vscode.Uri.parse(documentUri)) : vscode.workspace.workspaceFolders?.[0];
    return folder ? vscode.Uri.joinPath(folder.uri, target) : undefined;
  }
  if (documentUri) return vscode.Uri.joinPath(vscode.Uri.parse(documentUri), '..', decodePath(target));
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? vscode.Uri.joinPath(folder.uri, decodePath(target)) : undefined;
}

/** Markdown link targets may be percent-encoded (`my%20cat.png`); a stray `%` is kept as is. */
function decodePath(target: string): string {
  try {
    return decodeURI(target);
  } catch {
    return target;
  }
}
