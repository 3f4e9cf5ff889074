// The pool tests' world: a redis-server of their own on a free loopback port (with a password, as a
// real pool has), real `adadiff worker` processes (the bundled CLI) against it, and the CLI runs of
// the coordinator, each with its own cache folder so that a local and a distributed run can be
// compared file by file.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CLI } from '../build';
import { tempDir as removedAtExit } from '../temp-dirs';

export const PASSWORD = 'pool-test-secret';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  /** The URL without the password: what the CLI gets when ADADIFF_REDIS_PASSWORD carries it. */
  bareUrl: string;
  kill(): void;
}

/** A throwaway redis-server: no persistence, loopback only, a password. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
    child.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}): install it (apt-get install redis-server, as .ci/run does)`)));
    child.stdout!.on('data', () => {
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    port,
    url: `redis://:${PASSWORD}@127.0.0.1:${port}`,
    bareUrl: `redis://127.0.0.1:${port}`,
    kill: () => child.kill('SIGKILL'),
  };
}

export const cliEnv = (cacheDir: string, extra: Record<string, string> = {}) => ({ ...process.env, ADADIFF_CACHE_DIR: cacheDir, ADADIFF_PROVIDERS: 'cpu', ...extra });

export interface WorkerProcess {
  child: ChildProcess;
  log(): string;
  /** Jobs this worker started and did not finish (what a kill interrupted). */
  unfinished(): string[];
  finished(): number;
  /** Seconds each finished job took on the worker, as it logged them. */
  jobSeconds(): number[];
}

/** Starts `count` workers on `model` and waits until each says it is ready. */
export async function startWorkers(redis: RedisServer, model: string, count: number, cacheDir: string): Promise<WorkerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      // The password through the environment, as the README advises: it stays out of `ps`.
      const child = spawn(process.execPath, [CLI, 'worker', '--redis', redis.bareUrl, '--model', model, '--stalled-seconds', '2'], {
        env: cliEnv(cacheDir, { ADADIFF_REDIS_PASSWORD: PASSWORD }),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      child.stderr!.on('data', (d) => (log += d));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker not ready: ${log}`)), 60_000);
        child.once('exit', (code) => reject(new Error(`worker exited (${code}): ${log}`)));
        child.stderr!.on('data', () => {
          if (log.includes('ready: ')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const started = () => [...log.matchAll(/start \w+ (\S+):/g)].map((m) => m[1]);
      const done = () => [...log.matchAll(/done \w+ (\S+):/g)].map((m) => m[1]);
      return {
        child,
        log: () => log,
        unfinished: () => started().filter((id) => !done().includes(id)),
        finished: () => done().length,
        jobSeconds: () => [...log.matchAll(/done \w+ \S+: .*, ([\d.]+) s\n/g)].map((m) => Number(m[1])),
      };
    }),
  );
}

export function stopWorkers(workers: WorkerProcess[]): void {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
}

export interface CliRun {
  code: number | null;
  out: string;
  seconds: number;
}

export function runCli(args: string[], cacheDir: string, extra: Record<string, string> = {}, timeoutMs = 120_000): CliRun {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { env: cliEnv(cacheDir, extra), encoding: 'utf8', timeout: timeoutMs });
  const killed = r.signal ? `\n(killed by ${r.signal}${r.error ? `: ${r.error.message}` : ''})` : '';
  return { code: r.status, out: r.stdout + r.stderr + killed, seconds: (performance.now() - t0) / 1000 };
}

/** The CLI in the background, for runs a test kills or watches. */
export function spawnCli(args: string[], cacheDir: string, extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(cacheDir, extra), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, out: () => out, exited };
}

export const tempDir = (name: string) => removedAtExit(`adadiff-pool-${name}-`);

/** The reward-table cache's rows (prompt, seed, scores), sorted: what a local and a distributed run must agree on. */
export function cacheRows(cacheDir: string): { file: string; rows: string[]; lines: number } {
  const dir = join(cacheDir, 'reward-tables');
  const files = readdirSync(dir);
  // The folder is made before the table's first line is written: a poll may look in between.
  if (files.length === 0) return { file: '', rows: [], lines: 0 };
  if (files.length !== 1) throw new Error(`expected one reward table in ${dir}, found ${files.join(', ')}`);
  const lines = readFileSync(join(dir, files[0]), 'utf8').split('\n').filter((l) => l.trim()).slice(1);
  const rows = lines.flatMap((l) => {
    try {
      const { prompt, seed, quality } = JSON.parse(l);
      return [JSON.stringify([prompt, seed, quality])];
    } catch {
      return [];
    }
  });
  return { file: files[0], rows: rows.sort(), lines: lines.length };
}

/** Every file under `dir` with its bytes, by relative path. */
export function filesOf(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of filesOf(dir, rel)) out.set(k, v);
    else out.set(rel, readFileSync(join(dir, rel)));
  }
  return out;
}
