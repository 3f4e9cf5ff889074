// Words for an asset run, shared by the CLI and the language server (which shows the last line in
// a notification and the rest in its output channel).
import type { AssetPlan, AssetReport, AssetSummary } from './generate';

const seconds = (s: number) => (s < 1 ? s.toFixed(2) : s < 10 ? s.toFixed(1) : s.toFixed(0)) + ' s';

/** Before rendering: how much there is to do and what the cost model expects. */
export function describePlan(s: AssetPlan): string {
  const steps = s.todo.reduce((n, a) => n + (a.steps ?? 0), 0);
  const baseline = s.todo.reduce((n, a) => n + (a.baselineSteps ?? 0), 0);
  if (!s.todo.length) return `${s.targets} assets, nothing to generate`;
  return `${s.todo.length} of ${s.targets} assets to generate: ${steps} steps (fixed schedule: ${baseline}), ETA ~${seconds(s.estimatedSeconds)} (fixed schedule: ~${seconds(s.baselineEstimatedSeconds)})`;
}

/** One line per asset that is not simply current. */
export function describeAsset(a: AssetReport): string {
  switch (a.action) {
    case 'generated':
      return `generated  ${a.out}  ${a.steps} steps (baseline ${a.baselineSteps}), ${seconds(a.seconds ?? 0)}  [${a.reasons.join('; ')}]`;
    case 'would-generate':
      return `would generate  ${a.out}  ${a.steps} steps (baseline ${a.baselineSteps}), ~${seconds(a.estimatedSeconds ?? 0)}  [${a.reasons.join('; ')}]`;
    case 'failed':
      return `FAILED     ${a.out}: ${a.error}`;
    case 'cancelled':
      return `cancelled  ${a.out}`;
    case 'skipped':
      if (a.state === 'modified') return `modified, skipped  ${a.out}: ${a.reasons.join('; ')}`;
      if (a.state === 'untracked') return `exists, skipped  ${a.out}: ${a.reasons.join('; ')}`;
      if (a.state === 'current') return `current    ${a.out}`;
      return `${a.state.padEnd(10)} ${a.out}  (${a.source}): ${a.reasons.join('; ')}`;
  }
}

export function describeSummary(s: AssetSummary): string {
  if (s.mode === 'check') {
    const bad = s.assets.filter((a) => a.outOfDate).length;
    const problems = s.problems.length ? `; ${s.problems.length} problem${s.problems.length > 1 ? 's' : ''}` : '';
    return s.ok ? `all ${s.counts.targets} assets are current` : `${bad} of ${s.counts.targets} assets missing, stale or modified${problems}`;
  }
  const saved = s.baselineSteps > 0 ? ` (${Math.round((1 - s.stepsUsed / s.baselineSteps) * 100)}% fewer)` : '';
  const verb = s.mode === 'dry-run' ? 'would generate' : 'generated';
  const count = s.mode === 'dry-run' ? s.assets.filter((a) => a.action === 'would-generate').length : s.counts.generated;
  const skipped = s.assets.filter((a) => a.action === 'skipped' && (a.state === 'modified' || a.state === 'untracked')).length;
  const parts = [
    `${verb} ${count} of ${s.counts.targets} assets`,
    `${s.counts.current} current`,
    ...(skipped ? [`${skipped} skipped`] : []),
    ...(s.counts.failed ? [`${s.counts.failed} failed`] : []),
    ...(s.problems.length ? [`${s.problems.length} problem${s.problems.length > 1 ? 's' : ''}`] : []),
  ];
  const steps = count ? `; ${s.stepsUsed} steps vs ${s.baselineSteps} at the fixed schedule${saved}` : '';
  const time = s.mode === 'dry-run' ? `; ETA ~${seconds(s.estimatedSeconds)}` : ` in ${seconds(s.seconds)}`;
  return `${parts.join(', ')}${time}${steps}${s.cancelled ? ' (cancelled)' : ''}`;
}
