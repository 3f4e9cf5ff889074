// The coordinator's side of a pool: it puts a run's jobs on the model's queue, waits for each
// result, checks it and hands it to the caller, who alone writes files (the reward-table cache, the
// images, the lock), exactly as a local run does. It watches what can go wrong around the jobs:
// Redis lost for longer than `lostAfterMs` or no worker with the model for as long stops the run
// with a PoolError (what is done is already written); cancelling removes the run's waiting jobs,
// lets the ones in flight finish and keeps their results.
import { randomBytes } from 'node:crypto';
import { type Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RowRunnerFactory, RowTask } from '../adadiff/reward-table';
import type { AssetRenderer, ModelIdentity, RenderedAsset } from '../assets/generate';
import { CancelledError } from '../errors';
import { connectRedis, PoolError, type RedisTarget, redisOptions } from './connection';
import { type AssetJob, assetQueue, JOB_VERSION, type JobReceipt, parseAssetResult, parseRowResult, PREFIX, rowQueue, type RowJob } from './jobs';
import { describeWorker, endRun, keepRunAlive, listWorkers, PRESENCE_REFRESH_MS, type WorkerInfo } from './presence';

export interface PoolProgress {
  /** Jobs of this run finished and submitted so far. */
  done: number;
  submitted: number;
  /** Per worker: jobs done for this run and their mean time on the worker. */
  workers: { id: string; done: number; secondsPerJob: number }[];
}

export interface CoordinatorOptions {
  /** How long Redis may stay unreachable, or the pool without a worker for the run's model, before the run stops. Default 10 s. */
  lostAfterMs?: number;
  onProgress?: (progress: PoolProgress) => void;
}

interface Pending {
  queue: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

const WATCH_MS = 500;
const SWEEP_MS = 5000;
const CLOSE_MS = 3000;
/** Finished jobs are removed once read; these bounds only clean up after a coordinator that was killed. */
const KEEP = { age: 24 * 3600 } as const;

export class PoolCoordinator {
  readonly run = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  private readonly queues = new Map<string, { queue: Queue; events: QueueEvents; ready: Promise<void> }>();
  private readonly pending = new Map<string, Pending>();
  private readonly perWorker = new Map<string, { done: number; ms: number }>();
  private submitted = 0;
  private done = 0;
  private failure: PoolError | undefined;
  private readonly watchdog: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;
  private downSince: number | undefined;
  private noWorkerSince: number | undefined;
  private watching = false;
  private lastSweep = Date.now();
  private readonly signals = new WeakSet<AbortSignal>();
  private nextJob = 0;

  private constructor(
    readonly target: RedisTarget,
    private readonly client: Redis,
    private readonly options: CoordinatorOptions,
  ) {
    this.watchdog = setInterval(() => void this.watch(), WATCH_MS);
    this.heartbeat = setInterval(() => keepRunAlive(client, this.run).catch(() => undefined), PRESENCE_REFRESH_MS);
    client.on('error', () => undefined); // the watchdog reports a lost connection, once
  }

  /** Connects (a PoolError when Redis is not reachable or refuses the credentials). */
  static async connect(target: RedisTarget, options: CoordinatorOptions = {}): Promise<PoolCoordinator> {
    const pool = new PoolCoordinator(target, await connectRedis(target), options);
    await keepRunAlive(pool.client, pool.run);
    return pool;
  }

  workers(): Promise<WorkerInfo[]> {
    return listWorkers(this.client);
  }

  /** Reward-table rows on the pool; the table's writer (buildRewardTable) gets each row as it arrives. */
  rows(): RowRunnerFactory {
    return async (model, settings) => {
      const hash = await model.folder.hash();
      const queue = rowQueue(hash);
      const job = (task: RowTask): RowJob => ({
        v: JOB_VERSION,
        kind: 'row',
        run: this.run,
        model: { name: model.folder.name, hash },
        settings: {
          scheduler: settings.scheduler,
          guidance: settings.guidance,
          ...(settings.width !== undefined ? { width: settings.width, height: settings.height } : {}),
          ...(settings.negativePrompt !== undefined ? { negativePrompt: settings.negativePrompt } : {}),
        },
        scorer: settings.scorer.id,
        task,
      });
      return {
        run: async (tasks, onRow, signal) => {
          // A table the cache already holds needs no worker.
          if (tasks.length === 0) return;
          await this.requireWorkers(queue, `model "${model.folder.name}" (hash ${hash.slice(0, 10)})`);
          // Rows are written one at a time, in the order they come back.
          let writing: Promise<void> = Promise.resolve();
          let firstError: Error | undefined;
          await Promise.all(
            tasks.map(async (task) => {
              const data = job(task);
              try {
                const { line } = await this.submit(queue, data, (v) => parseRowResult(v, data), signal);
                // Kept even when the run is stopping: a finished row is as good as a local one.
                writing = writing.then(() => onRow(task, line));
                await writing;
              } catch (err) {
                firstError ??= err as Error;
                // One row failing stops the table, as locally; the rest need not run.
                void this.cancelWaiting();
              }
            }),
          );
          if (firstError) throw firstError;
        },
      };
    };
  }

