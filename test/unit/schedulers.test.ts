// Scheduler tests against the published formulas (diffusers' set_timesteps / step) and behaviour
// under a perfect "oracle" model that knows the clean sample x0.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { Scheduler, SchedulerConfig, SchedulerName } from '../../server/model/contract.js';
import {
  createScheduler,
  resolveSchedulerConfig,
  type DpmSolverPP2MScheduler,
  type EulerScheduler,
} from '../../server/pipeline/schedulers/index.js';
import { makeAlphasCumprod, sigmasFromAlphasCumprod } from '../../server/pipeline/schedulers/noise-schedule.js';

const SD: Partial<SchedulerConfig> = { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 };
const SD_FULL = resolveSchedulerConfig({ ...SD, _class_name: 'DDIMScheduler' });

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);
}
function closeRel(actual: number, expected: number, rel: number, what: string): void {
  close(actual, expected, rel * Math.abs(expected), what);
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
/** numpy's round (ties to even), written out independently of the module under test. */
function npRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Seeded standard normals (mulberry32 + Box-Muller), so failures reproduce. */
function gaussian(seed: number): (n: number) => Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(uniform(), 1e-12);
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
    }
    return out;
  };
}

// Independent alphas_cumprod for SD's scaled_linear schedule, straight from the definition.
function sdAlphasCumprod(): number[] {
  const T = 1000;
  const a = Math.sqrt(0.00085);
  const b = Math.sqrt(0.012);
  const out: number[] = [];
  let acc = 1;
  for (let i = 0; i < T; i++) {
    const beta = (a + ((b - a) * i) / (T - 1)) ** 2;
    acc *= 1 - beta;
    out.push(acc);
  }
  return out;
}
const AC = sdAlphasCumprod();

describe('noise schedule', () => {
  it('scaled_linear 0.00085..0.012 over 1000 steps', () => {
    const ac = makeAlphasCumprod(SD_FULL);
    assert.equal(ac.length, 1000);
    close(ac[999]!, 0.0046601, 1e-6, 'alphas_cumprod[999]');
    close(ac[999]!, AC[999]!, 1e-12, 'alphas_cumprod[999] vs independent');
    const sigmas = sigmasFromAlphasCumprod(ac);
    // diffusers tabulates in float32, so its quoted 14.614655 / 0.029168 carry ~1e-6 relative
    // error; we compute in float64 (numpy float64 gives 14.614641229 and 0.0291671582).
    closeRel(sigmas[999]!, 14.614655, 2e-6, 'sigma_max');
    close(sigmas[999]!, 14.614641229333639, 1e-9, 'sigma_max (float64)');
    close(sigmas[0]!, 0.029168, 1e-6, 'sigma_min');
    close(sigmas[0]!, 0.029167158151720367, 1e-12, 'sigma_min (float64)');
  });

  it('linear and squaredcos_cap_v2 betas', () => {
    const lin = makeAlphasCumprod(resolveSchedulerConfig({}));
    close(lin[0]!, 1 - 0.0001, 1e-15, 'linear abar[0]');
    close(lin[1]!, (1 - 0.0001) * (1 - (0.0001 + (0.02 - 0.0001) / 999)), 1e-15, 'linear abar[1]');
    const cos = makeAlphasCumprod(resolveSchedulerConfig({ beta_schedule: 'squaredcos_cap_v2' }));
    // For the cosine schedule abar_t = f((t+1)/T) / f(0) exactly (product telescopes) until the 0.999 cap.
    const f = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    close(cos[499]!, f(500 / 1000) / f(0), 1e-12, 'cosine abar[499]');
    assert.ok(cos[999]! >= 0 && cos[999]! < 1e-4, 'cosine schedule ends near pure noise');
  });
});

