// The status item: what adadiff/status says about the model and its execution providers, with the
// details (model path, provider per part, the full error) in its tooltip. Clicking shows the log.
import * as vscode from 'vscode';
import { ClientCommands, type StatusParams } from '../shared/protocol';
import type { AdaDiffServer } from './server';

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('adadiff.status', vscode.StatusBarAlignment.Right, 100);
  private readonly disposables: vscode.Disposable[] = [this.item];

  constructor(server: AdaDiffServer, private readonly log: vscode.LogOutputChannel) {
    this.item.name = 'AdaDiff';
    this.item.command = 'adadiff.showLog';
    this.disposables.push(
      server.onStatus((status) => this.update(status)),
      server.onState((state) => {
        if (state === 'starting') this.update({ state: 'loading', message: 'Starting the language server' });
        if (state === 'stopped') this.update({ state: 'error', message: 'The language server stopped', detail: 'Run “AdaDiff: Restart Server”; the log may say why it stopped.' });
      }),
    );
  }

  private update(status: StatusParams): void {
    const unet = status.providers?.unet ?? Object.values(status.providers ?? {})[0];
    const label = status.model ? [status.model.name, unet].filter(Boolean).join(' · ') : 'AdaDiff';
    const icon = { loading: '$(loading~spin)', ready: '$(sparkle)', error: '$(error)' }[status.state];
    this.item.text = `${icon} ${label}`;
    this.item.backgroundColor = status.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.item.accessibilityInformation = { label: `AdaDiff: ${status.state}, ${status.message}` };
    this.item.tooltip = tooltip(status);
    this.item.show();
    const line = `status ${status.state}: ${status.message}${status.detail ? `\n${status.detail}` : ''}`;
    if (status.state === 'error') this.log.error(line);
    else this.log.info(line);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

function tooltip(status: StatusParams): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  // Only our own commands may run from these links.
  md.isTrusted = { enabledCommands: ['adadiff.showLog', 'adadiff.restartServer', 'adadiff.recalibrate', ClientCommands.trainPolicy] };
  md.appendMarkdown('**AdaDiff** — ').appendText(status.message);
  md.appendMarkdown('\n\n');
  if (status.model) {
    md.appendMarkdown('Model: ').appendText(`${status.model.name}${status.model.bundled ? ' (bundled)' : ''}`);
    md.appendMarkdown('  \n').appendMarkdown('Path: ').appendText(status.model.path);
    md.appendMarkdown('  \n');
  }
  if (status.policy !== undefined) {
    md.appendMarkdown(status.policy ? 'Step policy: trained' : 'Step policy: none (baseline steps)');
    // The bundled model is refused (it ships a policy); any other model can get one here.
    if (!status.policy && !status.model?.bundled) md.appendMarkdown(` · [Train one](command:${ClientCommands.trainPolicy})`);
    md.appendMarkdown('  \n');
  }
  for (const [part, provider] of Object.entries(status.providers ?? {})) {
    md.appendText(`${part}: ${provider}`).appendMarkdown('  \n');
  }
  if (status.detail) md.appendCodeblock(status.detail, 'text');
  md.appendMarkdown('\n\n[Show Log](command:adadiff.showLog) · [Restart Server](command:adadiff.restartServer) · [Recalibrate](command:adadiff.recalibrate)');
  return md;
}