  /** Asset images on the pool; generateAssets writes each as it arrives. */
  assets(): AssetRenderer {
    const checked = new Map<string, Promise<void>>();
    return {
      concurrency: Number.MAX_SAFE_INTEGER,
      render: async ({ identity, spec }, hooks) => {
        const queue = assetQueue(identity);
        let check = checked.get(queue);
        if (!check) checked.set(queue, (check = this.requireWorkers(queue, describeIdentity(identity))));
        await check;
        const data: AssetJob = { v: JOB_VERSION, kind: 'asset', run: this.run, model: identity, spec };
        const { asset } = await this.submit(queue, data, (v) => parseAssetResult(v, data), hooks.signal);
        return asset satisfies RenderedAsset;
      },
    };
  }

  /** Removes the run's jobs that no worker has started; those in flight finish. */
  cancelWaiting(): Promise<void> {
    return Promise.all(
      [...this.pending].map(([id, p]) =>
        this.queues.get(p.queue)?.queue.remove(id).then(
          (removed) => void (removed && this.settle(id, new CancelledError())),
          () => undefined,
        ),
      ),
    ).then(() => undefined);
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    clearInterval(this.heartbeat);
    // With Redis gone none of this can finish: give it a moment, then let go of the connections.
    const tidy = (async () => {
      await this.cancelWaiting();
      for (const id of [...this.pending.keys()]) this.settle(id, new CancelledError());
      if (this.client.status === 'ready') await endRun(this.client, this.run).catch(() => undefined);
      await Promise.all([...this.queues.values()].flatMap(({ queue, events }) => [queue.close(), events.close()]));
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([tidy.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, CLOSE_MS)))]);
    clearTimeout(timer);
    for (const { queue, events } of this.queues.values()) {
      void queue.disconnect().catch(() => undefined);
      void events.disconnect().catch(() => undefined);
    }
    this.client.disconnect();
  }

  private async requireWorkers(queue: string, what: string): Promise<void> {
    const workers = await this.workers();
    if (workers.some((w) => w.queues.includes(queue))) return;
    throw new PoolError(
      `no worker in the pool at ${this.target.display} has ${what}; ` +
        (workers.length ? `connected: ${workers.map(describeWorker).join('; ')}` : 'no worker is connected (start one with `adadiff worker --redis URL --model DIR`)'),
    );
  }

  private async queueFor(name: string) {
    let entry = this.queues.get(name);
    if (!entry) {
      const queue = new Queue(name, { connection: redisOptions(this.target, false), prefix: PREFIX });
      const events = new QueueEvents(name, { connection: redisOptions(this.target, true), prefix: PREFIX });
      queue.on('error', () => undefined);
      events.on('error', () => undefined);
      events.on('completed', ({ jobId }) => void this.collect(name, jobId));
      events.on('failed', ({ jobId, failedReason }) => this.fail(name, jobId, failedReason));
      // Listening before the first job is added, so no event is missed: every caller waits for it.
      entry = { queue, events, ready: Promise.all([queue.waitUntilReady(), events.waitUntilReady()]).then(() => undefined) };
      this.queues.set(name, entry);
    }
    await entry.ready;
    return entry;
  }