describe('timesteps', () => {
  it('DDIM leading, N=20, steps_offset 1: 951, 901, ..., 1', () => {
    const s = createScheduler('ddim', { ...SD, timestep_spacing: 'leading', steps_offset: 1 }, 20);
    assert.deepEqual(s.timesteps, Array.from({ length: 20 }, (_, i) => 951 - 50 * i));
  });

  it('DDIM trailing: round(T - i*T/N) - 1', () => {
    for (const N of [20, 7, 3, 61]) {
      const s = createScheduler('ddim', { ...SD, timestep_spacing: 'trailing' }, N);
      const expected = Array.from({ length: N }, (_, i) => npRound(1000 - (i * 1000) / N) - 1);
      assert.deepEqual(s.timesteps, expected, `N=${N}`);
    }
    assert.deepEqual(createScheduler('ddim', { ...SD, timestep_spacing: 'trailing' }, 20).timesteps.slice(0, 3), [999, 949, 899]);
  });

  it('DDIM linspace: round-half-even(i * 999 / (N-1)), descending', () => {
    for (const N of [20, 7, 2]) {
      const s = createScheduler('ddim', { ...SD, timestep_spacing: 'linspace' }, N);
      const expected = Array.from({ length: N }, (_, i) => npRound((i * 999) / (N - 1))).reverse();
      assert.deepEqual(s.timesteps, expected, `N=${N}`);
    }
    // 999/6 = 166.5 rounds to 166 (ties to even), as numpy does.
    assert.equal(createScheduler('ddim', { ...SD, timestep_spacing: 'linspace' }, 7).timesteps[5], 166);
  });

  it('Euler linspace N=25: sigmas 14.614647, 11.435942, 9.076809 ... 0.0291675, 0', () => {
    const s = createScheduler('euler', { ...SD, timestep_spacing: 'linspace' }, 25) as EulerScheduler;
    assert.equal(s.sigmas.length, 26);
    // Quoted values are diffusers' float32 ones; see the noise-schedule test.
    closeRel(s.sigmas[0]!, 14.614647, 2e-6, 'sigma[0]');
    closeRel(s.sigmas[1]!, 11.435942, 2e-6, 'sigma[1]');
    closeRel(s.sigmas[2]!, 9.076809, 2e-6, 'sigma[2]');
    closeRel(s.sigmas[24]!, 0.0291675, 2e-5, 'sigma[24]');
    assert.equal(s.sigmas[25], 0);
    // Fractional timesteps: linspace(0, 999, 25) descending, unrounded.
    assert.deepEqual(s.timesteps.slice(0, 3), [999, 957.375, 915.75]);
    // sigma at t = 957.375 interpolates linearly in sigma between t = 957 and 958.
    const sig = (t: number) => Math.sqrt((1 - AC[t]!) / AC[t]!);
    close(s.sigmas[1]!, sig(957) + 0.375 * (sig(958) - sig(957)), 1e-9, 'interp');
    assert.equal(s.initNoiseSigma, s.sigmas[0]); // linspace: sigma_max itself
  });

  it('Euler leading: init noise sigma is sqrt(sigma_max^2 + 1)', () => {
    const s = createScheduler('euler', { ...SD, timestep_spacing: 'leading', steps_offset: 1 }, 20) as EulerScheduler;
    assert.equal(s.timesteps[0], 951);
    close(s.initNoiseSigma, Math.sqrt(s.sigmas[0]! ** 2 + 1), 1e-12, 'init sigma');
  });

  it('DPM-Solver++ linspace lays out N+1 points and drops t=0', () => {
    const s = createScheduler('dpmpp-2m', SD, 20);
    const expected = Array.from({ length: 21 }, (_, i) => npRound((i * 999) / 20)).reverse().slice(0, 20);
    assert.deepEqual(s.timesteps, expected);
    assert.deepEqual(s.timesteps.slice(9, 12), [549, 500, 450]); // 499.5 -> 500 (ties to even)
    assert.equal(s.initNoiseSigma, 1);
  });

  it('DPM-Solver++ Karras N=10: rho=7 ramp, timesteps from log-sigma interpolation', () => {
    const s = createScheduler('dpmpp-2m-karras', SD, 10) as DpmSolverPP2MScheduler;
    // Reference: numpy float64 on diffusers' _convert_to_karras + _sigma_to_t, then .round().
    assert.deepEqual(s.timesteps, [999, 916, 815, 687, 523, 327, 146, 41, 7, 0]);
    const sMin = Math.sqrt((1 - AC[0]!) / AC[0]!);
    const sMax = Math.sqrt((1 - AC[999]!) / AC[999]!);
    close(s.sigmas[0]!, sMax, 1e-9, 'first sigma');
    close(s.sigmas[9]!, sMin, 1e-12, 'last non-zero sigma');
    const r = 4 / 9;
    close(s.sigmas[4]!, (sMax ** (1 / 7) + r * (sMin ** (1 / 7) - sMax ** (1 / 7))) ** 7, 1e-9, 'sigma[4]');
    assert.equal(s.sigmas[10], 0);
  });

  it('DPM++ 2M Karras sigmas and timesteps are monotone decreasing', () => {
    for (const N of [2, 5, 10, 25, 50]) {
      const s = createScheduler('dpmpp-2m-karras', SD, N) as DpmSolverPP2MScheduler;
      for (let i = 1; i < s.sigmas.length; i++) {
        assert.ok(s.sigmas[i]! < s.sigmas[i - 1]!, `N=${N}: sigma[${i}] ${s.sigmas[i]} >= sigma[${i - 1}]`);
      }
      for (let i = 1; i < s.timesteps.length; i++) assert.ok(s.timesteps[i]! <= s.timesteps[i - 1]!, `N=${N} timesteps`);
    }
  });

  it('LCM N=4: 999, 759, 499, 259', () => {
    assert.deepEqual(createScheduler('lcm', {}, 4).timesteps, [999, 759, 499, 259]);
    assert.deepEqual(createScheduler('lcm', {}, 1).timesteps, [999]);
    assert.throws(() => createScheduler('lcm', {}, 51), /original_inference_steps/);
  });
});

