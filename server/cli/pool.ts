// The CLI's pool flags as a PoolSpec (server/pool/session.ts); the password may come from
// ADADIFF_REDIS_PASSWORD, so that it stays out of `ps` and shell history.
import { passwordFromEnv, type PoolSpec } from '../pool/session';

export interface PoolFlags {
  redis?: string;
  'allow-unauthenticated-redis'?: boolean;
  'redis-timeout'?: number;
}

export function poolSpec(flags: PoolFlags): PoolSpec | undefined {
  if (!flags.redis) return undefined;
  return {
    url: flags.redis,
    password: passwordFromEnv(),
    allowUnauthenticated: flags['allow-unauthenticated-redis'],
    lostAfterMs: flags['redis-timeout'] !== undefined ? flags['redis-timeout'] * 1000 : undefined,
  };
}
