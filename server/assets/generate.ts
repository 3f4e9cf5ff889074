// Generate every asset a workspace asks for that is missing or stale, with the step policy's
// steps, and nothing else. One function drives the CLI (`adadiff assets`) and the language
// server's "Generate all assets" command; it knows nothing of either: progress, ETA and
// cancellation go through plain callbacks and an AbortSignal.
//
// For each target the plan compares the lock entry, the file on disk and the inputs:
//   current    the file is what the lock says, made from the same inputs and model
//   missing    no file (new target, deleted file, or a run killed before writing it)
//   stale      the file is ours but the prompt, options, model or step policy changed
//   modified   the file differs from what the lock says was written: somebody edited it
//   untracked  a file is there that no lock entry accounts for
// Missing and stale assets are generated; modified and untracked files only with `force`.
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { type Calibration, estimateSeconds } from '../adadiff/cost';
import type { RenderHooks, RenderRequest, RenderResult, StepPrediction } from '../engine';
import type { Generation, GenerationSources, Purpose } from '../generation';
import { openModelFolder } from '../model/folder';
import { AdaDiffError, CancelledError, kindOf } from '../errors';
import { type Lock, LOCK_FILE, type LockEntry, readLock, sha256, updateLock } from './lock';
import { AssetPathError, checkOnDisk, removeStaleTemps, writeAtomic } from './paths';
import { type AssetProblem, type AssetTarget, collectTargets } from './targets';


/**
 * What generation needs of a model: engine.ts's ModelHandle fits. Every call says it is for an
 * asset, so that resolveGeneration (generation.ts) leaves the editor's settings out.
 */
export interface AssetModel {
  generation(sources: Pick<GenerationSources, 'purpose'>): Pick<Generation, 'baselineSteps' | 'guidance'>;
  predict(prompt: string, signal?: AbortSignal, purpose?: Purpose): Promise<StepPrediction>;
  calibration(width?: number, height?: number, guidance?: number): Promise<Calibration>;
  render(req: RenderRequest, hooks?: RenderHooks): Promise<RenderResult>;
}

/** Opens model folders (engine.ts's Engine fits); only called when something is to be rendered or estimated. */
export interface ModelSource {
  open(dir: string): Promise<AssetModel>;
}

export interface GenerateAssetsOptions {
  /** The workspace root: outputs must stay inside it; the lock file lives in it. */
  root: string;
  /** The model folder for targets that do not name one (manifest entries may). */
  model: string;
  engine: ModelSource;
  /** Only report what is missing or stale; never writes, never loads a model. */
  check?: boolean;
  /** Plan and estimate (loads the model for the step policy and cost), but write nothing. */
  dryRun?: boolean;
  /** Overwrite files that were edited since they were generated, or that no lock entry accounts for. */
  force?: boolean;
  /** False in an untrusted workspace: then only check and dry runs are allowed. Default true. */
  trusted?: boolean;
  /** Restrict the run to these outputs (root-relative or absolute paths); the lock keeps every other entry. */
  only?: string[];
  /** Markdown files and manifests over this size are skipped (default 1 MiB). */
  maxFileBytes?: number;
  /** Seed for targets that give none (default 0), so an asset is reproducible from its lock entry. */
  seed?: number;
  /** Who renders: this process by default, or a pool of workers. */
  renderer?: AssetRenderer;
}

export type AssetState = 'current' | 'missing' | 'stale' | 'modified' | 'untracked';
export type AssetAction = 'generated' | 'would-generate' | 'skipped' | 'failed' | 'cancelled';

export interface AssetReport {
  out: string;
  source: string;
  state: AssetState;
  /** Why it is stale or skipped, in words. */
  reasons: string[];
  action: AssetAction;
  /** Makes --check fail: missing, stale, modified, or an explicit output adadiff did not write. */
  outOfDate: boolean;
  steps?: number;
  baselineSteps?: number;
  estimatedSeconds?: number;
  seconds?: number;
  error?: string;
}

