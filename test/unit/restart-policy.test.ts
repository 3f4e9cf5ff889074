// The client's restart policy for a crashing language server (client/restart-policy.ts): as
// vscode-languageclient's default, 4 restarts within 3 minutes, then it gives up; crashes spread
// wider than the window are restarted forever.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_RESTARTS, RESTART_WINDOW_MS, RestartPolicy } from '../../client/restart-policy';

describe('RestartPolicy', () => {
  test('4 crashes within 3 minutes are restarted; the 5th is not', () => {
    assert.equal(MAX_RESTARTS, 4);
    assert.equal(RESTART_WINDOW_MS, 180_000);
    const policy = new RestartPolicy();
    const verdicts = [0, 10_000, 20_000, 30_000, 40_000].map((t) => policy.crashed(t));
    assert.deepEqual(
      verdicts.map((v) => [v.crashes, v.restart]),
      [[1, true], [2, true], [3, true], [4, true], [5, false]],
    );
    assert.equal(policy.crashed(50_000).restart, false, 'and stays given up while the window holds 5');
  });

  test('crashes older than the window count no more', () => {
    const policy = new RestartPolicy();
    for (let i = 0; i < 4; i++) assert.ok(policy.crashed(i * 1000).restart);
    // The first crash (t=0) is 3 minutes old: the window holds 4 again.
    const v = policy.crashed(RESTART_WINDOW_MS);
    assert.deepEqual([v.crashes, v.restart], [4, true]);
  });

  test('one crash a minute is restarted forever', () => {
    const policy = new RestartPolicy();
    for (let i = 0; i < 100; i++) assert.ok(policy.crashed(i * 60_000).restart, `crash ${i + 1}`);
  });

  test('the limits are parameters (a stricter policy gives up sooner)', () => {
    const policy = new RestartPolicy(1, 1000);
    assert.equal(policy.crashed(0).restart, true);
    const v = policy.crashed(500);
    assert.deepEqual(v, { crashes: 2, restart: false, maxRestarts: 1, windowMs: 1000 });
    assert.equal(policy.crashed(1600).restart, true, 'the crash at 0 and 500 left the window');
  });
});
