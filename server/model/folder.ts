// Opening a model folder: check the diffusers ONNX layout, read the small JSON files, find each
// graph's external weights. Nothing here loads a graph into onnxruntime (session.ts does), so
// opening is cheap enough for a status check, and every layout problem surfaces as one ModelError
// before a multi-gigabyte load starts.

import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { ModelFolder, ModelPart } from './contract';
import { errorText } from '../errors';
import { ModelError } from './errors';
import { readJsonObject } from './json';

/** What `optimum-cli export onnx` and diffusers' conversion script both write; quoted in errors. */
const LAYOUT =
  'a model folder (diffusers ONNX layout, as `optimum-cli export onnx` writes it) holds model_index.json, ' +
  'scheduler/scheduler_config.json, tokenizer/ (tokenizer.json, or vocab.json + merges.txt), ' +
  'text_encoder/model.onnx, unet/model.onnx (weights beside it in model.onnx_data or weights.pb) and vae_decoder/model.onnx';

/** SD 1.x/2.x value; SDXL and others write theirs into vae_decoder/config.json. */
const DEFAULT_SCALING_FACTOR = 0.18215;

/**
 * Graphs with external weights are small (the graph alone); parsing one finds its weight files
 * exactly. Bigger files hold their weights inline, and decoding them would only cost memory.
 */
const MAX_PARSED_GRAPH_BYTES = 64 * 1024 * 1024;

/** Names exporters give the single external weight file, for graphs too big to parse. */
const CONVENTIONAL_EXTERNAL_DATA = ['model.onnx_data', 'weights.pb'];

export async function openModelFolder(dir: string): Promise<ModelFolder> {
  dir = path.resolve(dir);
  const dirStat = await statOrUndefined(dir);
  if (!dirStat) throw new ModelError(dir, `does not exist; ${LAYOUT}`);
  if (!dirStat.isDirectory()) throw new ModelError(dir, `is a file, not a model folder; ${LAYOUT}`);

  const at = (...parts: string[]) => path.join(dir, ...parts);
  const indexFile = at('model_index.json');
  if (!(await statOrUndefined(indexFile))) {
    const required = ['model_index.json', 'scheduler/scheduler_config.json', 'tokenizer', 'text_encoder/model.onnx', 'unet/model.onnx', 'vae_decoder/model.onnx'];
    const missing: string[] = [];
    for (const entry of required) if (!(await statOrUndefined(at(entry)))) missing.push(entry);
    throw new ModelError(dir, `is not a model folder: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing; ${LAYOUT}`);
  }
  const index = await readJsonObject(indexFile);
  const schedulerConfig = await readJsonObject(at('scheduler', 'scheduler_config.json'));

  const tokenizerDir = at('tokenizer');
  await checkTokenizer(tokenizerDir);

  const textEncoder = await openPart(at('text_encoder'));
  const second = await openSecondEncoder(dir);
  const unet = await openPart(at('unet'));
  const vaeDecoder = await openPart(at('vae_decoder'));
  const vaeEncoder = (await statOrUndefined(at('vae_encoder', 'model.onnx'))) ? await openPart(at('vae_encoder')) : undefined;

  const blockOutChannels = vaeDecoder.config?.block_out_channels;
  const warnings: string[] = [];
  const policyOnnx = at('adadiff', 'policy.onnx');
  const policyJson = at('adadiff', 'policy.json');
  const [hasPolicyOnnx, hasPolicyJson] = [!!(await statOrUndefined(policyOnnx)), !!(await statOrUndefined(policyJson))];
  if (hasPolicyOnnx !== hasPolicyJson) {
    warnings.push(`${hasPolicyOnnx ? policyJson : policyOnnx} is missing, so the step policy beside it is ignored and baseline steps are used`);
  }

  const nameOrPath = index._name_or_path;
  // Every file that shapes the image: a retrained text encoder or VAE, another timestep spacing in
  // the scheduler config or an edited vocabulary must change the hash too, or asset locks, reward
  // tables and calibrations keyed by it would call stale results current.
  const tokenizerFiles = [];
  for (const tokDir of [tokenizerDir, ...(second ? [second.tokenizerDir] : [])]) {
    for (const name of TOKENIZER_FILES) if (await statOrUndefined(path.join(tokDir, name))) tokenizerFiles.push(path.join(tokDir, name));
  }
  const hashFiles = [
    at('scheduler', 'scheduler_config.json'),
    ...tokenizerFiles,
    ...[textEncoder, ...(second ? [second.textEncoder] : []), unet, vaeDecoder].flatMap((part) => [part.onnx, ...part.externalData]),
  ];
  return {
    dir,
    name: typeof nameOrPath === 'string' && nameOrPath.trim() ? nameOrPath.trim() : path.basename(dir),
    index,
    schedulerConfig,
    tokenizerDir,
    textEncoder: { ...textEncoder, maxPositions: configInteger(textEncoder, 'max_position_embeddings') },
    ...(second ? { second } : {}),
    unet: {
      ...unet,
      sampleSize: configInteger(unet, 'sample_size'),
      inChannels: configInteger(unet, 'in_channels'),
      crossAttentionDim: configInteger(unet, 'cross_attention_dim'),
      timeCondProjDim: configInteger(unet, 'time_cond_proj_dim'),
      additionEmbedType: typeof unet.config?.addition_embed_type === 'string' ? unet.config.addition_embed_type : undefined,
    },
    vaeDecoder: {
      ...vaeDecoder,
      scalingFactor: configNumber(vaeDecoder, 'scaling_factor') ?? DEFAULT_SCALING_FACTOR,
      latentChannels: configInteger(vaeDecoder, 'latent_channels'),
      scaleFactor: Array.isArray(blockOutChannels) && blockOutChannels.length > 0 ? 2 ** (blockOutChannels.length - 1) : 8,
    },
    vaeEncoder,
    policy: hasPolicyOnnx && hasPolicyJson ? { onnx: policyOnnx, json: policyJson } : undefined,
    warnings,
    hash: () => hashFilesCached(hashFiles),
  };
}