// ------------------------------------------------------------------------------------------------
// Oracle model: knows x0, so for a model input x_vp = alpha * x0 + sigma * eps it returns the true
// eps (or v = alpha * eps - sigma * x0, or x0 itself). (alpha, sigma) are the VP coefficients of the
// step's noise level, taken from the timestep (DDIM/LCM) or the scheduler's sigma (Euler/DPM).

type Pred = SchedulerConfig['prediction_type'];
interface Case {
  name: SchedulerName;
  config: Partial<SchedulerConfig>;
  steps: number;
}
function vpAt(s: Scheduler, i: number): { alpha: number; sigma: number } {
  if (s.name === 'ddim' || s.name === 'lcm') {
    const a = AC[s.timesteps[i]!]!;
    return { alpha: Math.sqrt(a), sigma: Math.sqrt(1 - a) };
  }
  const sig = (s as EulerScheduler | DpmSolverPP2MScheduler).sigmas[i]!;
  return { alpha: 1 / Math.sqrt(sig * sig + 1), sigma: sig / Math.sqrt(sig * sig + 1) };
}
function oracle(pred: Pred, x0: Float32Array, modelInput: Float32Array, alpha: number, sigma: number): Float32Array {
  const out = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const eps = (modelInput[i]! - alpha * x0[i]!) / sigma;
    out[i] = pred === 'epsilon' ? eps : pred === 'v_prediction' ? alpha * eps - sigma * x0[i]! : x0[i]!;
  }
  return out;
}

