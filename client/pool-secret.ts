// The pool's password lives in VS Code's SecretStorage (the OS keychain), never in settings.json:
// "AdaDiff: Set Pool Password" stores it, and the asset and training commands hand it to the
// server with their arguments when `adadiff.pool.redis` names a pool.
import * as vscode from 'vscode';
import { SETTINGS_SECTION } from '../shared/protocol';

const KEY = 'adadiff.pool.password';

export class PoolSecret {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  /** What a pooled command adds to its arguments: the password, when a pool is set and has one. */
  async args(scope?: vscode.Uri): Promise<{ poolPassword?: string }> {
    const url = vscode.workspace.getConfiguration(SETTINGS_SECTION, scope).get<string>('pool.redis', '');
    if (!url.trim()) return {};
    const password = await this.secrets.get(KEY);
    return password ? { poolPassword: password } : {};
  }

  /** adadiff.setPoolPassword: an empty answer removes the stored password. */
  async ask(): Promise<void> {
    const value = await vscode.window.showInputBox({
      title: 'AdaDiff: pool password',
      prompt: 'The password of the Redis that adadiff.pool.redis names (kept in SecretStorage). Empty: remove the stored one.',
      password: true,
      ignoreFocusOut: true,
    });
    if (value === undefined) return;
    if (value) await this.secrets.store(KEY, value);
    else await this.secrets.delete(KEY);
    void vscode.window.showInformationMessage(value ? 'AdaDiff: pool password stored.' : 'AdaDiff: pool password removed.');
  }
}