async function checkTokenizer(tokenizerDir: string): Promise<void> {
  const hasTokenizerJson = await statOrUndefined(path.join(tokenizerDir, 'tokenizer.json'));
  const hasBpeFiles =
    (await statOrUndefined(path.join(tokenizerDir, 'vocab.json'))) && (await statOrUndefined(path.join(tokenizerDir, 'merges.txt')));
  if (!hasTokenizerJson && !hasBpeFiles) {
    throw new ModelError(tokenizerDir, 'has neither tokenizer.json nor vocab.json + merges.txt, so prompts cannot be tokenized');
  }
}

/**
 * SDXL's tokenizer_2/ and text_encoder_2/. Either one alone is an incomplete export: the UNet's
 * cross-attention expects both encoders' features, so generating from one would be garbage.
 */
async function openSecondEncoder(dir: string): Promise<ModelFolder['second']> {
  const tokenizerDir = path.join(dir, 'tokenizer_2');
  const encoderDir = path.join(dir, 'text_encoder_2');
  const [hasTokenizer, hasEncoder] = [!!(await statOrUndefined(tokenizerDir)), !!(await statOrUndefined(encoderDir))];
  if (!hasTokenizer && !hasEncoder) return undefined;
  if (!hasEncoder) throw new ModelError(encoderDir, 'is missing: an SDXL export has text_encoder_2/model.onnx beside tokenizer_2/');
  if (!hasTokenizer) throw new ModelError(tokenizerDir, 'is missing: an SDXL export has tokenizer_2/ beside text_encoder_2/');
  await checkTokenizer(tokenizerDir);
  const textEncoder = await openPart(encoderDir);
  return { tokenizerDir, textEncoder: { ...textEncoder, maxPositions: configInteger(textEncoder, 'max_position_embeddings') } };
}

async function openPart(partDir: string): Promise<ModelPart> {
  const onnxFile = path.join(partDir, 'model.onnx');
  const stat = await statOrUndefined(onnxFile);
  if (!stat || !stat.isFile()) {
    throw new ModelError(onnxFile, `is missing; ${LAYOUT}`);
  }
  if (stat.size === 0) throw new ModelError(onnxFile, 'is empty (an interrupted download or export?)');
  const configFile = path.join(partDir, 'config.json');
  const config = (await statOrUndefined(configFile)) ? await readJsonObject(configFile) : undefined;
  return { onnx: onnxFile, externalData: await externalDataFiles(onnxFile, stat.size), config };
}

/**
 * The external weight files a graph refers to, checked to exist: a graph without its weights
 * fails deep inside onnxruntime with a message that does not say which file to fetch.
 */
