// kill -9 of `adadiff assets` and `adadiff train-policy` (the bundled CLI, dist/cli.js) at random
// moments, round after round on one workspace, model copy and cache: after each kill the lock
// matches the files, the reward-table cache holds only whole lines (but for a cut last one) and
// the model's policy, if any, loads; a final run completes. The test layer runs a few rounds,
// `npm run bench -- reliability` twenty.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy } from '../../server/adadiff/policy';
import { buildOnce, CLI } from '../build';
import { FuzzRng } from './documents';
import { assertLockMatchesFiles } from '../unit/assets-helpers';

export interface KillReport {
  command: 'assets' | 'train-policy';
  seed: number;
  rounds: number;
  /** Rounds whose process the kill caught still running (the others had finished first). */
  killedRunning: number;
  /** Milliseconds after the start at which each kill was sent. */
  killAtMs: number[];
  /** What was wrong after a kill, if anything: one line per problem. */
  problems: string[];
  finalRunSeconds: number;
  finalRunCode: number | null;
}

const env = (cacheDir: string) => ({ ...process.env, ADADIFF_CACHE_DIR: cacheDir, ADADIFF_PROVIDERS: 'cpu' });

function run(args: string[], cacheDir: string) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { env: env(cacheDir), encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout + r.stderr, seconds: (performance.now() - t0) / 1000 };
}

/** Starts the command, kills it with SIGKILL `delayMs` later; whether it was still running then. */
async function killAfter(args: string[], cacheDir: string, delayMs: number): Promise<boolean> {
  const child = spawn(process.execPath, [CLI, ...args], { env: env(cacheDir), stdio: 'ignore' });
  const exited = new Promise<boolean>((resolve) => child.on('exit', (code, signal) => resolve(signal === 'SIGKILL')));
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill('SIGKILL');
  return exited;
}

/**
 * Every reward-table cache line is JSON, or the start of one that a kill cut short (the next run
 * ends such a line with a newline and skips it on reading); anything else is damage.
 */
function rewardCacheProblems(cacheDir: string): string[] {
  const dir = join(cacheDir, 'reward-tables');
  if (!existsSync(dir)) return [];
  const problems: string[] = [];
  for (const name of readdirSync(dir)) {
    readFileSync(join(dir, name), 'utf8').split('\n').forEach((line, i) => {
      if (!line.trim() || line.startsWith('{"')) return;
      problems.push(`${name} line ${i + 1} is neither JSON nor a cut JSON line: ${JSON.stringify(line.slice(0, 60))}`);
    });
  }
  return problems;
}

export async function killAssets(model: string, rounds: number, seed: number): Promise<KillReport> {
  buildOnce();
  const rng = new FuzzRng(seed);
  const root = mkdtempSync(join(tmpdir(), 'adadiff-kill-assets-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'adadiff-kill-cache-'));
  const manifest = (round: number) =>
    ['assets:', ...Array.from({ length: 6 }, (_, i) => `  - prompt: icon ${i}, version ${round}\n    out: icons/${i}.png\n    steps: 20\n    size: 32x32\n    seed: ${i}`)].join('\n') + '\n';
  writeFileSync(join(root, 'adadiff.yaml'), manifest(0));
  // One full run: its length bounds where the kills land, and the calibration cache is warm.
  const full = run(['assets', root, '--model', model], cacheDir);
  const report: KillReport = { command: 'assets', seed, rounds, killedRunning: 0, killAtMs: [], problems: full.code === 0 ? [] : [`the first run failed: ${full.out}`], finalRunSeconds: 0, finalRunCode: null };
  for (let round = 1; round <= rounds; round++) {
    // Every prompt changes, so the whole batch is stale and the kill lands in real work.
    writeFileSync(join(root, 'adadiff.yaml'), manifest(round));
    const delay = Math.round(rng.uniform() * full.seconds * 1000);
    report.killAtMs.push(delay);
    if (await killAfter(['assets', root, '--model', model], cacheDir, delay)) report.killedRunning++;
    try {
      if (existsSync(join(root, 'adadiff.lock.json'))) assertLockMatchesFiles(root);
    } catch (err) {
      report.problems.push(`round ${round} (kill at ${delay} ms): ${(err as Error).message}`);
    }
  }
  const final = run(['assets', root, '--model', model], cacheDir);
  report.finalRunSeconds = final.seconds;
  report.finalRunCode = final.code;
  if (final.code !== 0) report.problems.push(`the run after the kills failed: ${final.out}`);
  else {
    const check = run(['assets', root, '--check', '--model', model], cacheDir);
    if (check.code !== 0) report.problems.push(`--check after the final run: ${check.out}`);
    const leftovers = readdirSync(join(root, 'icons')).filter((f) => !f.endsWith('.png'));
    if (leftovers.length) report.problems.push(`temporary files left: ${leftovers.join(', ')}`);
  }
  return report;
}

export async function killTraining(model: string, rounds: number, seed: number): Promise<KillReport> {
  buildOnce();
  const rng = new FuzzRng(seed);
  const root = mkdtempSync(join(tmpdir(), 'adadiff-kill-train-'));
  const cacheDir = mkdtempSync(join(tmpdir(), 'adadiff-kill-cache-'));
  const dir = join(root, 'model');
  cpSync(model, dir, { recursive: true });
  const prompts = join(root, 'prompts.txt');
  const args = (round: number) => {
    // New prompts each round, so each run has reward-table rows to generate when it is killed.
    writeFileSync(prompts, Array.from({ length: 4 }, (_, i) => `a small picture number ${i}, round ${round}`).join('\n') + '\n');
    return ['train-policy', '--model', dir, '--prompts', prompts, '--seeds', '0', '--candidates', '2,4,8', '--size', '32x32', '--epochs', '30'];
  };
  const full = run(args(0), cacheDir);
  const report: KillReport = { command: 'train-policy', seed, rounds, killedRunning: 0, killAtMs: [], problems: full.code === 0 ? [] : [`the first run failed: ${full.out}`], finalRunSeconds: 0, finalRunCode: null };
  for (let round = 1; round <= rounds; round++) {
    const delay = Math.round(rng.uniform() * full.seconds * 1000);
    report.killAtMs.push(delay);
    if (await killAfter(args(round), cacheDir, delay)) report.killedRunning++;
    report.problems.push(...rewardCacheProblems(cacheDir).map((p) => `round ${round} (kill at ${delay} ms): ${p}`));
    try {
      // The first run left a policy: whatever the kill interrupted, the one there now must load.
      if (!(await loadPolicy(dir))) report.problems.push(`round ${round} (kill at ${delay} ms): the policy is gone`);
    } catch (err) {
      report.problems.push(`round ${round} (kill at ${delay} ms): the policy does not load: ${(err as Error).message}`);
    }
  }
  const final = run(args(rounds), cacheDir);
  report.finalRunSeconds = final.seconds;
  report.finalRunCode = final.code;
  if (final.code !== 0) report.problems.push(`the run after the kills failed: ${final.out}`);
  return report;
}
