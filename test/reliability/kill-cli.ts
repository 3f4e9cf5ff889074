// kill -9 of `adadiff assets` and `adadiff train-policy` (the bundled CLI, dist/cli.js) at random
// moments, round after round on one workspace, model copy and cache: after each kill the lock
// matches the files, the reward-table cache holds only whole lines (but for a cut last one) and
// the model's policy, if any, loads; a final run completes. The test layer runs a few rounds,
// `npm run bench -- reliability` twenty.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicy } from '../../server/adadiff/policy';
import { buildOnce, CLI } from '../build';
import { FuzzRng } from './documents';
import { assertLockMatchesFiles } from '../unit/assets-helpers';
import { tempDir } from '../temp-dirs';

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
  const exited = new Promise<boolean>((resolve) => child.on('exit', (_code, signal) => resolve(signal === 'SIGKILL')));
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

/** One command under kill -9: each round's arguments (after preparing its work), and what to check. */
interface KillTarget {
  command: KillReport['command'];
  /** Round 0 is the full run whose length bounds where the kills land. */
  args(round: number): string[];
  /** What is wrong after a kill, one line each. */
  afterKill(): Promise<string[]>;
  /** What is wrong after the run that follows the kills, which completed. */
  afterFinal(): string[];
}

async function killRounds(target: KillTarget, cacheDir: string, rounds: number, seed: number): Promise<KillReport> {
  buildOnce();
  const rng = new FuzzRng(seed);
  const full = run(target.args(0), cacheDir);
  const report: KillReport = { command: target.command, seed, rounds, killedRunning: 0, killAtMs: [], problems: full.code === 0 ? [] : [`the first run failed: ${full.out}`], finalRunSeconds: 0, finalRunCode: null };
  for (let round = 1; round <= rounds; round++) {
    const delay = Math.round(rng.uniform() * full.seconds * 1000);
    report.killAtMs.push(delay);
    if (await killAfter(target.args(round), cacheDir, delay)) report.killedRunning++;
    report.problems.push(...(await target.afterKill()).map((p) => `round ${round} (kill at ${delay} ms): ${p}`));
  }
  const final = run(target.args(rounds), cacheDir);
  report.finalRunSeconds = final.seconds;
  report.finalRunCode = final.code;
  report.problems.push(...(final.code === 0 ? target.afterFinal() : [`the run after the kills failed: ${final.out}`]));
  return report;
}

export function killAssets(model: string, rounds: number, seed: number): Promise<KillReport> {
  const root = tempDir('adadiff-kill-assets-');
  const cacheDir = tempDir('adadiff-kill-cache-');
  const manifest = (round: number) =>
    ['assets:', ...Array.from({ length: 6 }, (_, i) => `  - prompt: icon ${i}, version ${round}\n    out: icons/${i}.png\n    steps: 20\n    size: 32x32\n    seed: ${i}`)].join('\n') + '\n';
  return killRounds(
    {
      command: 'assets',
      args: (round) => {
        // Every prompt changes, so the whole batch is stale and the kill lands in real work.
        writeFileSync(join(root, 'adadiff.yaml'), manifest(round));
        return ['assets', root, '--model', model];
      },
      afterKill: async () => {
        try {
          if (existsSync(join(root, 'adadiff.lock.json'))) assertLockMatchesFiles(root);
          return [];
        } catch (err) {
          return [(err as Error).message];
        }
      },
      afterFinal: () => {
        const check = run(['assets', root, '--check', '--model', model], cacheDir);
        const leftovers = readdirSync(join(root, 'icons')).filter((f) => !f.endsWith('.png'));
        return [...(check.code === 0 ? [] : [`--check after the final run: ${check.out}`]), ...(leftovers.length ? [`temporary files left: ${leftovers.join(', ')}`] : [])];
      },
    },
    cacheDir,
    rounds,
    seed,
  );
}

export function killTraining(model: string, rounds: number, seed: number): Promise<KillReport> {
  const root = tempDir('adadiff-kill-train-');
  const cacheDir = tempDir('adadiff-kill-cache-');
  const dir = join(root, 'model');
  cpSync(model, dir, { recursive: true });
  const prompts = join(root, 'prompts.txt');
  return killRounds(
    {
      command: 'train-policy',
      args: (round) => {
        // New prompts each round, so each run has reward-table rows to generate when it is killed.
        writeFileSync(prompts, Array.from({ length: 4 }, (_, i) => `a small picture number ${i}, round ${round}`).join('\n') + '\n');
        return ['train-policy', '--model', dir, '--prompts', prompts, '--seeds', '0', '--candidates', '2,4,8', '--size', '32x32', '--epochs', '30'];
      },
      afterKill: async () => {
        const problems = rewardCacheProblems(cacheDir);
        try {
          // The first run left a policy: whatever the kill interrupted, the one there now must load.
          if (!(await loadPolicy(dir))) problems.push('the policy is gone');
        } catch (err) {
          problems.push(`the policy does not load: ${(err as Error).message}`);
        }
        return problems;
      },
      afterFinal: () => [],
    },
    cacheDir,
    rounds,
    seed,
  );
}
