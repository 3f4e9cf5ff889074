// Which workers are connected, and with which model: each worker keeps a key alive (a few seconds'
// expiry, refreshed well before), so the coordinator can say "no worker has this model" instead of
// waiting forever, and a worker killed with kill -9 drops out on its own.
import type { Redis } from 'ioredis';
import type { ModelIdentity } from '../assets/generate';
import { PRESENCE_PREFIX, RUN_PREFIX } from './jobs';

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  model: ModelIdentity;
  /** The execution providers its sessions run on, e.g. ["cpu"]. */
  providers: string[];
  concurrency: number;
  queues: string[];
}

export const PRESENCE_TTL_MS = 6_000;
export const PRESENCE_REFRESH_MS = 2_000;

export async function announce(client: Redis, info: WorkerInfo): Promise<void> {
  await client.set(PRESENCE_PREFIX + info.id, JSON.stringify(info), 'PX', PRESENCE_TTL_MS);
}

export async function withdraw(client: Redis, id: string): Promise<void> {
  await client.del(PRESENCE_PREFIX + id);
}

export async function listWorkers(client: Redis): Promise<WorkerInfo[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${PRESENCE_PREFIX}*`, 'COUNT', 200);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await client.mget(...keys);
  const workers: WorkerInfo[] = [];
  for (const v of values) {
    try {
      const info = v ? (JSON.parse(v) as WorkerInfo) : undefined;
      if (info && typeof info.id === 'string' && Array.isArray(info.queues)) workers.push(info);
    } catch {
      // a key somebody else wrote: not a worker of ours
    }
  }
  return workers.sort((a, b) => a.id.localeCompare(b.id));
}

export const describeWorker = (w: WorkerInfo) => `${w.id} (model "${w.model.name}" ${w.model.hash.slice(0, 10)}, policy ${w.model.policy?.slice(0, 10) ?? 'none'}, ${w.providers.join('/') || '?'})`;

/** The coordinator's heartbeat for its run (same expiry as a worker's). */
export async function keepRunAlive(client: Redis, run: string): Promise<void> {
  await client.set(RUN_PREFIX + run, String(process.pid), 'PX', PRESENCE_TTL_MS);
}

export async function endRun(client: Redis, run: string): Promise<void> {
  await client.del(RUN_PREFIX + run);
}

export async function runIsAlive(client: Redis, run: string): Promise<boolean> {
  return (await client.exists(RUN_PREFIX + run)) === 1;
}
