// The pool's rules without a Redis: which URLs are accepted (TLS, authentication, loopback), what a
// worker accepts as a job and refuses for another model, and what the coordinator accepts as a
// result before it writes anything. The live pool is test/pool/.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { poolSpec, readSettings } from '../../server/lsp/settings';
import { encodePng } from '../../server/pipeline/png';
import { isLoopback, parseRedisUrl, redisOptions, redact } from '../../server/pool/connection';
import { type AssetJob, assetQueue, LIMITS, parseAssetResult, parseJob, parseRowResult, rowQueue, type RowJob } from '../../server/pool/jobs';
import { refusal } from '../../server/pool/worker';

const HASH = 'a'.repeat(64);
const POLICY = 'b'.repeat(64);

describe('pool URLs', () => {
  it('takes redis:// and rediss:// with a password or an ACL user, and never shows the password', () => {
    const t = parseRedisUrl('rediss://alice:s%3Acret@redis.example.com:6380/2');
    assert.deepEqual({ ...t }, { host: 'redis.example.com', port: 6380, tls: true, username: 'alice', password: 's:cret', db: 2, display: 'rediss://alice@redis.example.com:6380/2' });
    const p = parseRedisUrl('redis://:secret@10.0.0.5');
    assert.equal(p.password, 'secret');
    assert.equal(p.port, 6379);
    assert.equal(p.display, 'redis://10.0.0.5:6379');
    assert.ok(!JSON.stringify(p.display).includes('secret'));
  });

  it('refuses a Redis on another machine without authentication unless explicitly allowed', () => {
    assert.throws(() => parseRedisUrl('redis://10.0.0.5:6379'), /refusing redis:\/\/10\.0\.0\.5:6379: a Redis on another machine must require a password.*--allow-unauthenticated-redis/);
    assert.throws(() => parseRedisUrl('rediss://redis.example.com'), /must require a password/, 'TLS is not authentication');
    assert.equal(parseRedisUrl('redis://10.0.0.5', { allowUnauthenticated: true }).password, undefined);
    assert.equal(parseRedisUrl('redis://10.0.0.5', { password: 'from-secret-storage' }).password, 'from-secret-storage');
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]']) assert.doesNotThrow(() => parseRedisUrl(`redis://${host}:6379`), host);
  });

  it('says what is wrong with a URL it cannot use, without repeating its password', () => {
    assert.throws(() => parseRedisUrl('http://localhost'), /http:\/\/ is not a Redis URL scheme; use redis:\/\/ or rediss:\/\//);
    assert.throws(() => parseRedisUrl('not a url :pw@'), /is not a Redis URL/);
    assert.throws(() => parseRedisUrl('redis://alice@localhost'), /an ACL user needs a password/);
    assert.throws(() => parseRedisUrl('redis://localhost/16'), /database 16 is out of range/);
    assert.throws(() => parseRedisUrl('redis://localhost/queue'), /must be a database number/);
    assert.throws(() => parseRedisUrl('redis://:pw@localhost/?tls=1'), (err: Error) => /query and fragment/.test(err.message) && !err.message.includes('pw@'));
    assert.equal(redact('redis://u:hunter2@host/0'), 'redis://u:***@host/0');
  });

  it('loopback is this machine only', () => {
    assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost') && isLoopback('::ffff:127.0.0.1'));
    assert.ok(!isLoopback('10.0.0.1') && !isLoopback('0.0.0.0') && !isLoopback('localhost.example.com') && !isLoopback('::'));
  });

  it('rediss:// gets TLS with the host name checked; a blocking connection queues through reconnects', () => {
    const tls = redisOptions(parseRedisUrl('rediss://:pw@redis.example.com'), true);
    assert.deepEqual(tls.tls, { servername: 'redis.example.com' });
    assert.equal(tls.maxRetriesPerRequest, null);
    const plain = redisOptions(parseRedisUrl('redis://localhost'), false);
    assert.equal(plain.tls, undefined);
    assert.equal(plain.maxRetriesPerRequest, 1);
  });
});

