// The value parsers behind the commands' option declarations (options.ts, command.ts): each turns
// a flag's text into a value within limits.ts's bounds, or a UsageError that says what it takes.
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parsePromptLines } from '../adadiff/prompt-list';
import { type Bounds, GUIDANCE, integerRule, isSchedulerName, numberRule, parseImageSize, SCHEDULER_NAMES, type SchedulerName, SEED, SIZE_RULE, STEPS } from '../limits';
import { AdaDiffError } from '../errors';

export class UsageError extends AdaDiffError {
  override readonly name = 'UsageError';
  readonly kind = 'usage';
}

/**
 * The bundled model, found from the package root: the nearest folder above this module holding
 * models/default. Bundled (dist/cli.js) that is one level up; from source (server/cli/ under tsx)
 * two, so the same code serves `npx adadiff`, the tests and the benchmarks.
 */
export function bundledModelDir(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'models', 'default');
    if (existsSync(join(candidate, 'model_index.json'))) return candidate;
    if (dirname(dir) === dir) return resolve(__dirname, '..', 'models', 'default'); // reported as missing by openModelFolder
  }
}

export function intOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be ${integerRule({ min, max })}, got "${value}"`);
  return n;
}

export function numberOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be ${numberRule({ min, max })}, got "${value}"`);
  return n;
}

/** An option bounded by one of limits.ts's: --seed, --steps, --guidance. */
export const boundedInt = (name: string, value: string | undefined, b: Bounds) => intOption(name, value, b.min, b.max);

export const seedOption = (value: string | undefined, name = 'seed') => boundedInt(name, value, SEED);
export const seedsOption = (value: string | undefined, name = 'seeds') => listOption(name, value, SEED.min, SEED.max);
export const guidanceOption = (value: string | undefined) => numberOption('guidance', value, GUIDANCE.min, GUIDANCE.max);

export function sizeOption(value: string | undefined): { width?: number; height?: number } {
  if (value === undefined) return {};
  if (!/^(\d+)x(\d+)$/.test(value)) throw new UsageError(`--size must look like 512x512, got "${value}"`);
  const size = parseImageSize(value);
  if (!size) throw new UsageError(`--size must be ${SIZE_RULE}, got "${value}"`);
  return size;
}

export function schedulerOption(value: string | undefined): SchedulerName | undefined {
  if (value === undefined) return undefined;
  if (!isSchedulerName(value)) throw new UsageError(`--scheduler must be one of ${SCHEDULER_NAMES.join(', ')}, got "${value}"`);
  return value;
}

export function stepsOption(value: string | undefined): number | 'auto' | undefined {
  return value === 'auto' ? 'auto' : boundedInt('steps', value, STEPS);
}

/** A prompts file: one prompt a line; blank lines and lines starting with # are skipped. */
export async function readPromptsFile(file: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read prompts file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const prompts = parsePromptLines(text);
  if (prompts.length === 0) throw new UsageError(`${file} holds no prompts (one prompt a line)`);
  return prompts;
}

/** Held-out prompt sets from repeated --held-out / --prompts FILE options, each named by its file. */
export async function heldOutSets(files: readonly string[] | undefined): Promise<{ name: string; prompts: string[] }[]> {
  const sets = [];
  for (const file of files ?? []) sets.push({ name: basename(file), prompts: await readPromptsFile(file) });
  return sets;
}

export function listOption(name: string, value: string | undefined, min: number, max: number): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((v) => intOption(name, v.trim(), min, max)!);
}
