// The core every front end drives (CLI, language server, asset generation, tests): open a model
// folder once, predict steps and cost for a prompt, render a PNG with the chosen steps.
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type Calibration, CalibrationStore, estimateSeconds, getCalibration } from './adadiff/cost';
import { loadPolicy, promptFeatures, type StepPolicy } from './adadiff/policy';
import type { CpuShare, SchedulerName } from './model/contract';
import { openModelFolder } from './model/folder';
import { loadModel, type LoadedModel } from './model/session';
import { generate, type GenerateResult, type StepProgress, throwIfCancelled } from './pipeline/generate';
import { validateSeed } from './pipeline/noise';
import { formatParameters, type GenerationParameters } from './pipeline/parameters';
import { encodePng } from './pipeline/png';

export interface GenerationDefaults {
  /** The fixed schedule savings are measured against, and the steps used when a model has no policy. */
  baselineSteps: number;
  guidance: number;
  scheduler: SchedulerName;
  seed: number;
}

export const DEFAULTS: GenerationDefaults = { baselineSteps: 50, guidance: 7, scheduler: 'ddim', seed: 0 };

export interface EngineOptions {
  /** Where calibrations are cached (per user, not per workspace). */
  cacheDir: string;
  /** Execution providers to try in order; the platform's default order when absent. */
  providers?: string[];
  defaults?: Partial<GenerationDefaults>;
  /** How much of the CPU the sessions may take; default 'shared' (beside an editor). */
  cpu?: CpuShare;
}

export interface StepPrediction {
  steps: number;
  baselineSteps: number;
  candidates: number[];
  probabilities: number[];
  /** False when the model has no trained policy: then steps are the baseline. */
  policy: boolean;
  estimatedSeconds: number;
  baselineSeconds: number;
  /** Time saved against the baseline, 0..1. */
  saving: number;
  droppedTokens: number;
  provider: string;
}

export interface RenderRequest {
  prompt: string;
  negativePrompt?: string;
  steps?: number | 'auto';
  seed?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  width?: number;
  height?: number;
}

export interface RenderHooks {
  signal?: AbortSignal;
  onStep?: (progress: StepProgress) => void | Promise<void>;
}

export interface RenderResult {
  png: Buffer;
  parameters: GenerationParameters;
  prediction: StepPrediction;
  result: GenerateResult;
}

export const runtimeVersion = (): string => `onnxruntime-node ${ort.env.versions?.common ?? 'unknown'}`;

export class ModelHandle {
  constructor(
    readonly model: LoadedModel,
    readonly policy: StepPolicy | null,
    private readonly store: CalibrationStore,
    readonly defaults: GenerationDefaults,
  ) {}

  get baselineSteps(): number {
    return this.policy?.manifest.baselineSteps ?? this.defaults.baselineSteps;
  }

  get guidance(): number {
    return this.policy?.manifest.guidance ?? this.defaults.guidance;
  }

  get scheduler(): SchedulerName {
    return this.policy?.manifest.scheduler ?? this.defaults.scheduler;
  }

  calibration(width?: number, height?: number, guidance = this.guidance): Promise<Calibration> {
    return getCalibration(this.model, { guided: guidance > 1, width, height }, this.store, runtimeVersion());
  }

  async predict(prompt: string, signal?: AbortSignal): Promise<StepPrediction> {
    let steps = this.baselineSteps;
    let candidates = [steps];
    let probabilities = [1];
    let droppedTokens: number;
    if (this.policy) {
      const features = await promptFeatures(this.model, prompt);
      throwIfCancelled(signal);
      droppedTokens = features.droppedTokens;
      ({ steps, candidates, probabilities } = await this.policy.predict(features.hidden, [1, features.tokens, features.dim], features.mask));
    } else {
      droppedTokens = this.model.tokenizer.encode(prompt).dropped;
    }
    throwIfCancelled(signal);
    const cal = await this.calibration();
    const estimatedSeconds = estimateSeconds(cal, steps);
    const baselineSeconds = estimateSeconds(cal, this.baselineSteps);
    return {
      steps,
      baselineSteps: this.baselineSteps,
      candidates,
      probabilities,
      policy: this.policy !== null,
      estimatedSeconds,
      baselineSeconds,
      saving: baselineSeconds > 0 ? 1 - estimatedSeconds / baselineSeconds : 0,
      droppedTokens,
      provider: cal.provider,
    };
  }

  async render(req: RenderRequest, hooks: RenderHooks = {}): Promise<RenderResult> {
    const prediction = await this.predict(req.prompt, hooks.signal);
    const steps = req.steps === undefined || req.steps === 'auto' ? prediction.steps : req.steps;
    const seed = validateSeed(req.seed ?? this.defaults.seed);
    const guidance = req.guidance ?? this.guidance;
    const scheduler = req.scheduler ?? this.scheduler;
    const result = await generate(this.model, {
      prompt: req.prompt,
      negativePrompt: req.negativePrompt,
      steps,
      seed,
      guidance,
      scheduler,
      width: req.width,
      height: req.height,
      signal: hooks.signal,
      onStep: hooks.onStep,
    });
    const parameters: GenerationParameters = {
      prompt: req.prompt,
      negativePrompt: req.negativePrompt,
      steps,
      scheduler,
      guidance,
      seed,
      width: result.width,
      height: result.height,
      modelHash: await this.model.folder.hash(),
      modelName: this.model.folder.name,
      predictedSteps: prediction.policy ? prediction.steps : undefined,
      baselineSteps: prediction.baselineSteps,
    };
    return { png: encodePng(result.image, { parameters: formatParameters(parameters) }), parameters, prediction, result };
  }

  async dispose(): Promise<void> {
    await this.policy?.dispose();
    await this.model.dispose();
  }
}

export class Engine {
  private readonly handles = new Map<string, Promise<ModelHandle>>();
  private readonly store: CalibrationStore;
  readonly defaults: GenerationDefaults;

  constructor(private readonly options: EngineOptions) {
    this.store = new CalibrationStore(resolve(options.cacheDir, 'calibration.json'));
    this.defaults = { ...DEFAULTS, ...options.defaults };
  }

  get calibrations(): CalibrationStore {
    return this.store;
  }

  /** Sessions are created once per model folder; a failed open is not cached, so a fix can be retried. */
  open(dir: string): Promise<ModelHandle> {
    const key = resolve(dir);
    let handle = this.handles.get(key);
    if (!handle) {
      handle = (async () => {
        const folder = await openModelFolder(key);
        const model = await loadModel(folder, { providers: this.options.providers, cpu: this.options.cpu });
        const policy = await loadPolicy(key).catch(async (err) => {
          await model.dispose();
          throw err;
        });
        return new ModelHandle(model, policy, this.store, this.defaults);
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
  forget(dir: string): Promise<ModelHandle> | undefined {
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
