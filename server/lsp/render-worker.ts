// The denoising loop runs here, in a child process of the language server, not on its thread:
// onnxruntime-node runs a session synchronously on the calling thread, so a UNet call on the
// server's thread would hold every hover until it returns (seconds per step for a full-size
// model). A process rather than a worker thread, because a worker that dies while onnxruntime
// works on it aborts the whole process ("terminate called after throwing an instance of
// 'Napi::Error'"), and a native crash of an execution provider would too: the server must outlive
// both.
//
// Each model part has one session per server: the UNet and the VAE here, opened on the first job
// that needs them (a preview, an asset, training, or measuring the cost hovers show); the text
// encoder in the server, which hovers need anyway, borrowed through remote-text.ts.
import type { Calibration, CalibrationShape } from '../adadiff/cost';
import { toWire, type WireError } from '../error-wire';
import { ALL_PARTS, Engine, type FirstStepChoice, type ModelParts, type RenderRequest, type RenderResult } from '../engine';
import { type LoadedModel, liveSessions, loadModel } from '../model/session';
import type { ParameterValues } from '../generation';
import { ssim } from '../adadiff/ssim';
import { encodePng } from '../pipeline/png';
import { fitWithin } from '../pipeline/resize';
import type { AssetSummary } from '../assets';
import { type AssetsJob, type AssetsMessage, runAssetsJob } from './assets-job';
import { runTrainJob, type TrainJob, type TrainMessage, type TrainOutcome } from './train-job';
import { Engines, openWithSettings } from './handles';
import { TextClient, type TextReply, type TextRequest } from './remote-text';

export interface JobBase {
  id: number;
  model: string;
  cacheDir: string;
  providers: string[];
  /** The document's settings (generationSettings); the request's values win over them. */
  settings: ParameterValues;
  request: RenderRequest;
  /** About how many intermediate x0 previews to send per render (each costs a VAE decode); 0: none. */
  previews: number;
}

/** At most one progress message per this many milliseconds, images and the last step aside. */
export const STEP_REPORT_MS = 50;
/**
 * Intermediate images are shrunk to this side: a 1024 px x0 image of a render was a 2.4 MB data URI,
 * and in code-server the "Cancelled." after a click waited 1.2 s behind such images on their way
 * to the webview. The final image keeps its size.
 */
export const PREVIEW_MAX_SIDE = 512;

/** Measure what a generation costs (or, `fresh`, measure it again): the figures hovers show. */
export interface CalibrateJob {
  kind: 'calibrate';
  id: number;
  model: string;
  cacheDir: string;
  providers: string[];
  shape: CalibrationShape;
  fresh?: boolean;
}

/** The sessions this worker holds, per part (the server adds its own: `adadiff/sessions`). */
export interface SessionsJob {
  kind: 'sessions';
  id: number;
}

/** The count a preview of `request` would choose after its first UNet call (ModelHandle.firstStepChoice): what hovers show. */
export type FirstStepJob = Omit<JobBase, 'previews'> & { kind: 'first-step' };

export type ToWorker = (JobBase & { kind: 'preview' | 'compare' }) | FirstStepJob | AssetsJob | TrainJob | CalibrateJob | SessionsJob | { kind: 'cancel'; id: number } | TextReply;

export interface RenderOutcome {
  png: Uint8Array;
  width: number;
  height: number;
  steps: number;
  seed: number;
  seconds: number;
  predictedSteps: number;
  /** The first-step-aware policy's choice after the first UNet call, when it chose. */
  refinedSteps?: number;
  baselineSteps: number;
  estimatedSeconds: number;
  /** Intermediate x0 images decoded and sent while it ran (each a VAE decode, inside `seconds`). */
  previewImages: number;
  policy: boolean;
  model: string;
  provider: string;
}

export interface CompareOutcome {
  baseline: RenderOutcome;
  predicted: RenderOutcome;
  fidelity: number;
}

export type FromWorker =
  | { kind: 'step'; id: number; step: number; total: number; phase?: 'baseline' | 'predicted'; image?: Uint8Array }
  | { kind: 'done'; id: number; outcome: RenderOutcome | CompareOutcome | AssetSummary | TrainOutcome | Calibration | FirstStepChoice | null | ReturnType<typeof liveSessions> }
  | { kind: 'error'; id: number; error: WireError }
  | AssetsMessage
  | TrainMessage;

/** Set in the render process's environment by renderer.ts; main.ts reads it to know which role to play. */
export const RENDER_WORKER_ENV = 'ADADIFF_RENDER_WORKER';

