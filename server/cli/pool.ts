// The CLI's side of a pool: the Redis URL and its rules from the flags (the password may come from
// ADADIFF_REDIS_PASSWORD, so that it stays out of `ps` and shell history), a coordinator for the
// run, and one line of pool progress for the progress bar.
import { parseRedisUrl, type RedisTarget } from '../pool/connection';
import { PoolCoordinator, type PoolProgress } from '../pool/coordinator';

export interface PoolFlags {
  redis?: string;
  'allow-unauthenticated-redis'?: boolean;
  'redis-timeout'?: number;
}

export function redisTarget(flags: PoolFlags & { redis: string }): RedisTarget {
  return parseRedisUrl(flags.redis, { allowUnauthenticated: flags['allow-unauthenticated-redis'], password: process.env.ADADIFF_REDIS_PASSWORD || undefined });
}

/** "pool 12/40 jobs: host:1 7 (1.2 s/job), host:2 5 (1.6 s/job)". */
export function describePoolProgress(p: PoolProgress): string {
  const workers = p.workers.map((w) => `${w.id} ${w.done} (${w.secondsPerJob.toFixed(1)} s/job)`).join(', ');
  return `pool ${p.done}/${p.submitted} jobs${workers ? `: ${workers}` : ''}`;
}

/** Runs `fn` with a coordinator when --redis is given (undefined otherwise), closed afterwards. */
export async function withPool<T>(flags: PoolFlags, onProgress: (p: PoolProgress) => void, fn: (pool: PoolCoordinator | undefined) => Promise<T>): Promise<T> {
  if (!flags.redis) return fn(undefined);
  const target = redisTarget({ ...flags, redis: flags.redis });
  const pool = await PoolCoordinator.connect(target, { lostAfterMs: (flags['redis-timeout'] ?? 10) * 1000, onProgress });
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}
