// A pool on a real redis-server with real worker processes (issue 17): distributed runs end in the
// same files as local ones, and the faults that must lose or duplicate nothing (a worker killed
// mid-job, the coordinator killed mid-run, Redis unreachable or lost, a bad job, a job no worker
// can take) are each provoked once.
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Queue, QueueEvents } from 'bullmq';
import { openModelFolder } from '../../server/model/folder';
import { redisOptions } from '../../server/pool/connection';
import { PREFIX, rowQueue } from '../../server/pool/jobs';
import { buildOnce } from '../build';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { cacheRows, filesOf, PASSWORD, type RedisServer, runCli, spawnCli, startRedis, startWorkers, stopWorkers, tempDir, type WorkerProcess } from './harness';

const PROMPT_COUNT = 6;
const trainArgs = (model: string, prompts: string, out: string) => ['train-policy', '--model', model, '--prompts', prompts, '--seeds', '0,1', '--candidates', '2,4,8,16', '--size', '128x128', '--epochs', '30', '--out', out];
const writePrompts = (dir: string, tag: string) => {
  const file = join(dir, 'prompts.txt');
  writeFileSync(file, Array.from({ length: PROMPT_COUNT }, (_, i) => `a small picture number ${i}, ${tag}`).join('\n') + '\n');
  return file;
};
/** policy.json without what differs between any two runs: when it was made and how long it took. */
const manifestOf = (out: string) => JSON.parse(readFileSync(join(out, 'adadiff', 'policy.json'), 'utf8'), (k, v) => (k === 'createdAt' || k.endsWith('Seconds') ? undefined : v));

