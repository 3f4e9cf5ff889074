// Which model answers for a document, loading it (lazily, once per model folder and execution-
// provider order), and the adadiff/status notifications that drive the client's status item.
// A model that fails to load is remembered with its error, so hovers can say what is wrong, and is
// retried after a pause or when the settings change (a fixed folder should not need a restart).
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Connection } from 'vscode-languageserver';
import { type Calibration, estimateSeconds, savingFraction } from '../adadiff/cost';
import { AdaDiffError } from '../errors';
import { type FirstStepChoice, isMeasured, type ModelHandle, type StepEstimate, withFirstStep } from '../engine';
import { formatSeconds } from '../../shared/format';
import type { PromptCommandArgs } from '../../shared/protocol';
import type { Generation } from '../generation';
import type { ProviderChoice } from '../model/contract';
import type { TextModel } from '../model/session';
import { StatusNotification, type StatusParams } from '../../shared/protocol';
import { type Engines, openWithSettings } from './handles';
import { type AdaDiffSettings, generationSettings } from './settings';

const RETRY_AFTER_MS = 10_000;
const PREDICTIONS_KEPT = 5_000;

/**
 * Where the first-step-aware policy chooses, a hover makes the preview's first UNet call itself
 * (in the render worker) when one UNet step takes at most this long here, and shows the count the
 * preview will render. The bundled model's takes about 8 ms on 2 CPU cores; a full-size model's on
 * a CPU takes seconds, and its hovers keep the prompt-only estimate.
 */
export const FIRST_STEP_HOVER_MS = 250;
/**
 * A lens, where a step takes at most this long: an editor resolves a screenful of lenses at once
 * (40 cost at most a second of the worker's time here), where a hover asks about one prompt. Above
 * it a lens makes no call of its own but takes one a hover made.
 */
export const FIRST_STEP_LENS_MS = 25;
/**
 * How long a hover waits for that call: the worker may be loading a model or in the middle of a
 * long step. A call that comes later is kept, and lenses are fetched again.
 */
const FIRST_STEP_WAIT_MS = 500;

/** What a hover asks about: the prompt with the options a preview of it takes (commandArgs in present.ts). */
export type PromptAsk = Pick<PromptCommandArgs, 'prompt' | 'negativePrompt' | 'seed' | 'steps' | 'size'>;

/** Makes a preview's first UNet call and returns the first-step-aware policy's choice (Renderer.firstStep). */
export type FirstStepRunner = (job: { model: string; providers: string[]; settings: ReturnType<typeof generationSettings>; request: Omit<PromptAsk, 'steps' | 'size'> & { width?: number; height?: number } }) => Promise<FirstStepChoice | null>;

export interface ModelChoice {
  dir: string;
  bundled: boolean;
  providers: string[];
  /** Why the configured model is not the one used (an untrusted workspace). */
  note?: string;
}

export interface ReadyModel {
  choice: ModelChoice;
  /** The main thread's part of the model: tokenizer, text encoder, policy (the rest is the render worker's). */
  handle: ModelHandle<TextModel>;
  name: string;
}

/** Where a prompt fixes its steps: what the step policy would pick instead, and what that saves (once the cost is measured). */
export interface PolicyChoice {
  steps: number;
  estimatedSeconds?: number;
  /** Time saved against the prompt's own count, as a fraction of it (negative: the policy takes longer). */
  saving?: number;
}

/** A model that could not be opened; `message` is the ModelError's (it names the file at fault). */
export class ModelUnavailable extends AdaDiffError {
  override readonly name = 'ModelUnavailable';
  readonly kind = 'model';
  constructor(
    readonly choice: ModelChoice,
    override readonly cause: Error,
  ) {
    super(cause.message);
  }
}

interface Entry {
  ready: Promise<ReadyModel>;
  failedAt?: number;
}

export interface ModelManagerOptions {
  trusted: boolean;
  bundledDir: string;
  workspaceFolders: () => string[];
  /** The figures predictions show changed: lenses should be fetched again. */
  refreshLenses?: () => void;
  /** Without it hovers show the prompt-only estimate. */
  firstStep?: FirstStepRunner;
}

/** Three significant figures below 10 ms (a small model's step is a fraction of one), one decimal above. */
const ms = (x: number) => (x < 10 ? x.toPrecision(3) : x.toFixed(1));

