// Diffusion schedulers: DDIM, Euler, Euler ancestral, DPM-Solver++ 2M (optionally Karras sigmas) and LCM, written to
// follow diffusers' formulas. One instance per generation, built for a fixed number of steps.

import type { Scheduler, SchedulerConfig } from '../../model/contract.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../../limits.js';
import { completeConfig } from './config.js';
import { DdimScheduler } from './ddim.js';
import { DpmSolverPP2MScheduler } from './dpmpp-2m.js';
import { EulerScheduler } from './euler.js';
import { EulerAncestralScheduler } from './euler-ancestral.js';
import { LcmScheduler } from './lcm.js';

export { resolveSchedulerConfig } from './config.js';
export { DdimScheduler, DpmSolverPP2MScheduler, EulerAncestralScheduler, EulerScheduler, LcmScheduler, SCHEDULER_NAMES };

/**
 * Build `name` for `steps` denoising steps. Fields missing from `config` take the defaults of the
 * corresponding diffusers class. 'dpmpp-2m-karras' always uses Karras sigmas; 'euler' and
 * 'dpmpp-2m' use them when config.use_karras_sigmas is set, as diffusers does.
 */
export function createScheduler(name: SchedulerName, config: Partial<SchedulerConfig>, steps: number): Scheduler {
  if (!SCHEDULER_NAMES.includes(name)) {
    throw new TypeError(`unknown scheduler ${JSON.stringify(name)}; expected one of ${SCHEDULER_NAMES.join(', ')}`);
  }
  const full = completeConfig(name, config);
  if (!Number.isInteger(steps) || steps < 1 || steps > full.num_train_timesteps) {
    throw new RangeError(`${name} scheduler: steps must be an integer in 1..${full.num_train_timesteps}; got ${steps}`);
  }
  switch (name) {
    case 'ddim':
      return new DdimScheduler(full, steps);
    case 'euler':
      return new EulerScheduler(full, steps);
    case 'euler-a':
      return new EulerAncestralScheduler(full, steps);
    case 'dpmpp-2m':
      return new DpmSolverPP2MScheduler(name, full, steps);
    case 'dpmpp-2m-karras':
      return new DpmSolverPP2MScheduler(name, { ...full, use_karras_sigmas: true }, steps);
    case 'lcm':
      return new LcmScheduler(full, steps);
  }
}
