// Which value a render uses for each generation parameter, decided in one place for every front
// end (previews, hovers and lenses, `adadiff generate`/`sheet`/`predict`, assets, training), as a
// diffusers pipeline's __call__ resolves its defaults at the top. Callers say what they have and
// what the render is for; the rule of which source wins is written here and nowhere else.
import type { SchedulerName } from './limits';

export interface GenerationDefaults {
  /** The fixed schedule savings are measured against, and the steps used when a model has no policy. */
  baselineSteps: number;
  guidance: number;
  scheduler: SchedulerName;
  seed: number;
}

/** The model defaults: what a render uses when no other source gives a value. */
export const DEFAULTS: GenerationDefaults = { baselineSteps: 50, guidance: 7, scheduler: 'ddim', seed: 0 };

/** What a source may give; absent fields leave the choice to the next source. */
export interface ParameterValues {
  seed?: number;
  /** 'auto': the step policy's choice (the baseline without a policy). */
  steps?: number | 'auto';
  guidance?: number;
  scheduler?: SchedulerName;
  /** Width and height go together: one source gives the size. */
  width?: number;
  height?: number;
  baselineSteps?: number;
}

/**
 * What the render is for. 'preview': previews, hovers, lenses and the CLI's generate, sheet and
 * predict. 'asset': `adadiff assets` and the editor's Generate Asset(s). 'training': the reward
 * table of a step policy being trained.
 */
export type Purpose = 'preview' | 'asset' | 'training';

export type Source = 'request' | 'prompt' | 'settings' | 'policy' | 'model' | 'default';

export interface GenerationSources {
  purpose: Purpose;
  /** Asked for by name: CLI flags, a preview request (with the prompt's options the client put in it, or New seed). */
  request?: ParameterValues;
  /** The prompt's own options (a fence's `seed: 7`, code's `num_inference_steps=20`). */
  prompt?: ParameterValues;
  /** The editor's settings, with the "not set" values (guidance 0, scheduler 'auto', size '') left out. */
  settings?: ParameterValues;
  /** The step policy's manifest: what its reward table was made with. */
  policy?: { scheduler: SchedulerName; guidance: number; baselineSteps: number } | null;
  /**
   * What the model's own files say (ModelLayout.recommended, model/layout.ts): the scheduler its
   * scheduler_config.json names, and a Turbo or LCM model's guidance and few steps.
   */
  model?: ParameterValues;
  /** Default: DEFAULTS. */
  defaults?: GenerationDefaults;
}

type Parameter = 'seed' | 'steps' | 'guidance' | 'scheduler' | 'size' | 'baselineSteps';

export interface Generation {
  seed: number;
  steps: number | 'auto';
  guidance: number;
  scheduler: SchedulerName;
  /** Both undefined: the model's default size. */
  width?: number;
  height?: number;
  baselineSteps: number;
  /** The source each value came from. */
  from: Record<Parameter, Source>;
  /**
   * The policy's scheduler and guidance where they differ from the ones used: its steps, and the
   * savings and evaluation in policy.json, were measured for those, not for this render.
   */
  policyMeasuredWith?: { scheduler: SchedulerName; guidance: number };
}

/** The sources each purpose reads, first one that gives a value wins. */
const ORDER: Record<Purpose, readonly Source[]> = {
  preview: ['request', 'prompt', 'settings', 'policy', 'model', 'default'],
  // Assets follow the prompt, the model's policy manifest and the lock (whose seed rule the asset
  // planner writes into the request), never the editor's settings: `adadiff assets --check` in CI
  // must agree with what the editor wrote.
  asset: ['request', 'prompt', 'policy', 'model', 'default'],
  // A training covers many prompts, so no prompt's options apply.
  training: ['request', 'settings', 'policy', 'model', 'default'],
};

/**
 * A policy's baseline is the N its reward and evaluation were measured against, so it wins; the
 * other sources give the baseline of a model without a policy.
 */
const orderOf = (purpose: Purpose, parameter: Parameter): readonly Source[] =>
  parameter === 'baselineSteps' ? ['policy', ...ORDER[purpose].filter((s) => s !== 'policy')] : ORDER[purpose];

export function resolveGeneration(sources: GenerationSources): Generation {
  const defaults = sources.defaults ?? DEFAULTS;
  const values: Record<Source, ParameterValues> = {
    request: sources.request ?? {},
    prompt: sources.prompt ?? {},
    settings: sources.settings ?? {},
    policy: sources.policy ?? {},
    model: sources.model ?? {},
    default: { ...defaults, steps: 'auto' },
  };
  const from = {} as Record<Parameter, Source>;
  const pick = <K extends Parameter>(parameter: K, has: (v: ParameterValues) => boolean): ParameterValues => {
    const source = orderOf(sources.purpose, parameter).find((s) => has(values[s])) ?? 'default';
    from[parameter] = source;
    return values[source];
  };
  const size = pick('size', (v) => v.width !== undefined || v.height !== undefined);
  const g: Generation = {
    seed: pick('seed', (v) => v.seed !== undefined).seed!,
    steps: pick('steps', (v) => v.steps !== undefined).steps!,
    guidance: pick('guidance', (v) => v.guidance !== undefined).guidance!,
    scheduler: pick('scheduler', (v) => v.scheduler !== undefined).scheduler!,
    ...(size.width !== undefined ? { width: size.width } : {}),
    ...(size.height !== undefined ? { height: size.height } : {}),
    baselineSteps: pick('baselineSteps', (v) => v.baselineSteps !== undefined).baselineSteps!,
    from,
  };
  const policy = sources.policy;
  if (policy && (policy.scheduler !== g.scheduler || policy.guidance !== g.guidance)) {
    g.policyMeasuredWith = { scheduler: policy.scheduler, guidance: policy.guidance };
  }
  return g;
}