export function runRenderWorker(): void {
  const port = {
    // The server's structured-clone IPC channel ('advanced' serialization) carries the typed arrays.
    postMessage: (msg: FromWorker | TextRequest) => process.connected && process.send!(msg),
    on: (event: 'message', handler: (msg: ToWorker) => void) => process.on(event, handler),
  };
  // The server went away (exited, or was killed): nothing is left to render for.
  process.on('disconnect', () => process.exit(0));
  let jobsCacheDir = '';
  const text = new TextClient(port);
  // The UNet and VAE open here around the main thread's text encoder: one session per part per server.
  const parts = (providers: string[]): ModelParts<LoadedModel> => ({
    load: async (folder, opts) => loadModel(folder, { ...opts, text: await text.textPart({ model: folder.dir, providers }, folder.tokenizerDir) }),
    costs: ALL_PARTS.costs,
  });
  const engines = new Engines((order) => new Engine({ cacheDir: jobsCacheDir, providers: order, parts: parts(order ?? []) }));
  const running = new Map<number, AbortController>();
  const post = (msg: FromWorker) => port.postMessage(msg);
  /** Resolves once no job but `id` runs; polled, as only a finished training asks (to dispose the sessions it replaced). */
  const othersDone = async (id: number) => {
    while ([...running.keys()].some((k) => k !== id)) await new Promise((r) => setTimeout(r, 1000));
  };

  port.on('message', (msg: ToWorker) => {
    if (msg.kind === 'cancel') {
      running.get(msg.id)?.abort();
      return;
    }
    if (msg.kind === 'text-reply') return text.receive(msg);
    if (msg.kind === 'sessions') return post({ kind: 'done', id: msg.id, outcome: liveSessions() });
    jobsCacheDir ||= msg.cacheDir;
    const abort = new AbortController();
    running.set(msg.id, abort);
    (msg.kind === 'assets'
      ? runAssetsJob(msg, engines, abort.signal, post)
      : msg.kind === 'train'
        ? runTrainJob(msg, engines, abort.signal, post, () => othersDone(msg.id))
        : msg.kind === 'calibrate'
          ? calibrate(msg)
          : msg.kind === 'first-step'
            ? openWithSettings(engines.get(msg.providers), msg.model, msg.settings).then((h) => h.firstStepChoice(msg.request, abort.signal))
            : run(msg, abort.signal))
      .then((outcome) => post({ kind: 'done', id: msg.id, outcome }))
      .catch((err: unknown) => post({ kind: 'error', id: msg.id, error: toWire(err) }))
      .finally(() => running.delete(msg.id));
  });

  async function calibrate(job: CalibrateJob): Promise<Calibration> {
    const engine = engines.get(job.providers);
    const handle = await engine.open(job.model);
    if (!job.fresh) return handle.costs.get(job.shape);
    // The main thread asked to measure everything again: no figure this worker cached may survive.
    await engine.calibrations.clear();
    return handle.costs.recalibrate(job.shape);
  }

  async function run(job: JobBase & { kind: 'preview' | 'compare' }, signal: AbortSignal): Promise<RenderOutcome | CompareOutcome> {
    const handle = await openWithSettings(engines.get(job.providers), job.model, job.settings);
    const render = async (request: RenderRequest, phase?: 'baseline' | 'predicted') => {
      let previewImages = 0;
      let posted = -Infinity;
      const r = await handle.render(request, {
        signal,
        onStep: async ({ step, total, preview }) => {
          const every = Math.max(1, Math.ceil(total / job.previews));
          const image = job.previews > 0 && step < total && step % every === 0 ? encodePng(fitWithin(await preview(), PREVIEW_MAX_SIDE)) : undefined;
          if (image) previewImages++;
          // A step of a small or fast model takes a millisecond or so: reporting each one kept the
          // editor's webview a few hundred steps behind the render (a 1000-step SDXL-layout preview),
          // and Cancel waited behind that backlog. Images, the last step and one step per
          // STEP_REPORT_MS are reported; a progress bar needs no more.
          const now = performance.now();
          if (!image && step < total && now - posted < STEP_REPORT_MS) return;
          posted = now;
          post({ kind: 'step', id: job.id, step, total, phase, image });
        },
      });
      return { outcome: outcomeOf(r, handle.model.folder.name, previewImages), image: r.result.image };
    };
    if (job.kind === 'preview') return (await render(job.request)).outcome;
    const baseline = await render({ ...job.request, steps: handle.baselineSteps }, 'baseline');
    const predicted = await render({ ...job.request, steps: 'auto' }, 'predicted');
    return { baseline: baseline.outcome, predicted: predicted.outcome, fidelity: ssim(predicted.image, baseline.image) };
  }
}

function outcomeOf(r: RenderResult, model: string, previewImages: number): RenderOutcome {
  return {
    png: new Uint8Array(r.png),
    width: r.result.width,
    height: r.result.height,
    steps: r.parameters.steps,
    seed: r.parameters.seed,
    seconds: r.result.timings.totalMs / 1000,
    predictedSteps: r.prediction.steps,
    refinedSteps: r.refinedSteps,
    baselineSteps: r.prediction.baselineSteps,
    estimatedSeconds: r.prediction.estimatedSeconds,
    previewImages,
    policy: r.prediction.policy,
    model,
    provider: r.prediction.provider,
  };
}