  private async submit<T extends JobReceipt>(queueName: string, data: RowJob | AssetJob, parse: (value: unknown) => T, signal?: AbortSignal): Promise<T> {
    if (this.failure) throw this.failure;
    if (signal?.aborted) throw new CancelledError();
    const { queue } = await this.queueFor(queueName);
    const id = `${this.run}.${this.nextJob++}`;
    const result = new Promise<unknown>((resolve, reject) => this.pending.set(id, { queue: queueName, resolve, reject }));
    this.cancelOn(signal);
    try {
      await queue.add(data.kind, data, { jobId: id, attempts: 1, removeOnComplete: KEEP, removeOnFail: KEEP });
      this.submitted++;
      this.report();
      const parsed = parse(await result);
      const w = this.perWorker.get(parsed.worker) ?? { done: 0, ms: 0 };
      this.perWorker.set(parsed.worker, { done: w.done + 1, ms: w.ms + parsed.jobMs });
      this.done++;
      this.report();
      return parsed;
    } catch (err) {
      this.pending.delete(id);
      throw err;
    }
  }

  /** One listener per signal, however many jobs it covers (a listener per job would be hundreds). */
  private cancelOn(signal: AbortSignal | undefined): void {
    if (!signal || this.signals.has(signal)) return;
    this.signals.add(signal);
    signal.addEventListener('abort', () => void this.cancelWaiting(), { once: true });
  }

  private async collect(queueName: string, id: string): Promise<void> {
    if (!this.pending.has(id)) return;
    const entry = this.queues.get(queueName)!;
    try {
      const job: Job | undefined = await entry.queue.getJob(id);
      if (!job) throw new PoolError(`job ${id} finished but is gone from Redis`);
      const value = job.returnvalue;
      await job.remove().catch(() => undefined);
      this.settle(id, undefined, value);
    } catch (err) {
      this.settle(id, err as Error);
    }
  }

  private fail(_queueName: string, id: string, reason: string): void {
    if (!this.pending.has(id)) return;
    void this.queues.get(_queueName)?.queue.remove(id).catch(() => undefined);
    this.settle(id, new Error(reason));
  }

  private settle(id: string, err?: Error, value?: unknown): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  private report(): void {
    this.options.onProgress?.({
      done: this.done,
      submitted: this.submitted,
      workers: [...this.perWorker].map(([id, w]) => ({ id, done: w.done, secondsPerJob: w.ms / w.done / 1000 })),
    });
  }

  /** Stops the run when Redis or every worker with the run's model has been gone too long. */
  private async watch(): Promise<void> {
    if (this.watching || this.failure) return;
    this.watching = true;
    const limit = this.options.lostAfterMs ?? 10_000;
    try {
      const now = Date.now();
      if (this.client.status !== 'ready') {
        this.downSince ??= now;
        if (now - this.downSince > limit) this.stop(new PoolError(`lost the connection to Redis at ${this.target.display} for over ${limit / 1000} s; what was done is written, rerun to continue`));
        return;
      }
      this.downSince = undefined;
      if (this.pending.size === 0) return;
      if (now - this.lastSweep > SWEEP_MS) await this.sweep(now);
      const waitingOn = new Set([...this.pending.values()].map((p) => p.queue));
      const workers = await this.workers();
      if ([...waitingOn].every((q) => workers.some((w) => w.queues.includes(q)))) {
        this.noWorkerSince = undefined;
        return;
      }
      this.noWorkerSince ??= now;
      if (now - this.noWorkerSince > limit) {
        this.stop(new PoolError(`no worker with this run's model has been connected to ${this.target.display} for over ${limit / 1000} s; what was done is written, rerun to continue`));
      }
    } catch {
      // a command failed while the connection dropped: the next tick sees the status
    } finally {
      this.watching = false;
    }
  }

  /** Events can be missed across a reconnect: ask Redis for the state of every job still pending. */
  private async sweep(now: number): Promise<void> {
    this.lastSweep = now;
    for (const [id, p] of [...this.pending]) {
      const { queue } = this.queues.get(p.queue)!;
      const state = await queue.getJobState(id);
      if (state === 'completed') await this.collect(p.queue, id);
      else if (state === 'failed') this.fail(p.queue, id, (await queue.getJob(id))?.failedReason ?? 'failed');
    }
  }

  private stop(err: PoolError): void {
    this.failure = err;
    void this.cancelWaiting();
    for (const id of [...this.pending.keys()]) this.settle(id, err);
  }
}

const describeIdentity = (m: ModelIdentity) => `model "${m.name}" (hash ${m.hash.slice(0, 10)}, policy ${m.policy?.slice(0, 10) ?? 'none'})`;
