// The options several commands declare, once: --model, --json, the generation flags, and the
// builders for bounded numbers and lists. Their defaults, where the CLI leaves them to the core,
// are the core's constants in words, so --help says what actually happens.
import { DEFAULTS } from '../generation';
import { type Bounds, SCHEDULER_NAMES } from '../limits';
import { bundledModelDir, guidanceOption, intOption, listOption, numberOption, schedulerOption, seedOption, seedsOption, sizeOption, stepsOption, UsageError } from './args';
import { type Extra, flag, type Option, option, text } from './command';

/** An integer within `bounds`. */
export const int = <const E extends Extra<number> = {}>(value: string, bounds: Bounds, help: string, extra?: E) =>
  option(value, help, (t, name) => intOption(name, t, bounds.min, bounds.max)!, extra);

/** A number within `bounds`. */
export const num = <const E extends Extra<number> = {}>(value: string, bounds: Bounds, help: string, extra?: E) =>
  option(value, help, (t, name) => numberOption(name, t, bounds.min, bounds.max)!, extra);

/** One of `choices`, shown as a|b|c. */
export const choice = <const T extends readonly string[], const E extends Extra<T[number]> = {}>(choices: T, help: string, extra?: E) =>
  option(
    choices.join('|'),
    help,
    (t, name) => {
      if (!choices.includes(t)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${t}"`);
      return t as T[number];
    },
    extra,
  );

/** A comma-separated list of integers within `bounds`. */
export const ints = <const E extends Extra<number[]> = {}>(value: string, bounds: Bounds, help: string, extra?: E) =>
  option(value, help, (t, name) => listOption(name, t, bounds.min, bounds.max)!, extra);

export const model = text('DIR', 'the model folder, in the diffusers ONNX layout', { short: 'm', default: bundledModelDir, defaultText: 'the bundled model, models/default' });

export const json = flag('print the result as JSON on stdout');

/** A prompts file: one prompt a line, `#` comments. */
export const promptsFile = (help: string) => text('FILE', `${help}: one prompt a line, lines starting with # are comments`);

export const seed = option('N', 'the seed of the initial noise', (t, name) => seedOption(t, name)!, { defaultText: String(DEFAULTS.seed) });

export const seeds = (help: string, defaultText: string) => option('0,1', help, (t, name) => seedsOption(t, name)!, { defaultText });

export const steps = option('auto|N', "denoising steps; auto: the step policy's choice (the baseline without a policy)", (t) => stepsOption(t)!, { defaultText: 'auto' });

export const scheduler = option(SCHEDULER_NAMES.join('|'), 'the sampler', (t) => schedulerOption(t)!, { defaultText: `the step policy's, else ${DEFAULTS.scheduler}` });

export const guidance = option('G', 'classifier-free guidance scale', (t) => guidanceOption(t)!, { defaultText: `the step policy's, else ${DEFAULTS.guidance}` });

export const size: Option<{ width?: number; height?: number }> = option('WxH', 'the image size, in multiples of 8', (t) => sizeOption(t), { defaultText: "the model's" });

/** The ONNX image scorer train-policy and eval take instead of SSIM fidelity. */
export const scorer = text('FILE.onnx', 'an ONNX image scorer (image [1,3,H,W] in 0..1, optional input_ids, one score out) instead of fidelity to the longest schedule');

/** The pool flags train-policy and assets take (server/cli/pool.ts reads them). */
export const poolOptions = {
  redis: text('URL', 'spread the work over the pool of `adadiff worker`s on this Redis (redis:// or rediss://; the password may come from ADADIFF_REDIS_PASSWORD)'),
  'allow-unauthenticated-redis': flag('accept a Redis on another machine that asks for no password (a trusted network only)'),
  'redis-timeout': int('SECONDS', { min: 1, max: 3600 }, 'how long Redis, or every worker with the model, may be gone before the run stops', { defaultText: '10' }),
};