export interface AssetSummary {
  root: string;
  lockFile: string;
  mode: 'generate' | 'check' | 'dry-run';
  assets: AssetReport[];
  counts: Record<AssetState, number> & { targets: number; generated: number; failed: number };
  /** Sum of steps over the assets generated (or to generate, in a dry run), and what the fixed baseline would use. */
  stepsUsed: number;
  baselineSteps: number;
  /** From the cost model, before starting: the assets to generate, and the same at baseline steps. */
  estimatedSeconds: number;
  baselineEstimatedSeconds: number;
  /** Wall time of the whole run. */
  seconds: number;
  problems: AssetProblem[];
  warnings: string[];
  /** Lock entries no target asks for any more (dropped by a full generate run without problems). */
  orphans: string[];
  cancelled: boolean;
  /** check: everything is current; otherwise: no problems and no failures. */
  ok: boolean;
}

export interface AssetProgress {
  phase: 'scan' | 'plan' | 'estimate' | 'render' | 'done';
  /** Assets finished (generated, failed or skipped at write time) out of those to generate. */
  done: number;
  total: number;
  out?: string;
  step?: number;
  steps?: number;
  /** Seconds left by the cost model, corrected by how fast the finished assets actually went. */
  etaSeconds?: number;
  elapsedSeconds: number;
  message: string;
}

/** What is about to be generated, with the cost model's ETA: sent once, before the first image. */
export interface AssetPlan {
  targets: number;
  todo: AssetReport[];
  estimatedSeconds: number;
  baselineEstimatedSeconds: number;
}

export interface GenerateAssetsHooks {
  signal?: AbortSignal;
  onProgress?: (progress: AssetProgress) => void;
  onPlan?: (plan: AssetPlan) => void;
}

/** What an asset's image is made from: its target's inputs (steps 'auto': the step policy's choice). */
export interface AssetRenderSpec {
  prompt: string;
  negativePrompt?: string;
  steps: number | 'auto';
  seed: number;
  width?: number;
  height?: number;
}

/** A rendered asset: the PNG and the values its lock entry records. */
export interface RenderedAsset {
  png: Buffer;
  seed: number;
  steps: number;
  width: number;
  height: number;
  scheduler: string;
  guidance: number;
  baselineSteps: number;
}

/** Who renders a run's assets: this process, one at a time (the default), or a pool's workers (server/pool/). */
export interface AssetRenderer {
  /** Renders in flight at once. */
  readonly concurrency: number;
  render(job: { modelDir: string; identity: ModelIdentity; spec: AssetRenderSpec }, hooks: RenderHooks): Promise<RenderedAsset>;
}

/** One asset's image. A local run and a pool worker both call this. */
export async function renderAsset(model: AssetModel, spec: AssetRenderSpec, hooks: RenderHooks = {}): Promise<RenderedAsset> {
  const result = await model.render({ ...spec, purpose: 'asset' }, hooks);
  const { seed, steps, width, height, scheduler, guidance } = result.parameters;
  return { png: result.png, seed, steps, width, height, scheduler, guidance, baselineSteps: result.prediction.baselineSteps };
}

function renderSpec(target: AssetTarget, options: GenerateAssetsOptions): AssetRenderSpec {
  return {
    prompt: target.prompt,
    ...(target.negative !== undefined ? { negativePrompt: target.negative } : {}),
    steps: target.steps ?? 'auto',
    seed: target.seed ?? options.seed ?? 0,
    ...(target.size ? { width: target.size.width, height: target.size.height } : {}),
  };
}

export class AssetError extends AdaDiffError {
  override readonly name = 'AssetError';
  readonly kind = 'asset';
}

/** The model and policy hashes a lock entry records; a pool job carries them, and a worker with others refuses it. */
export interface ModelIdentity {
  name: string;
  hash: string;
  /** Hash of adadiff/policy.onnx + policy.json: the policy picks `auto` steps, and its manifest the scheduler and guidance. */
  policy: string | null;
}

interface Planned {
  target: AssetTarget;
  report: AssetReport;
  identity: ModelIdentity;
  /** sha256 of the file on disk when planned, undefined if there was none. */
  fileSha?: string;
  generate: boolean;
  entry?: LockEntry;
}

