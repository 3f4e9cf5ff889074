// A server command's work-done progress shown in a cancellable VS Code notification: the request
// carries our workDoneToken, so the server reports into this notification, and its Cancel cancels
// the request ($/cancelRequest).
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient, WorkDoneProgress } from 'vscode-languageclient/node';

/** workspace/executeCommand with the server's one argument object, a cancel token and our progress token. */
export function execute<T>(client: LanguageClient, command: string, args: object, token?: vscode.CancellationToken, workDoneToken?: string): Promise<T> {
  return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [args], workDoneToken }, token) as Promise<T>;
}

export function withServerProgress<T>(
  client: LanguageClient,
  title: string,
  run: (workDoneToken: string, cancel: vscode.CancellationToken) => Promise<T>,
): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, cancel) => {
    const workDoneToken = randomUUID();
    let shown = 0;
    const sub = client.onProgress(WorkDoneProgress.type, workDoneToken, (p) => {
      if (p.kind === 'end') return;
      // VS Code's bar takes increments; the server's percentages never go back.
      const increment = p.percentage !== undefined && p.percentage > shown ? p.percentage - shown : undefined;
      shown = Math.max(shown, p.percentage ?? 0);
      progress.report({ message: p.message, increment });
    });
    try {
      return await run(workDoneToken, cancel);
    } finally {
      sub.dispose();
    }
  });
}
