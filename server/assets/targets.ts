// What a workspace asks to be generated: Markdown images whose alt text is the prompt and whose
// target is a local image, `prompt` fences with an `out:` option (both found by server/prompts), and
// manifest entries (manifest.ts). Every output path is resolved against the file that names it
// and checked lexically here (paths.ts); the file-system checks come when it is planned.
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { findPrompts } from '../prompts';
import { CancelledError } from '../errors';
import { MANIFEST_NAMES, parseManifest } from './manifest';
import { isImageSize, SEED, SIZE_RULE, STEPS } from '../limits';
import { AssetPathError, resolveTarget } from './paths';
import { isScannedFolder, MARKDOWN_FILE } from './scanned';
import { walkFiles } from './walk';

export type TargetKind = 'markdown-image' | 'markdown-fence' | 'manifest';

export interface AssetTarget {
  /** Root-relative output path with `/` separators: the lock file's key. */
  key: string;
  file: string;
  prompt: string;
  negative?: string;
  seed?: number;
  steps?: number | 'auto';
  size?: { width: number; height: number };
  /** Absolute model folder (manifest entries only); the run's model otherwise. */
  model?: string;
  kind: TargetKind;
  /** Root-relative file and 1-based line that asked for it. */
  source: { file: string; line: number };
  /**
   * Fences and manifest entries name an output on purpose; a Markdown image may just as well be a
   * hand-made screenshot with alt text, so an existing one without a lock entry is left alone
   * quietly (and does not fail --check).
   */
  explicit: boolean;
}

export interface AssetProblem {
  /** "README.md:12" or "adadiff.yaml:4". */
  source: string;
  out?: string;
  message: string;
}

export interface CollectOptions {
  /** Markdown files and manifests bigger than this are skipped with a warning (default 1 MiB). */
  maxFileBytes?: number;
  signal?: AbortSignal;
}

export interface Collected {
  targets: AssetTarget[];
  problems: AssetProblem[];
  warnings: string[];
  filesScanned: number;
}

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

/**
 * Walks `root` for Markdown files and manifests, skipping node_modules and hidden folders (.git,
 * .vscode, ...) and never following symlinked folders (they could loop or lead outside).
 */
export async function collectTargets(root: string, options: CollectOptions = {}): Promise<Collected> {
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const out: Collected = { targets: [], problems: [], warnings: [], filesScanned: 0 };
  const files: string[] = [];
  const walk = walkFiles(root, {
    enter: isScannedFolder,
    onUnreadable: (dir, err) => out.warnings.push(`${rel(root, dir) || '.'}: not readable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}), skipped`),
    signal: options.signal,
  });
  for await (const file of walk) {
    const name = path.basename(file);
    if (MARKDOWN_FILE.test(name) || MANIFEST_NAMES.includes(name)) files.push(file);
  }
  if (options.signal?.aborted) throw new CancelledError();

  for (const file of files) {
    if (options.signal?.aborted) throw new CancelledError();
    const shown = rel(root, file);
    const size = (await stat(file)).size;
    if (size > maxBytes) {
      out.warnings.push(`${shown}: ${size} bytes, over the ${maxBytes}-byte limit for scanned files; skipped`);
      continue;
    }
    const text = await readFile(file, 'utf8');
    out.filesScanned++;
    if (MANIFEST_NAMES.includes(path.basename(file))) await fromManifest(root, file, text, out);
    else await fromMarkdown(root, file, text, out);
  }
  out.targets = dedupe(out.targets, out.problems);
  return out;
}

async function fromMarkdown(root: string, file: string, text: string, out: Collected): Promise<void> {
  const shown = rel(root, file);
  for (const span of await findPrompts(text, 'markdown')) {
    if (span.kind === 'code-string' || span.target === undefined) continue;
    const source = { file: shown, line: span.range.start.line + 1 };
    add(root, path.dirname(file), out, {
      target: span.target,
      prompt: span.text.trim(),
      negative: span.negative ?? span.options.negative,
      seed: span.options.seed,
      steps: span.options.steps,
      size: span.options.size,
      kind: span.kind,
      source,
      explicit: span.kind === 'markdown-fence',
    });
  }
}