export async function generateAssets(options: GenerateAssetsOptions, hooks: GenerateAssetsHooks = {}): Promise<AssetSummary> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const mode = options.check ? 'check' : options.dryRun ? 'dry-run' : 'generate';
  if (mode === 'generate' && options.trusted === false) {
    throw new AssetError('this workspace is not trusted, so asset generation (which writes files into it) is disabled; trust the workspace, or run a check or dry run');
  }
  const root = path.resolve(options.root);
  if (!(await stat(root).catch(() => undefined))?.isDirectory()) throw new AssetError(`${root} is not a folder`);
  const progress = (p: Omit<AssetProgress, 'elapsedSeconds'>) => hooks.onProgress?.({ ...p, elapsedSeconds: elapsed() });
  const run: Run = { root, options, signal: hooks.signal, progress, models: new Map() };

  // The phases a run reports: scan, plan, estimate, render; a check stops after the plan, a dry run after the estimate.
  const scanned = await scan(run);
  const { planned, orphans } = await planAll(run, scanned);
  const summary = emptySummary(run, mode, planned, scanned, orphans);
  const todo = planned.filter((p) => p.generate);
  const finish = () => {
    summary.seconds = elapsed();
    summary.ok = summary.problems.length === 0 && (mode === 'check' ? !planned.some((p) => p.report.outOfDate) : summary.counts.failed === 0 && !summary.cancelled);
    progress({ phase: 'done', done: summary.counts.generated, total: todo.length, message: summary.cancelled ? 'cancelled' : 'done' });
    return summary;
  };
  if (mode === 'check') return finish();

  const runnable = await estimate(run, todo, summary, mode === 'dry-run');
  hooks.onPlan?.({ targets: planned.length, todo: runnable.map((p) => p.report), estimatedSeconds: summary.estimatedSeconds, baselineEstimatedSeconds: summary.baselineEstimatedSeconds });
  if (mode === 'dry-run') return finish();

  await renderAll(run, runnable, summary);
  await tidyLock(run, planned, orphans, summary);
  return finish();
}

/** What every phase of one run reads. */
interface Run {
  root: string;
  options: GenerateAssetsOptions;
  signal?: AbortSignal;
  progress(p: Omit<AssetProgress, 'elapsedSeconds'>): void;
  /** Each model folder opened once per run, by the estimate and the local renders. */
  models: Map<string, Promise<AssetModel>>;
}

const modelDirOf = (run: Run, target: AssetTarget): string => target.model ?? path.resolve(run.options.model);

function modelFor(run: Run, dir: string): Promise<AssetModel> {
  let m = run.models.get(dir);
  if (!m) run.models.set(dir, (m = run.options.engine.open(dir)));
  return m;
}

/** Scan: the targets the workspace asks for (only those named by `only`), and what is wrong with the rest. */
async function scan(run: Run) {
  const { root, options } = run;
  run.progress({ phase: 'scan', done: 0, total: 0, message: `scanning ${root}` });
  const collected = await collectTargets(root, { maxFileBytes: options.maxFileBytes, signal: run.signal });
  const problems = [...collected.problems];
  let targets = collected.targets;
  if (options.only) {
    const wanted = new Set(options.only.map((p) => path.relative(root, path.resolve(root, p)).split(path.sep).join('/')));
    targets = targets.filter((t) => wanted.has(t.key));
    for (const key of wanted) if (!targets.some((t) => t.key === key)) problems.push({ source: key, out: key, message: `no Markdown image, prompt fence or manifest entry asks for ${key}` });
  }
  return { all: collected.targets, targets, problems, warnings: collected.warnings };
}

/** Plan: each target against the lock and the file on disk; lock entries no target asks for are orphans. */
async function planAll(run: Run, { all, targets, problems }: Awaited<ReturnType<typeof scan>>) {
  run.progress({ phase: 'plan', done: 0, total: targets.length, message: `checking ${targets.length} assets` });
  const lock = await readLock(run.root);
  const identities = new Map<string, Promise<ModelIdentity>>();
  const identityOf = (dir: string) => {
    let id = identities.get(dir);
    if (!id) identities.set(dir, (id = modelIdentity(dir)));
    return id;
  };
  const planned: Planned[] = [];
  for (const target of targets) {
    if (run.signal?.aborted) throw new CancelledError();
    const p = await plan(run.root, target, lock, identityOf(modelDirOf(run, target)), run.options, problems);
    if (p) planned.push(p);
  }
  const asked = new Set(all.map((t) => t.key));
  return { planned, orphans: Object.keys(lock.assets).filter((k) => !asked.has(k)).sort() };
}