/** Resolves once `check` holds, polling; rejects after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a pool of workers on Redis', () => {
  let model: string;
  let redis: RedisServer;
  let workers: WorkerProcess[];
  const workerCache = tempDir('worker-cache');
  const withPool = (url = redis.url) => ['--redis', url];

  before(async () => {
    buildOnce();
    model = (await ensureFixtures()).optimum;
    redis = await startRedis();
    workers = await startWorkers(redis, model, 3, workerCache);
  });
  after(() => {
    stopWorkers(workers);
    redis?.kill();
  });

  test('train-policy over 3 workers, one killed with kill -9 mid-row: the same reward table and policy as a local run', async () => {
    const dir = tempDir('train');
    const prompts = writePrompts(dir, 'kill a worker');
    const local = runCli(trainArgs(model, prompts, join(dir, 'local')), join(dir, 'cache-local'));
    assert.equal(local.code, 0, local.out);

    const run = spawnCli([...trainArgs(model, prompts, join(dir, 'pool')), ...withPool()], join(dir, 'cache-pool'));
    // Kill the first worker seen inside a row, the moment it is.
    let victim: WorkerProcess | undefined;
    await until(() => (victim = workers.find((w) => w.unfinished().length > 0)) !== undefined, 60_000, 'a worker to start a row');
    victim!.child.kill('SIGKILL');
    const interrupted = victim!.unfinished();
    const { code } = await run.exited;
    assert.equal(code, 0, run.out());
    assert.equal(interrupted.length, 1, `the kill caught a row in flight: ${victim!.log()}`);
    // The interrupted row was made again by another worker.
    assert.ok(workers.some((w) => w !== victim && w.log().includes(`done row ${interrupted[0]}:`)), 'another worker finished the row the killed one held');

    const a = cacheRows(join(dir, 'cache-local'));
    const b = cacheRows(join(dir, 'cache-pool'));
    assert.equal(b.file, a.file, 'the same table (cache key)');
    assert.equal(b.rows.length, PROMPT_COUNT * 2);
    assert.deepEqual(b.rows, a.rows, 'every row scores the same');
    assert.equal(b.lines, b.rows.length, 'no row written twice');
    assert.deepEqual(readFileSync(join(dir, 'pool', 'adadiff', 'policy.onnx')), readFileSync(join(dir, 'local', 'adadiff', 'policy.onnx')), 'the same policy, byte for byte');
    assert.deepEqual(manifestOf(join(dir, 'pool')), manifestOf(join(dir, 'local')));
    workers = workers.filter((w) => w !== victim);
  });

  test('assets over the pool: byte-identical images and lock to a local run; a rerun has nothing to do', () => {
    const manifest =
      ['assets:', ...Array.from({ length: 8 }, (_, i) => `  - prompt: icon ${i}\n    out: icons/${i}.png\n    size: 32x32\n    seed: ${i}${i % 2 ? '\n    steps: 12' : ''}`)].join('\n') + '\n';
    const [local, pooled] = [tempDir('assets-local'), tempDir('assets-pool')];
    for (const root of [local, pooled]) writeFileSync(join(root, 'adadiff.yaml'), manifest);
    const cache = tempDir('assets-cache');
    const l = runCli(['assets', local, '--model', model], cache);
    assert.equal(l.code, 0, l.out);
    const p = runCli(['assets', pooled, '--model', model, ...withPool()], cache);
    assert.equal(p.code, 0, p.out);
    const [lf, pf] = [filesOf(local), filesOf(pooled)];
    assert.deepEqual([...pf.keys()].sort(), [...lf.keys()].sort());
    for (const [name, bytes] of lf) assert.ok(bytes.equals(pf.get(name)!), `${name} is byte-identical`);
    assert.equal(runCli(['assets', pooled, '--check', '--model', model], cache).code, 0);
  });

  test('the coordinator killed mid-run: the rerun resumes from the cache and makes only the rows that were missing', async () => {
    const dir = tempDir('coordinator');
    const prompts = writePrompts(dir, 'kill the coordinator');
    const cache = join(dir, 'cache');
    const first = spawnCli([...trainArgs(model, prompts, join(dir, 'out')), ...withPool()], cache);
    const rowsSoFar = () => (existsSync(join(cache, 'reward-tables')) ? cacheRows(cache).rows.length : 0);
    await until(() => rowsSoFar() >= 3, 60_000, 'three rows in the cache');
    first.child.kill('SIGKILL');
    await first.exited;
    const kept = rowsSoFar();
    assert.ok(kept < PROMPT_COUNT * 2, 'killed before the table was complete');
    const again = runCli([...trainArgs(model, prompts, join(dir, 'out')), ...withPool()], cache);
    assert.equal(again.code, 0, again.out);
    const after = cacheRows(cache);
    assert.equal(after.rows.length, PROMPT_COUNT * 2);
    // A cut last line of the killed run is the only line that may not be a row; none is there twice.
    assert.ok(after.lines - after.rows.length <= 1, `${after.lines} lines for ${after.rows.length} rows`);
    assert.equal(new Set(after.rows).size, after.rows.length, 'no row made twice');
    assert.ok(existsSync(join(dir, 'out', 'adadiff', 'policy.onnx')));
  });

  test("Ctrl-C in the coordinator removes the run's waiting jobs and keeps the rows done", async () => {
    const dir = tempDir('cancel');
    const prompts = writePrompts(dir, 'cancel the run');
    const cache = join(dir, 'cache');
    const run = spawnCli([...trainArgs(model, prompts, join(dir, 'out')), ...withPool()], cache);
    await until(() => existsSync(join(cache, 'reward-tables')) && cacheRows(cache).rows.length >= 1, 60_000, 'a row in the cache');
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    assert.equal(code, 130, run.out()); // a cancel exits 128 + SIGINT, as a shell reports Ctrl-C
    assert.match(run.out(), /adadiff: generation cancelled/);
    const kept = cacheRows(cache);
    assert.ok(kept.rows.length >= 1 && kept.rows.length < PROMPT_COUNT * 2, `${kept.rows.length} rows kept`);
    assert.equal(kept.lines, kept.rows.length, 'every line a whole row');
    const queue = new Queue(rowQueue(await (await openModelFolder(model)).hash()), { connection: redisOptions({ host: '127.0.0.1', port: redis.port, tls: false, password: PASSWORD, db: 0, display: '' }, false), prefix: PREFIX });
    try {
      assert.equal(await queue.getWaitingCount(), 0, 'no job of the run is left waiting');
    } finally {
      await queue.close();
    }
  });

  test('a malformed job fails alone; the worker keeps taking jobs', async () => {
    const hash = await (await openModelFolder(model)).hash();
    const connection = redisOptions({ host: '127.0.0.1', port: redis.port, tls: false, password: PASSWORD, db: 0, display: '' }, false);
    const queue = new Queue(rowQueue(hash), { connection, prefix: PREFIX });
    const events = new QueueEvents(rowQueue(hash), { connection: { ...connection, maxRetriesPerRequest: null }, prefix: PREFIX });
    try {
      await events.waitUntilReady();
      const job = await queue.add('row', { v: 1, kind: 'row', run: 'x', model: { name: 'optimum', hash }, settings: { scheduler: 'ddim', guidance: 1e9 }, scorer: 'ssim', task: {} });
      await assert.rejects(job.waitUntilFinished(events, 30_000), /row job: settings need a scheduler/);
    } finally {
      await queue.close();
      await events.close();
    }
    for (const w of workers) assert.equal(w.child.exitCode, null, 'every worker still runs');
    // ... and they still work: a small table over the pool.
    const dir = tempDir('after-bad-job');
    const prompts = writePrompts(dir, 'after a bad job');
    const r = runCli(['train-policy', '--model', model, '--prompts', prompts, '--seeds', '0', '--candidates', '2,4', '--size', '32x32', '--epochs', '5', '--out', join(dir, 'out'), ...withPool()], join(dir, 'cache'));
    assert.equal(r.code, 0, r.out);
  });

  test('a model no worker has: the run says so and names what the pool has', () => {
    const dir = tempDir('other-model');
    const other = join(dir, 'model');
    cpSync(model, other, { recursive: true });
    const config = join(other, 'scheduler', 'scheduler_config.json');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), steps_offset: 0, _note: 'another model' }));
    const prompts = writePrompts(dir, 'other model');
    const r = runCli(['train-policy', '--model', other, '--prompts', prompts, '--seeds', '0', '--candidates', '2,4', '--size', '32x32', '--epochs', '5', ...withPool()], join(dir, 'cache'));
    assert.equal(r.code, 1);
    assert.match(r.out, /adadiff: no worker in the pool at redis:\/\/127\.0\.0\.1:\d+ has model "model" \(hash [0-9a-f]{10}\); connected: .*model "optimum"/);
    assert.doesNotMatch(r.out, new RegExp(PASSWORD), 'the password is never printed');
  });

  test('Redis not reachable, or the wrong password: a clear error before any work', () => {
    const dir = tempDir('unreachable');
    const prompts = writePrompts(dir, 'unreachable');
    const args = ['train-policy', '--model', model, '--prompts', prompts, '--size', '32x32'];
    const closed = runCli([...args, '--redis', `redis://127.0.0.1:${redis.port + 1 === 65536 ? 1 : redis.port + 1}`], join(dir, 'cache'));
    assert.equal(closed.code, 1);
    assert.match(closed.out, /adadiff: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    const wrong = runCli([...args, '--redis', redis.bareUrl], join(dir, 'cache'), { ADADIFF_REDIS_PASSWORD: 'wrong' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.out, /adadiff: Redis at redis:\/\/127\.0\.0\.1:\d+ refused the credentials/);
    assert.ok(!existsSync(join(dir, 'cache', 'reward-tables')), 'nothing was started');
  });

  test('Ctrl-C stops a worker after the row in flight: it finishes that row, leaves the pool and exits 0', async () => {
    const [worker] = await startWorkers(redis, model, 1, workerCache);
    const exited = new Promise<number | null>((resolve) => worker.child.on('exit', (code) => resolve(code)));
    const dir = tempDir('ctrl-c');
    const prompts = writePrompts(dir, 'ctrl-c');
    const run = spawnCli([...trainArgs(model, prompts, join(dir, 'out')), ...withPool()], join(dir, 'cache'));
    await until(() => worker.unfinished().length > 0, 60_000, 'the worker to start a row');
    const [inFlight] = worker.unfinished();
    worker.child.kill('SIGINT');
    assert.equal(await exited, 0, worker.log());
    assert.match(worker.log(), new RegExp(`finishing the jobs in flight[\\s\\S]*done row ${inFlight.replace('.', '\\.')}:[\\s\\S]*stopped`));
    assert.deepEqual(worker.unfinished(), []);
    assert.equal((await run.exited).code, 0, run.out());
    assert.equal(cacheRows(join(dir, 'cache')).rows.length, PROMPT_COUNT * 2);
  });

  test('Redis lost mid-run: a clear error, and the rows done stay in the cache', async () => {
    const own = await startRedis();
    const [worker] = await startWorkers(own, model, 1, workerCache);
    try {
      const dir = tempDir('lost');
      const prompts = writePrompts(dir, 'redis lost');
      const cache = join(dir, 'cache');
      const run = spawnCli([...trainArgs(model, prompts, join(dir, 'out')), '--redis', own.url, '--redis-timeout', '2'], cache);
      await until(() => existsSync(join(cache, 'reward-tables')) && cacheRows(cache).rows.length >= 1, 60_000, 'a row in the cache');
      own.kill();
      const { code } = await run.exited;
      assert.equal(code, 1, run.out());
      assert.match(run.out(), /adadiff: lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+ for over 2 s; what was done is written, rerun to continue/);
      const kept = cacheRows(cache);
      assert.ok(kept.rows.length >= 1 && kept.rows.length < PROMPT_COUNT * 2);
      assert.equal(worker.child.exitCode, null, 'the worker waits for Redis to come back');
    } finally {
      stopWorkers([worker]);
      own.kill();
    }
  });
});
