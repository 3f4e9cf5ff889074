// A model folder loaded into ONNX Runtime: one session per part, each on the first execution
// provider that can run it, with typed calls that hide every exporter's spelling of inputs
// (names, int32/int64 ids, float/int64 and rank 0/1 timesteps, fp16 tensors).

import * as os from 'node:os';
import type * as ort from 'onnxruntime-node';
import type { CpuShare, LoadedModel, ModelFolder, ModelPart, PromptTokenizer, ProviderChoice, TextEncoding } from './contract';
import { ModelError } from './errors';
import { checkMemory, machineMemory, type WeightPlace } from './memory';
import { inputSlots, outputSlots, type TensorSlot } from './inputs';
import { checkImageSize, latentSides, numberOrUndefined } from './latent-geometry';
import { detectLayout } from './layout';
import { NoProviderError, createSessionWithFallback, defaultProviders, providerUnavailableReason } from './providers';
import { openTextEncoders } from './text-encoders';
import { bindUnet } from './unet-call';
import { bindVae } from './vae-calls';

export type { CpuShare, LoadedModel } from './contract';

export interface LoadOptions {
  /** Execution providers to try in order; defaults per platform (see defaultProviders). */
  providers?: readonly string[];
  /**
   * The batch and image size every call will use, when the caller knows it (the calibration run,
   * a batch of assets). ONNX Runtime then fixes those dims ahead of time, which lets it plan
   * memory once and lets GPU providers pick shape-specific kernels; calls with any other shape
   * then fail, so leave it out when sizes vary.
   */
  shape?: { batch: number; width: number; height: number };
  /** How much of the CPU the sessions may take (see sessionOptions); default 'shared'. */
  cpu?: CpuShare;
}

/** Symbolic dim names exporters use (optimum: batch_size/sequence_length, diffusers' script: batch/sequence). */
const DIM_NAMES = {
  batch: ['batch', 'batch_size'],
  sequence: ['sequence', 'sequence_length'],
  height: ['height'],
  width: ['width'],
};

/**
 * Options every part shares, each measured with `npm run bench -- session-options` (the figures and
 * the runs behind them: models/default/README.md, *Why these session options*):
 * - graphOptimizationLevel 'all': the fused kernels pay back their session-creation time within an image.
 * - 'shared' (the language server): one core fewer than the process may use and no spinning, so the editor keeps a core.
 * - 'dedicated' (the CLI): every core, spinning during a call, and force_spinning_stop so one part's pool does not spin into the next part.
 * - no free dimension overrides by default (no gain, and every other shape would fail); LoadOptions.shape offers them.
 * - no preallocated outputs and no denormal flushing: neither gained anything.
 * - sequential execution: the graphs are chains of large ops.
 * - logSeverityLevel 3: expected warnings (CPU nodes beside a GPU provider, unused initializers) would flood stderr.
 */
export function sessionOptions(cpu: CpuShare = 'shared', freeDimensionOverrides?: Record<string, number>): ort.InferenceSession.SessionOptions {
  const cores = os.availableParallelism();
  const spin = cpu === 'dedicated';
  return {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: spin ? cores : Math.max(1, cores - 1),
    executionMode: 'sequential',
    logSeverityLevel: 3,
    extra: { session: spin ? { intra_op: { allow_spinning: '1' }, force_spinning_stop: '1' } : { intra_op: { allow_spinning: '0' } } },
    ...(freeDimensionOverrides ? { freeDimensionOverrides } : {}),
  };
}

function overrides(dims: Partial<Record<keyof typeof DIM_NAMES, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [dim, value] of Object.entries(dims)) {
    if (value !== undefined) for (const name of DIM_NAMES[dim as keyof typeof DIM_NAMES]) out[name] = value;
  }
  return out;
}

export interface PartSession {
  readonly file: string;
  readonly part: SessionPart;
  readonly session: ort.InferenceSession;
  readonly choice: ProviderChoice;
  readonly inputs: TensorSlot[];
  readonly outputs: TensorSlot[];
}

type SessionPart = keyof LoadedModel['providers'];

/**
 * Sessions this process holds, per part: what `adadiff/sessions` reports, so that a test and the
 * memory bench can see that the language server holds each model part once.
 */