function emptySummary(run: Run, mode: AssetSummary['mode'], planned: Planned[], scanned: Awaited<ReturnType<typeof scan>>, orphans: string[]): AssetSummary {
  const summary: AssetSummary = {
    root: run.root,
    lockFile: path.join(run.root, LOCK_FILE),
    mode,
    assets: planned.map((p) => p.report),
    counts: { targets: planned.length, current: 0, missing: 0, stale: 0, modified: 0, untracked: 0, generated: 0, failed: 0 },
    stepsUsed: 0,
    baselineSteps: 0,
    estimatedSeconds: 0,
    baselineEstimatedSeconds: 0,
    seconds: 0,
    problems: scanned.problems,
    warnings: scanned.warnings,
    orphans,
    cancelled: false,
    ok: false,
  };
  for (const p of planned) summary.counts[p.report.state]++;
  return summary;
}

/** Estimate: the steps and seconds of each asset to make, from the cost model, before anything is rendered (the ETA). */
async function estimate(run: Run, todo: Planned[], summary: AssetSummary, dryRun: boolean): Promise<Planned[]> {
  const { signal } = run;
  run.progress({ phase: 'estimate', done: 0, total: todo.length, message: `estimating ${todo.length} assets` });
  const runnable: Planned[] = [];
  for (const p of todo) {
    if (signal?.aborted) throw new CancelledError();
    try {
      const model = await modelFor(run, modelDirOf(run, p.target));
      const { baselineSteps, guidance } = model.generation({ purpose: 'asset' });
      const steps = typeof p.target.steps === 'number' ? p.target.steps : (await model.predict(p.target.prompt, signal, 'asset')).steps;
      const cal = await model.calibration(p.target.size?.width, p.target.size?.height, guidance);
      Object.assign(p.report, { steps, baselineSteps, estimatedSeconds: estimateSeconds(cal, steps) });
      summary.estimatedSeconds += estimateSeconds(cal, steps);
      summary.baselineEstimatedSeconds += estimateSeconds(cal, baselineSteps);
      if (dryRun) {
        p.report.action = 'would-generate';
        summary.stepsUsed += steps;
        summary.baselineSteps += baselineSteps;
      }
      runnable.push(p);
    } catch (err) {
      if (err instanceof CancelledError || signal?.aborted) throw err;
      // A target its model cannot make (e.g. a size the UNet does not take) fails alone: the others still run.
      Object.assign(p.report, { action: 'failed', error: (err as Error).message });
      summary.counts.failed++;
    }
  }
  return runnable;
}

