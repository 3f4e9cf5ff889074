// The preview panel's script (bundled by esbuild.mjs into media/dist/preview.js). It renders the
// PanelState, keeps it with setState so VS Code restores the panel after a reload, and turns the
// buttons into messages. Text goes in through textContent only: a prompt is never parsed as HTML.
import type { FromWebview, PanelState, ToWebview } from '../shared/preview-messages';
import { nextState } from '../shared/preview-state';

interface WebviewApi {
  postMessage(message: FromWebview): void;
  getState(): PanelState | undefined;
  setState(state: PanelState | undefined): void;
}
declare function acquireVsCodeApi(): WebviewApi;

const vscode = acquireVsCodeApi();
let state = vscode.getState();
/** The pending requestAnimationFrame's handle, 0 when none. */
let frame = 0;

const el = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`preview.html lacks #${id}`);
  return found as T;
};

const seconds = (s: number): string => (s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`);
const percent = (saving: number): string => {
  const p = Math.round(saving * 100);
  return p === 0 ? '±0%' : `${p > 0 ? '−' : '+'}${Math.abs(p)}%`;
};

function show(node: HTMLElement, visible: boolean): void {
  node.hidden = !visible;
}

// What each image element was last given: reading img.src back copies the whole data URI (megabytes
// at 1024 px) on every render.
const shown = new WeakMap<HTMLImageElement, string>();

function setImage(img: HTMLImageElement, src: string | undefined): void {
  if (src && shown.get(img) !== src) {
    img.src = src;
    shown.set(img, src);
  }
  img.closest('figure')!.hidden = !src;
}

function renderFacts(s: PanelState): void {
  const rows: [string, string][] = [['Seed', String(s.subject.seed)]];
  const p = s.preview;
  if (p) {
    const chosen = p.refinedSteps ?? p.predictedSteps;
    const saving = p.baselineSteps > 0 ? 1 - chosen / p.baselineSteps : 0;
    // The first-step-aware choice is made after the first denoising step; the prompt-only one is what the lens said.
    const how = p.refinedSteps !== undefined ? `chosen after the first step (the prompt alone: ${p.predictedSteps})` : 'predicted';
    rows.push(['Steps', `${chosen} ${how} · ${p.baselineSteps} baseline (${percent(saving)})${p.policy ? '' : ' · no step policy'}`]);
    if (p.steps !== chosen) rows.push(['Steps run', String(p.steps)]);
    rows.push(['Time', `${seconds(p.actualSeconds)} actual · ${seconds(p.estimatedSeconds)} predicted`]);
    rows.push(['Size', `${p.width} × ${p.height}`]);
    rows.push(['Model', p.model]);
    rows.push(['Execution provider', p.provider]);
  }
  const facts = el('facts');
  facts.replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

function renderStatus(s: PanelState): void {
  const progress = el<HTMLProgressElement>('progress');
  const text = el('status-text');
  const running = s.status === 'running';
  show(progress, running);
  if (running) {
    const live = s.live;
    progress.max = live?.total ?? 1;
    progress.value = live?.step ?? 0;
    const what = s.kind === 'compare' ? `Comparing${live?.phase ? ` (${live.phase})` : ''}: ` : '';
    text.textContent = live ? `${what}denoising step ${live.step} / ${live.total}` : `${what}starting…`;
  } else if (s.status === 'error') {
    text.textContent = `Error: ${s.error ?? 'unknown'}`;
  } else if (s.status === 'cancelled') {
    text.textContent = 'Cancelled.';
  } else {
    text.textContent = '';
  }
  el('status').dataset.status = s.status;
}

function renderImages(s: PanelState): void {
  const main = el<HTMLImageElement>('image');
  const baseline = el<HTMLImageElement>('baseline-image');
  const live = s.status === 'running' ? s.live : undefined;
  const c = s.compare;
  // While a preview runs, the live x0 image replaces the main one; while a compare runs, each
  // phase sharpens in its own figure.
  const mainSrc = live?.image && live.phase !== 'baseline' ? live.image : (c?.predicted.image ?? s.preview?.image);
  const baselineSrc = live?.image && live.phase === 'baseline' ? live.image : c?.baseline.image;
  setImage(main, s.status === 'running' && s.kind === 'preview' && !live?.image ? undefined : mainSrc);
  setImage(baseline, s.kind === 'compare' ? baselineSrc : undefined);
  el('images').classList.toggle('side-by-side', s.kind === 'compare');
  el('main-caption').textContent = c
    ? `Predicted: ${c.predicted.steps} steps · ${seconds(c.predicted.seconds)}`
    : live
      ? `Step ${live.step} / ${live.total}`
      : '';
  el('baseline-caption').textContent = c ? `Baseline: ${c.baseline.steps} steps · ${seconds(c.baseline.seconds)}` : '';
  const fidelity = el('fidelity');
  show(fidelity, c !== undefined && s.status !== 'running');
  fidelity.textContent = c ? `Fidelity to the baseline image (SSIM): ${c.fidelity.toFixed(3)}` : '';
}

function render(): void {
  document.body.classList.toggle('empty', !state);
  if (!state) {
    el('prompt').textContent = 'Run “AdaDiff: Preview Prompt” on a prompt, or click Preview above one.';
    el('facts').replaceChildren();
    for (const id of ['new-seed', 'compare', 'save', 'cancel']) el<HTMLButtonElement>(id).disabled = true;
    return;
  }
  const s = state;
  el('prompt').textContent = s.subject.prompt;
  const negative = el('negative');
  show(negative, Boolean(s.subject.negativePrompt));
  negative.textContent = s.subject.negativePrompt ? `Negative: ${s.subject.negativePrompt}` : '';
  renderStatus(s);
  renderImages(s);
  renderFacts(s);
  const running = s.status === 'running';
  el<HTMLButtonElement>('new-seed').disabled = running;
  el<HTMLButtonElement>('compare').disabled = running;
  const save = el<HTMLButtonElement>('save');
  save.disabled = running || !s.preview || !s.trusted;
  save.title = s.trusted ? 'Save the image (with its parameters) into the workspace' : 'Saving is disabled in an untrusted workspace';
  el<HTMLButtonElement>('cancel').disabled = !running;
  const saved = el('saved');
  show(saved, Boolean(s.saved));
  saved.textContent = s.saved ? `Saved to ${s.saved}` : '';
}

const isMessage = (data: unknown): data is ToWebview =>
  typeof data === 'object' && data !== null && typeof (data as { type?: unknown }).type === 'string';

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  if (!isMessage(event.data)) return;
  state = nextState(state, event.data);
  // VS Code keeps a webview's state in the workbench, so each setState crosses to it. Persisted on
  // every denoising step with its intermediate image (megabytes at 1024 px), a 1000-step render
  // queued the Cancel click behind that traffic. The live step and image are transient: a
  // restored panel shows the next one.
  if (event.data.type !== 'progress') vscode.setState(state && { ...state, live: undefined });
  // One render per frame however many messages came: while a large image decodes, the messages
  // behind it update the state and the next frame shows the latest, instead of each its own.
  if (!frame) frame = requestAnimationFrame(() => ((frame = 0), render()));
});

const buttons: Record<string, FromWebview['type']> = { 'new-seed': 'newSeed', compare: 'compare', save: 'save', cancel: 'cancel' };
for (const [id, type] of Object.entries(buttons)) {
  el(id).addEventListener('click', () => vscode.postMessage({ type } as FromWebview));
}

render();
vscode.postMessage({ type: 'ready' });
