// The render worker's side of "Generate all assets": the same generateAssets the CLI runs, in the
// worker process (every UNet call blocks the thread it runs on; hovers live on the server's thread).
// Plan and progress go back as messages; the run's own AbortSignal comes from the server's
// cancel, and a cancelled run still answers with its summary (the finished images stay).
import { type AssetPlan, type AssetProgress, type AssetSummary, generateAssets, type GenerateAssetsOptions } from '../assets';
import type { ParameterValues } from '../generation';
import { type PoolSpec, withPool } from '../pool/session';
import { type Engines, openWithSettings } from './handles';

/** What the server sends; the model folder and providers are the ones hovers use. */
export interface AssetsJob {
  kind: 'assets';
  id: number;
  cacheDir: string;
  model: string;
  providers: string[];
  /** The folder's settings, as previews get them; resolveGeneration leaves them out of assets. */
  settings: ParameterValues;
  options: Pick<GenerateAssetsOptions, 'root' | 'only' | 'force' | 'dryRun' | 'check' | 'trusted'>;
  /** Render on this pool's workers (adadiff.pool.redis); the images and the lock are still written here. */
  pool?: PoolSpec;
}

export type AssetsMessage = { kind: 'assets-plan'; id: number; plan: AssetPlan } | { kind: 'assets-progress'; id: number; progress: AssetProgress };

/**
 * The models are opened with the settings, as for previews; an asset must still come out the same
 * from `adadiff assets` in CI as from the editor, so generateAssets asks for assets and
 * resolveGeneration (generation.ts) uses the model's policy manifest and defaults, not the settings.
 */
export function runAssetsJob(job: AssetsJob, engines: Engines, signal: AbortSignal, post: (msg: AssetsMessage) => void): Promise<AssetSummary> {
  const engine = engines.get(job.providers);
  const pool = job.options.check || job.options.dryRun ? undefined : job.pool;
  return withPool(pool, () => undefined, (coordinator) =>
    generateAssets(
      { ...job.options, model: job.model, engine: { open: (dir) => openWithSettings(engine, dir, job.settings) }, renderer: coordinator?.assets() },
      {
        signal,
        onPlan: (plan) => post({ kind: 'assets-plan', id: job.id, plan }),
        onProgress: (progress) => post({ kind: 'assets-progress', id: job.id, progress }),
      },
    ),
  );
}
