// The names and limits every input is checked against, in one place: the settings (package.json's
// contributes.configuration is tested against this file, test/unit/limits.test.ts), prompt options
// as the asset planner checks them, asset manifests, the CLI's flags and the pipeline itself.
// No `vscode`, and nothing but shared/'s seed range: the core and the tests read it; the client
// does not (it gets what it needs from the server, or from shared/).
import { SEED_MAX } from '../shared/seed';

/** The samplers of the denoising loop (pipeline/schedulers), as settings, flags and policy.json name them. */
export const SCHEDULER_NAMES = ['ddim', 'euler', 'euler-a', 'dpmpp-2m', 'dpmpp-2m-karras', 'lcm'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

export const isSchedulerName = (value: unknown): value is SchedulerName => SCHEDULER_NAMES.includes(value as SchedulerName);

/** `adadiff.scheduler`: a name, or 'auto' for the step policy's (else the default). */
export const SCHEDULER_SETTINGS = ['auto', ...SCHEDULER_NAMES] as const;
export type SchedulerSetting = (typeof SCHEDULER_SETTINGS)[number];

export interface Bounds {
  min: number;
  max: number;
}

/** The noise generator takes a 32-bit seed (pipeline/noise.ts). */
export const SEED: Bounds = { min: 0, max: SEED_MAX };

/** Denoising steps: no schedule has more steps than the 1000 training timesteps of Stable Diffusion-family models. */
export const STEPS: Bounds = { min: 1, max: 1000 };

/** `adadiff.baselineSteps`: a step count, or 0 for "not set" (the model's own, e.g. a Turbo model's 4, else 50). */
export const BASELINE_SETTING: Bounds = { min: 0, max: STEPS.max };

/** Classifier-free guidance scale (0 and 1 both mean none); 30 is where A1111's CFG slider stops. */
export const GUIDANCE: Bounds = { min: 0, max: 30 };

/** Image sides: the VAE makes latents of 1/8 the size, so sides are multiples of 8. */
export const SIDE = { min: 8, max: 4096, multiple: 8 } as const;

export const inBounds = (n: number, b: Bounds): boolean => n >= b.min && n <= b.max;
export const isIntegerIn = (n: unknown, b: Bounds): n is number => Number.isInteger(n) && inBounds(n as number, b);
export const isNumberIn = (n: unknown, b: Bounds): n is number => typeof n === 'number' && Number.isFinite(n) && inBounds(n, b);

/** "an integer from 0 to 4294967295": the rule in words, for error messages. */
export const integerRule = (b: Bounds): string => `an integer from ${b.min} to ${b.max}`;
export const numberRule = (b: Bounds): string => `a number from ${b.min} to ${b.max}`;
export const SIZE_RULE = `multiples of ${SIDE.multiple} from ${SIDE.min} to ${SIDE.max}`;

export function isImageSize(width: number, height: number): boolean {
  return [width, height].every((n) => isIntegerIn(n, SIDE) && n % SIDE.multiple === 0);
}

/** `WIDTHxHEIGHT` as settings and the CLI's --size write it; undefined unless isImageSize. */
export function parseImageSize(text: string): { width: number; height: number } | undefined {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  const [width, height] = [Number(m[1]), Number(m[2])];
  return isImageSize(width, height) ? { width, height } : undefined;
}

// One side, 8..4096 in multiples of 8, without leading zeros. A number is a multiple of 8 when its
// last three digits are; with an even hundreds digit the last two must be a multiple of 8 (E),
// with an odd one a multiple of 8 plus 4 (F). Checked against parseImageSize for every side up to
// 10000 by test/unit/limits.test.ts, so a change to SIDE that this does not follow fails there.
const E = '0[08]|[159]6|[26]4|[37]2|[48][08]';
const F = '[048]4|[159]2|[26][08]|[37]6';
const SIDE_PATTERN = `8|[159]6|[26]4|[37]2|[48][08]|(?:[1-3]?[2468]|[1-3]0|40)(?:${E})|[1-3]?[13579](?:${F})`;

/** package.json's pattern for `adadiff.size`: exactly the sizes parseImageSize accepts (written canonically), or empty. */
export const SIZE_SETTING_PATTERN = `^(|(?:${SIDE_PATTERN})x(?:${SIDE_PATTERN}))$`;