/** Render: the images, `concurrency` at a time (a pool's workers) or one by one here, each written with its lock entry. */
async function renderAll(run: Run, runnable: Planned[], summary: AssetSummary): Promise<void> {
  const { root, options, signal, progress } = run;
  const renderer = options.renderer ?? { concurrency: 1, render: async (job, h) => renderAsset(await modelFor(run, job.modelDir), job.spec, h) };
  // The cost model's seconds, corrected by the pace so far (wall time over estimated seconds done,
  // which with a pool counts its workers' parallelism).
  const renderStarted = performance.now();
  let estimatedDone = 0;
  const progressOf = new Map<Planned, number>(runnable.map((p) => [p, 0]));
  const eta = () => {
    const pace = estimatedDone > 0 ? (performance.now() - renderStarted) / 1000 / estimatedDone : 1;
    let left = 0;
    for (const [p, fraction] of progressOf) left += (1 - fraction) * (p.report.estimatedSeconds ?? 0);
    return Math.max(0, left * pace);
  };
  let finished = 0;
  // Lock updates read, change and rewrite the file: one at a time, however many renders are in flight.
  let writing: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const done = writing.then(fn, fn);
    writing = done.catch(() => undefined);
    return done;
  };
  const renderOne = async (p: Planned) => {
    const { target, report } = p;
    if (signal?.aborted) {
      report.action = 'cancelled';
      summary.cancelled = true;
      return;
    }
    const at = (step: number, steps?: number) => ({ phase: 'render' as const, done: finished, total: runnable.length, out: target.key, step, steps, etaSeconds: eta() });
    progress({ ...at(0, report.steps), message: `${target.key}: ${target.prompt}` });
    const t0 = performance.now();
    try {
      const rendered = await renderer.render(
        { modelDir: modelDirOf(run, target), identity: p.identity, spec: renderSpec(target, options) },
        {
          signal,
          onStep: (s) => {
            progressOf.set(p, s.step / s.total);
            progress({ ...at(s.step, s.total), message: `${target.key}: step ${s.step}/${s.total}` });
          },
        },
      );
      await serially(() => writeAsset(root, p, rendered, options));
      const seconds = (performance.now() - t0) / 1000;
      Object.assign(report, { action: 'generated', steps: rendered.steps, baselineSteps: rendered.baselineSteps, seconds });
      summary.counts.generated++;
      summary.stepsUsed += rendered.steps;
      summary.baselineSteps += rendered.baselineSteps;
      estimatedDone += report.estimatedSeconds ?? 0;
    } catch (err) {
      if (err instanceof CancelledError || signal?.aborted) {
        report.action = 'cancelled';
        summary.cancelled = true;
      } else if (err instanceof SkipError) {
        report.action = 'skipped';
        report.reasons.push(err.message);
      } else {
        report.action = 'failed';
        report.error = (err as Error).message;
        summary.counts.failed++;
      }
    } finally {
      progressOf.delete(p);
      finished++;
    }
  };
  let next = 0;
  const lanes = Math.max(1, Math.min(renderer.concurrency, runnable.length));
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < runnable.length) await renderOne(runnable[next++]);
    }),
  );
}

/**
 * Tidy the lock: finished entries still marked as being replaced (a run killed after the rename),
 * and, after a full run without problems, entries nothing asks for any more.
 */
async function tidyLock(run: Run, planned: Planned[], orphans: string[], summary: AssetSummary): Promise<void> {
  const leftovers = planned.filter((p) => !p.generate && p.report.state === 'current' && p.entry?.replaces !== undefined).map((p) => p.target.key);
  const prune = !run.options.only && summary.problems.length === 0 && !summary.cancelled ? orphans : [];
  if (leftovers.length || prune.length) {
    await updateLock(run.root, (l) => {
      for (const key of leftovers) if (l.assets[key]) delete l.assets[key].replaces;
      for (const key of prune) delete l.assets[key];
    });
  }
}

class SkipError extends Error {}

/**
 * Two lock updates around the atomic image write (see lock.ts): whatever moment a kill -9 hits,
 * every image on disk is either accounted for or recognisably the one being replaced.
 */
async function writeAsset(root: string, p: Planned, result: RenderedAsset, options: GenerateAssetsOptions): Promise<void> {
  const { target } = p;
  // Rendering takes a while: make sure nobody saved over the file meanwhile.
  const exists = (await checkOnDisk(root, target.key)).exists;
  const nowSha = exists ? sha256(await readFile(target.file)) : undefined;
  if (nowSha !== p.fileSha && !options.force) throw new SkipError('modified while the image was rendered, skipped (--force overwrites)');
  await removeStaleTemps(target.file);
  const params = result;
  const entry: LockEntry = {
    prompt: target.prompt,
    ...(target.negative !== undefined ? { negative: target.negative } : {}),
    seed: params.seed,
    steps: { requested: target.steps ?? 'auto', used: params.steps, baseline: result.baselineSteps },
    sizeRequested: target.size ? `${target.size.width}x${target.size.height}` : 'default',
    size: `${params.width}x${params.height}`,
    scheduler: params.scheduler,
    guidance: params.guidance,
    model: { name: p.identity.name, hash: p.identity.hash, policy: p.identity.policy },
    sha256: sha256(result.png),
    source: target.source.file,
  };
  const previous = (await readLock(root)).assets[target.key];
  await updateLock(root, (l) => {
    l.assets[target.key] = { ...entry, replaces: nowSha ?? null };
  });
  try {
    await writeAtomic(root, target.key, result.png);
  } catch (err) {
    await updateLock(root, (l) => {
      if (previous) l.assets[target.key] = previous;
      else delete l.assets[target.key];
    });
    throw err;
  }
  await updateLock(root, (l) => {
    l.assets[target.key] = entry;
  });
}

