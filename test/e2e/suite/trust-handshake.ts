// What the trust suite (suite/trust.ts, in the extension host) and the e2e runner (run.ts, with
// the page) agree on: the workspace model's folder and the runner's answers.

/** The model folder the untrusted workspace's settings name (relative to the folder). */
export const TRUST_MODEL = 'workspace-model';

/** What the runner read from the workbench. */
export interface UntrustedUi {
  /** The messages in the notification center. */
  notifications: string[];
  /** The preview panel's Save button. */
  save?: { disabled: boolean; title: string };
}
