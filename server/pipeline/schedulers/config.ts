// scheduler_config.json -> a complete, validated SchedulerConfig.
//
// diffusers fills a missing field with the default of the class that reads it, and a model folder's
// config was written by one class (often PNDMScheduler) but is then loaded into another
// (from_config). Two layers reproduce that:
//   resolveSchedulerConfig: defaults of the class named by _class_name (what that file means),
//   createScheduler:        defaults of the scheduler being built, for fields still unset.
// This matters: e.g. a config without timestep_spacing means "leading" to DDIM/PNDM but "linspace"
// to Euler and DPM-Solver.

import type { SchedulerConfig, SchedulerName } from '../../model/contract.js';

type Defaults = Partial<SchedulerConfig>;

/** The original DDPM schedule; most diffusers classes start from it. */
const DDPM_BETAS: Defaults = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  prediction_type: 'epsilon',
  steps_offset: 0,
};

/** __init__ defaults of the diffusers classes a model folder is likely to name (only the fields we use). */
const CLASS_DEFAULTS: Record<string, Defaults> = {
  DDIMScheduler: { ...DDPM_BETAS, clip_sample: true, set_alpha_to_one: true, timestep_spacing: 'leading' },
  DDPMScheduler: { ...DDPM_BETAS, clip_sample: true, timestep_spacing: 'leading' },
  PNDMScheduler: { ...DDPM_BETAS, set_alpha_to_one: false, timestep_spacing: 'leading' },
  EulerDiscreteScheduler: { ...DDPM_BETAS, timestep_spacing: 'linspace', use_karras_sigmas: false },
  EulerAncestralDiscreteScheduler: { ...DDPM_BETAS, timestep_spacing: 'linspace' },
  LMSDiscreteScheduler: { ...DDPM_BETAS, timestep_spacing: 'linspace', use_karras_sigmas: false },
  DPMSolverMultistepScheduler: { ...DDPM_BETAS, timestep_spacing: 'linspace', use_karras_sigmas: false },
  LCMScheduler: {
    num_train_timesteps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    prediction_type: 'epsilon',
    steps_offset: 0,
    clip_sample: false,
    set_alpha_to_one: true,
    timestep_spacing: 'leading',
    original_inference_steps: 50,
  },
};

/**
 * Fallback for fields neither the file nor its class defines: DDIMScheduler's defaults (it declares
 * nearly every field), plus the two fields only Karras-capable / LCM classes declare.
 */
const FALLBACK: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
  set_alpha_to_one: true,
  clip_sample: true,
  use_karras_sigmas: false,
  original_inference_steps: 50,
};

/** The diffusers class each of our schedulers corresponds to, for its own defaults. */
export const SCHEDULER_CLASS: Record<SchedulerName, string> = {
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-a': 'EulerAncestralDiscreteScheduler',
  'dpmpp-2m': 'DPMSolverMultistepScheduler',
  'dpmpp-2m-karras': 'DPMSolverMultistepScheduler',
  lcm: 'LCMScheduler',
};

const ENUMS = {
  beta_schedule: ['linear', 'scaled_linear', 'squaredcos_cap_v2'],
  prediction_type: ['epsilon', 'v_prediction', 'sample'],
  timestep_spacing: ['leading', 'trailing', 'linspace'],
} as const;

const BOOLEANS = ['set_alpha_to_one', 'clip_sample', 'use_karras_sigmas'] as const;

function fail(field: string, want: string, got: unknown): never {
  throw new TypeError(`scheduler config: "${field}" must be ${want}; got ${JSON.stringify(got)}`);
}

/** Checks the fields that are present (null counts as absent, as diffusers writes `null` for unset). */
function validatePartial(raw: Record<string, unknown>): Defaults {
  const out: Record<string, unknown> = {};
  const present = (k: string) => raw[k] !== undefined && raw[k] !== null;

  if (present('_class_name')) {
    if (typeof raw._class_name !== 'string') fail('_class_name', 'a string', raw._class_name);
    out._class_name = raw._class_name;
  }
  for (const k of ['num_train_timesteps', 'original_inference_steps'] as const) {
    if (!present(k)) continue;
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(k, 'a positive integer', v);
    out[k] = v;
  }
  if (present('steps_offset')) {
    const v = raw.steps_offset;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail('steps_offset', 'a non-negative integer', v);
    out.steps_offset = v;
  }
  for (const k of ['beta_start', 'beta_end'] as const) {
    if (!present(k)) continue;
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v >= 1) fail(k, 'a number in [0, 1)', v);
    out[k] = v;
  }
  for (const k of Object.keys(ENUMS) as (keyof typeof ENUMS)[]) {
    if (!present(k)) continue;
    const allowed: readonly string[] = ENUMS[k];
    if (typeof raw[k] !== 'string' || !allowed.includes(raw[k] as string)) {
      fail(k, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, raw[k]);
    }
    out[k] = raw[k];
  }
  for (const k of BOOLEANS) {
    if (!present(k)) continue;
    if (typeof raw[k] !== 'boolean') fail(k, 'true or false', raw[k]);
    out[k] = raw[k];
  }
  // Options that change the noise schedule itself and that we do not implement: refusing is
  // better than generating from the wrong schedule.
  if (present('trained_betas')) {
    throw new TypeError('scheduler config: "trained_betas" (an explicit beta table) is not supported');
  }
  if (raw.rescale_betas_zero_snr === true) {
    throw new TypeError('scheduler config: "rescale_betas_zero_snr" is not supported');
  }
  return out as Defaults;
}

function checkConsistency(c: SchedulerConfig): void {
  if (c.num_train_timesteps < 2) fail('num_train_timesteps', 'at least 2', c.num_train_timesteps);
  if (c.beta_schedule !== 'squaredcos_cap_v2' && c.beta_end < c.beta_start) {
    throw new TypeError(`scheduler config: beta_end (${c.beta_end}) is below beta_start (${c.beta_start})`);
  }
}

function definedOnly(partial: Defaults): Defaults {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) out[k] = v;
  return out as Defaults;
}

/**
 * Parse a scheduler_config.json object: validate types (clear errors naming the field), then fill
 * missing fields with the defaults of the class that wrote it (`_class_name`), then DDIM's.
 * Unknown fields are ignored; diffusers configs carry many class-specific ones.
 */
export function resolveSchedulerConfig(raw: unknown): SchedulerConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError(`scheduler config: expected a JSON object; got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}`);
  }
  const given = validatePartial(raw as Record<string, unknown>);
  const classDefaults = (given._class_name && CLASS_DEFAULTS[given._class_name]) || {};
  const config: SchedulerConfig = { ...FALLBACK, ...classDefaults, ...given };
  checkConsistency(config);
  return config;
}

/** Complete a (possibly partial) config with the defaults of the scheduler being built, then validate. */
export function completeConfig(name: SchedulerName, partial: Partial<SchedulerConfig>): SchedulerConfig {
  const given = validatePartial(definedOnly(partial) as Record<string, unknown>);
  const config: SchedulerConfig = { ...FALLBACK, ...CLASS_DEFAULTS[SCHEDULER_CLASS[name]], ...given };
  checkConsistency(config);
  return config;
}