async function fromManifest(root: string, file: string, text: string, out: Collected): Promise<void> {
  const shown = rel(root, file);
  const { entries, problems } = parseManifest(text, file);
  for (const p of problems) out.problems.push({ source: `${shown}:${p.line}`, message: p.message });
  for (const e of entries) {
    add(root, path.dirname(file), out, {
      target: e.out,
      prompt: e.prompt,
      negative: e.negative,
      seed: e.seed,
      steps: e.steps,
      size: e.size,
      model: e.model === undefined ? undefined : path.resolve(path.dirname(file), e.model),
      kind: 'manifest',
      source: { file: shown, line: e.line },
      explicit: true,
      label: `entry ${e.index}`,
    });
  }
}

type Candidate = Omit<AssetTarget, 'key' | 'file'> & { target: string; label?: string };

function add(root: string, fromDir: string, out: Collected, c: Candidate): void {
  const { target, label, ...rest } = c;
  const source = `${c.source.file}:${c.source.line}`;
  const fail = (message: string) => out.problems.push({ source, out: target, message: label ? `${label}: ${message}` : message });
  let resolved;
  try {
    resolved = resolveTarget(root, fromDir, target);
  } catch (err) {
    if (!(err instanceof AssetPathError)) throw err;
    // An image link in prose may well point at a shared picture above the docs folder, or be
    // site-root-relative: refused as a target, but not an error in the docs themselves.
    if (c.explicit) return void fail(err.message);
    return void out.warnings.push(`${source}: not generated: ${err.message}`);
  }
  if (!/\.png$/i.test(resolved.key)) {
    // A .jpg in prose is somebody's photo; an explicit output must be something we can write.
    if (c.explicit) fail(`"${target}": only .png outputs can be generated (the image is written as PNG with its parameters)`);
    return;
  }
  if (!rest.prompt) return void fail('the prompt is empty');
  // Prompt options are read as any number (options.ts), so that a value out of bounds is reported here, not dropped.
  if (rest.size && !isImageSize(rest.size.width, rest.size.height)) return void fail(`size ${rest.size.width}x${rest.size.height}: width and height must be ${SIZE_RULE}`);
  if (typeof rest.steps === 'number' && rest.steps > STEPS.max) return void fail(`steps ${rest.steps}: at most ${STEPS.max}`);
  if (rest.seed !== undefined && rest.seed > SEED.max) return void fail(`seed ${rest.seed}: at most ${SEED.max}`);
  out.targets.push({ ...rest, ...resolved });
}

/**
 * One output path, one image. The same image referenced twice with the same prompt and options
 * is one target; different inputs for one path are a conflict, reported with both sources and
 * left out (guessing which wins would flip the image back and forth).
 */
function dedupe(targets: AssetTarget[], problems: AssetProblem[]): AssetTarget[] {
  const byKey = new Map<string, AssetTarget[]>();
  for (const t of targets) byKey.set(t.key, [...(byKey.get(t.key) ?? []), t]);
  const kept: AssetTarget[] = [];
  for (const [key, group] of byKey) {
    const first = group[0];
    const conflict = group.find((t) => inputsKey(t) !== inputsKey(first));
    if (conflict) {
      const sources = group.map((t) => `${t.source.file}:${t.source.line}`).join(', ');
      problems.push({ source: `${first.source.file}:${first.source.line}`, out: key, message: `${key} is asked for with different prompts or options at ${sources}; make them agree or use different paths` });
    } else {
      kept.push({ ...first, explicit: group.some((t) => t.explicit) });
    }
  }
  return kept;
}

const inputsKey = (t: AssetTarget) => JSON.stringify([t.prompt, t.negative ?? null, t.seed ?? null, t.steps ?? null, t.size ?? null, t.model ?? null]);

const rel = (root: string, file: string) => path.relative(root, file).split(path.sep).join('/');