/** The providers each part tried before the one it runs on, with their reasons; parts that got their first choice are left out. */
function notUsed(parts: Record<string, ProviderChoice | undefined>): Record<string, { name: string; error: string }[]> {
  const out: Record<string, { name: string; error: string }[]> = {};
  for (const [part, choice] of Object.entries(parts)) {
    const failed = (choice?.tried ?? []).flatMap((t) => (t.error ? [{ name: t.name, error: t.error }] : []));
    if (failed.length) out[part] = failed;
  }
  return out;
}

export class ModelManager {
  private readonly entries = new Map<string, Entry>();
  private readonly predictions = new Map<string, Promise<StepEstimate>>();
  private readonly firstSteps = new Map<string, Promise<FirstStepChoice | null>>();
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Each loaded model's last status, sent again with the cost once the render worker has measured it. */
  private readonly statuses = new Map<string, (cal: Calibration | Error | undefined) => StatusParams>();

  constructor(
    private readonly connection: Connection,
    private readonly engines: Engines<TextModel>,
    private readonly options: ModelManagerOptions,
  ) {}

  /** The folder a document's settings point to; the bundled model when unset or untrusted. */
  choose(settings: AdaDiffSettings, uri?: string): ModelChoice {
    const providers = settings.providers;
    const configured = settings.model.path;
    if (!configured) return { dir: this.options.bundledDir, bundled: true, providers };
    if (!this.options.trusted) {
      return { dir: this.options.bundledDir, bundled: true, providers, note: `adadiff.model.path (${configured}) is ignored in an untrusted workspace; using the bundled model` };
    }
    return { dir: this.resolvePath(configured, uri), bundled: false, providers };
  }

  private resolvePath(path: string, uri?: string): string {
    if (path.startsWith('file:')) return fileURLToPath(path);
    if (path === '~' || path.startsWith('~/')) return join(homedir(), path.slice(1));
    if (isAbsolute(path)) return path;
    const folders = this.options.workspaceFolders();
    const doc = uri?.startsWith('file:') ? fileURLToPath(uri) : undefined;
    const folder = (doc && folders.find((f) => doc.startsWith(f + '/'))) ?? folders[0] ?? process.cwd();
    return resolve(folder, path);
  }

  /** The loaded model for these settings; rejects with ModelUnavailable. */
  get(settings: AdaDiffSettings, uri?: string): Promise<ReadyModel> {
    const choice = this.choose(settings, uri);
    const key = `${choice.dir}|${choice.providers.join(',')}`;
    let entry = this.entries.get(key);
    if (entry?.failedAt !== undefined && Date.now() - entry.failedAt > RETRY_AFTER_MS) entry = undefined;
    if (!entry) {
      const created: Entry = { ready: this.load(choice) };
      created.ready.catch(() => (created.failedAt = Date.now()));
      this.entries.set(key, (entry = created));
    }
    return entry.ready;
  }

  private async load(choice: ModelChoice): Promise<ReadyModel> {
    const model = { name: choice.dir.split(/[\\/]/).pop() ?? choice.dir, path: choice.dir, bundled: choice.bundled };
    this.status({ state: 'loading', model, message: `Loading ${model.name}…`, detail: choice.note });
    try {
      const handle = await this.engines.get(choice.providers).open(choice.dir);
      const name = handle.model.folder.name;
      // Hovers answer from here on; the cost follows when the render worker has measured it (it
      // opens the UNet and VAE to do so, unless the cache has the figure).
      const peeked = await handle.costs.peek(handle.costShape());
      // The text encoder's provider is known here; the UNet's and VAE's once the render worker has
      // opened them (or from the calibration it measured with them).
      const logged = new Set<string>();
      const partsOf = (cal: Calibration | undefined) => ({ ...cal?.parts, textEncoder: handle.model.providers.textEncoder });
      const providersOf = (cal: Calibration | undefined) => {
        const parts = partsOf(cal);
        const providersNotUsed = notUsed(parts);
        // The fallback reasons go to the log too, once per part: "why is it slow?" starts there.
        for (const [part, attempts] of Object.entries(providersNotUsed)) {
          if (logged.has(part)) continue;
          logged.add(part);
          for (const a of attempts) this.connection.console.warn(`${name}: ${part} does not run on ${a.name}: ${a.error}`);
        }
        return { providers: Object.fromEntries(Object.entries(parts).map(([part, p]) => [part, p.used])), providersNotUsed };
      };
      const policy = handle.policy !== null;
      const ready = (outcome: Calibration | Error | undefined): StatusParams => {
        const cal = outcome instanceof Error ? undefined : outcome;
        const { providers, providersNotUsed } = providersOf(cal);
        return {
          state: 'ready',
          model: { ...model, name },
          providers: cal && !cal.parts ? { ...providers, unet: cal.provider } : providers,
          ...(Object.keys(providersNotUsed).length ? { providersNotUsed } : {}),
          policy,
          message: `${name}${cal ? ` on ${cal.provider}` : ''}${policy ? '' : ' (no step policy)'}`,
          detail: [
            `${choice.dir}`,
            outcome instanceof Error
              ? `the UNet and VAE could not be loaded, so previews fail and the cost is not measured: ${outcome.message}`
              : cal
              ? `UNet step ${ms(cal.unetMs)} ms, text encoder ${ms(cal.textEncoderMs)} ms, VAE ${ms(cal.vaeMs)} ms (${cal.provider})`
              : 'cost not measured yet: the UNet and VAE are loading in the background',
            ...Object.entries(providersNotUsed).map(([part, attempts]) => `${part}: ${attempts.map((a) => `not ${a.name}: ${a.error}`).join('; ')}`),
            policy ? `step policy: candidates ${handle.policy!.manifest.candidates.join(', ')}` : 'no step policy: every prompt uses the baseline steps',
            choice.note,
          ]
            .filter(Boolean)
            .join('\n'),
        };
      };
      this.statuses.set(choice.dir, ready);
      this.status(ready('notYet' in peeked ? undefined : peeked));
      return { choice, handle, name };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.status({ state: 'error', model, message: `${model.name}: could not load the model`, detail: [error.message, choice.note].filter(Boolean).join('\n') });
      throw new ModelUnavailable(choice, error);
    }
  }

