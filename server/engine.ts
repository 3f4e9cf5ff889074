// The core every front end drives (CLI, language server, asset generation, tests): open a model
// folder once, predict steps and cost for a prompt, render a PNG with the chosen steps.
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type Calibration, type CalibrationShape, CalibrationStore, estimateSeconds, getCalibration, recalibrate, savingFraction } from './adadiff/cost';
import { firstStep, sharedFirstCall, type FirstStep } from './adadiff/first-step';
import { loadPolicy, promptFeatures, type StepPolicy } from './adadiff/policy';
import { DEFAULTS, type Generation, type GenerationDefaults, type GenerationSources, type ParameterValues, type Purpose, resolveGeneration } from './generation';
import { isImageSize, SIZE_RULE } from './limits';
import type { CpuShare, SchedulerName } from './model/contract';
import { openModelFolder } from './model/folder';
import { type LoadOptions, loadModel, type LoadedModel, type TextModel } from './model/session';
import type { ModelFolder } from './model/contract';
import { generate, type GenerateResult, runsUnconditional, type StepProgress, throwIfCancelled } from './pipeline/generate';
import { validateSeed } from './pipeline/noise';
import { formatParameters, type GenerationParameters } from './pipeline/parameters';
import { encodePng } from './pipeline/png';

export { DEFAULTS, type GenerationDefaults } from './generation';

/** Where a handle's cost figures come from. */
export interface CostSource {
  /** The figure for this shape, measured now when there is none (that needs the UNet and VAE). */
  get(shape: CalibrationShape): Promise<Calibration>;
  /** The figure if it is known without loading or measuring anything, else why not (yet). */
  peek(shape: CalibrationShape): Promise<Calibration | { notYet: string }>;
  /** Measure again and replace the cached figure. */
  recalibrate(shape: CalibrationShape): Promise<Calibration>;
}

/** Every part in sessions on this thread, and costs measured here: the CLI's and the render worker's way. */
export function localCosts(model: LoadedModel, store: CalibrationStore): CostSource {
  const get = (shape: CalibrationShape) => getCalibration(model, shape, store, runtimeVersion());
  return { get, peek: get, recalibrate: async (shape) => (await recalibrate(model, shape, store, runtimeVersion())).calibration };
}

/** How an Engine turns a folder into sessions, and where their costs come from. */
export interface ModelParts<M extends TextModel> {
  load(folder: ModelFolder, opts: LoadOptions): Promise<M>;
  costs(model: M, store: CalibrationStore): CostSource;
}

export const ALL_PARTS: ModelParts<LoadedModel> = { load: (folder, opts) => loadModel(folder, opts), costs: localCosts };

export interface EngineOptions<M extends TextModel = LoadedModel> {
  /** Where calibrations are cached (per user, not per workspace). */
  cacheDir: string;
  /** Which parts get sessions here; default ALL_PARTS. */
  parts?: ModelParts<M>;
  /** Execution providers to try in order; the platform's default order when absent. */
  providers?: string[];
  defaults?: Partial<GenerationDefaults>;
  /** How much of the CPU the sessions may take; default 'shared' (beside an editor). */
  cpu?: CpuShare;
}

/** What the text encoder and the policy decide for a prompt. */
export interface StepChoice {
  steps: number;
  baselineSteps: number;
  candidates: number[];
  probabilities: number[];
  /** False when the model has no trained policy: then steps are the baseline. */
  policy: boolean;
  droppedTokens: number;
  /**
   * Whether a render with the default settings lets the first-step-aware policy choose again after
   * the first UNet call: then `steps` is an estimate from the prompt alone.
   */
  refinedAfterFirstStep: boolean;
  /**
   * Set where the first UNet call of a render was made for this estimate and the first-step-aware
   * policy read it: `steps` is then that policy's choice, the count a render with `seed` uses, and
   * `promptOnlySteps` the prompt alone's (which `candidates` and `probabilities` chart).
   */
  firstStep?: { seed: number; promptOnlySteps: number };
  /** Why `steps` is the prompt-only estimate although a render chooses again: its first UNet call is too slow here for a hover or a lens, or the render worker did not answer in time. */
  firstStepSkipped?: string;
}

/** What those steps cost on this machine, from the calibration. */
export interface StepCost {
  estimatedSeconds: number;
  baselineSeconds: number;
  /** Time saved against the baseline, 0..1. */
  saving: number;
  provider: string;
}

