// Workspace-relative model folders that setup.ts copies from the generated fixture model (no
// policy) into the e2e workspace: the extension test trains the first; the UI test shows the
// hover's training offer on the second. Shared by setup.ts, the suite and ui.ts.
export const TRAIN_ME = 'models/train-me';
export const NO_POLICY = 'models/no-policy';
