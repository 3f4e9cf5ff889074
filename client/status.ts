// The status item: what adadiff/status says about the model and its execution providers, with the
// details (model path, provider per part, the full error) in its tooltip. Clicking shows the log.
// A crash of the server shows too: restarted (with "restarted after a crash" on the item for the
// restart window), or stopped for good, when clicking restarts it.
import * as vscode from 'vscode';
import { ClientCommands, type StatusParams } from '../shared/protocol';
import { type AdaDiffServer, crashCount, type ServerCrash } from './server';

/** What the item shows: for the e2e tests and other extensions (activate returns it). */
export interface StatusView {
  text: string;
  /** The tooltip's Markdown source. */
  tooltip: string;
  /** What a screen reader says. */
  accessibility: string;
  /** The command a click runs. */
  command: string;
}

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('adadiff.status', vscode.StatusBarAlignment.Right, 100);
  private readonly disposables: vscode.Disposable[] = [this.item];
  private status: StatusParams | undefined;
  /** The last crash after which the server was restarted, while its restart window lasts. */
  private restartedAfter: ServerCrash | undefined;
  private forgetCrash: NodeJS.Timeout | undefined;
  /** The restarts after crashes are spent: the server stays stopped until Restart Server. */
  private gaveUp = false;

  constructor(server: AdaDiffServer, private readonly log: vscode.LogOutputChannel) {
    this.item.name = 'AdaDiff';
    this.disposables.push(
      server.onStatus((status) => this.update(status)),
      server.onState(({ state, crash }) => {
        this.noteCrash(crash?.restarted ? crash : undefined);
        this.gaveUp = state === 'stopped' && crash?.restarted === false;
        if (state === 'starting') this.update({ state: 'loading', message: crash?.restarted ? 'Restarting the language server after a crash' : 'Starting the language server' });
        if (this.gaveUp && crash) {
          this.update({
            state: 'error',
            message: `The language server crashed ${crashCount(crash)} and was not restarted`,
            detail: 'Click here or run “AdaDiff: Restart Server” to start it again; the log (AdaDiff: Show Log) may say why it crashed.',
          });
        } else if (state === 'stopped') {
          this.update({ state: 'error', message: 'The language server stopped', detail: 'Run “AdaDiff: Restart Server”; the log may say why it stopped.' });
        }
      }),
      { dispose: () => clearTimeout(this.forgetCrash) },
    );
  }

  view(): StatusView {
    const tip = this.item.tooltip;
    return {
      text: this.item.text,
      tooltip: typeof tip === 'string' ? tip : (tip?.value ?? ''),
      accessibility: this.item.accessibilityInformation?.label ?? '',
      command: typeof this.item.command === 'string' ? this.item.command : (this.item.command?.command ?? ''),
    };
  }

  /** Keeps a restart's note for the restart window: after it, the crash counts no more. */
  private noteCrash(recent: ServerCrash | undefined): void {
    const crash = recent && Date.now() - recent.at < recent.windowMs ? recent : undefined;
    if (crash === this.restartedAfter) return;
    clearTimeout(this.forgetCrash);
    this.restartedAfter = crash;
    if (!crash) return;
    this.forgetCrash = setTimeout(() => {
      this.restartedAfter = undefined;
      if (this.status) this.update(this.status);
    }, crash.at + crash.windowMs - Date.now());
  }

  private update(status: StatusParams): void {
    this.status = status;
    const crash = this.restartedAfter;
    const unet = status.providers?.unet ?? Object.values(status.providers ?? {})[0];
    const label = this.gaveUp ? 'AdaDiff stopped: click to restart' : status.model ? [status.model.name, unet].filter(Boolean).join(' · ') : 'AdaDiff';
    const icon = { loading: '$(loading~spin)', ready: '$(sparkle)', error: '$(error)' }[status.state];
    this.item.text = `${icon} ${label}${crash ? ' · $(debug-restart) restarted after a crash' : ''}`;
    this.item.backgroundColor =
      status.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : crash ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.accessibilityInformation = { label: `AdaDiff: ${status.state}, ${status.message}${crash ? `; ${restartNote(crash)}` : ''}` };
    this.item.tooltip = tooltip(status, crash);
    // Stopped for good after crashes: a click starts it again.
    this.item.command = this.gaveUp ? 'adadiff.restartServer' : 'adadiff.showLog';
    this.item.show();
    const line = `status ${status.state}: ${status.message}${status.detail ? `\n${status.detail}` : ''}`;
    if (status.state === 'error') this.log.error(line);
    else this.log.info(line);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

const restartNote = (c: ServerCrash): string =>
  `the language server crashed at ${new Date(c.at).toLocaleTimeString()} and was restarted (restart ${c.crashes} of ${c.maxRestarts} within ${c.windowMs / 60_000} minutes; after that it stays stopped)`;

function tooltip(status: StatusParams, crash: ServerCrash | undefined): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  // Only our own commands may run from these links.
  md.isTrusted = { enabledCommands: ['adadiff.showLog', 'adadiff.restartServer', 'adadiff.recalibrate', ClientCommands.trainPolicy] };
  md.appendMarkdown('**AdaDiff** — ').appendText(status.message);
  md.appendMarkdown('\n\n');
  // Our own words (no user text in them): Markdown as they are.
  if (crash) md.appendMarkdown(`⚠ ${restartNote(crash)[0].toUpperCase()}${restartNote(crash).slice(1)}.\n\n`);
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