export type StepPrediction = StepChoice & StepCost;

/** What a hover gets: the cost once it has been measured, else why it is not shown yet. */
export type StepEstimate = StepPrediction | (StepChoice & { [K in keyof StepCost]?: undefined } & { unmeasured: string });

export const isMeasured = (p: StepEstimate): p is StepPrediction => p.estimatedSeconds !== undefined;

/** The first-step-aware policy's choice for one render: its steps, and the seed whose first UNet call it read. */
export interface FirstStepChoice {
  steps: number;
  seed: number;
}

/** An estimate whose steps are the first-step-aware policy's choice, with their cost where `cal` is known. */
export function withFirstStep<P extends StepEstimate>(p: P, choice: FirstStepChoice, cal?: Calibration): P {
  const chosen = { ...p, steps: choice.steps, firstStep: { seed: choice.seed, promptOnlySteps: p.steps } };
  return cal && isMeasured(p) ? { ...chosen, ...costOf(cal, choice.steps, p.baselineSteps) } : chosen;
}

function costOf(cal: Calibration, steps: number, baselineSteps: number): StepCost {
  return {
    estimatedSeconds: estimateSeconds(cal, steps),
    baselineSeconds: estimateSeconds(cal, baselineSteps),
    saving: savingFraction(cal, steps, baselineSteps),
    provider: cal.provider,
  };
}

/** Absent values are resolveGeneration's to choose (request > prompt > settings > policy > the model's own > defaults). */
export interface RenderRequest {
  prompt: string;
  negativePrompt?: string;
  steps?: number | 'auto';
  seed?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  width?: number;
  height?: number;
  /** Default 'preview'; assets and training follow other sources (see generation.ts). */
  purpose?: Purpose;
}

export interface RenderHooks {
  signal?: AbortSignal;
  onStep?: (progress: StepProgress) => void | Promise<void>;
}

export interface RenderResult {
  png: Buffer;
  parameters: GenerationParameters;
  /** The prompt-only prediction (what hovers and lenses show). */
  prediction: StepPrediction;
  /** The first-step-aware policy's choice, when it made the choice (steps 'auto', see firstStepApplies). */
  refinedSteps?: number;
  result: GenerateResult;
}

export const runtimeVersion = (): string => `onnxruntime-node ${ort.env.versions?.common ?? 'unknown'}`;

/**
 * A model with its policy, settings and cost figures. `M` is what this thread holds of it: every
 * part (LoadedModel: the CLI, the render worker) or the text part only (the language server's main
 * thread, which predicts steps and leaves rendering to the worker).
 */
export class ModelHandle<M extends TextModel = LoadedModel> {
  constructor(
    readonly model: M,
    readonly policy: StepPolicy | null,
    readonly costs: CostSource,
    readonly defaults: GenerationDefaults,
    /** The editor's settings (generationSettings in lsp/settings.ts); none from the CLI. */
    readonly settings: ParameterValues = {},
  ) {}

  /** What a render for `purpose` with these values uses: resolveGeneration with this model's policy, settings and defaults. */
  generation({ purpose = 'preview', ...sources }: Partial<Omit<GenerationSources, 'policy' | 'model' | 'defaults'>> = {}): Generation {
    return resolveGeneration({ settings: this.settings, ...sources, purpose, policy: this.policy?.manifest, model: this.model.layout.recommended, defaults: this.defaults });
  }

  get baselineSteps(): number {
    return this.generation().baselineSteps;
  }

  get guidance(): number {
    return this.generation().guidance;
  }

  get scheduler(): SchedulerName {
    return this.generation().scheduler;
  }

  /** The shape a calibration is measured at: the guidance batch this model runs (LCM's embedding runs none), and the size. */
  costShape(guidance = this.guidance, width?: number, height?: number): CalibrationShape {
    return { guided: runsUnconditional(this.model, guidance), width, height };
  }

  calibration(width?: number, height?: number, guidance = this.guidance): Promise<Calibration> {
    return this.costs.get(this.costShape(guidance, width, height));
  }