/** Each part's count when a process holds none (a worker not started yet). */
export const NO_SESSIONS: Readonly<Record<SessionPart, number>> = { textEncoder: 0, textEncoder2: 0, unet: 0, vaeDecoder: 0, vaeEncoder: 0 };

const live: Record<SessionPart, number> = { ...NO_SESSIONS };

export const liveSessions = (): Readonly<Record<SessionPart, number>> => ({ ...live });

/**
 * Test hooks: ADADIFF_TEST_UNET_LOAD_DELAY_MS and ADADIFF_TEST_TEXT_LOAD_DELAY_MS hold the calling
 * thread before a UNet or a (first) text encoder is read, as reading a big one does
 * (onnxruntime-node loads synchronously), so that the LSP tests can show that the server answers
 * while a big model loads, without a big file.
 */
const LOAD_DELAY_ENV: Partial<Record<SessionPart, string>> = { unet: 'ADADIFF_TEST_UNET_LOAD_DELAY_MS', textEncoder: 'ADADIFF_TEST_TEXT_LOAD_DELAY_MS' };

function testLoadDelay(part: SessionPart): void {
  const env = LOAD_DELAY_ENV[part];
  const ms = env ? Number(process.env[env]) : 0;
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function release(part: PartSession): Promise<void> {
  await part.session.release();
  live[part.part]--;
}

const PART_WORDS: Readonly<Record<SessionPart, string>> = {
  textEncoder: 'the text encoder',
  textEncoder2: 'the second text encoder',
  unet: 'the UNet',
  vaeDecoder: 'the VAE decoder',
  vaeEncoder: 'the VAE encoder',
};

/**
 * Where the weights will most likely run, for the memory check before loading: the first provider
 * that passes the checks that load nothing. A GPU provider can still fail at session creation and
 * fall back to the CPU; openSession checks again before that.
 */
const likelyPlace = (providers: readonly string[]): WeightPlace =>
  (providers.find((name) => !providerUnavailableReason(name)) ?? 'cpu') === 'cpu' ? 'cpu' : 'gpu';

async function openSession(
  modelPart: ModelPart,
  part: SessionPart,
  providers: readonly string[],
  cpu: CpuShare,
  freeDims?: Record<string, number>,
): Promise<PartSession> {
  const file = modelPart.onnx;
  // Checked for a GPU, then falling back to the CPU: float16 weights cost several times more there (FP16_ON_CPU).
  const admit =
    likelyPlace(providers) === 'gpu'
      ? async (name: string) => {
          if (name === 'cpu') await checkMemory([modelPart], PART_WORDS[part], machineMemory(), 'cpu');
        }
      : undefined;
  try {
    testLoadDelay(part);
    const { session, choice } = await createSessionWithFallback(file, providers, sessionOptions(cpu, freeDims), undefined, admit);
    live[part]++;
    try {
      return { file, part, session, choice, inputs: inputSlots(file, session), outputs: outputSlots(file, session) };
    } catch (error) {
      await session.release();
      live[part]--;
      throw error;
    }
  } catch (error) {
    if (error instanceof NoProviderError) throw loadFailure(file, error);
    throw error;
  }
}

/**
 * Every provider failed. When one of them got as far as reading the file, its words are about
 * the file (truncated, missing weights); otherwise only the providers are at fault.
 */
function loadFailure(file: string, error: NoProviderError): ModelError {
  const loadErrors = error.loadErrors;
  if (loadErrors.length === 0) {
    return new ModelError(file, `no execution provider could run it: ${error.message}`, { cause: error });
  }
  const ort = loadErrors[loadErrors.length - 1];
  let problem: string;
  // A GPU provider that read the file and then failed to start (no adapter, a library it needs)
  // says nothing about the file: report every provider's reason, with what to install.
  if (/Failed to get a WebGPU adapter|Failed to load shared library|CUDA failure|cudnn|CUDA_PATH|DirectML|DML/i.test(ort)) {
    return new ModelError(file, `no execution provider could run it: ${error.message}`, { cause: error });
  }
  if (/Protobuf parsing failed|ModelProto does not have a graph|Invalid model|Unexpected end|truncated/i.test(ort)) {
    problem = `is truncated or not an ONNX model (onnxruntime: ${ort}); export or download it again`;
  } else if (/external data|external initializer|GetExtDataFromTensorProto|ExternalData/i.test(ort)) {
    problem = `its external weights could not be read (onnxruntime: ${ort}); they must sit beside it as the graph names them (model.onnx_data or weights.pb)`;
  } else if (/File doesn't exist|No such file/i.test(ort)) {
    problem = `is missing (onnxruntime: ${ort})`;
  } else {
    problem = `onnxruntime could not load it: ${ort}`;
  }
  return new ModelError(file, problem, { cause: error });
}

/**
 * The prompt side of a model: the tokenizer(s) and text encoder(s) (two for SDXL), all that hovers
 * and CodeLens need. The language server keeps it on its main thread and lends it to the render
 * worker (TextClient in lsp/remote-text.ts), so the worker's LoadedModel is built around it
 * instead of opening a second copy of the text encoders.
 */
export interface TextPart {
  readonly tokenizer: PromptTokenizer;
  readonly providers: Pick<LoadedModel['providers'], 'textEncoder' | 'textEncoder2'>;
  /** Hidden size D of the token features, when the graphs or configs say it; else the UNet's (or a run) decides. */
  readonly declaredDim?: number;
  encodeText(prompts: readonly string[]): Promise<TextEncoding>;
  dispose(): Promise<void>;
}

/** What the language server's main thread holds of a model: no UNet, no VAE (those live in the render worker). */
export type TextModel = Pick<LoadedModel, 'folder' | 'layout' | 'tokenizer' | 'textDim' | 'vaeScaleFactor' | 'cpu' | 'providerOrder' | 'encodeText' | 'latentShape' | 'dispose'> & {
  readonly providers: Pick<LoadedModel['providers'], 'textEncoder' | 'textEncoder2'>;
};

const providerOrder = (opts: LoadOptions): readonly string[] => (opts.providers && opts.providers.length > 0 ? opts.providers : defaultProviders());

export async function loadTextPart(folder: ModelFolder, opts: LoadOptions = {}): Promise<TextPart> {
  const providers = providerOrder(opts);
  const shape = opts.shape;
  const cpu = opts.cpu ?? 'shared';
  const encoders = [{ tokenizerDir: folder.tokenizerDir, part: folder.textEncoder }, ...(folder.second ? [{ tokenizerDir: folder.second.tokenizerDir, part: folder.second.textEncoder }] : [])];
  await checkMemory(encoders.map((e) => e.part), encoders.length === 1 ? 'the text encoder' : 'the text encoders', machineMemory(), likelyPlace(providers));
  const opened: PartSession[] = [];
  try {
    const text = await openTextEncoders(
      encoders,
      async (part, sequence) => {
        const session = await openSession(part, opened.length === 0 ? 'textEncoder' : 'textEncoder2', providers, cpu, shape ? overrides({ batch: shape.batch, sequence }) : undefined);
        opened.push(session);
        return session;
      },
      !!shape,
    );
    return {
      tokenizer: text.tokenizer,
      providers: { textEncoder: text.parts[0].choice, ...(text.parts[1] ? { textEncoder2: text.parts[1].choice } : {}) },
      declaredDim: text.declaredDim,
      encodeText: (prompts) => text.encode(prompts),
      dispose: async () => {
        await Promise.all(opened.map(release));
      },
    };
  } catch (error) {
    await Promise.all(opened.map((part) => release(part).catch(() => undefined)));
    throw error;
  }
}

/** The width of the token features: what the graphs declare, else the configs, else a run of the encoder. */
async function textWidth(folder: ModelFolder, text: TextPart, unetHidden?: number): Promise<number> {
  return (
    text.declaredDim ??
    unetHidden ??
    folder.unet.crossAttentionDim ??
    // One encoder's config says nothing about the width of SDXL's two side by side.
    (folder.second ? undefined : numberOrUndefined(folder.textEncoder.config?.hidden_size)) ??
    // A fully dynamic export with no config says nothing about its width: ask the graph.
    (await text.encodeText([''])).dims[2]
  );
}

/**
 * The language server's model: the text part (opened here, or given: the server's text thread
 * holds its sessions) with the folder's sizes and layout, nothing heavy.
 */
export async function loadTextModel(folder: ModelFolder, opts: LoadOptions & { text?: TextPart } = {}): Promise<TextModel> {
  const text = opts.text ?? (await loadTextPart(folder, opts));
  const scale = folder.vaeDecoder.scaleFactor;
  const side = folder.unet.sampleSize ?? 64;
  const channels = folder.unet.inChannels ?? folder.vaeDecoder.latentChannels ?? 4;
  return {
    folder,
    // From the configs: the UNet's input names, which could correct them, are the worker's.
    layout: detectLayout(folder),
    tokenizer: text.tokenizer,
    providers: text.providers,
    providerOrder: providerOrder(opts),
    textDim: await textWidth(folder, text),
    vaeScaleFactor: scale,
    cpu: opts.cpu ?? 'shared',
    encodeText: text.encodeText,
    // The UNet's graph may fix its sample's sides; the render worker, which opens it, checks them.
    latentShape: (width, height) => (width === undefined && height === undefined ? [channels, side, side] : latentSides(channels, width, height, scale)),
    dispose: text.dispose,
  };
}

/**
 * Every part in sessions on this thread, or, given `text` (the render worker), the UNet and VAE
 * around a text part that lives elsewhere.
 */
export async function loadModel(folder: ModelFolder, opts: LoadOptions & { text?: TextPart } = {}): Promise<LoadedModel> {
  const providers = providerOrder(opts);
  const scale = folder.vaeDecoder.scaleFactor;
  const shape = opts.shape;
  const cpu = opts.cpu ?? 'shared';
  if (shape) checkImageSize(shape.width, shape.height, scale);

  // Phase 1: the prompt side, borrowed (the render worker's case) or opened here.
  const text = opts.text ?? (await loadTextPart(folder, opts));
  const ownsText = !opts.text;
  const opened: PartSession[] = [];
  const open = async (modelPart: ModelPart, part: SessionPart, freeDims?: Record<string, number>) => {
    const session = await openSession(modelPart, part, providers, cpu, freeDims);
    opened.push(session);
    return session;
  };
  try {
    // Phase 2: the heavy sessions, once the memory check says they fit.
    await checkMemory([folder.unet, folder.vaeDecoder, ...(folder.vaeEncoder ? [folder.vaeEncoder] : [])], 'the UNet and VAE', machineMemory(), likelyPlace(providers));
    const sequence = shape ? text.tokenizer.maxLength : undefined;
    const unetSession = await open(
      folder.unet,
      'unet',
      shape ? overrides({ batch: shape.batch, sequence, height: shape.height / scale, width: shape.width / scale }) : undefined,
    );
    // VAE dims stay free: exporters name the latent's and the image's sides alike ("height").
    const decoderSession = await open(folder.vaeDecoder, 'vaeDecoder');
    const encoderSession = folder.vaeEncoder ? await open(folder.vaeEncoder, 'vaeEncoder') : undefined;

    // Phase 3: each graph's inputs bound to the roles the pipeline calls them by.
    const unet = bindUnet(unetSession, folder, shape?.batch);
    const vae = bindVae(decoderSession, encoderSession, folder, unet.channels);

    // Phase 4: the model the pipeline runs.
    return {
      folder,
      layout: detectLayout(folder, unetSession.inputs.map((slot) => slot.name)),
      tokenizer: text.tokenizer,
      providers: {
        ...text.providers,
        unet: unetSession.choice,
        vaeDecoder: decoderSession.choice,
        ...(encoderSession ? { vaeEncoder: encoderSession.choice } : {}),
      },
      textDim: await textWidth(folder, text, unet.hiddenDim),
      vaeScaleFactor: scale,
      cpu,
      providerOrder: providers,
      latentShape: unet.latentShape,
      encodeText: text.encodeText,
      unet: unet.call,
      unetBatch: unet.batch,
      decode: vae.decode,
      ...(vae.encodeImage ? { encodeImage: vae.encodeImage } : {}),
      async dispose() {
        await Promise.all([...opened.map(release), ...(ownsText ? [text.dispose()] : [])]);
      },
    };
  } catch (error) {
    await Promise.all([...opened.map((part) => release(part).catch(() => undefined)), ...(ownsText ? [text.dispose().catch(() => undefined)] : [])]);
    throw error;
  }
}