const CASES: Case[] = [
  { name: 'ddim', config: { ...SD, timestep_spacing: 'leading', steps_offset: 1, clip_sample: false }, steps: 20 },
  { name: 'ddim', config: { ...SD, timestep_spacing: 'trailing', clip_sample: false }, steps: 10 },
  { name: 'ddim', config: { ...SD, timestep_spacing: 'linspace', clip_sample: false }, steps: 7 },
  { name: 'euler', config: { ...SD }, steps: 25 },
  { name: 'euler', config: { ...SD, timestep_spacing: 'leading', steps_offset: 1 }, steps: 8 },
  { name: 'euler', config: { ...SD, use_karras_sigmas: true }, steps: 12 },
  { name: 'dpmpp-2m', config: { ...SD }, steps: 20 },
  { name: 'dpmpp-2m', config: { ...SD, timestep_spacing: 'leading', steps_offset: 1 }, steps: 6 },
  { name: 'dpmpp-2m-karras', config: { ...SD }, steps: 15 },
  { name: 'dpmpp-2m-karras', config: { ...SD, timestep_spacing: 'trailing' }, steps: 4 },
  { name: 'lcm', config: {}, steps: 4 },
  { name: 'lcm', config: {}, steps: 8 },
  // SDXL-Turbo's and SD-Turbo's scheduler config.
  { name: 'euler-a', config: { ...SD, timestep_spacing: 'trailing', steps_offset: 1 }, steps: 4 },
  { name: 'euler-a', config: { ...SD, timestep_spacing: 'trailing', steps_offset: 1 }, steps: 1 },
  { name: 'euler-a', config: { ...SD, timestep_spacing: 'leading', steps_offset: 1 }, steps: 20 },
];

function runOracle(c: Case, pred: Pred, seed: number) {
  const s = createScheduler(c.name, { ...c.config, prediction_type: pred }, c.steps);
  const rand = gaussian(seed);
  const x0 = rand(64).map((v) => 0.8 * v);
  let noiseCalls = 0;
  const noise = (n: number) => {
    noiseCalls++;
    return rand(n);
  };
  // As a pipeline does: unit noise times initNoiseSigma.
  let x: Float32Array = rand(64).map((v) => v * s.initNoiseSigma);
  const predErrors: number[] = [];
  for (let i = 0; i < s.timesteps.length; i++) {
    const input = s.scaleModelInput(x, i);
    const { alpha, sigma } = vpAt(s, i);
    const out = oracle(pred, x0, input, alpha, sigma);
    const r = s.step(out, i, x, noise);
    predErrors.push(maxAbsDiff(r.predOriginal, x0));
    x = r.prevSample;
  }
  return { x, x0, predErrors, noiseCalls, s };
}

