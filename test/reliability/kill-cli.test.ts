// kill -9 of `adadiff assets` and `adadiff train-policy` at random moments (kill-cli.ts): a few
// rounds here, twenty in `npm run bench -- reliability`. ADADIFF_KILL_SEED replays the moments.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { fuzzSeed } from './documents';
import { killAssets, killTraining, type KillReport } from './kill-cli';

const ROUNDS = Number(process.env.ADADIFF_KILL_ROUNDS || 4);
const seed = () => (process.env.ADADIFF_KILL_SEED ? Number(process.env.ADADIFF_KILL_SEED) : fuzzSeed());

const summary = (r: KillReport) =>
  `${r.command}: seed ${r.seed}, ${r.rounds} kills at ${r.killAtMs.join(', ')} ms (${r.killedRunning} caught it running); the run after took ${r.finalRunSeconds.toFixed(1)} s`;

describe('kill -9 of the CLI at random moments', () => {
  let model: string;
  before(async () => {
    model = (await ensureFixtures()).optimum;
  });

  test(`adadiff assets, ${ROUNDS} kills: the lock matches the files each time; the next run completes and --check passes`, async (t) => {
    const report = await killAssets(model, ROUNDS, seed());
    t.diagnostic(summary(report));
    assert.deepEqual(report.problems, []);
    assert.ok(report.killedRunning >= 1, 'at least one kill caught the batch running');
  });

  test(`adadiff train-policy, ${ROUNDS} kills: the reward-table cache and the policy stay valid; the next run completes`, async (t) => {
    const report = await killTraining(model, ROUNDS, seed());
    t.diagnostic(summary(report));
    assert.deepEqual(report.problems, []);
    assert.ok(report.killedRunning >= 1, 'at least one kill caught the training running');
  });
});
