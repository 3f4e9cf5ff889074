// The model layouts people run (issue 14), each on its small random-weight fixture: SD 1.5-style,
// SD 2.x v-prediction at 768 px, SDXL (fp32 and fp16), SDXL-Turbo and LCM. Each loads with what its own files
// say (scheduler, guidance, steps), renders an image of its size and trains a step policy; and the
// inputs only these layouts have are checked against the graphs themselves: SDXL's two encoders'
// penultimate states and text_embeds, time_ids, LCM's guidance embedding, and when guidance runs
// no unconditional batch.
import assert from 'node:assert/strict';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadPolicy } from '../../server/adadiff/policy';
import { trainPolicy } from '../../server/adadiff/train-policy';
import { Engine } from '../../server/engine';
import { ModelError } from '../../server/model/errors';
import { openModelFolder } from '../../server/model/folder';
import { detectLayout, FEW_STEP_CANDIDATES, LCM_GUIDANCE } from '../../server/model/layout';
import { loadModel } from '../../server/model/session';
import { loadTokenizer } from '../../server/model/tokenizer';
import { guidanceEmbedding, sdxlTimeIds } from '../../server/model/unet-conditioning';
import { generate } from '../../server/pipeline/generate';
import { decodePng } from '../../server/pipeline/png';
import { OPTIMUM_DIMS, Rng, textEncoder } from '../fixtures/fixture-models';
import { ensureFixtures, ensureLayoutFixtures, SDXL_WIDTHS } from '../fixtures/make-fixtures';
import { tempDirAsync } from '../temp-dirs';

const tmp = tempDirAsync('adadiff-layouts-');
const engine = tmp.then((dir) => new Engine({ cacheDir: dir, providers: ['cpu'] }));
after(async () => {
  await (await engine).dispose();
  await rm(await tmp, { recursive: true, force: true });
});

const folders = async () => ({ 'sd1.5': (await ensureFixtures()).optimum, ...(await ensureLayoutFixtures()) });

interface Expected {
  kind: 'sd' | 'sdxl';
  name: string;
  size: number;
  scheduler: string;
  guidance: number;
  baselineSteps: number;
  textDim: number;
  candidates: readonly number[];
  source: string;
}
const SD_DIM = 32;
const XL_DIM = SDXL_WIDTHS.first + SDXL_WIDTHS.second;
const EXPECTED: Record<string, Expected> = {
  'sd1.5': { kind: 'sd', name: 'SD 1.x/2.x-style', size: 64, scheduler: 'ddim', guidance: 7, baselineSteps: 50, textDim: SD_DIM, candidates: [2, 4, 8], source: 'text_encoder.last_hidden_state' },
  'sd2-v': { kind: 'sd', name: 'SD 1.x/2.x-style', size: 768, scheduler: 'ddim', guidance: 7, baselineSteps: 50, textDim: SD_DIM, candidates: [2, 4, 8], source: 'text_encoder.last_hidden_state' },
  sdxl: { kind: 'sdxl', name: 'SDXL', size: 128, scheduler: 'euler', guidance: 7, baselineSteps: 50, textDim: XL_DIM, candidates: [2, 4, 8], source: 'text_encoder+text_encoder_2.hidden_states[-2]' },
  'sdxl-fp16': { kind: 'sdxl', name: 'SDXL', size: 128, scheduler: 'euler', guidance: 7, baselineSteps: 50, textDim: XL_DIM, candidates: [2, 4, 8], source: 'text_encoder+text_encoder_2.hidden_states[-2]' },
  'sdxl-turbo': { kind: 'sdxl', name: 'SDXL', size: 64, scheduler: 'euler-a', guidance: 0, baselineSteps: 4, textDim: XL_DIM, candidates: FEW_STEP_CANDIDATES, source: 'text_encoder+text_encoder_2.hidden_states[-2]' },
  lcm: { kind: 'sd', name: 'SD 1.x/2.x-style', size: 64, scheduler: 'lcm', guidance: LCM_GUIDANCE, baselineSteps: 4, textDim: SD_DIM, candidates: FEW_STEP_CANDIDATES, source: 'text_encoder.last_hidden_state' },
};

const PROMPTS = ['a red apple', 'a castle on a hill at sunset, ornate, intricate', 'a cat', 'portrait of an old sailor, detailed'];