  /**
   * Steps and cost for a prompt; cached per model, settings and prompt (hovers and lenses repeat
   * them). Where a preview's first-step-aware policy chooses after the first UNet call and that
   * call is cheap here, the steps are that choice for the seed the preview uses (see
   * FIRST_STEP_HOVER_MS and FIRST_STEP_LENS_MS, by `asker`). A prompt's own `steps: N` replaces
   * the policy's choice and its cost; the choice then comes back as `policyChoice` where the model has a policy and it differs.
   * `generation` is what a preview of it uses (scheduler, guidance, and whether the policy was
   * measured with others).
   */
  async predict(settings: AdaDiffSettings, uri: string | undefined, ask: PromptAsk, asker: 'hover' | 'lens' = 'hover'): Promise<{ model: ReadyModel; prediction: StepEstimate; policyChoice?: PolicyChoice; generation: Generation }> {
    const model = await this.get(settings, uri);
    const values = generationSettings(settings);
    const key = JSON.stringify([model.choice.dir, model.choice.providers, values, ask.prompt]);
    let prediction = this.predictions.get(key);
    if (!prediction) {
      // Not tied to one request's cancellation: the result is shared and cheap (text encoder + policy).
      prediction = openWithSettings(this.engines.get(model.choice.providers), model.choice.dir, values).then((h) => h.estimate(ask.prompt));
      prediction.catch(() => this.predictions.delete(key));
      if (this.predictions.size >= PREDICTIONS_KEPT) this.predictions.delete(this.predictions.keys().next().value!);
      this.predictions.set(key, prediction);
    }
    const p = await this.afterFirstStep(model, values, ask, await prediction, asker);
    const fixedSteps = typeof ask.steps === 'number' ? ask.steps : undefined;
    const generation = model.handle.generation({ settings: values, prompt: { steps: fixedSteps } });
    if (fixedSteps === undefined || fixedSteps === p.steps) return { model, prediction: p, generation };
    if (!isMeasured(p)) {
      const fixed = { ...p, steps: fixedSteps };
      return { model, prediction: fixed, generation, ...(p.policy ? { policyChoice: { steps: p.steps } } : {}) };
    }
    const cal = await model.handle.calibration();
    const fixed = { ...p, steps: fixedSteps, estimatedSeconds: estimateSeconds(cal, fixedSteps), saving: savingFraction(cal, fixedSteps, p.baselineSteps) };
    // Without a policy p.steps is the baseline, not a choice worth suggesting over the prompt's own.
    if (!p.policy) return { model, prediction: fixed, generation };
    return { model, prediction: fixed, generation, policyChoice: { steps: p.steps, estimatedSeconds: p.estimatedSeconds, saving: savingFraction(cal, p.steps, fixedSteps) } };
  }

