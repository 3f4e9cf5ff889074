// The server's side of the render worker (a child process, see render-worker.ts): one, started on
// the first preview and again after a crash; jobs are cancelled through an AbortSignal (from the
// request's CancellationToken), which the worker turns into an abort between denoising steps.
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { Calibration } from '../adadiff/cost';
import type { AssetSummary } from '../assets';
import { type liveSessions, NO_SESSIONS, type TextModel } from '../model/session';
import { fromWire } from '../error-wire';
import { CancelledError } from '../errors';
import { answerTextRequest, type TextRequest, type TextTarget } from './remote-text';
import type { AssetsJob, AssetsMessage } from './assets-job';
import type { TrainJob, TrainMessage, TrainOutcome } from './train-job';
import type { FirstStepChoice } from '../engine';
import { type CalibrateJob, type CompareOutcome, type FirstStepJob, type FromWorker, type JobBase, RENDER_WORKER_ENV, type RenderOutcome, type ToWorker } from './render-worker';

export interface StepEvent {
  step: number;
  total: number;
  phase?: 'baseline' | 'predicted';
  /** PNG bytes of the current x0 prediction, when this step carries one. */
  image?: Uint8Array;
}

type Job = Omit<JobBase, 'id'>;
type Sessions = ReturnType<typeof liveSessions>;
type Outcome = RenderOutcome | CompareOutcome | AssetSummary | TrainOutcome | Calibration | FirstStepChoice | null | Sessions;

