// A run on a pool, from any front end: the CLI (flags, ADADIFF_REDIS_PASSWORD) and the editor (a
// setting names the pool, SecretStorage holds the password) both describe it as a PoolSpec, and
// the run gets a coordinator that is closed however the run ends.
import { parseRedisUrl, type RedisTarget } from './connection';
import { PoolCoordinator, type PoolProgress } from './coordinator';

export interface PoolSpec {
  url: string;
  /** Overrides the URL's password. */
  password?: string;
  allowUnauthenticated?: boolean;
  /** How long Redis, or every worker with the model, may be gone before the run stops. Default 10 s. */
  lostAfterMs?: number;
}

/**
 * The pool's password from the environment (the CLI's, and the language server's, to which the
 * editor hands it from SecretStorage), so that it stays out of `ps`, shell history and LSP traces.
 */
export const passwordFromEnv = (): string | undefined => process.env.ADADIFF_REDIS_PASSWORD || undefined;

export const poolTarget = (spec: PoolSpec): RedisTarget => parseRedisUrl(spec.url, { allowUnauthenticated: spec.allowUnauthenticated, password: spec.password });

/** "pool 12/40 jobs: host:1 7 (1.2 s/job), host:2 5 (1.6 s/job)". */
export function describePoolProgress(p: PoolProgress): string {
  const workers = p.workers.map((w) => `${w.id} ${w.done} (${w.secondsPerJob.toFixed(1)} s/job)`).join(', ');
  return `pool ${p.done}/${p.submitted} jobs${workers ? `: ${workers}` : ''}`;
}

/** Runs `fn` with a coordinator for `spec` (undefined without one), closed afterwards. */
export async function withPool<T>(spec: PoolSpec | undefined, onProgress: (p: PoolProgress) => void, fn: (pool: PoolCoordinator | undefined) => Promise<T>): Promise<T> {
  if (!spec) return fn(undefined);
  const pool = await PoolCoordinator.connect(poolTarget(spec), { lostAfterMs: spec.lostAfterMs, onProgress });
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}