  /**
   * Whether a render with these settings may let the first-step-aware policy choose: the policy has
   * one, the settings are those it was trained with (its first-step summaries mean nothing for
   * others), and the scheduler's schedules share their first UNet call.
   */
  firstStepApplies(settings: { scheduler: SchedulerName; guidance: number; width: number; height: number }): boolean {
    const m = this.policy?.manifest;
    if (!m?.firstStep || !this.policy?.refine) return false;
    if (settings.scheduler !== m.scheduler || settings.guidance !== m.guidance) return false;
    if (settings.width !== m.training.width || settings.height !== m.training.height) return false;
    return sharedFirstCall(this.model.folder.schedulerConfig, settings.scheduler, m.candidates).shared;
  }

  private imageSize(width?: number, height?: number): { width: number; height: number } {
    const [, h, w] = this.model.latentShape(width, height);
    return { width: w * this.model.vaeScaleFactor, height: h * this.model.vaeScaleFactor };
  }

  /** Steps and cost; measures the cost first when it is not known (the CLI's `predict`). */
  async predict(prompt: string, signal?: AbortSignal, purpose: Purpose = 'preview'): Promise<StepPrediction> {
    return (await this.predictWithFeatures(prompt, this.generation({ purpose }), signal)).prediction;
  }

  /**
   * Steps, and their cost when it is known now: what hovers and lenses show. Never waits for the
   * UNet to load or be measured; until then the estimate says why there is no cost.
   */
  async estimate(prompt: string, signal?: AbortSignal, purpose: Purpose = 'preview'): Promise<StepEstimate> {
    const g = this.generation({ purpose });
    const { choice } = await this.choose(prompt, g, signal);
    const cal = await this.costs.peek(this.costShape(g.guidance));
    return 'notYet' in cal ? { ...choice, unmeasured: cal.notYet } : { ...choice, ...costOf(cal, choice.steps, choice.baselineSteps) };
  }

  private async predictWithFeatures(prompt: string, g: Generation, signal?: AbortSignal): Promise<{ prediction: StepPrediction; features?: Awaited<ReturnType<typeof promptFeatures>> }> {
    const { choice, features } = await this.choose(prompt, g, signal);
    const cal = await this.calibration(undefined, undefined, g.guidance);
    return { prediction: { ...choice, ...costOf(cal, choice.steps, choice.baselineSteps) }, features };
  }

  private async choose(prompt: string, g: Generation, signal?: AbortSignal): Promise<{ choice: StepChoice; features?: Awaited<ReturnType<typeof promptFeatures>> }> {
    let steps = g.baselineSteps;
    let candidates = [steps];
    let probabilities = [1];
    let droppedTokens: number;
    let features: Awaited<ReturnType<typeof promptFeatures>> | undefined;
    if (this.policy) {
      features = await promptFeatures(this.model, prompt);
      throwIfCancelled(signal);
      droppedTokens = features.droppedTokens;
      ({ steps, candidates, probabilities } = await this.policy.predict(features.hidden, [1, features.tokens, features.dim], features.mask));
    } else {
      droppedTokens = this.model.tokenizer.encode(prompt).dropped;
    }
    throwIfCancelled(signal);
    const choice: StepChoice = {
      steps,
      baselineSteps: g.baselineSteps,
      candidates,
      probabilities,
      policy: this.policy !== null,
      droppedTokens,
      refinedAfterFirstStep: this.firstStepApplies({ scheduler: g.scheduler, guidance: g.guidance, ...this.imageSize(g.width, g.height) }),
    };
    return { choice, features };
  }

  /**
   * What a render of `req` decides before it denoises: its settings, the prompt-only prediction,
   * and, where the first-step-aware policy applies (steps 'auto', see firstStepApplies), the first
   * UNet call it read and its choice. render() goes on from here, so the count is the same.
   */
  private async plan(this: ModelHandle<LoadedModel>, req: RenderRequest, signal?: AbortSignal) {
    const g = this.generation({ purpose: req.purpose, request: req });
    const { prediction, features } = await this.predictWithFeatures(req.prompt, g, signal);
    const seed = validateSeed(g.seed);
    const { guidance, scheduler } = g;
    const size = this.imageSize(g.width, g.height);
    if (!isImageSize(size.width, size.height)) throw new RangeError(`size ${size.width}x${size.height}: width and height must be ${SIZE_RULE}`);
    const settings = { prompt: req.prompt, negativePrompt: req.negativePrompt, seed, guidance, scheduler, width: g.width, height: g.height, signal };
    // The first UNet call is made before the step count is known, read by the first-step-aware
    // policy, and reused by generate(): the image is exactly the chosen count's image.
    let first: FirstStep | undefined;
    let refinedSteps: number | undefined;
    if (g.steps === 'auto' && features && this.firstStepApplies({ scheduler, guidance, ...size })) {
      first = await firstStep(this.model, { ...settings, steps: prediction.steps });
      refinedSteps = (await this.policy!.refine!(features.hidden, [1, features.tokens, features.dim], features.mask, first.features)).steps;
    }
    const steps = refinedSteps ?? (g.steps === 'auto' ? prediction.steps : g.steps);
    return { settings, prediction, steps, first, refinedSteps };
  }