describe('oracle model', () => {
  for (const c of CASES) {
    for (const pred of ['epsilon', 'v_prediction', 'sample'] as const) {
      const label = `${c.name} ${c.config.timestep_spacing ?? 'default'}${c.config.use_karras_sigmas ? ' karras' : ''} N=${c.steps} ${pred}`;
      it(`${label}: recovers x0, predOriginal = x0 at every step`, () => {
        const { x, x0, predErrors, noiseCalls } = runOracle(c, pred, 1234);
        // float32 samples with sigma up to ~15: allow a few float32 ulps of that scale.
        assert.ok(maxAbsDiff(x, x0) < 2e-4, `final error ${maxAbsDiff(x, x0)}`);
        predErrors.forEach((e, i) => assert.ok(e < 2e-4, `step ${i}: predOriginal off by ${e}`));
        if (c.name === 'lcm' || c.name === 'euler-a') assert.equal(noiseCalls, c.steps - 1, `${c.name} draws fresh noise between steps, none after the last`);
        else assert.equal(noiseCalls, 0, 'deterministic scheduler called noise');
      });
    }
  }

  // sigma_down^2 + sigma_up^2 = sigma_next^2: the ancestral step leaves exactly the next noise level.
  it('euler-a: with the oracle, the sample after each step is x0 plus noise of the next sigma, and the same seed gives the same sample', () => {
    const n = 20000;
    const run = (seed: number) => {
      const s = createScheduler('euler-a', { ...SD, timestep_spacing: 'trailing', steps_offset: 1, prediction_type: 'sample' }, 4) as EulerScheduler;
      const rand = gaussian(seed);
      const x0 = rand(n).map((v) => 0.5 * v);
      let x: Float32Array = rand(n).map((v) => v * s.initNoiseSigma);
      const spreads: number[] = [];
      for (let i = 0; i < 4; i++) {
        x = s.step(x0, i, x, rand).prevSample;
        let sq = 0;
        for (let j = 0; j < n; j++) sq += (x[j]! - x0[j]!) ** 2;
        spreads.push(Math.sqrt(sq / n));
      }
      return { x, spreads, sigmas: s.sigmas };
    };
    const a = run(5);
    a.spreads.forEach((spread, i) => close(spread, a.sigmas[i + 1]!, 0.03 * a.sigmas[i + 1]! + 1e-6, `spread after step ${i}`));
    assert.deepEqual(run(5).x, a.x, 'same seed, same sample');
    assert.ok(maxAbsDiff(run(5).spreads, run(6).spreads) > 0, 'another seed, other noise');
  });

  it('deterministic schedulers are reproducible and never call noise even with a non-oracle model', () => {
    for (const name of ['ddim', 'euler', 'dpmpp-2m', 'dpmpp-2m-karras'] as const) {
      const s = createScheduler(name, SD, 10);
      let x: Float32Array = gaussian(7)(16);
      const model = gaussian(9);
      for (let i = 0; i < 10; i++) {
        x = s.step(model(16), i, x, () => assert.fail(`${name} called noise`)).prevSample;
      }
      assert.ok(x.every(Number.isFinite), `${name} produced non-finite values`);
    }
  });

  // Starting exactly on the trajectory x = alpha x0 + sigma eps0, an exact ODE solver must stay on it.
  // This checks the update formulas themselves, not only the final snap to x0.
  it('ODE schedulers stay on the noising trajectory of a fixed eps', () => {
    const cases: Case[] = [
      { name: 'ddim', config: { ...SD, steps_offset: 1, clip_sample: false }, steps: 20 },
      { name: 'euler', config: SD, steps: 25 },
      { name: 'dpmpp-2m', config: SD, steps: 20 },
      { name: 'dpmpp-2m-karras', config: SD, steps: 20 },
    ];
    for (const c of cases) {
      const s = createScheduler(c.name, c.config, c.steps);
      const rand = gaussian(42);
      const x0 = rand(32);
      const eps0 = rand(32);
      // Sample frame: VP for DDIM/DPM; VE (x0 + sigma * eps) for Euler, i.e. VP / alpha.
      const onTrajectory = (alpha: number, sigma: number) => {
        const k = s.name === 'euler' ? 1 / alpha : 1;
        return x0.map((v, j) => k * (alpha * v + sigma * eps0[j]!));
      };
      const nextVp = (i: number) => {
        if (s.name === 'ddim') {
          const prevT = s.timesteps[i]! - Math.floor(1000 / c.steps);
          const a = prevT >= 0 ? AC[prevT]! : 1;
          return { alpha: Math.sqrt(a), sigma: Math.sqrt(1 - a) };
        }
        if (i + 1 === c.steps) return { alpha: 1, sigma: 0 };
        return vpAt(s, i + 1);
      };
      const start = vpAt(s, 0);
      let x: Float32Array = onTrajectory(start.alpha, start.sigma);
      for (let i = 0; i < c.steps; i++) {
        const { alpha, sigma } = vpAt(s, i);
        const r = s.step(oracle('epsilon', x0, s.scaleModelInput(x, i), alpha, sigma), i, x, () => assert.fail('noise'));
        const n = nextVp(i);
        const err = maxAbsDiff(r.prevSample, onTrajectory(n.alpha, n.sigma));
        assert.ok(err < 1e-4, `${c.name} step ${i}: off trajectory by ${err}`);
        x = r.prevSample;
      }
    }
  });
});

