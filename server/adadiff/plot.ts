// A small raster chart for the evaluation: quality against average steps, the policy and its
// baselines as points on the fixed-steps curve, drawn on the pipeline's small raster canvas.

import { Canvas, type Color } from '../pipeline/canvas';
import { encodePng, type RgbImage } from '../pipeline/png';

export interface PlotSeries {
  label: string;
  color: Color;
  points: { steps: number; quality: number }[];
  /** Draw as a line through the points (a curve) or as markers only. */
  line?: boolean;
}

export const COLORS = {
  curve: [150, 150, 150],
  policy: [214, 39, 40],
  random: [31, 119, 180],
  wordCount: [44, 160, 44],
  fixed: [0, 0, 0],
  tau: [255, 127, 14],
  oracle: [148, 103, 189],
  imageOracle: [140, 86, 75],
  firstStep: [227, 119, 194],
} as const satisfies Record<string, Color>;

/** Quality or a share (y) against average steps (x), with an optional horizontal reference line. */
export function plotQualityVsSteps(series: PlotSeries[], opts: { maxSteps: number; reference?: { value: number; label: string }; title?: string }): Buffer {
  const W = 640;
  const H = 420;
  const left = 56;
  const right = 180;
  const top = 30;
  const bottom = 40;
  const c = new Canvas(W, H);
  const qs = series.flatMap((s) => s.points.map((p) => p.quality));
  if (opts.reference) qs.push(opts.reference.value);
  const yMax = Math.max(1, ...qs);
  const yMin = Math.min(Math.floor(Math.min(...qs) * 20) / 20, yMax - 0.05);
  const px = (steps: number) => left + (steps / opts.maxSteps) * (W - left - right);
  const py = (q: number) => top + ((yMax - q) / (yMax - yMin)) * (H - top - bottom);
  const ink: Color = [40, 40, 40];

  c.line(left, top, left, H - bottom, ink);
  c.line(left, H - bottom, W - right, H - bottom, ink);
  const xStep = opts.maxSteps <= 20 ? 2 : opts.maxSteps <= 60 ? 10 : 20;
  for (let s = 0; s <= opts.maxSteps; s += xStep) {
    c.line(px(s), H - bottom, px(s), H - bottom + 4, ink);
    const label = String(s);
    c.text(px(s) - label.length * 3, H - bottom + 8, label, ink);
  }
  const yTicks = 5;
  for (let i = 0; i <= yTicks; i++) {
    const q = yMin + ((yMax - yMin) * i) / yTicks;
    c.line(left - 4, py(q), left, py(q), ink);
    c.text(left - 36, py(q) - 3, q.toFixed(2), ink);
  }
  c.text(left + (W - left - right) / 2 - 40, H - 14, 'AVERAGE STEPS', ink);
  c.text(8, 10, opts.title ?? 'QUALITY VS AVERAGE STEPS', ink);

  if (opts.reference) c.line(left, py(opts.reference.value), W - right, py(opts.reference.value), COLORS.tau, 4);
  for (const s of series) {
    if (s.line) {
      for (let i = 1; i < s.points.length; i++) {
        c.line(px(s.points[i - 1].steps), py(s.points[i - 1].quality), px(s.points[i].steps), py(s.points[i].quality), s.color);
      }
    }
    for (const p of s.points) c.disc(px(p.steps), py(p.quality), s.line ? 2 : 5, s.color);
  }

  const legend = [...series.map((s) => ({ label: s.label, color: s.color }))];
  if (opts.reference) legend.push({ label: opts.reference.label, color: COLORS.tau });
  legend.forEach((entry, i) => {
    const y = top + i * 16;
    c.rect(W - right + 14, y, 10, 8, entry.color);
    c.text(W - right + 30, y, entry.label, ink);
  });
  const image: RgbImage = { width: W, height: H, data: c.data };
  return encodePng(image);
}