const rowJob = (over: Partial<RowJob> = {}): RowJob => ({
  v: 1,
  kind: 'row',
  run: 'r1',
  model: { name: 'm', hash: HASH },
  settings: { scheduler: 'ddim', guidance: 7, width: 32, height: 32 },
  scorer: 'ssim-rgb-gauss11-1.5',
  task: { prompt: 'a red apple', seed: 1, missing: [2, 4], reference: 4 },
  ...over,
});
const assetJob = (over: Partial<AssetJob['spec']> = {}): AssetJob => ({ v: 1, kind: 'asset', run: 'r1', model: { name: 'm', hash: HASH, policy: POLICY }, spec: { prompt: 'icon', steps: 12, seed: 3, width: 16, height: 8, ...over } });

describe('pool jobs', () => {
  it('a worker reads a well-formed job and refuses a malformed one with the reason', () => {
    assert.deepEqual(parseJob(rowJob()), rowJob());
    assert.deepEqual(parseJob(assetJob()), assetJob());
    const bad: [unknown, RegExp][] = [
      [null, /not an object/],
      [{ ...rowJob(), v: 2 }, /format 2, this worker reads 1/],
      [{ ...rowJob(), kind: 'shell' }, /unknown kind "shell"/],
      [{ ...rowJob(), model: { name: 'm', hash: 'xyz' } }, /model name and hash/],
      [rowJob({ settings: { scheduler: 'plms' as never, guidance: 7 } }), /settings need a scheduler/],
      [rowJob({ settings: { scheduler: 'ddim', guidance: 7, width: 30, height: 32 } }), /bad size 30x32/],
      [rowJob({ task: { prompt: 'p', seed: 1, missing: [], reference: 4 } }), /missing must list step counts/],
      [rowJob({ task: { prompt: 'x'.repeat(LIMITS.textChars + 1), seed: 1, missing: [2], reference: 4 } }), /prompt, seed and reference/],
      [{ ...assetJob(), spec: { prompt: 'p', seed: 1, steps: 'many' } }, /steps must be auto or a step count/],
      [{ ...assetJob(), model: { name: 'm', hash: HASH, policy: 'nope' } }, /bad policy hash/],
    ];
    for (const [job, message] of bad) assert.throws(() => parseJob(job), message);
  });

  it('a worker refuses a job for another model or policy, naming both', () => {
    const mine = { name: 'sd-turbo', hash: HASH, policy: POLICY };
    assert.equal(refusal(rowJob(), mine), undefined);
    assert.equal(refusal(rowJob(), { ...mine, policy: null }), undefined, 'a reward row does not depend on the policy');
    assert.equal(refusal(assetJob(), mine), undefined);
    assert.match(refusal(rowJob({ model: { name: 'sd15', hash: 'c'.repeat(64) } }), mine)!, /this worker has model "sd-turbo" \(hash aaaaaaaaaa\), the job needs "sd15" \(hash cccccccccc\)/);
    assert.match(refusal(assetJob(), { ...mine, policy: null })!, /policy none\), the job needs "m" \(hash aaaaaaaaaa, policy bbbbbbbbbb\)/);
    assert.match(refusal(rowJob({ scorer: 'onnx-1234' }), mine)!, /scores with onnx-1234/);
  });

  it('queues are per model (and for assets per policy), so a job reaches only workers that have its model', () => {
    assert.equal(rowQueue(HASH), 'rows.aaaaaaaaaaaaaaaa');
    assert.equal(assetQueue({ name: 'm', hash: HASH, policy: null }), 'assets.aaaaaaaaaaaaaaaa.none');
    assert.notEqual(assetQueue({ name: 'm', hash: HASH, policy: POLICY }), assetQueue({ name: 'm', hash: HASH, policy: null }));
    assert.ok(!/:/.test(rowQueue(HASH)), 'BullMQ queue names take no colon');
  });
});