describe('DDIM final alpha', () => {
  it('set_alpha_to_one false ends at abar[0] instead of exactly x0', () => {
    const s = createScheduler('ddim', { ...SD, steps_offset: 1, set_alpha_to_one: false, clip_sample: false }, 20);
    const x0 = Float32Array.from([0.5]);
    const eps = Float32Array.from([1]);
    const a = AC[1]!; // last timestep is 1; its previous (1 - 50) is below 0
    const x = Float32Array.from([Math.sqrt(a) * 0.5 + Math.sqrt(1 - a)]);
    const r = s.step(eps, 19, x, () => assert.fail('noise'));
    close(r.predOriginal[0]!, 0.5, 1e-6, 'x0');
    close(r.prevSample[0]!, Math.sqrt(AC[0]!) * 0.5 + Math.sqrt(1 - AC[0]!), 1e-6, 'prev at abar[0]');
  });

  it('clip_sample clamps the x0 prediction to [-1, 1]', () => {
    const s = createScheduler('ddim', { ...SD, clip_sample: true }, 10);
    const r = s.step(Float32Array.from([0]), 0, Float32Array.from([5]), () => assert.fail('noise'));
    assert.equal(r.predOriginal[0], 1);
  });
});

describe('DPM-Solver++ 2M update', () => {
  it('takes a second-order midpoint step after the first and first order at the end', () => {
    const N = 3;
    const s = createScheduler('dpmpp-2m', SD, N) as DpmSolverPP2MScheduler;
    // A model with a different output each step, so x0 predictions differ and D1 != 0 (a constant
    // eps would be an oracle for its own trajectory and hide the second-order term).
    const model = gaussian(5);
    const vp = (sig: number) => ({ a: 1 / Math.sqrt(sig * sig + 1), s: sig / Math.sqrt(sig * sig + 1) });
    const lam = (sig: number) => Math.log(vp(sig).a / vp(sig).s);
    let x: Float32Array = gaussian(6)(8);
    const x0s: Float64Array[] = [];
    for (let i = 0; i < N; i++) {
      const eps = model(8);
      const cur = vp(s.sigmas[i]!);
      const nxt = vp(s.sigmas[i + 1]!);
      const x0 = Float64Array.from(x, (v, j) => (v - cur.s * eps[j]!) / cur.a);
      x0s.push(x0);
      const h = lam(s.sigmas[i + 1]!) - lam(s.sigmas[i]!);
      const expected = Float64Array.from(x, (v, j) => {
        const first = (nxt.s / cur.s) * v - nxt.a * (Math.exp(-h) - 1) * x0[j]!;
        if (i === 0 || i === N - 1) return first; // warm-up and lower_order_final
        const r0 = (lam(s.sigmas[i]!) - lam(s.sigmas[i - 1]!)) / h;
        const d1 = (x0[j]! - x0s[i - 1]![j]!) / r0;
        return first - 0.5 * nxt.a * (Math.exp(-h) - 1) * d1;
      });
      const r = s.step(eps, i, x, () => assert.fail('noise'));
      assert.ok(maxAbsDiff(r.prevSample, expected) < 1e-4, `step ${i}`);
      x = r.prevSample;
    }
  });

  it('refuses out-of-order steps (it carries the previous x0)', () => {
    const s = createScheduler('dpmpp-2m', SD, 5);
    const z = new Float32Array(4);
    s.step(z, 0, z, () => z);
    assert.throws(() => s.step(z, 2, z, () => z), /expected 1/);
  });
});