describe('every layout loads with its own settings, renders its size and trains a policy', () => {
  for (const [layout, want] of Object.entries(EXPECTED)) {
    test(layout, async () => {
      const dir = (await folders())[layout as keyof Awaited<ReturnType<typeof folders>>];
      const handle = await (await engine).open(dir);
      const model = handle.model;
      assert.equal(model.layout.kind, want.kind);
      assert.equal(model.layout.name, want.name);
      assert.equal(model.textDim, want.textDim);
      assert.equal(model.layout.prediction, layout === 'sd2-v' ? 'v_prediction' : 'epsilon');
      const g = handle.generation();
      assert.deepEqual([g.scheduler, g.guidance, g.baselineSteps], [want.scheduler, want.guidance, want.baselineSteps]);

      // No flags: the model's size, scheduler and guidance. SD 2.x renders 768 px; two steps keep it quick.
      const r = await handle.render({ prompt: 'a red apple on the table', steps: layout === 'sd2-v' ? 2 : undefined });
      const png = decodePng(r.png);
      assert.deepEqual([png.width, png.height, r.parameters.width, r.parameters.height], [want.size, want.size, want.size, want.size]);
      assert.equal(r.parameters.scheduler, want.scheduler);
      assert.equal(r.parameters.steps, layout === 'sd2-v' ? 2 : want.baselineSteps);
      assert.ok(new Set(png.data).size > 16, 'the image is not flat');

      const outDir = path.join(await tmp, `policy-${layout}`);
      const few = model.layout.candidates !== undefined;
      const result = await trainPolicy(model, {
        scheduler: g.scheduler,
        guidance: g.guidance,
        // Few-step models train over their own candidates when none are given.
        ...(few ? {} : { candidates: [2, 4, 8] }),
        ...(want.size > 128 ? { width: 64, height: 64 } : {}),
        prompts: PROMPTS,
        seeds: [0],
        training: { epochs: 3, architecture: { hiddenDim: 8, mlpDim: 8 } },
        outDir,
        cacheDir: path.join(outDir, 'cache'),
      });
      const m = result.manifest;
      assert.deepEqual(m.candidates, [...want.candidates]);
      assert.deepEqual([m.scheduler, m.guidance], [want.scheduler, want.guidance]);
      assert.deepEqual(m.features, { source: want.source, tokens: 77, dim: want.textDim });
      const policy = await loadPolicy(outDir);
      assert.ok(policy);
      try {
        const text = await model.encodeText(['a green apple']);
        const mask = new Float32Array(77).map((_, i) => (i < model.tokenizer.encode('a green apple').tokens ? 1 : 0));
        assert.ok(want.candidates.includes((await policy.predict(text.hidden, text.dims, mask)).steps));
      } finally {
        await policy.dispose();
      }
    });
  }
});

