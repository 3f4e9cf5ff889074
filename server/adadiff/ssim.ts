// Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) between two RGB 8-bit images.
//
// This is the fidelity scorer of the reward table: an image made with u steps is compared with the
// image the longest schedule makes from the same initial noise. It follows the reference
// implementation exactly: an 11x11 Gaussian window with sigma 1.5 (normalised to sum 1), K1 = 0.01,
// K2 = 0.03, L = 255, local statistics with population (not sample) variance, averaged over the
// positions where the window lies fully inside the image ("valid"), then averaged over R, G and B.
// That is what scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
// use_sample_covariance=False, data_range=255, channel_axis=-1) computes, since it crops the
// reflect-padded border before averaging.
import type { RgbImage } from '../pipeline/png';

export interface SsimOptions {
  /** Window side in pixels, odd. Default 11. Shrunk to the largest odd side that fits a smaller image. */
  windowSize?: number;
  /** Gaussian sigma of the window. Default 1.5. */
  sigma?: number;
  /** Default 0.01. */
  k1?: number;
  /** Default 0.03. */
  k2?: number;
  /** Dynamic range of the pixel values. Default 255. */
  dataRange?: number;
}

/** Normalised 1-D Gaussian taps; the 2-D window is their outer product. */
function gaussianTaps(size: number, sigma: number): Float64Array {
  const taps = new Float64Array(size);
  const mid = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    taps[i] = Math.exp(-((i - mid) ** 2) / (2 * sigma * sigma));
    sum += taps[i];
  }
  for (let i = 0; i < size; i++) taps[i] /= sum;
  return taps;
}

/** Separable "valid" filtering of a w x h plane: output is (w - n + 1) x (h - n + 1). */
function filterValid(plane: Float64Array, w: number, h: number, taps: Float64Array): Float64Array {
  const n = taps.length;
  const ow = w - n + 1;
  const oh = h - n + 1;
  const rows = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    const base = y * w;
    for (let x = 0; x < ow; x++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += taps[k] * plane[base + x + k];
      rows[y * ow + x] = acc;
    }
  }
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += taps[k] * rows[(y + k) * ow + x];
      out[y * ow + x] = acc;
    }
  }
  return out;
}

function checkImage(img: RgbImage, name: string): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) {
    throw new Error(`ssim: ${name} has invalid size ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`ssim: ${name} has ${img.data.length} bytes, expected ${img.width * img.height * 3} (RGB)`);
  }
}

/** Mean SSIM over the three channels, in [-1, 1]; 1 exactly when the images are identical. */
export function ssim(a: RgbImage, b: RgbImage, options: SsimOptions = {}): number {
  checkImage(a, 'first image');
  checkImage(b, 'second image');
  if (a.width !== b.width || a.height !== b.height) {
    throw new Error(`ssim: image sizes differ (${a.width}x${a.height} vs ${b.width}x${b.height})`);
  }
  const { width: w, height: h } = a;
  const requested = options.windowSize ?? 11;
  if (requested < 1 || requested % 2 === 0) throw new Error(`ssim: window size must be odd, got ${requested}`);
  // A window that does not fit would leave no valid position; use the largest odd one that does.
  const fit = Math.min(w, h) % 2 === 1 ? Math.min(w, h) : Math.min(w, h) - 1;
  const taps = gaussianTaps(Math.min(requested, fit), options.sigma ?? 1.5);
  const range = options.dataRange ?? 255;
  const c1 = ((options.k1 ?? 0.01) * range) ** 2;
  const c2 = ((options.k2 ?? 0.03) * range) ** 2;

  const n = w * h;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  let total = 0;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const p = a.data[i * 3 + c];
      const q = b.data[i * 3 + c];
      x[i] = p;
      y[i] = q;
      xx[i] = p * p;
      yy[i] = q * q;
      xy[i] = p * q;
    }
    const mx = filterValid(x, w, h, taps);
    const my = filterValid(y, w, h, taps);
    const mxx = filterValid(xx, w, h, taps);
    const myy = filterValid(yy, w, h, taps);
    const mxy = filterValid(xy, w, h, taps);
    let sum = 0;
    for (let i = 0; i < mx.length; i++) {
      const ux = mx[i];
      const uy = my[i];
      const vx = mxx[i] - ux * ux;
      const vy = myy[i] - uy * uy;
      const cxy = mxy[i] - ux * uy;
      sum += ((2 * ux * uy + c1) * (2 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    }
    total += sum / mx.length;
  }
  return total / 3;
}