describe('LCM step', () => {
  it('applies c_skip/c_out with timestep_scaling 10 and re-noises with the given noise', () => {
    const s = createScheduler('lcm', { prediction_type: 'sample' }, 2);
    const x = Float32Array.from([1, -2]);
    const out = Float32Array.from([0.5, 0.25]);
    const z = Float32Array.from([0.1, -0.3]);
    const r = s.step(out, 0, x, () => z);
    const st = 999 * 10;
    const cSkip = 0.25 / (st * st + 0.25);
    const cOut = st / Math.sqrt(st * st + 0.25);
    const aPrev = AC[s.timesteps[1]!]!;
    for (let j = 0; j < 2; j++) {
      const den = cOut * out[j]! + cSkip * x[j]!;
      close(r.predOriginal[j]!, den, 1e-6, 'denoised');
      close(r.prevSample[j]!, Math.sqrt(aPrev) * den + Math.sqrt(1 - aPrev) * z[j]!, 1e-6, 'prev');
    }
    const last = s.step(out, 1, x, () => assert.fail('no noise after the last step'));
    assert.deepEqual(last.prevSample, last.predOriginal);
  });

  it('boundary scalings matter at small t (t = 19 with 50 steps)', () => {
    const s = createScheduler('lcm', { prediction_type: 'sample' }, 50);
    assert.equal(s.timesteps[49], 19);
    const x = Float32Array.from([100]);
    const out = Float32Array.from([0]);
    const st = 19 * 10;
    const cSkip = 0.25 / (st * st + 0.25); // ~6.9e-6; with timestep_scaling 1 it would be ~6.9e-4
    const r = s.step(out, 49, x, () => assert.fail('no noise after the last step'));
    closeRel(r.predOriginal[0]!, cSkip * 100, 1e-5, 'c_skip * x');
  });
});

describe('config', () => {
  it('fills defaults of the class that wrote the file', () => {
    const pndm = resolveSchedulerConfig({
      _class_name: 'PNDMScheduler',
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
      steps_offset: 1,
      trained_betas: null,
    });
    assert.equal(pndm.timestep_spacing, 'leading');
    assert.equal(pndm.set_alpha_to_one, false);
    assert.equal(pndm.prediction_type, 'epsilon');
    assert.equal(pndm.num_train_timesteps, 1000);
    const euler = resolveSchedulerConfig({ _class_name: 'EulerDiscreteScheduler' });
    assert.equal(euler.timestep_spacing, 'linspace');
    const lcm = resolveSchedulerConfig({ _class_name: 'LCMScheduler' });
    assert.equal(lcm.beta_schedule, 'scaled_linear');
    assert.equal(lcm.original_inference_steps, 50);
    assert.equal(lcm.clip_sample, false);
    const none = resolveSchedulerConfig({});
    assert.equal(none.beta_schedule, 'linear');
    assert.equal(none.beta_start, 0.0001);
    assert.equal(none.clip_sample, true); // DDIMScheduler's default
  });

  it('createScheduler fills the target scheduler defaults for missing fields', () => {
    assert.equal(createScheduler('euler', SD, 25).timesteps[1], 957.375); // linspace default
    assert.equal(createScheduler('ddim', SD, 20).timesteps[0], 950); // leading default, offset 0
  });

  it('rejects wrong types with messages naming the field', () => {
    assert.throws(() => resolveSchedulerConfig(null), /expected a JSON object/);
    assert.throws(() => resolveSchedulerConfig([]), /expected a JSON object/);
    assert.throws(() => resolveSchedulerConfig({ beta_schedule: 'sigmoid' }), /"beta_schedule" must be one of/);
    assert.throws(() => resolveSchedulerConfig({ num_train_timesteps: 10.5 }), /"num_train_timesteps" must be a positive integer/);
    assert.throws(() => resolveSchedulerConfig({ beta_start: '0.1' }), /"beta_start"/);
    assert.throws(() => resolveSchedulerConfig({ clip_sample: 'false' }), /"clip_sample" must be true or false/);
    assert.throws(() => resolveSchedulerConfig({ prediction_type: 'v' }), /"prediction_type"/);
    assert.throws(() => resolveSchedulerConfig({ steps_offset: -1 }), /"steps_offset"/);
    assert.throws(() => resolveSchedulerConfig({ trained_betas: [0.1] }), /trained_betas/);
    assert.throws(() => createScheduler('ddim', SD, 0), /steps/);
    assert.throws(() => createScheduler('nope' as SchedulerName, SD, 5), /unknown scheduler/);
  });
});