interface Pending {
  resolve(outcome: Outcome): void;
  reject(err: Error): void;
  onStep?: (e: StepEvent) => void;
  onAssets?: (msg: AssetsMessage) => void;
  onTrain?: (msg: TrainMessage) => void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class Renderer {
  private worker: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /**
   * `text` opens the server's text model the worker borrows (remote-text.ts). The server bundle
   * doubles as the worker's script (see main.ts).
   */
  constructor(
    private readonly text: (target: TextTarget) => Promise<TextModel>,
    private readonly script = join(__dirname, 'server.js'),
  ) {}

  preview(job: Job, signal: AbortSignal, onStep?: (e: StepEvent) => void): Promise<RenderOutcome> {
    return this.submit('preview', job, signal, onStep) as Promise<RenderOutcome>;
  }

  compare(job: Job, signal: AbortSignal, onStep?: (e: StepEvent) => void): Promise<CompareOutcome> {
    return this.submit('compare', job, signal, onStep) as Promise<CompareOutcome>;
  }

  /** The first-step-aware policy's choice for a preview of `job.request`, from one UNet call in the worker; null where it does not choose. */
  firstStep(job: Omit<FirstStepJob, 'id' | 'kind'>, signal: AbortSignal = new AbortController().signal): Promise<FirstStepChoice | null> {
    return this.send({ ...job, kind: 'first-step' }, signal, {}, false) as Promise<FirstStepChoice | null>;
  }

  /**
   * An asset run. Unlike a preview, a cancelled run is not dropped: the worker finishes the step in
   * flight and answers with the summary of what it wrote (or CancelledError before the first image).
   */
  assets(job: Omit<AssetsJob, 'id' | 'kind'>, signal: AbortSignal, onAssets: (msg: AssetsMessage) => void): Promise<AssetSummary> {
    return this.send({ ...job, kind: 'assets' }, signal, { onAssets }, true) as Promise<AssetSummary>;
  }

  /**
   * Train a step policy (train-job.ts). A cancel waits for the worker to stop (between two images),
   * so nothing is left writing into the model folder when the request answers.
   */
  train(job: Omit<TrainJob, 'id' | 'kind'>, signal: AbortSignal, onProgress: (p: TrainMessage['progress']) => void): Promise<TrainOutcome> {
    return this.send({ ...job, kind: 'train' }, signal, { onTrain: (msg) => onProgress(msg.progress) }, true) as Promise<TrainOutcome>;
  }

  /**
   * The calibration for a shape: the worker opens the UNet and VAE if it has not yet (they live
   * only there) and measures them unless the cache has the figure; `fresh` measures again.
   */
  calibrate(job: Omit<CalibrateJob, 'id' | 'kind'>, signal: AbortSignal = new AbortController().signal): Promise<Calibration> {
    return this.send({ ...job, kind: 'calibrate' }, signal, {}, true) as Promise<Calibration>;
  }

  /** The sessions the worker holds, per part; all zero when it has not started. */
  async sessions(): Promise<Sessions> {
    if (!this.worker) return { ...NO_SESSIONS };
    return this.send({ kind: 'sessions' }, new AbortController().signal, {}, true) as Promise<Sessions>;
  }

  get running(): number {
    return this.pending.size;
  }

  private submit(kind: 'preview' | 'compare', job: Job, signal: AbortSignal, onStep?: (e: StepEvent) => void): Promise<RenderOutcome | CompareOutcome> {
    return this.send({ kind, ...job }, signal, { onStep }, false) as Promise<RenderOutcome | CompareOutcome>;
  }

  private send(
    msg: DistributiveOmit<Exclude<ToWorker, { kind: 'cancel' } | { kind: 'text-reply' }>, 'id'>,
    signal: AbortSignal,
    hooks: Pick<Pending, 'onStep' | 'onAssets' | 'onTrain'>,
    awaitCancelled: boolean,
  ): Promise<Outcome> {
    if (signal.aborted) return Promise.reject(new CancelledError());
    const id = this.nextId++;
    const worker = this.start();
    return new Promise((resolve, reject) => {
      const cancel = () => {
        send(worker, { kind: 'cancel', id });
        if (awaitCancelled) return;
        // Answer at once; the worker stops at its next step boundary and its late reply is dropped.
        this.pending.delete(id);
        reject(new CancelledError());
      };
      signal.addEventListener('abort', cancel, { once: true });
      const done = <T>(f: (v: T) => void) => (v: T) => {
        signal.removeEventListener('abort', cancel);
        this.pending.delete(id);
        f(v);
      };
      this.pending.set(id, { resolve: done(resolve), reject: done(reject), ...hooks });
      send(worker, { ...msg, id } as ToWorker);
    });
  }

  private start(): ChildProcess {
    if (this.worker) return this.worker;
    const worker = fork(this.script, [], {
      env: { ...process.env, [RENDER_WORKER_ENV]: '1' },
      // The server's own debug port would clash; any other option (a test's --require) carries over.
      execArgv: process.execArgv.filter((arg) => !arg.startsWith('--inspect')),
      serialization: 'advanced',
      // Piped, so that nothing the worker prints can land on stdout, which is the LSP channel.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    worker.stdout!.pipe(process.stderr);
    worker.stderr!.pipe(process.stderr);
    worker.on('message', (msg: FromWorker | TextRequest) => {
      if (msg.kind === 'text-request') {
        void answerTextRequest(msg, this.text).then((reply) => send(worker, reply));
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      if (msg.kind === 'step') p.onStep?.(msg);
      else if (msg.kind === 'done') p.resolve(msg.outcome);
      else if (msg.kind === 'error') p.reject(fromWire(msg.error));
      else if (msg.kind === 'train-progress') p.onTrain?.(msg);
      else p.onAssets?.(msg);
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const p of [...this.pending.values()]) p.reject(err);
    };
    worker.on('error', fail);
    // What the user reads in place of the image: the job is lost, the server and the next job are not.
    worker.on('exit', (code, signal) => fail(new Error(`the render worker stopped (${signal ? `killed by ${signal}` : `exit code ${code}`}) before this job finished; the next preview starts a new one`)));
    // Neither the process nor its channel keeps the server alive once the client says exit.
    worker.unref();
    worker.channel?.unref();
    this.worker = worker;
    return worker;
  }

  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker || worker.exitCode !== null || worker.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.kill();
    await exited;
  }
}

/** A message to the worker; one whose process has gone fails through its 'exit' event instead. */
function send(worker: ChildProcess, msg: ToWorker): void {
  if (worker.connected) worker.send(msg, (err) => err && undefined);
}