  /** The prompt-only estimate `p`, or the first-step-aware policy's choice where `asker` may make the first call (see FIRST_STEP_HOVER_MS). */
  private async afterFirstStep(model: ReadyModel, values: ReturnType<typeof generationSettings>, ask: PromptAsk, p: StepEstimate, asker: 'hover' | 'lens'): Promise<StepEstimate> {
    const run = this.options.firstStep;
    if (!p.refinedAfterFirstStep || !run) return p;
    // Until the worker has measured the UNet nothing says whether its call is cheap; lenses are fetched again then.
    const cal = await model.handle.costs.peek(model.handle.costShape());
    if ('notYet' in cal) return p;
    const step = `one UNet step takes ~${formatSeconds(cal.unetMs / 1000)} on ${cal.provider} here`;
    if (cal.unetMs > FIRST_STEP_HOVER_MS) return { ...p, firstStepSkipped: `${step}, too long for a hover` };
    const request = { prompt: ask.prompt, negativePrompt: ask.negativePrompt, seed: ask.seed, width: ask.size?.width, height: ask.size?.height };
    const key = JSON.stringify([model.choice.dir, model.choice.providers, values, request]);
    let choice = this.firstSteps.get(key);
    const lensMakesNone = cal.unetMs > FIRST_STEP_LENS_MS;
    if (!choice && asker === 'lens' && lensMakesNone) return { ...p, firstStepSkipped: `${step}, too long to make for every lens (hover it)` };
    if (!choice) {
      const made = run({ model: model.choice.dir, providers: model.choice.providers, settings: values, request });
      // The lens of this prompt showed the prompt-only estimate: fetch it again with this count.
      if (lensMakesNone) void made.then(() => this.refreshSoon(), () => undefined);
      made.catch((err: Error) => {
        this.firstSteps.delete(key);
        this.connection.console.warn(`the first UNet call for a hover failed; it shows the prompt-only estimate: ${err.message}`);
      });
      if (this.firstSteps.size >= PREDICTIONS_KEPT) this.firstSteps.delete(this.firstSteps.keys().next().value!);
      this.firstSteps.set(key, (choice = made));
    }
    const timer = new Promise<'late'>((done) => setTimeout(() => done('late'), FIRST_STEP_WAIT_MS).unref());
    const c = await Promise.race([choice, timer]).catch(() => null);
    if (c === 'late') {
      void choice.then(() => this.refreshSoon(), () => undefined);
      return { ...p, firstStepSkipped: `the render worker did not answer within ${formatSeconds(FIRST_STEP_WAIT_MS / 1000)} (it is loading the UNet, or busy); ask again in a moment` };
    }
    return c ? withFirstStep(p, c, cal) : p;
  }

  /** One lens refresh for a burst of late first steps (a document's lenses resolve together). */
  private refreshSoon(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.options.refreshLenses?.();
    }, 200);
    this.refreshTimer.unref();
  }

  /** Measure the cost again (after a driver or hardware change); sends a fresh status. */
  async recalibrate(settings: AdaDiffSettings, uri?: string): Promise<void> {
    const { handle } = await this.get(settings, uri);
    this.predictions.clear();
    this.firstSteps.clear();
    await handle.costs.recalibrate(handle.costShape());
  }

  /** The render worker measured a cost hovers did not have, or could not (RemoteCosts' onChange). */
  costsChanged(dir: string, outcome: Calibration | Error): void {
    this.predictions.clear();
    this.firstSteps.clear();
    const status = this.statuses.get(dir);
    if (status) this.status(status(outcome));
    this.options.refreshLenses?.();
  }

  /**
   * A new policy was written into `dir`: drop what was loaded from it (handles, predictions) so
   * the next request loads the folder again, with its new policy, and sends a fresh status.
   */
  async forget(dir: string): Promise<void> {
    for (const key of [...this.entries.keys()]) if (key.startsWith(`${dir}|`)) this.entries.delete(key);
    this.predictions.clear();
    this.firstSteps.clear();
    // Hover predictions take milliseconds on this thread: the old sessions can go at once.
    await Promise.all(this.engines.forget(dir).map((h) => h.then((x) => x.dispose()).catch(() => undefined)));
  }

  /** Forget failures and predictions: settings changed, or the user asked to measure again. */
  reset(): void {
    for (const [key, entry] of this.entries) if (entry.failedAt !== undefined) this.entries.delete(key);
    this.predictions.clear();
    this.firstSteps.clear();
  }

  private status(params: StatusParams): void {
    void this.connection.sendNotification(StatusNotification, params).catch(() => undefined);
  }
}
