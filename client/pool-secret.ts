// The pool's password lives in VS Code's SecretStorage (the OS keychain), never in settings.json:
// "AdaDiff: Set Pool Password" stores it, and the server gets it in its environment as
// ADADIFF_REDIS_PASSWORD, the variable the CLI reads. Not in a command's arguments: the client's
// trace (`adadiff.trace.server`: verbose) writes every request's arguments into the output channel,
// which users paste into bug reports. A changed password restarts the server.
import * as vscode from 'vscode';

const KEY = 'adadiff.pool.password';

export class PoolSecret {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  /** What the server's environment adds: the stored password, if any. */
  async env(): Promise<Record<string, string>> {
    const password = await this.secrets.get(KEY);
    return password ? { ADADIFF_REDIS_PASSWORD: password } : {};
  }

  /** Called when the stored password changes (here, or in another window of the same profile). */
  onDidChange(listener: () => void): vscode.Disposable {
    return this.secrets.onDidChange((e) => e.key === KEY && listener());
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
