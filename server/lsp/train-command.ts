// adadiff.server.trainPolicy and its two helpers (the estimate and the workspace's prompts): train
// a step policy for the model the settings choose, from the editor. The work is the CLI's
// trainPolicy, run on the render worker (train-job.ts) so hovers keep answering; this module
// checks that training may run, reports work-done progress, and afterwards makes the server and
// the worker load the model again with its new policy.
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CancellationToken,
  type ExecuteCommandParams,
  type ProgressToken,
  type WorkDoneProgressParams,
  type WorkDoneProgressReporter,
} from 'vscode-languageserver';
import { type Calibration, estimateSeconds } from '../adadiff/cost';
import type { PolicyEvaluation } from '../adadiff/policy-manifest';
import { heldOutCount, MIN_TRAINING_PROMPTS, parsePromptLines, splitHeldOut } from '../adadiff/prompt-list';
import { DEFAULT_SEEDS, trainingCandidates, type TrainPolicyProgress } from '../adadiff/train-policy';
import { formatSeconds } from '../../shared/format';
import {
  type PromptsFileArgs,
  type PromptsFileResult,
  ServerCommands,
  type TrainEstimate,
  type TrainEstimateArgs,
  type TrainPolicyArgs,
  type TrainPolicyResult,
  type TrainPolicySummary,
  type WorkspacePromptsResult,
} from '../../shared/protocol';
import { type ModelChoice, type ModelManager, ModelUnavailable, type ReadyModel } from './models';
import type { Renderer } from './renderer';
import { type AdaDiffSettings, generationSettings, poolSpec, type SettingsCache } from './settings';
import type { TrainJob } from './train-job';
import { findWorkspacePrompts } from './workspace-prompts';
import { abortSignal } from './cancellation';
import { cancelled, failed, isCancellation, toResponseError } from './response-errors';

export const TRAINING_COMMANDS: readonly string[] = [ServerCommands.trainPolicy, ServerCommands.estimateTraining, ServerCommands.workspacePrompts, ServerCommands.promptsFile];

export interface TrainingContext {
  settings: SettingsCache;
  models: ModelManager;
  renderer: Renderer;
  trusted: boolean;
  /** Per-user cache; the reward tables go to reward-tables/ in it, as the CLI's do. */
  cacheDir: string;
  /** The server's work-done progress: the client's token when the request has one, else one the server creates, with its own Cancel. */
  progress: (params: WorkDoneProgressParams, title: string) => Promise<{ reporter: WorkDoneProgressReporter; cancel?: CancellationToken }>;
  workspaceFolders: () => string[];
  /** The editor's text of an open document, by absolute path. */
  openText: (path: string) => string | undefined;
  /** The model's new policy changes every lens: ask the client to fetch them again. */
  refreshLenses: () => void;
}

/** What a run costs: every training prompt x seed at every candidate, every held-out one at every candidate and at the policy's average. */
export function trainingCost(cal: Calibration, counts: { train: number; heldOut: number; seeds: number; candidates: readonly number[] }): { images: number; unetSteps: number; seconds: number } {
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  const c = counts.candidates;
  // The evaluation's fixed-steps baseline runs at the policy's average, unknown before training: about the mean candidate.
  const evalSteps = [...c, Math.round(sum(c) / c.length)];
  const trainImages = counts.train * counts.seeds;
  const evalImages = counts.heldOut * counts.seeds;
  return {
    images: trainImages * c.length + evalImages * evalSteps.length,
    unetSteps: trainImages * sum(c) + evalImages * sum(evalSteps),
    seconds: trainImages * sum(c.map((s) => estimateSeconds(cal, s))) + evalImages * sum(evalSteps.map((s) => estimateSeconds(cal, s))),
  };
}

/** The work-done message and overall percentage for a progress event (phases weighted by their usual share of the time). */
export function describeTrainProgress(p: TrainPolicyProgress): { message: string; percentage: number } {
  const eta = (s: number | null) => (s === null ? '' : s > 0 ? `, ~${formatSeconds(s)} left` : '');
  const band = (from: number, to: number, done: number, total: number) => Math.round(from + ((to - from) * done) / Math.max(1, total));
  switch (p.phase) {
    case 'features':
      return { message: `text features ${p.done}/${p.total}`, percentage: band(0, 2, p.done, p.total) };
    case 'table': {
      const t = p.progress;
      const cached = t.cached ? ` (${t.cached} from the cache)` : '';
      return { message: `reward table ${t.done}/${t.total}${cached}${eta(t.etaSeconds)}`, percentage: band(2, 80, t.done, t.total) };
    }
    case 'first-step':
      return { message: `first denoising steps ${p.done}/${p.total}`, percentage: band(80, 82, p.done, p.total) };
    case 'train':
      return { message: `training epoch ${p.entry.epoch}/${p.epochs}`, percentage: band(82, 84, p.entry.epoch, p.epochs) };
    case 'export':
      return { message: 'writing the policy', percentage: 84 };
    case 'evaluate': {
      const e = p.progress;
      if (e.phase === 'table') return { message: `evaluation ${e.progress.done}/${e.progress.total}${eta(e.progress.etaSeconds)}`, percentage: band(85, 99, e.progress.done, e.progress.total) };
      return { message: `evaluation: ${e.phase === 'predict' ? 'predicting' : 'word influence'} ${e.done}/${e.total}`, percentage: e.phase === 'predict' ? 85 : 99 };
    }
  }
}

