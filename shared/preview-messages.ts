// Everything the preview panel and the extension say to each other, declared once for both sides:
// client/preview-panel.ts (extension host) and media/preview.ts (the webview). No `vscode` import
// and only type imports: the webview bundle and the Chromium test use these types too.
import type { CompareResult, ImageSize, PreviewResult } from './protocol';

/** What a preview renders: enough to run it again (new seed, compare) after a reload. */
export interface PreviewSubject {
  /** The document the prompt came from (its settings apply; Save resolves `target` against it). */
  uri?: string;
  prompt: string;
  negativePrompt?: string;
  seed: number;
  steps?: number | 'auto';
  size?: ImageSize;
  /** Where Generate asset writes the image, relative to the document. */
  target?: string;
}

/** A finished preview as the panel shows it: the server's result with the PNG as a data URI. */
export type PreviewView = Omit<PreviewResult, 'png'> & { image: string };

/** A finished comparison: both images as data URIs. */
export interface CompareView extends Omit<CompareResult, 'baseline' | 'predicted'> {
  baseline: { image: string; steps: number; seconds: number };
  predicted: { image: string; steps: number; seconds: number };
}

export type RunKind = 'preview' | 'compare';

/** The whole panel state: the webview keeps it with setState, so a reload restores the panel. */
export interface PanelState {
  subject: PreviewSubject;
  kind: RunKind;
  status: 'running' | 'done' | 'cancelled' | 'error';
  /** Latest intermediate x0 image while running (per phase for a compare). */
  live?: { step: number; total: number; image?: string; phase?: 'baseline' | 'predicted' };
  preview?: PreviewView;
  compare?: CompareView;
  error?: string;
  /** Workspace trust: saving is refused when untrusted. */
  trusted: boolean;
  /** Workspace-relative path of the last saved file. */
  saved?: string;
}

/** Extension -> webview. */
export type ToWebview =
  /** The whole state, sent when the page (re)loads: messages posted before it listened are lost. */
  | { type: 'state'; state: PanelState }
  | { type: 'start'; subject: PreviewSubject; kind: RunKind; trusted: boolean }
  | { type: 'progress'; step: number; total: number; image?: string; phase?: 'baseline' | 'predicted' }
  | { type: 'preview'; result: PreviewView }
  | { type: 'compare'; result: CompareView }
  | { type: 'cancelled' }
  | { type: 'error'; message: string }
  | { type: 'saved'; path: string }
  | { type: 'trust'; trusted: boolean };

/** Webview -> extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'newSeed' }
  | { type: 'compare' }
  | { type: 'save' }
  | { type: 'cancel' };

export const PREVIEW_VIEW_TYPE = 'adadiff.preview';

/** PNG bytes (base64, as the server sends them) to an <img> source. */
export const pngDataUri = (base64: string): string => `data:image/png;base64,${base64}`;
