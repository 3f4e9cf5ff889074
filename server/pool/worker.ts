// A pool worker: one model folder opened once, jobs taken from that model's queues and run with the
// very functions a local run calls (scoreRow for a reward-table row, renderAsset for an image) on
// this machine's execution providers. A job that fails fails alone; the worker keeps taking jobs.
// A worker killed mid-job holds its job's lock until it expires; then BullMQ's stalled-job check on
// another worker puts the job back in the queue, and the coordinator never sees two results.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Job, Worker } from 'bullmq';
import { fidelityScorer, scoreRow } from '../adadiff/reward-table';
import { modelIdentity, renderAsset, type ModelIdentity } from '../assets/generate';
import type { Engine } from '../engine';
import { connectRedis, type RedisTarget, redisOptions } from './connection';
import { type AssetResult, assetQueue, JobError, parseJob, type PoolJob, PREFIX, rowQueue, type RowResult } from './jobs';
import { announce, PRESENCE_REFRESH_MS, runIsAlive, withdraw, type WorkerInfo } from './presence';

export interface PoolWorkerOptions {
  target: RedisTarget;
  modelDir: string;
  engine: Engine;
  /** Jobs in flight at once in this process. */
  concurrency: number;
  /** How long a job of a killed worker stays locked before another worker takes it (BullMQ's lock and stalled-check interval). */
  stalledSeconds: number;
  log: (line: string) => void;
}

export interface PoolWorker {
  info: WorkerInfo;
  /** Finishes the jobs in flight, takes no more, and leaves the pool. */
  close(): Promise<void>;
}

const describeModel = (m: { name: string; hash: string; policy?: string | null }) =>
  `"${m.name}" (hash ${m.hash.slice(0, 10)}${m.policy !== undefined ? `, policy ${m.policy?.slice(0, 10) ?? 'none'}` : ''})`;

/** Why this worker will not run `job`, or undefined when it will. */
export function refusal(job: PoolJob, identity: ModelIdentity): string | undefined {
  const wants = job.kind === 'asset' ? job.model : { name: job.model.name, hash: job.model.hash };
  const has = job.kind === 'asset' ? identity : { name: identity.name, hash: identity.hash };
  if (job.model.hash !== identity.hash || (job.kind === 'asset' && job.model.policy !== identity.policy)) {
    return `this worker has model ${describeModel(has)}, the job needs ${describeModel(wants)}`;
  }
  if (job.kind === 'row' && job.scorer !== fidelityScorer.id) return `the job scores with ${job.scorer}; this worker has only ${fidelityScorer.id}`;
  return undefined;
}

export async function startPoolWorker(opts: PoolWorkerOptions): Promise<PoolWorker> {
  const client = await connectRedis(opts.target);
  let workers: Worker[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const handle = await opts.engine.open(opts.modelDir);
    const identity = await modelIdentity(opts.modelDir);
    const queues = [rowQueue(identity.hash), assetQueue(identity)];
    const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const info: WorkerInfo = {
      id,
      host: hostname(),
      pid: process.pid,
      model: identity,
      providers: [...new Set(Object.values(handle.model.providers).map((p) => p.used))],
      concurrency: opts.concurrency,
      queues,
    };

    const processJob = async (job: Job): Promise<RowResult | AssetResult> => {
      const t0 = performance.now();
      const data = parseJob(job.data);
      const why = refusal(data, identity);
      if (why) throw new JobError(`refused: ${why}`);
      // A coordinator killed mid-run leaves its waiting jobs behind; nobody would read their results.
      if (!(await runIsAlive(client, data.run))) throw new JobError(`dropped: run ${data.run} has no coordinator any more`);
      const jobMs = () => performance.now() - t0;
      opts.log(`start ${data.kind} ${job.id}: "${data.kind === 'row' ? data.task.prompt : data.spec.prompt}"`);
      if (data.kind === 'row') {
        const line = await scoreRow(handle.model, { ...data.settings, scorer: fidelityScorer }, data.task);
        opts.log(`done row ${job.id}: seed ${data.task.seed}, ${data.task.missing.join(',')} steps, ${(jobMs() / 1000).toFixed(2)} s`);
        return { line, worker: id, jobMs: jobMs() };
      }
      const asset = await renderAsset(handle, data.spec);
      opts.log(`done asset ${job.id}: seed ${data.spec.seed}, ${asset.steps} steps, ${(jobMs() / 1000).toFixed(2)} s`);
      return { asset: { ...asset, png: asset.png.toString('base64') }, worker: id, jobMs: jobMs() };
    };

    const ms = opts.stalledSeconds * 1000;
    let lastError = 0;
    workers = queues.map((name) => {
      const w = new Worker(name, processJob, {
        connection: redisOptions(opts.target, true),
        prefix: PREFIX,
        concurrency: opts.concurrency,
        lockDuration: ms,
        stalledInterval: ms,
        // A job whose worker died twice is more likely to kill workers than to be unlucky.
        maxStalledCount: 2,
      });
      w.on('failed', (job, err) => opts.log(`job ${job?.id ?? '?'} failed: ${err.message}`));
      w.on('error', (err) => {
        // Redis going away repeats this every reconnect attempt: say it once a few seconds.
        if (Date.now() - lastError > 5000) opts.log(`queue ${name}: ${err.message}`);
        lastError = Date.now();
      });
      return w;
    });
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    await announce(client, info);
    timer = setInterval(() => announce(client, info).catch(() => undefined), PRESENCE_REFRESH_MS);
    opts.log(`ready: ${id}, model ${describeModel(identity)} on ${info.providers.join('/')}, concurrency ${opts.concurrency}, queues ${queues.join(' ')}`);
    return {
      info,
      async close() {
        clearInterval(timer);
        await Promise.all(workers.map((w) => w.close()));
        await withdraw(client, id).catch(() => undefined);
        client.disconnect();
      },
    };
  } catch (err) {
    clearInterval(timer);
    await Promise.all(workers.map((w) => w.close(true)));
    client.disconnect();
    throw err;
  }
}