  /**
   * The count a render of `req` with steps 'auto' would choose after its first UNet call (one
   * call, no denoising loop): what hovers show where that call is cheap. Null where the
   * first-step-aware policy does not choose for these settings.
   */
  async firstStepChoice(this: ModelHandle<LoadedModel>, req: RenderRequest, signal?: AbortSignal): Promise<FirstStepChoice | null> {
    const { settings, refinedSteps } = await this.plan({ ...req, steps: 'auto' }, signal);
    return refinedSteps === undefined ? null : { steps: refinedSteps, seed: settings.seed };
  }

  async render(this: ModelHandle<LoadedModel>, req: RenderRequest, hooks: RenderHooks = {}): Promise<RenderResult> {
    const { settings, prediction, steps, first, refinedSteps } = await this.plan(req, hooks.signal);
    const result = await generate(this.model, { ...settings, steps, first: first?.call, onStep: hooks.onStep });
    const parameters: GenerationParameters = {
      prompt: req.prompt,
      negativePrompt: req.negativePrompt,
      steps,
      scheduler: settings.scheduler,
      guidance: settings.guidance,
      seed: settings.seed,
      width: result.width,
      height: result.height,
      modelHash: await this.model.folder.hash(),
      modelName: this.model.folder.name,
      predictedSteps: prediction.policy ? prediction.steps : undefined,
      firstStepSteps: refinedSteps,
      baselineSteps: prediction.baselineSteps,
    };
    return { png: encodePng(result.image, { parameters: formatParameters(parameters) }), parameters, prediction, ...(refinedSteps !== undefined ? { refinedSteps } : {}), result };
  }

  async dispose(): Promise<void> {
    await this.policy?.dispose();
    await this.model.dispose();
  }
}

export class Engine<M extends TextModel = LoadedModel> {
  private readonly handles = new Map<string, Promise<ModelHandle<M>>>();
  private readonly store: CalibrationStore;
  private readonly parts: ModelParts<M>;
  readonly defaults: GenerationDefaults;

  constructor(private readonly options: EngineOptions<M>) {
    this.parts = options.parts ?? (ALL_PARTS as unknown as ModelParts<M>);
    this.store = new CalibrationStore(resolve(options.cacheDir, 'calibration.json'));
    this.defaults = { ...DEFAULTS, ...options.defaults };
  }

  get calibrations(): CalibrationStore {
    return this.store;
  }

  /** Sessions are created once per model folder; a failed open is not cached, so a fix can be retried. */
  open(dir: string): Promise<ModelHandle<M>> {
    const key = resolve(dir);
    let handle = this.handles.get(key);
    if (!handle) {
      handle = (async () => {
        const folder = await openModelFolder(key);
        const model = await this.parts.load(folder, { providers: this.options.providers, cpu: this.options.cpu });
        const policy = await loadPolicy(key).catch(async (err) => {
          await model.dispose();
          throw err;
        });
        return new ModelHandle(model, policy, this.parts.costs(model, this.store), this.defaults);
      })();
      this.handles.set(key, handle);
      handle.catch(() => this.handles.delete(key));
    }
    return handle;
  }

  /**
   * Stop serving this folder's handle without disposing it (a new policy was written there): the
   * next open() loads the folder again, while work still running on the old handle finishes; the
   * caller disposes it.
   */
  forget(dir: string): Promise<ModelHandle<M>> | undefined {
    const key = resolve(dir);
    const handle = this.handles.get(key);
    this.handles.delete(key);
    return handle;
  }

  async close(dir: string): Promise<void> {
    await (await this.forget(dir)?.catch(() => undefined))?.dispose();
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.handles.keys()].map((k) => this.close(k)));
  }
}