export async function externalDataFiles(onnxFile: string, size: number): Promise<string[]> {
  const dir = path.dirname(onnxFile);
  let locations: string[] | undefined;
  if (size <= MAX_PARSED_GRAPH_BYTES) {
    try {
      locations = externalLocations(onnx.ModelProto.decode(await fs.readFile(onnxFile)));
    } catch {
      // Truncated or not ONNX: leave the verdict to onnxruntime when the session is created, so
      // the user sees its own words about the file (session.ts wraps them in a ModelError).
      return [];
    }
  }
  if (!locations) {
    const found: string[] = [];
    for (const name of CONVENTIONAL_EXTERNAL_DATA) if (await statOrUndefined(path.join(dir, name))) found.push(name);
    for (const name of found) await checkExternalData(onnxFile, path.join(dir, name));
    return found.map((name) => path.join(dir, name));
  }
  const files: string[] = [];
  for (const location of locations) {
    const file = path.resolve(dir, location);
    if (path.relative(dir, file).startsWith('..')) {
      throw new ModelError(onnxFile, `refers to external weights outside its folder (${location}); onnxruntime refuses those`);
    }
    const stat = await statOrUndefined(file);
    if (!stat) {
      throw new ModelError(file, `is missing: ${path.relative(path.dirname(dir), onnxFile)} keeps its weights in this external data file, which must sit beside it`);
    }
    await checkExternalData(onnxFile, file);
    files.push(file);
  }
  return files;
}

/**
 * An external weight file must be a regular file inside the graph's folder once symlinks are
 * resolved: onnxruntime refuses any other (after a load that can take minutes), and hashing a
 * symlink to a device such as /dev/zero would never end.
 */
async function checkExternalData(onnxFile: string, file: string): Promise<void> {
  const [real, realDir] = await Promise.all([fs.realpath(file), fs.realpath(path.dirname(onnxFile))]);
  if (!(await fs.stat(real)).isFile()) throw new ModelError(file, 'is not a regular file (a device, pipe or folder, perhaps through a symlink); external weights are a plain file');
  if (path.relative(realDir, real).startsWith('..')) {
    throw new ModelError(
      file,
      `is a symlink to ${real}, outside ${path.dirname(onnxFile)}: onnxruntime loads external weights only from inside the graph's folder. ` +
        'Copy the model so that its files are real (`huggingface-cli download REPO --local-dir DIR` writes them so, where the Hugging Face cache links them)',
    );
  }
}

function externalLocations(model: onnx.IModelProto): string[] {
  const seen = new Set<string>();
  const visitTensor = (t: onnx.ITensorProto | null | undefined) => {
    if (t?.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return;
    const location = t.externalData?.find((e) => e.key === 'location')?.value;
    if (location) seen.add(location);
  };
  const visitGraph = (g: onnx.IGraphProto | null | undefined) => {
    if (!g) return;
    g.initializer?.forEach(visitTensor);
    for (const node of g.node ?? []) {
      for (const attr of node.attribute ?? []) {
        visitTensor(attr.t);
        attr.tensors?.forEach(visitTensor);
        visitGraph(attr.g); // If/Loop bodies can hold initializers too
        attr.graphs?.forEach(visitGraph);
      }
    }
  };
  visitGraph(model.graph);
  return [...seen];
}

function configNumber(part: ModelPart, key: string): number | undefined {
  return configValue(part, key, false);
}

function configInteger(part: ModelPart, key: string): number | undefined {
  return configValue(part, key, true);
}

function configValue(part: ModelPart, key: string, integer: boolean): number | undefined {
  let value = part.config?.[key];
  // diffusers writes sample_size as [h, w] for some non-square models; the first is the height.
  if (Array.isArray(value) && value.length > 0) value = value[0];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    const kind = integer ? 'a positive whole number' : 'a positive number';
    throw new ModelError(path.join(path.dirname(part.onnx), 'config.json'), `${key} must be ${kind}, found ${JSON.stringify(value)}`);
  }
  return value;
}

async function statOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(file);
  } catch {
    return undefined;
  }
}

/** The tokenizer folder as diffusers writes it: what tokenizer.ts reads, and the special-token map beside it. */
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

// Real UNets are gigabytes: hash each file set once per process and again only when a file's
// size or mtime changes. The promise is cached so concurrent callers share one read.
const hashCache = new Map<string, Promise<string>>();

async function hashFilesCached(files: readonly string[]): Promise<string> {
  const stats = await Promise.all(files.map((f) => fs.stat(f).catch((error) => { throw new ModelError(f, `cannot be read (${errorText(error)})`, { cause: error }); })));
  const key = files.map((f, i) => `${f}\0${stats[i].size}\0${stats[i].mtimeMs}`).join('\n');
  let hash = hashCache.get(key);
  if (!hash) {
    hash = hashFiles(files);
    hashCache.set(key, hash);
    hash.catch(() => hashCache.delete(key));
  }
  return hash;
}

async function hashFiles(files: readonly string[]): Promise<string> {
  const sha = createHash('sha256');
  for (const file of files) {
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) sha.update(chunk as Buffer);
    } catch (error) {
      throw new ModelError(file, `cannot be read (${errorText(error)})`, { cause: error });
    }
  }
  return sha.digest('hex');
}
