// Asset generation in repositories: targets from Markdown and manifests, the lock file, safe
// atomic writes. vscode-free: the CLI and the language server both call generateAssets.
export { AssetError, generateAssets, modelIdentity, renderAsset } from './generate';
export type { AssetAction, AssetModel, AssetPlan, AssetProgress, AssetRenderer, AssetRenderSpec, AssetReport, AssetState, AssetSummary, GenerateAssetsHooks, GenerateAssetsOptions, ModelIdentity, ModelSource, RenderedAsset } from './generate';
export { LOCK_FILE, LockError, readLock } from './lock';
export type { Lock, LockEntry } from './lock';
export { MANIFEST_NAMES } from './manifest';
export { AssetPathError } from './paths';
export { describeAsset, describePlan, describeSummary } from './report';
export type { AssetProblem, AssetTarget } from './targets';
