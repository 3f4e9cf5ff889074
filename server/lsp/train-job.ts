// The render worker's side of "Train a step policy": the same trainPolicy the CLI runs, in the
// worker process, because the reward table is thousands of UNet calls and onnxruntime-node blocks
// the thread it runs on (hovers live on the server's thread). Progress goes back as messages; the
// server's cancel aborts the run between two images (the cached table rows stay).
import type { PolicyEvaluation } from '../adadiff/policy-manifest';
import { trainPolicy, type TrainPolicyOptions, type TrainPolicyProgress } from '../adadiff/train-policy';
import type { ModelHandle } from '../engine';
import { type PoolSpec, withPool } from '../pool/session';
import type { Engines } from './handles';

/** What the server sends: the model folder and providers hovers use, and plain training options. */
export interface TrainJob {
  kind: 'train';
  id: number;
  cacheDir: string;
  model: string;
  providers: string[];
  /** Everything but what cannot cross threads (signal, callbacks, a scorer's session); written into the model folder. */
  options: Omit<TrainPolicyOptions, 'signal' | 'onProgress' | 'scorer' | 'scorerFile' | 'outDir' | 'rows'>;
  /** Make the reward table's rows on this pool's workers (adadiff.pool.redis); the cache is still written here. */
  pool?: PoolSpec;
}

export type TrainMessage = { kind: 'train-progress'; id: number; progress: TrainPolicyProgress };

export interface TrainOutcome {
  onnxPath: string;
  manifestPath: string;
  evaluation: PolicyEvaluation | null;
  rewardTableSeconds: number;
  trainingSeconds: number;
}

/**
 * Trains with the worker's own sessions of the model (the ones previews use), then stops serving
 * them so the next preview loads the folder again with its new policy. The old handle is disposed
 * only once `idle` says no other job may still be rendering with it.
 */
export async function runTrainJob(
  job: TrainJob,
  engines: Engines,
  signal: AbortSignal,
  post: (msg: TrainMessage) => void,
  idle: () => Promise<void>,
): Promise<TrainOutcome> {
  const handle = await engines.get(job.providers).open(job.model);
  // The policy is written before the evaluation: a run cancelled during the evaluation leaves it.
  let written = false;
  let result;
  try {
    result = await withPool(job.pool, () => undefined, (pool) =>
      trainPolicy(handle.model, {
        ...job.options,
        rows: pool?.rows(),
        signal,
        onProgress: (progress) => {
          written ||= progress.phase === 'export';
          post({ kind: 'train-progress', id: job.id, progress });
        },
      }),
    );
  } finally {
    if (written) {
      const stale = engines.forget(job.model);
      void idle().then(() => Promise.all(stale.map((h) => h.then((x: ModelHandle) => x.dispose()).catch(() => undefined))));
    }
  }
  return {
    onnxPath: result.onnxPath,
    manifestPath: result.manifestPath,
    evaluation: result.evaluation ?? null,
    rewardTableSeconds: result.manifest.training.rewardTableSeconds,
    trainingSeconds: result.manifest.training.trainingSeconds,
  };
}