/** Runs one graph of a fixture with plain onnxruntime, for what the pipeline should have fed it. */
async function runGraph(file: string, feeds: Record<string, ort.Tensor>, output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file);
  try {
    return (await session.run(feeds))[output].data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('SDXL', () => {
  test('text features: both encoders\' hidden_states[-2] side by side, text_embeds from the second, each with its own tokenizer', async () => {
    const dir = (await ensureLayoutFixtures()).sdxl;
    const model = (await (await engine).open(dir)).model;
    const prompts = ['', 'a red apple'];
    const text = await model.encodeText(prompts);
    assert.deepEqual(text.dims, [2, 77, XL_DIM]);
    const ids = async (tokenizerDir: string) => {
      const tokenizer = await loadTokenizer(path.join(dir, tokenizerDir));
      return new ort.Tensor('int64', BigInt64Array.from(prompts.flatMap((p) => tokenizer.encode(p).ids), BigInt), [2, 77]);
    };
    const ids2 = await ids('tokenizer_2');
    // tokenizer_2 pads with "!", tokenizer with EOS: each encoder gets its own tokenizer's ids.
    assert.notDeepEqual(ids2.data, (await ids('tokenizer')).data);
    const penultimate = `hidden_states.${SDXL_WIDTHS.layers - 1}`;
    const first = await runGraph(path.join(dir, 'text_encoder/model.onnx'), { input_ids: await ids('tokenizer') }, penultimate);
    const second = await runGraph(path.join(dir, 'text_encoder_2/model.onnx'), { input_ids: ids2 }, penultimate);
    const expected = new Float32Array(2 * 77 * XL_DIM);
    for (let row = 0; row < 2 * 77; row++) {
      expected.set(first.subarray(row * SDXL_WIDTHS.first, (row + 1) * SDXL_WIDTHS.first), row * XL_DIM);
      expected.set(second.subarray(row * SDXL_WIDTHS.second, (row + 1) * SDXL_WIDTHS.second), row * XL_DIM + SDXL_WIDTHS.first);
    }
    assert.equal(maxDiff(text.hidden, expected), 0);
    const textEmbeds = await runGraph(path.join(dir, 'text_encoder_2/model.onnx'), { input_ids: ids2 }, 'text_embeds');
    assert.equal(maxDiff(text.pooled!, textEmbeds), 0);
  });

  test('the UNet gets text_embeds and time_ids (height, width, 0, 0, height, width) of the image it makes', async () => {
    assert.deepEqual(sdxlTimeIds(1024, 768), [768, 1024, 0, 0, 768, 1024]);
    const dir = (await ensureLayoutFixtures()).sdxl;
    const model = (await (await engine).open(dir)).model;
    const text = await model.encodeText(['a red apple']);
    const [c, h, w] = model.latentShape(96, 64);
    const sample = Float32Array.from({ length: c * h * w }, (_, i) => Math.sin(i));
    const out = await model.unet(sample, [1, c, h, w], 500, text);
    const feeds = (timeIds: number[]) => ({
      sample: new ort.Tensor('float32', sample, [1, c, h, w]),
      timestep: new ort.Tensor('float32', Float32Array.from([500]), []),
      encoder_hidden_states: new ort.Tensor('float32', text.hidden, text.dims),
      text_embeds: new ort.Tensor('float32', text.pooled!, [1, SDXL_WIDTHS.projection]),
      time_ids: new ort.Tensor('float32', Float32Array.from(timeIds), [1, 6]),
    });
    const unetFile = path.join(dir, 'unet/model.onnx');
    assert.equal(maxDiff(out, await runGraph(unetFile, feeds([64, 96, 0, 0, 64, 96]), 'out_sample')), 0);
    assert.ok(maxDiff(out, await runGraph(unetFile, feeds([96, 64, 0, 0, 96, 64]), 'out_sample')) > 1e-4, 'the fixture reads time_ids');
  });

  test('force_zeros_for_empty_prompt: without a negative prompt the unconditional row is zeros, as the config says', async (t) => {
    const dir = (await ensureLayoutFixtures()).sdxl;
    const copy = path.join(await tmp, 'sdxl-no-zeros');
    await cp(dir, copy, { recursive: true });
    const indexFile = path.join(copy, 'model_index.json');
    await writeFile(indexFile, JSON.stringify({ ...JSON.parse(await readFile(indexFile, 'utf8')), force_zeros_for_empty_prompt: false }));
    const zeros = (await (await engine).open(dir)).model;
    const encoded = await loadModel(await openModelFolder(copy), { providers: ['cpu'] });
    t.after(() => encoded.dispose());
    assert.equal(zeros.layout.zeroEmptyNegative, true);
    assert.equal(encoded.layout.zeroEmptyNegative, false);
    const image = async (model: typeof zeros, negativePrompt?: string) =>
      (await generate(model, { prompt: 'a red apple', negativePrompt, steps: 3, seed: 1, guidance: 7, scheduler: 'euler' })).image.data;
    assert.ok(maxDiff(await image(zeros), await image(encoded)) > 0, 'zeros, not the encoding of ""');
    assert.equal(maxDiff(await image(zeros, 'blurry'), await image(encoded, 'blurry')), 0, 'a negative prompt is encoded either way');
  });

  test('a text encoder exported without its hidden states is refused with how to export it', async () => {
    const copy = path.join(await tmp, 'sdxl-no-hidden-states');
    await cp((await ensureLayoutFixtures()).sdxl, copy, { recursive: true });
    // What a plain CLIPTextModel export has: last_hidden_state and pooler_output only.
    const vocabSize = Object.keys(JSON.parse(await readFile(path.join(copy, 'tokenizer/vocab.json'), 'utf8'))).length;
    await textEncoder({ vocabSize, idsType: 'int64', float: 'float32', dims: OPTIMUM_DIMS }, new Rng(1)).save(path.join(copy, 'text_encoder/model.onnx'));
    await assert.rejects(loadModel(await openModelFolder(copy), { providers: ['cpu'] }), (err: Error) =>
      err instanceof ModelError && /text_encoder[\\/]model\.onnx: has no hidden_states\.N outputs .*penultimate layer.*optimum-cli export onnx/.test(err.message),
    );
  });

  test('a folder with tokenizer_2 but no text_encoder_2 is refused with what is missing', async () => {
    const copy = path.join(await tmp, 'sdxl-half');
    await cp((await ensureLayoutFixtures()).sdxl, copy, { recursive: true });
    await rm(path.join(copy, 'text_encoder_2'), { recursive: true });
    await assert.rejects(openModelFolder(copy), (err: Error) => err instanceof ModelError && /text_encoder_2: is missing: an SDXL export has text_encoder_2\/model.onnx/.test(err.message));
  });
});

describe('few-step models', () => {
  test('LCM: the guidance goes in as the embedding of w - 1, never as an unconditional batch (so no negative prompt)', async () => {
    // Four wide: half = 2 frequencies, 1 and 1e-4 (exp(-ln(10000) * i / (half - 1))).
    const e = guidanceEmbedding(7.5, 4);
    const args = [7500, 0.75];
    assert.ok(maxDiff(e, [Math.sin(args[0]), Math.sin(args[1]), Math.cos(args[0]), Math.cos(args[1])]) < 1e-3);
    assert.equal(guidanceEmbedding(1, 5)[4], 0, 'an odd width is zero-padded');

    const dir = (await ensureLayoutFixtures()).lcm;
    const model = (await (await engine).open(dir)).model;
    assert.equal(model.layout.guidanceEmbedding, true);
    const text = await model.encodeText(['a red apple']);
    const [c, h, w] = model.latentShape();
    const sample = Float32Array.from({ length: c * h * w }, (_, i) => Math.cos(i));
    const out = await model.unet(sample, [1, c, h, w], 499, text, LCM_GUIDANCE);
    const feeds = (embedded: number) => ({
      sample: new ort.Tensor('float32', sample, [1, c, h, w]),
      timestep: new ort.Tensor('float32', Float32Array.from([499]), []),
      encoder_hidden_states: new ort.Tensor('float32', text.hidden, text.dims),
      timestep_cond: new ort.Tensor('float32', guidanceEmbedding(embedded, 32), [1, 32]),
    });
    const unetFile = path.join(dir, 'unet/model.onnx');
    assert.equal(maxDiff(out, await runGraph(unetFile, feeds(LCM_GUIDANCE - 1), 'out_sample')), 0);
    assert.ok(maxDiff(out, await runGraph(unetFile, feeds(LCM_GUIDANCE), 'out_sample')) > 1e-4, 'w - 1, not w');

    const image = async (negativePrompt?: string, guidance = LCM_GUIDANCE) =>
      (await generate(model, { prompt: 'a red apple', negativePrompt, steps: 4, seed: 2, guidance, scheduler: 'lcm' })).image.data;
    assert.equal(maxDiff(await image(), await image('blurry')), 0, 'no unconditional batch');
    assert.ok(maxDiff(await image(), await image(undefined, 3)) > 0, 'the guidance still steers the image');
  });

  test('Turbo: guidance 0 runs no unconditional batch; Euler ancestral is seeded', async () => {
    const dir = (await ensureLayoutFixtures())['sdxl-turbo'];
    const model = (await (await engine).open(dir)).model;
    const image = async (seed: number, negativePrompt?: string) =>
      (await generate(model, { prompt: 'a red apple', negativePrompt, steps: 2, seed, guidance: 0, scheduler: 'euler-a' })).image.data;
    assert.equal(maxDiff(await image(3), await image(3, 'blurry')), 0, 'guidance 0: the negative prompt is not run');
    assert.equal(maxDiff(await image(3), await image(3)), 0, 'same seed, same image');
    assert.ok(maxDiff(await image(3), await image(4)) > 0, 'another seed, another image');
  });
});

describe('detectLayout on the published configs of the full-size models', () => {
  /** The fields of a ModelFolder detectLayout reads, from each repository's JSON files. */
  const folder = (f: { scheduler: Record<string, unknown>; crossAttentionDim: number; second?: boolean; timeCondProjDim?: number; index?: Record<string, unknown> }) =>
    ({
      index: f.index ?? {},
      schedulerConfig: f.scheduler,
      textEncoder: { onnx: 'text_encoder/model.onnx', externalData: [] },
      ...(f.second ? { second: { tokenizerDir: 'tokenizer_2', textEncoder: { onnx: 'text_encoder_2/model.onnx', externalData: [] } } } : {}),
      unet: { onnx: 'unet/model.onnx', externalData: [], crossAttentionDim: f.crossAttentionDim, timeCondProjDim: f.timeCondProjDim, additionEmbedType: f.second ? 'text_time' : undefined },
    }) as unknown as Parameters<typeof detectLayout>[0];
  const betas = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' };

  test('SD 1.5 ships PNDM, which AdaDiff lacks: DDIM by default, and doctor says why', () => {
    const l = detectLayout(folder({ scheduler: { _class_name: 'PNDMScheduler', ...betas, skip_prk_steps: true }, crossAttentionDim: 768 }));
    assert.deepEqual([l.kind, l.name, l.recommended, l.fewStep], ['sd', 'SD 1.x', {}, undefined]);
    assert.match(l.notes[0], /PNDMScheduler, which AdaDiff does not implement/);
  });

  test('SD 2.1: v-prediction, DDIM; SDXL base: Euler, zeros for an empty negative prompt', () => {
    const sd2 = detectLayout(folder({ scheduler: { _class_name: 'DDIMScheduler', ...betas, prediction_type: 'v_prediction' }, crossAttentionDim: 1024 }));
    assert.deepEqual([sd2.name, sd2.prediction, sd2.recommended], ['SD 2.x', 'v_prediction', { scheduler: 'ddim' }]);
    const xl = detectLayout(folder({ scheduler: { _class_name: 'EulerDiscreteScheduler', ...betas, timestep_spacing: 'leading' }, crossAttentionDim: 2048, second: true, index: { force_zeros_for_empty_prompt: true } }));
    assert.deepEqual([xl.kind, xl.recommended, xl.zeroEmptyNegative, xl.fewStep], ['sdxl', { scheduler: 'euler' }, true, undefined]);
    const karras = detectLayout(folder({ scheduler: { _class_name: 'DPMSolverMultistepScheduler', use_karras_sigmas: true }, crossAttentionDim: 2048, second: true, index: { force_zeros_for_empty_prompt: false } }));
    assert.deepEqual([karras.recommended, karras.zeroEmptyNegative], [{ scheduler: 'dpmpp-2m-karras' }, false]);
  });

  test('SD-Turbo and SDXL-Turbo: Euler ancestral, trailing -> guidance 0, 4 steps, few-step candidates', () => {
    for (const [dim, second] of [[1024, false], [2048, true]] as const) {
      const l = detectLayout(folder({ scheduler: { _class_name: 'EulerAncestralDiscreteScheduler', ...betas, timestep_spacing: 'trailing' }, crossAttentionDim: dim, second }));
      assert.deepEqual([l.fewStep, l.recommended, l.candidates], ['turbo', { scheduler: 'euler-a', guidance: 0, baselineSteps: 4 }, FEW_STEP_CANDIDATES]);
    }
    // Euler ancestral with leading spacing is an ordinary community SD 1.5 setup, not a distilled model.
    const community = detectLayout(folder({ scheduler: { _class_name: 'EulerAncestralDiscreteScheduler', ...betas, timestep_spacing: 'leading' }, crossAttentionDim: 768 }));
    assert.deepEqual([community.fewStep, community.recommended], [undefined, { scheduler: 'euler-a' }]);
  });

  test('LCM: a distilled UNet (time_cond_proj_dim) takes the guidance embedding; an LCM-LoRA fused into a base UNet runs unguided', () => {
    const lcm = { _class_name: 'LCMScheduler', ...betas, original_inference_steps: 50 };
    const distilled = detectLayout(folder({ scheduler: lcm, crossAttentionDim: 768, timeCondProjDim: 256 }));
    assert.deepEqual([distilled.guidanceEmbedding, distilled.recommended], [true, { scheduler: 'lcm', guidance: LCM_GUIDANCE, baselineSteps: 4 }]);
    const lora = detectLayout(folder({ scheduler: lcm, crossAttentionDim: 768 }));
    assert.deepEqual([lora.guidanceEmbedding, lora.recommended], [false, { scheduler: 'lcm', guidance: 1, baselineSteps: 4 }]);
    // The graph's inputs win over unet/config.json: an export whose UNet takes timestep_cond is LCM.
    const fromGraph = detectLayout(folder({ scheduler: { _class_name: 'DDIMScheduler' }, crossAttentionDim: 768 }), ['sample', 'timestep', 'encoder_hidden_states', 'timestep_cond']);
    assert.deepEqual([fromGraph.guidanceEmbedding, fromGraph.fewStep], [true, 'lcm']);
  });
});