describe('pool results', () => {
  const line = { prompt: 'a red apple', seed: 1, quality: { '2': 0.5, '4': 1 }, ms: { '2': 10, '4': 20 } };

  it('a row result must answer its job: the same prompt and seed, every missing step count, finite scores', () => {
    assert.deepEqual(parseRowResult({ line, worker: 'w', jobMs: 30 }, rowJob()), { line, worker: 'w', jobMs: 30 });
    const bad: [unknown, RegExp][] = [
      [{ line, jobMs: 1 }, /no worker id or time/],
      [{ line: { ...line, seed: 2 }, worker: 'w', jobMs: 1 }, /answers another prompt or seed/],
      [{ line: { ...line, quality: { '2': 0.5 } }, worker: 'w', jobMs: 1 }, /no score for 4 steps/],
      [{ line: { ...line, quality: { '2': null, '4': 1 } }, worker: 'w', jobMs: 1 }, /value for 2 steps is not a number/],
      [{ line: { ...line, quality: { ...line.quality, 'x': 1 } }, worker: 'w', jobMs: 1 }, /"x" is not a step count/],
      [{ line, worker: 'w', jobMs: 1, padding: 'x'.repeat(LIMITS.rowResultBytes) }, /over the 262144 a row may take/],
    ];
    for (const [value, message] of bad) assert.throws(() => parseRowResult(value, rowJob()), message);
  });

  it('an image result must be a PNG of the size asked for, within the bytes that size allows', () => {
    const png = (w: number, h: number) => encodePng({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(7) }).toString('base64');
    const asset = { png: png(16, 8), width: 16, height: 8, seed: 3, steps: 12, scheduler: 'ddim', guidance: 7, baselineSteps: 50 };
    const ok = parseAssetResult({ asset, worker: 'w', jobMs: 5 }, assetJob());
    assert.ok(ok.asset.png.equals(Buffer.from(asset.png, 'base64')));
    const bad: [unknown, RegExp][] = [
      [{ asset: { ...asset, png: Buffer.from('not a png').toString('base64') }, worker: 'w', jobMs: 1 }, /not a PNG/],
      [{ asset: { ...asset, png: png(8, 8), width: 16 }, worker: 'w', jobMs: 1 }, /the PNG is 8x8, the result says 16x8/],
      [{ asset: { ...asset, width: 8, png: png(8, 8) }, worker: 'w', jobMs: 1 }, /8x8, the job asked for 16x8/],
      [{ asset: { ...asset, seed: 4 }, worker: 'w', jobMs: 1 }, /seed 4, the job asked for 3/],
      [{ asset: { ...asset, steps: 13 }, worker: 'w', jobMs: 1 }, /steps 13, the job asked for 12/],
      [{ asset: { ...asset, scheduler: 'plms' }, worker: 'w', jobMs: 1 }, /bad scheduler or guidance/],
      [{ asset: { ...asset, png: 'A'.repeat(LIMITS.pngBytes(16, 8) * 2) }, worker: 'w', jobMs: 1 }, /over the \d+ bytes a 16x8 PNG may take/],
    ];
    for (const [value, message] of bad) assert.throws(() => parseAssetResult(value, assetJob()), message);
    // steps 'auto': the worker's policy chose; any step count is an answer.
    assert.equal(parseAssetResult({ asset: { ...asset, steps: 7 }, worker: 'w', jobMs: 1 }, assetJob({ steps: 'auto' })).asset.steps, 7);
  });
});

describe('the editor pool settings', () => {
  it('adadiff.pool.redis names the pool; the password comes from the server\'s environment (the client sets it from SecretStorage); the URL is checked before any work', () => {
    const s = (pool: unknown) => readSettings({ pool }).settings;
    const saved = process.env.ADADIFF_REDIS_PASSWORD;
    try {
      process.env.ADADIFF_REDIS_PASSWORD = 'pw';
      assert.equal(poolSpec(s(undefined)), undefined, 'no pool: everything runs here');
      assert.deepEqual(poolSpec(s({ redis: ' rediss://pool.example.com ' })), { url: 'rediss://pool.example.com', password: 'pw', allowUnauthenticated: false });
      delete process.env.ADADIFF_REDIS_PASSWORD;
      assert.throws(() => poolSpec(s({ redis: 'rediss://pool.example.com' })), /must require a password.*/, 'no password stored yet');
      assert.ok(poolSpec(s({ redis: 'redis://10.1.1.1', allowUnauthenticated: true })));
    } finally {
      if (saved === undefined) delete process.env.ADADIFF_REDIS_PASSWORD;
      else process.env.ADADIFF_REDIS_PASSWORD = saved;
    }
    const bad = readSettings({ pool: { redis: 42, allowUnauthenticated: 'yes' } });
    assert.deepEqual(bad.settings.pool, { redis: '', allowUnauthenticated: false });
    assert.equal(bad.problems.length, 2);
  });
});
