// The one reusable preview panel. It runs adadiff/preview and adadiff/compare on the server,
// forwards the streamed x0 images to the webview, and mirrors the webview's state (same reducer)
// so that New seed, Compare and Save work after a reload, from the state the serializer returns.
import { randomBytes, randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import {
  type CompareView,
  type FromWebview,
  type PanelState,
  PREVIEW_VIEW_TYPE,
  type PreviewSubject,
  type PreviewView,
  pngDataUri,
  type RunKind,
  type ToWebview,
} from '../shared/preview-messages';
import { nextState } from '../shared/preview-state';
import { CompareRequest, type CompareResult, PreviewRequest, type PreviewResult } from '../shared/protocol';
import { SEED_MAX } from '../shared/seed';
import { previewHtml } from './preview-html';
import type { AdaDiffServer } from './server';
import { targetUri, writeWorkspaceFile, WriteRefused } from './workspace-write';

export class PreviewPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private state: PanelState | undefined;
  private running: { id: string; cts: vscode.CancellationTokenSource } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly server: AdaDiffServer,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      server.onPreviewProgress((p) => {
        if (p.id === this.running?.id) this.post({ type: 'progress', step: p.step, total: p.total, image: p.image, phase: p.phase });
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.post({ type: 'trust', trusted: true })),
      vscode.window.registerWebviewPanelSerializer(PREVIEW_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state: PanelState | undefined) => {
          // A reload interrupted whatever was running; trust may have changed since.
          this.adopt(panel, state && { ...state, status: state.status === 'running' ? 'cancelled' : state.status, trusted: vscode.workspace.isTrusted });
        },
      }),
    );
  }

  /** Renders a prompt in the panel; resolves with the result, or undefined if cancelled or failed. */
  async preview(subject: PreviewSubject, beside: boolean): Promise<PreviewView | undefined> {
    this.reveal(beside);
    return this.run('preview', subject);
  }

  /** Writes the last preview to `target` without asking; resolves with the workspace-relative path. */
  async saveTo(target: vscode.Uri): Promise<string | undefined> {
    const image = this.state?.preview?.image;
    if (!image) return undefined;
    const relative = await writeWorkspaceFile(target, Buffer.from(image.slice(image.indexOf(',') + 1), 'base64'));
    this.post({ type: 'saved', path: relative });
    return relative;
  }

  cancel(): void {
    this.running?.cts.cancel();
  }

  private reveal(beside: boolean): void {
    if (this.panel) {
      // Wherever the user put it.
      this.panel.reveal(undefined, true);
      return;
    }
    const column = beside ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    const panel = vscode.window.createWebviewPanel(PREVIEW_VIEW_TYPE, 'AdaDiff Preview', { viewColumn: column, preserveFocus: true }, {});
    this.adopt(panel, undefined);
  }

  private adopt(panel: vscode.WebviewPanel, state: PanelState | undefined): void {
    this.panel?.dispose();
    this.panel = panel;
    this.state = state;
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    panel.webview.options = { enableScripts: true, localResourceRoots: [media] };
    panel.iconPath = vscode.Uri.joinPath(media, 'icon.png');
    panel.webview.html = previewHtml({
      cspSource: panel.webview.cspSource,
      nonce: randomBytes(16).toString('base64'),
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(media, 'dist', 'preview.js')).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(media, 'preview.css')).toString(),
    });
    const subscriptions = [
      panel.webview.onDidReceiveMessage((msg: FromWebview) => this.onMessage(msg)),
      panel.onDidDispose(() => {
        if (this.panel !== panel) return;
        this.cancel();
        this.panel = undefined;
        this.state = undefined;
        for (const s of subscriptions) s.dispose();
      }),
    ];
  }

  private post(msg: ToWebview): void {
    this.state = nextState(this.state, msg);
    void this.panel?.webview.postMessage(msg);
  }

  private async onMessage(msg: FromWebview): Promise<void> {
    const subject = this.state?.subject;
    try {
      switch (msg.type) {
        case 'ready':
          // Messages posted before the page loaded are lost: hand it the whole state.
          if (this.state) this.post({ type: 'state', state: this.state });
          return;
        case 'cancel':
          this.cancel();
          return;
        case 'newSeed':
          if (subject) await this.run('preview', { ...subject, seed: randomSeed(subject.seed) });
          return;
        case 'compare':
          if (subject) await this.run('compare', subject);
          return;
        case 'save':
          await this.saveWithDialog();
          return;
      }
    } catch (err) {
      this.log.error(`preview panel: ${errorMessage(err)}`);
      void vscode.window.showErrorMessage(`AdaDiff: ${errorMessage(err)}`);
    }
  }

  private async saveWithDialog(): Promise<void> {
    const s = this.state;
    if (!s?.preview) return;
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('AdaDiff writes no files in an untrusted workspace.');
      return;
    }
    const suggested =
      (s.subject.target && targetUri(s.subject.uri, s.subject.target)) ||
      (vscode.workspace.workspaceFolders?.[0] && vscode.Uri.joinPath(vscode.workspace.workspaceFolders[0].uri, `${slug(s.subject.prompt)}-${s.subject.seed}.png`));
    const target = await vscode.window.showSaveDialog({ defaultUri: suggested || undefined, filters: { 'PNG image': ['png'] }, saveLabel: 'Save image' });
    if (!target) return;
    try {
      await this.saveTo(target);
    } catch (err) {
      if (!(err instanceof WriteRefused)) throw err;
      void vscode.window.showWarningMessage(err.message);
    }
  }

  private async run(kind: RunKind, subject: PreviewSubject): Promise<PreviewView | undefined> {
    this.cancel();
    const id = randomUUID();
    const cts = new vscode.CancellationTokenSource();
    this.running = { id, cts };
    this.post({ type: 'start', subject, kind, trusted: vscode.workspace.isTrusted });
    const params = { id, uri: subject.uri, prompt: subject.prompt, negativePrompt: subject.negativePrompt, seed: subject.seed, size: subject.size };
    try {
      const client = await this.server.start();
      if (kind === 'compare') {
        const result = await client.sendRequest(CompareRequest, params, cts.token);
        if (this.running?.id === id) this.post({ type: 'compare', result: compareView(result) });
        return undefined;
      }
      const result = await client.sendRequest(PreviewRequest, { ...params, steps: subject.steps }, cts.token);
      if (this.running?.id !== id) return undefined;
      const view = previewView(result);
      this.post({ type: 'preview', result: view });
      return view;
    } catch (err) {
      // A newer run replaced this one: it owns the panel now.
      if (this.running?.id !== id) return undefined;
      if (cts.token.isCancellationRequested) {
        this.post({ type: 'cancelled' });
      } else {
        this.log.error(`${kind} failed: ${errorMessage(err)}`);
        this.post({ type: 'error', message: errorMessage(err) });
      }
      return undefined;
    } finally {
      if (this.running?.id === id) this.running = undefined;
      cts.dispose();
    }
  }

  dispose(): void {
    this.cancel();
    this.panel?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function previewView({ png, ...rest }: PreviewResult): PreviewView {
  return { ...rest, image: pngDataUri(png) };
}

function compareView(r: CompareResult): CompareView {
  const image = ({ png, ...rest }: CompareResult['baseline']) => ({ ...rest, image: pngDataUri(png) });
  return { ...r, baseline: image(r.baseline), predicted: image(r.predicted) };
}

function randomSeed(previous: number): number {
  let seed = previous;
  while (seed === previous) seed = randomBytes(4).readUInt32LE(0) % (SEED_MAX + 1);
  return seed;
}

/** A file name from the first words of a prompt. */
function slug(prompt: string): string {
  return (
    prompt
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 48)
      .replace(/-+$/, '') || 'image'
  );
}

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