async function plan(
  root: string,
  target: AssetTarget,
  lock: Lock,
  identityPromise: Promise<ModelIdentity>,
  options: GenerateAssetsOptions,
  problems: AssetProblem[],
): Promise<Planned | undefined> {
  const source = `${target.source.file}:${target.source.line}`;
  let exists: boolean;
  let identity: ModelIdentity;
  try {
    exists = (await checkOnDisk(root, target.key)).exists;
    identity = await identityPromise;
  } catch (err) {
    const kind = kindOf(err);
    if (kind !== 'path' && kind !== 'model') throw err;
    // A broken model folder is one problem, not one per asset that uses it.
    const modelError = kind === 'model';
    if (!modelError || !problems.some((p) => p.message === (err as Error).message)) problems.push({ source, out: target.key, message: (err as Error).message });
    return undefined;
  }
  const entry = lock.assets[target.key];
  const fileSha = exists ? sha256(await readFile(target.file)) : undefined;
  const report: AssetReport = { out: target.key, source, state: 'current', reasons: [], action: 'skipped', outOfDate: false };
  if (!entry) {
    report.state = exists ? 'untracked' : 'missing';
    report.reasons.push(exists ? 'exists but was not generated by adadiff (no lock entry); --force overwrites' : 'not generated yet');
  } else if (!exists) {
    report.state = 'missing';
    report.reasons.push(entry.replaces !== undefined ? 'an earlier run was interrupted before writing it' : 'file missing');
  } else if (fileSha !== entry.sha256) {
    if (entry.replaces === fileSha) {
      report.state = 'stale';
      report.reasons.push('an earlier run was interrupted before replacing it');
    } else {
      report.state = 'modified';
      report.reasons.push('edited since it was generated (its hash differs from the lock); --force overwrites');
    }
  } else {
    report.reasons.push(...inputChanges(target, entry, identity, options));
    if (report.reasons.length) report.state = 'stale';
  }
  report.outOfDate = report.state !== 'current' && (report.state !== 'untracked' || target.explicit);
  const generate = report.state === 'missing' || report.state === 'stale' || (!!options.force && report.state !== 'current');
  return { target, report, identity, fileSha, generate, entry };
}

function inputChanges(target: AssetTarget, entry: LockEntry, identity: ModelIdentity, options: GenerateAssetsOptions): string[] {
  const reasons: string[] = [];
  const size = target.size ? `${target.size.width}x${target.size.height}` : 'default';
  if (entry.prompt !== target.prompt) reasons.push('prompt changed');
  if ((entry.negative ?? '') !== (target.negative ?? '')) reasons.push('negative prompt changed');
  if (entry.seed !== (target.seed ?? options.seed ?? 0)) reasons.push(`seed changed (${entry.seed} -> ${target.seed ?? options.seed ?? 0})`);
  if (entry.steps.requested !== (target.steps ?? 'auto')) reasons.push(`steps changed (${entry.steps.requested} -> ${target.steps ?? 'auto'})`);
  if (entry.sizeRequested !== size) reasons.push(`size changed (${entry.sizeRequested} -> ${size})`);
  if (entry.model.hash !== identity.hash) reasons.push(`model changed (${entry.model.hash.slice(0, 10)} -> ${identity.hash.slice(0, 10)})`);
  else if ((entry.model.policy ?? null) !== identity.policy) reasons.push('step policy changed');
  return reasons;
}

export async function modelIdentity(dir: string): Promise<ModelIdentity> {
  const folder = await openModelFolder(dir);
  const policy = folder.policy ? sha256(Buffer.concat([await readFile(folder.policy.onnx), await readFile(folder.policy.json)])) : null;
  return { name: folder.name, hash: await folder.hash(), policy };
}