export function summarize(e: PolicyEvaluation): TrainPolicySummary {
  return {
    prompts: e.prompts,
    avgSteps: e.avgSteps,
    baselineSteps: e.baselineSteps,
    savingPct: e.savingPct,
    tau: e.tau,
    shareMeetingTau: e.shareMeetingTau,
    meanQuality: e.meanQuality,
  };
}

/** Progress messages at most this often (the trainer's epochs take milliseconds); phase changes always go out. */
const REPORT_EVERY_MS = 200;

export class PolicyTraining {
  /** One training per server: two would write the same files and share one worker. */
  private running = false;

  constructor(private readonly ctx: TrainingContext) {}

  execute(params: ExecuteCommandParams, token: CancellationToken): Promise<unknown> {
    const arg = (params.arguments?.[0] ?? {}) as Record<string, unknown>;
    switch (params.command) {
      case ServerCommands.trainPolicy:
        return this.train(arg as unknown as TrainPolicyArgs, params.workDoneToken, token);
      case ServerCommands.estimateTraining:
        return this.estimate(arg as TrainEstimateArgs);
      case ServerCommands.workspacePrompts:
        return this.workspacePrompts(arg as { uri?: string }, token);
      case ServerCommands.promptsFile:
        return promptsFile(arg);
      default:
        return Promise.reject(failed(`unknown command ${params.command}`));
    }
  }

  /** The refusals, in the order a user can act on them; then the model, loaded. */
  private async target(uri: string | undefined): Promise<{ s: AdaDiffSettings; choice: ModelChoice; model: ReadyModel }> {
    if (!this.ctx.trusted) throw failed('Training a step policy is disabled in an untrusted workspace: it writes adadiff/policy.onnx into the model folder. Trust the workspace first.');
    const s = await this.ctx.settings.get(uri);
    const choice = this.ctx.models.choose(s, uri);
    if (choice.bundled) {
      throw failed(
        `The bundled model ships with a trained step policy and lives in the extension's install folder, which updates replace. ` +
          `To train your own, copy ${choice.dir} to a folder of yours and point adadiff.model.path at the copy.`,
      );
    }
    await assertWritable(choice.dir);
    try {
      return { s, choice, model: await this.ctx.models.get(s, uri) };
    } catch (err) {
      if (err instanceof ModelUnavailable) throw failed(err.message);
      throw err;
    }
  }

  /** Scheduler, guidance and size for the reward table, as resolveGeneration decides them for a training. */
  private generation(s: AdaDiffSettings, model: ReadyModel) {
    const { scheduler, guidance, width, height } = model.handle.generation({ purpose: 'training', settings: generationSettings(s) });
    return { scheduler, guidance, width, height };
  }

  async estimate(args: TrainEstimateArgs): Promise<TrainEstimate> {
    const { s, model } = await this.target(args.uri);
    const total = (args.prompts ?? 0) + (args.heldOut ?? 0);
    if (total > 0) checkCount(total);
    const heldOut = args.heldOut ?? heldOutCount(args.prompts ?? 0);
    const train = (args.prompts ?? 0) - (args.heldOut === undefined ? heldOut : 0);
    const g = this.generation(s, model);
    const cal = await model.handle.calibration(g.width, g.height, g.guidance);
    const cost = trainingCost(cal, { train, heldOut, seeds: (args.seeds ?? DEFAULT_SEEDS).length, candidates: trainingCandidates(model.handle.model, args.candidates) });
    return {
      model: model.name,
      modelPath: model.choice.dir,
      policy: model.handle.policy !== null,
      provider: cal.provider,
      trainPrompts: train,
      heldOutPrompts: heldOut,
      ...cost,
      minPrompts: MIN_TRAINING_PROMPTS,
    };
  }

