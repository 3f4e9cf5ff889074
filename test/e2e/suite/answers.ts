// What the suites (in the extension host) and the e2e runner (run.ts, with the page) agree on:
// a suite prints "@@e2e NAME" to ask for what only the workbench shows or lets one do, and the
// runner (../answers.ts) answers in HANDSHAKE/NAME.json.

/** The model folder the untrusted workspace's settings name (relative to the folder). */
export const TRUST_MODEL = 'workspace-model';

export interface Asked {
  /** The notification center's notifications (the suite opens it first). */
  notifications: { message: string; buttons: string[] }[];
  /** The preview panel's Save button. */
  'save-button': { disabled: boolean; title: string };
  /** The AdaDiff status bar item as the workbench renders it. */
  'status-item': { text: string; ariaLabel: string };
  /** Clicks Trust in the Workspace Trust editor (the suite opens it first). */
  trust: { clicked: true };
}
