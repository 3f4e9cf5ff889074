// Previews and compares: the request's settings and model here, the render in the worker
// (renderer.ts), progress images to the client as they come.
import type { CancellationToken } from 'vscode-languageserver';
import { estimateSeconds } from '../adadiff/cost';
import { type CompareParams, CompareRequest, type CompareResult, type PreviewParams, PreviewProgressNotification, PreviewRequest, type PreviewResult } from '../../shared/protocol';
import { abortSignal, untilCancelled } from './cancellation';
import type { ServerContext } from './context';
import { ModelUnavailable, type ReadyModel } from './models';
import type { StepEvent } from './renderer';
import { failed, toResponseError } from './response-errors';
import { generationSettings } from './settings';

/** Intermediate images per preview: enough to watch it sharpen, few enough VAE decodes. */
const PREVIEW_IMAGES = 8;

/** What preview and compare share: settings, the loaded model, the job and its progress. */
async function startRender(ctx: ServerContext, params: PreviewParams | CompareParams, title: string, token: CancellationToken) {
  const s = await untilCancelled(ctx.settings.get(params.uri), token);
  let model: ReadyModel;
  try {
    model = await untilCancelled(ctx.models.get(s, params.uri), token);
  } catch (err) {
    if (err instanceof ModelUnavailable) throw failed(err.message);
    throw err;
  }
  const job = {
    model: model.choice.dir,
    cacheDir: ctx.cacheDir,
    providers: model.choice.providers,
    settings: generationSettings(s),
    request: { prompt: params.prompt, negativePrompt: params.negativePrompt, seed: params.seed, steps: 'steps' in params ? params.steps : undefined, width: params.size?.width, height: params.size?.height },
    previews: PREVIEW_IMAGES,
  };
  const progress = await ctx.progressFor(params, title);
  const onStep = (e: StepEvent) => {
    const label = e.phase ? `${e.phase}: ` : '';
    progress.reporter.report(Math.round((100 * e.step) / e.total), `${label}step ${e.step}/${e.total}`);
    void ctx.connection.sendNotification(PreviewProgressNotification, {
      id: params.id,
      step: e.step,
      total: e.total,
      phase: e.phase,
      image: e.image && `data:image/png;base64,${Buffer.from(e.image).toString('base64')}`,
    });
  };
  return { model, job, onStep, signal: abortSignal(token, progress.cancel), progress: progress.reporter };
}

export async function preview(ctx: ServerContext, params: PreviewParams, token: CancellationToken): Promise<PreviewResult> {
  const { model, job, onStep, signal, progress } = await startRender(ctx, params, 'AdaDiff preview', token);
  try {
    const o = await ctx.renderer.preview(job, signal, onStep);
    const cal = await model.handle.calibration(undefined, undefined, model.handle.generation({ settings: job.settings, request: job.request }).guidance);
    return {
      id: params.id,
      png: Buffer.from(o.png).toString('base64'),
      width: o.width,
      height: o.height,
      prompt: params.prompt,
      negativePrompt: params.negativePrompt,
      steps: o.steps,
      predictedSteps: o.predictedSteps,
      ...(o.refinedSteps !== undefined ? { refinedSteps: o.refinedSteps } : {}),
      baselineSteps: o.baselineSteps,
      seed: o.seed,
      // Like with like: the measured time includes the intermediate images the panel showed.
      estimatedSeconds: estimateSeconds(cal, o.steps) + (o.previewImages * cal.vaeMs) / 1000,
      actualSeconds: o.seconds,
      model: o.model,
      provider: o.provider,
      policy: o.policy,
    };
  } catch (err) {
    throw toResponseError(err);
  } finally {
    progress.done();
  }
}

export async function compare(ctx: ServerContext, params: CompareParams, token: CancellationToken): Promise<CompareResult> {
  const { job, onStep, signal, progress } = await startRender(ctx, params, 'AdaDiff compare', token);
  try {
    const o = await ctx.renderer.compare(job, signal, onStep);
    const image = (r: typeof o.baseline) => ({ png: Buffer.from(r.png).toString('base64'), steps: r.steps, seconds: r.seconds });
    return {
      id: params.id,
      prompt: params.prompt,
      seed: o.predicted.seed,
      width: o.predicted.width,
      height: o.predicted.height,
      baseline: image(o.baseline),
      predicted: image(o.predicted),
      fidelity: o.fidelity,
      model: o.predicted.model,
      provider: o.predicted.provider,
    };
  } catch (err) {
    throw toResponseError(err);
  } finally {
    progress.done();
  }
}

export function registerRenderRequests(ctx: ServerContext): void {
  ctx.connection.onRequest(PreviewRequest, (params, token) => preview(ctx, params, token));
  ctx.connection.onRequest(CompareRequest, (params, token) => compare(ctx, params, token));
}
