// The pieces every scheduler shares: the training noise schedule (betas -> cumulative alphas ->
// sigmas), the choice of inference timesteps, and the sigma <-> timestep conversions.
//
// Everything here is float64. diffusers builds these tables in float32 (torch/numpy), so values
// agree with it to ~1e-6 relative, which is the precision the model itself sees anyway.

import type { SchedulerConfig } from '../../model/contract.js';

// ---------------------------------------------------------------------------------------------
// numpy-compatible helpers. The exact timesteps diffusers picks depend on numpy's semantics
// (linspace's last point, round-half-to-even), so we reproduce those rather than "nicer" math.

/** np.linspace(start, stop, num, endpoint): start + i * step, last point pinned to stop. */
export function linspace(start: number, stop: number, num: number, endpoint = true): number[] {
  if (num <= 0) return [];
  if (num === 1) return [start];
  const div = endpoint ? num - 1 : num;
  const step = (stop - start) / div;
  const out = new Array<number>(num);
  for (let i = 0; i < num; i++) out[i] = start + i * step;
  if (endpoint) out[num - 1] = stop;
  return out;
}

/** np.round: ties go to the even neighbour (Math.round would send 166.5 to 167, numpy to 166). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds ties up; pull exact .5 ties that landed on an odd integer back down.
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r === 0 ? 0 : r; // normalise -0
}

/** np.interp(x, arange(len(fp)), fp): piecewise-linear in the *values* fp, clamped at the ends. */
export function interpAtIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0]!;
  if (x >= n - 1) return fp[n - 1]!;
  const lo = Math.floor(x);
  const w = x - lo;
  return fp[lo]! + w * (fp[lo + 1]! - fp[lo]!);
}

// ---------------------------------------------------------------------------------------------
// Training noise schedule.

/** betas_for_alpha_bar with the "cosine" transform (Nichol & Dhariwal), capped at 0.999. */
function cosineBetas(T: number): Float64Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    betas[i] = Math.min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), 0.999);
  }
  return betas;
}

export function makeBetas(config: SchedulerConfig): Float64Array {
  const T = config.num_train_timesteps;
  switch (config.beta_schedule) {
    case 'linear':
      return Float64Array.from(linspace(config.beta_start, config.beta_end, T));
    case 'scaled_linear':
      // Stable Diffusion's schedule: linear in sqrt(beta), then squared.
      return Float64Array.from(
        linspace(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T),
        (b) => b * b,
      );
    case 'squaredcos_cap_v2':
      return cosineBetas(T);
  }
}

/** alphas_cumprod[t] = prod_{s<=t} (1 - beta_s): the signal fraction ("alpha bar") at timestep t. */
export function makeAlphasCumprod(config: SchedulerConfig): Float64Array {
  const betas = makeBetas(config);
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= 1 - betas[i]!;
    out[i] = acc;
  }
  return out;
}

/** Variance-exploding sigmas, sigma_t = sqrt((1 - abar_t) / abar_t), ascending in t. */
export function sigmasFromAlphasCumprod(alphasCumprod: Float64Array): Float64Array {
  return alphasCumprod.map((a) => Math.sqrt((1 - a) / a));
}

/** VP coefficients for a VE sigma: x_vp = alpha * x0 + sigma_vp * eps with alpha^2 + sigma_vp^2 = 1. */
export function sigmaToAlphaSigma(sigma: number): { alpha: number; sigmaVp: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, sigmaVp: sigma * alpha };
}

// ---------------------------------------------------------------------------------------------
// Inference timesteps (Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed").

export interface SpacingOptions {
  spacing: SchedulerConfig['timestep_spacing'];
  numTrainTimesteps: number;
  steps: number;
  stepsOffset: number;
  /**
   * Round linspace points to integers. DDIM and DPM do; Euler keeps fractional timesteps and
   * interpolates sigma between the two neighbouring training timesteps.
   */
  roundLinspace: boolean;
  /**
   * DPM-Solver lays out steps + 1 points for linspace/leading and drops the last (t = 0), so its
   * final step lands above t = 0 before jumping to sigma = 0.
   */
  extraPoint: boolean;
}

/** Descending timesteps as diffusers' set_timesteps computes them for the given spacing. */
export function spacedTimesteps(o: SpacingOptions): number[] {
  const T = o.numTrainTimesteps;
  const n = o.steps + (o.extraPoint ? 1 : 0);
  let ts: number[];
  switch (o.spacing) {
    case 'linspace': {
      ts = linspace(0, T - 1, n);
      if (o.roundLinspace) ts = ts.map(roundHalfEven);
      ts.reverse();
      break;
    }
    case 'leading': {
      // Integer stride from t = 0 upwards; steps_offset shifts the grid (SD uses 1, so it ends at t = 1).
      const ratio = Math.floor(T / n);
      ts = [];
      for (let i = n - 1; i >= 0; i--) ts.push(i * ratio + o.stepsOffset);
      break;
    }
    case 'trailing': {
      // Fractional stride down from T, so the first step is always t = T - 1 (pure noise).
      // numpy's arange(T, 0, -T/N) sometimes yields N + 1 points through float error (e.g. N = 61
      // gives a last point of -5.7e-13 -> timestep -1); we take exactly N, see the report.
      const ratio = T / o.steps;
      ts = [];
      for (let i = 0; i < o.steps; i++) ts.push(roundHalfEven(T - i * ratio) - 1);
      return ts;
    }
  }
  if (o.extraPoint) ts.pop();
  return ts;
}

// ---------------------------------------------------------------------------------------------
// Karras et al. (2022) sigmas and the log-sigma interpolation that maps a sigma back to a timestep.

/** rho = 7 ramp between sigmaMax and sigmaMin, evenly spaced in sigma^(1/rho). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return linspace(0, 1, steps).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/**
 * Fractional training timestep whose sigma is `sigma`: linear interpolation in log-sigma between
 * the two neighbouring training sigmas (diffusers' _sigma_to_t). `logSigmas` ascends with t.
 */
export function sigmaToTimestep(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // Last index whose log-sigma is <= logSigma (cumsum(dists >= 0).argmax), kept below n - 1.
  let low = 0;
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i]! >= 0) low = i;
  low = Math.min(low, n - 2);
  const high = low + 1;
  const lo = logSigmas[low]!;
  const hi = logSigmas[high]!;
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * low + w * high;
}
