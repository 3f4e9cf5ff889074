// Shared by the assets-*.test.ts files: temporary workspaces, a fast stand-in model for the logic
// tests (the CLI tests drive the real engine on a fixture model), and lock/PNG assertions.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Calibration } from '../../server/adadiff/cost';
import type { AssetModel, ModelSource } from '../../server/assets';
import type { RenderRequest, RenderResult, StepPrediction } from '../../server/engine';
import { resolveGeneration } from '../../server/generation';
import { CancelledError } from '../../server/errors';
import { formatParameters } from '../../server/pipeline/parameters';
import { decodePng, encodePng, readPngText } from '../../server/pipeline/png';
import { tempDir } from '../temp-dirs';

export function tempWorkspace(files: Record<string, string> = {}): string {
  const root = realpathSync(tempDir('adadiff-assets-'));
  for (const [name, text] of Object.entries(files)) write(root, name, text);
  return root;
}

export function write(root: string, name: string, text: string | Buffer): void {
  const file = path.join(root, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

export const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every lock entry's file exists and has the recorded hash (or is the one an interrupted write was replacing). */
export function assertLockMatchesFiles(root: string): Record<string, { sha256: string; replaces?: string | null }> {
  const lock = JSON.parse(readFileSync(path.join(root, 'adadiff.lock.json'), 'utf8'));
  assert.equal(lock.version, 1);
  for (const [key, entry] of Object.entries<{ sha256: string; replaces?: string | null }>(lock.assets)) {
    const file = path.join(root, key);
    let actual: string | null = null;
    try {
      actual = sha(file);
    } catch {
      actual = null;
    }
    if (entry.replaces === undefined) assert.equal(actual, entry.sha256, `${key} matches its lock entry`);
    else assert.ok(actual === entry.sha256 || actual === entry.replaces, `${key} is the new image or the one it replaces`);
  }
  return lock.assets;
}

export function assertPng(file: string): { width: number; height: number; parameters: string } {
  const bytes = readFileSync(file);
  const image = decodePng(bytes);
  return { width: image.width, height: image.height, parameters: readPngText(bytes).parameters };
}

/**
 * A model that "renders" instantly: a flat colour derived from the inputs, with the same PNG
 * metadata the engine writes. The policy picks 10 + 5 * (words % 5) steps of a 50-step baseline.
 */
export function fakeEngine(options: { stepDelayMs?: number; fail?: (req: RenderRequest) => boolean } = {}): ModelSource & { renders: string[] } {
  const renders: string[] = [];
  const calibration: Calibration = { key: 'fake', provider: 'cpu', textEncoderMs: 10, unetMs: 20, vaeMs: 30, measuredAt: '', runs: 1 };
  const predict = async (prompt: string): Promise<StepPrediction> => {
    const steps = 10 + 5 * (prompt.split(/\s+/).length % 5);
    return {
      steps,
      baselineSteps: 50,
      candidates: [steps],
      probabilities: [1],
      policy: true,
      estimatedSeconds: (10 + 20 * steps + 30) / 1000,
      baselineSeconds: (10 + 20 * 50 + 30) / 1000,
      refinedAfterFirstStep: false,
      saving: 0,
      droppedTokens: 0,
      provider: 'cpu',
    };
  };
  const model: AssetModel = {
    generation: (sources) => resolveGeneration({ ...sources, policy: { scheduler: 'ddim', guidance: 7, baselineSteps: 50 } }),
    predict,
    calibration: async () => calibration,
    async render(req, hooks = {}): Promise<RenderResult> {
      if (options.fail?.(req)) throw new Error(`cannot render "${req.prompt}"`);
      const prediction = await predict(req.prompt);
      const steps = req.steps === undefined || req.steps === 'auto' ? prediction.steps : req.steps;
      for (let s = 1; s <= steps; s++) {
        if (hooks.signal?.aborted) throw new CancelledError();
        if (options.stepDelayMs) await new Promise((r) => setTimeout(r, options.stepDelayMs));
        await hooks.onStep?.({ step: s, total: steps, preview: async () => ({ width: 0, height: 0, data: new Uint8Array() }) });
      }
      renders.push(req.prompt);
      const [width, height] = [req.width ?? 16, req.height ?? 16];
      const digest = createHash('sha256').update(JSON.stringify(req)).digest();
      const data = new Uint8Array(width * height * 3).map((_, i) => digest[i % 3]);
      const parameters = { prompt: req.prompt, negativePrompt: req.negativePrompt, steps, scheduler: 'ddim' as const, guidance: 7, seed: req.seed ?? 0, width, height, modelHash: 'fake', baselineSteps: 50 };
      const png = encodePng({ width, height, data }, { parameters: formatParameters(parameters) });
      return { png, parameters, prediction, result: { image: { width, height, data }, width, height, droppedTokens: 0, timings: { textEncoderMs: 0, unetMs: [], vaeMs: 0, totalMs: 0 } } };
    },
  };
  return { renders, open: async () => model };
}