  async workspacePrompts(args: { uri?: string }, token: CancellationToken): Promise<WorkspacePromptsResult> {
    const s = await this.ctx.settings.get(args.uri);
    return findWorkspacePrompts(this.ctx.workspaceFolders(), { settings: s.prompts, openText: this.ctx.openText, signal: abortSignal(token) });
  }

  async train(args: TrainPolicyArgs, workDoneToken: ProgressToken | undefined, token: CancellationToken): Promise<TrainPolicyResult> {
    if (!Array.isArray(args.prompts) || !args.prompts.every((p) => typeof p === 'string')) throw failed('trainPolicy: prompts must be a list of strings');
    const prompts = args.prompts.map((p) => p.trim()).filter(Boolean);
    const given = args.heldOut?.map((p) => p.trim()).filter(Boolean);
    checkCount(prompts.length + (given?.length ?? 0));
    const { train, heldOut } = given ? { train: prompts, heldOut: given } : splitHeldOut(prompts);
    const { s, choice, model } = await this.target(args.uri);
    if (this.running) throw failed('A step policy is being trained already; wait for it or cancel it.');
    this.running = true;
    const started = performance.now();
    let signal = abortSignal(token);
    let progress: Awaited<ReturnType<TrainingContext['progress']>> | undefined;
    let written = false;
    try {
      progress = await this.ctx.progress({ workDoneToken }, `AdaDiff: training a step policy for ${model.name}`);
      signal = abortSignal(token, progress.cancel);
      const reporter = progress.reporter;
      const job: Omit<TrainJob, 'id' | 'kind'> = {
        model: choice.dir,
        cacheDir: this.ctx.cacheDir,
        providers: choice.providers,
        options: {
          ...this.generation(s, model),
          prompts: train,
          heldOut: [{ name: 'held-out', prompts: heldOut }],
          seeds: args.seeds,
          candidates: args.candidates,
          training: args.epochs ? { epochs: args.epochs } : undefined,
          cacheDir: join(this.ctx.cacheDir, 'reward-tables'),
        },
        pool: poolSpec(s),
      };
      let last = { phase: '', at: 0 };
      const outcome = await this.ctx.renderer.train(job, signal, (p) => {
        written ||= p.phase === 'export';
        const now = performance.now();
        if (p.phase === last.phase && now - last.at < REPORT_EVERY_MS) return;
        last = { phase: p.phase, at: now };
        const d = describeTrainProgress(p);
        reporter.report(d.percentage, d.message);
      });
      return {
        model: model.name,
        modelPath: choice.dir,
        onnxPath: outcome.onnxPath,
        manifestPath: outcome.manifestPath,
        trainPrompts: train.length,
        heldOutPrompts: heldOut.length,
        seconds: (performance.now() - started) / 1000,
        rewardTableSeconds: outcome.rewardTableSeconds,
        evaluation: outcome.evaluation && summarize(outcome.evaluation),
      };
    } catch (err) {
      if (isCancellation(err) || signal.aborted) throw cancelled('training cancelled; the reward table so far is cached, and a new run resumes from it');
      throw toResponseError(err);
    } finally {
      progress?.reporter.done();
      this.running = false;
      // A new policy.onnx (even one whose evaluation was cancelled): hovers, lenses and the status use it from now on.
      if (written) {
        await this.ctx.models.forget(choice.dir);
        void this.ctx.models.get(s, args.uri).catch(() => undefined);
        this.ctx.refreshLenses();
      }
    }
  }
}

/**
 * A prompts file the user picked, read here rather than in the client so that the editor, the CLI
 * and the tests parse one format in one place. Only file: URIs (what the open dialog gives).
 */
async function promptsFile(arg: Partial<PromptsFileArgs>): Promise<PromptsFileResult> {
  if (typeof arg.uri !== 'string' || !arg.uri.startsWith('file:')) throw failed('promptsFile: uri must be a file: URI');
  const path = fileURLToPath(arg.uri);
  try {
    return { prompts: parsePromptLines(await readFile(path, 'utf8')) };
  } catch (err) {
    throw failed(`Cannot read the prompts file ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
  }
}

function checkCount(n: number): void {
  if (n < MIN_TRAINING_PROMPTS) {
    throw failed(`Training a step policy needs at least ${MIN_TRAINING_PROMPTS} prompts (got ${n}): a few dozen like the ones you write give a useful policy.`);
  }
}

async function assertWritable(dir: string): Promise<void> {
  for (const path of [dir, join(dir, 'adadiff')]) {
    try {
      await access(path, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && path !== dir) continue; // adadiff/ is created on the first training
      throw failed(`Cannot write to the model folder ${path} (${code ?? String(err)}): training writes adadiff/policy.onnx and policy.json there. Copy the model to a folder you can write to and point adadiff.model.path at it.`);
    }
  }
}
