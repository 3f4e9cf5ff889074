// adadiff.server.generateAssets: which workspace folder and model, and what the user reads while it
// runs. The run itself is the core's generateAssets on the render worker (assets-job.ts), so a
// batch of images never holds a hover, and the CLI, this command and the tests share one pipeline.
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkDoneProgressReporter } from 'vscode-languageserver';
import { failed } from './response-errors';
import { formatSeconds } from '../../shared/format';
import type { AssetRunSummary, AssetTargetParams, AssetTargetResult, GenerateAssetsArgs, GenerateAssetsResult } from '../../shared/protocol';
import { type AssetProgress, type AssetSummary, describeAsset, describePlan, describeSummary, LOCK_FILE } from '../assets';
import { isIgnoredFile } from '../assets/gitignore';
import { isScannedMarkdown } from '../assets/scanned';
import type { AssetsMessage } from './assets-job';
import type { ModelManager } from './models';
import type { Renderer } from './renderer';
import { generationSettings, poolSpec, type SettingsCache } from './settings';

/** Per-step progress reports are thinned to this interval (a small model does hundreds a second). */
const REPORT_EVERY_MS = 200;

export interface AssetsCommandContext {
  renderer: Renderer;
  settings: SettingsCache;
  models: ModelManager;
  cacheDir(): string;
  trusted(): boolean;
  workspaceFolders(): string[];
  /** The server log (the client's output channel): the plan stays readable there after the notification moved on. */
  log(line: string): void;
}

const toPath = (p: string) => (p.startsWith('file:') ? fileURLToPath(p) : p);
const isInside = (folder: string, p: string) => {
  const rel = relative(folder, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

export class AssetsCommand {
  /** Roots with a run in progress: two runs over one lock file would each skip what the other wrote. */
  private readonly running = new Set<string>();

  constructor(private readonly ctx: AssetsCommandContext) {}

  async run(raw: unknown, progress: WorkDoneProgressReporter, signal: AbortSignal): Promise<GenerateAssetsResult> {
    const args = parseArgs(raw);
    const root = this.folderFor(args);
    if (this.running.has(root)) throw failed(`assets are already being generated in ${root}; cancel that run or wait for it`);
    this.running.add(root);
    try {
      // Settings and a relative adadiff.model.path resolve as for a document in this folder.
      const resource = pathToFileURL(join(root, LOCK_FILE)).href;
      const s = await this.ctx.settings.get(resource);
      const choice = this.ctx.models.choose(s, resource);
      const summary = await this.ctx.renderer.assets(
        {
          cacheDir: this.ctx.cacheDir(),
          model: choice.dir,
          providers: choice.providers,
          settings: generationSettings(s),
          options: { root, only: args.only?.map(toPath), force: args.force, dryRun: args.dryRun, check: args.check, trusted: this.ctx.trusted() },
          pool: poolSpec(s),
        },
        signal,
        reporterFor(progress, this.ctx.log),
      );
      return { summary: toWire(summary), message: describeSummary(summary) };
    } finally {
      this.running.delete(root);
    }
  }

  /**
   * Whether `adadiff assets` finds this target: the document is a Markdown file in a workspace
   * folder, in a folder its walk enters, and not git-ignored (the walk's own rules, read from disk
   * as CI will).
   */
  async assetTarget(params: AssetTargetParams): Promise<AssetTargetResult> {
    if (typeof params?.uri !== 'string' || typeof params.target !== 'string' || !params.target || !params.uri.startsWith('file:')) return { managed: false };
    const file = fileURLToPath(params.uri);
    const folder = this.innermostFolder(file);
    if (!folder) return { managed: false };
    const rel = relative(folder, file).split(sep).join('/');
    if (!isScannedMarkdown(rel)) return { managed: false };
    const readText = (p: string) => readFile(join(folder, p), 'utf8').catch(() => undefined);
    return { managed: !(await isIgnoredFile(rel, readText)) };
  }

  /** The innermost workspace folder holding `path` (workspace folders may nest). */
  private innermostFolder(path: string): string | undefined {
    const folders = this.ctx.workspaceFolders().map((f) => resolve(f));
    return folders.filter((f) => isInside(f, path)).sort((a, b) => b.length - a.length)[0];
  }

  /** Only a workspace folder may be written to: a command argument is no licence to write elsewhere. */
  private folderFor(args: GenerateAssetsArgs): string {
    const folders = this.ctx.workspaceFolders().map((f) => resolve(f));
    if (!folders.length) throw failed('no workspace folder is open: assets are generated into a workspace folder');
    if (args.folder) {
      const wanted = resolve(toPath(args.folder));
      if (!folders.includes(wanted)) throw failed(`${wanted} is not a workspace folder`);
      return wanted;
    }
    const first = args.only?.map(toPath).find((p) => isAbsolute(p));
    return (first && this.innermostFolder(first)) || folders[0];
  }
}

/** The run as the client reads it: each asset with the line `adadiff assets` prints for it. */
function toWire(summary: AssetSummary): AssetRunSummary {
  return { ...summary, assets: summary.assets.map((a) => ({ ...a, description: describeAsset(a) })) };
}

function parseArgs(raw: unknown): GenerateAssetsArgs {
  const a = (raw ?? {}) as Record<string, unknown>;
  const bad = (what: string) => failed(`adadiff.server.generateAssets: ${what}`);
  if (typeof a !== 'object' || Array.isArray(a)) throw bad('expected one object argument');
  if (a.folder !== undefined && typeof a.folder !== 'string') throw bad('folder must be a URI string');
  if (a.only !== undefined && !(Array.isArray(a.only) && a.only.every((o) => typeof o === 'string'))) throw bad('only must be a list of paths');
  for (const flag of ['force', 'dryRun', 'check'] as const) if (a[flag] !== undefined && typeof a[flag] !== 'boolean') throw bad(`${flag} must be true or false`);
  if (a.check && (a.force || a.dryRun)) throw bad('check only reports; it takes neither force nor dryRun');
  return a as GenerateAssetsArgs;
}

/** The plan once, then "k/n out/path.png · ETA ~x s" with the share of all steps done. */
function reporterFor(progress: WorkDoneProgressReporter, log: (line: string) => void): (msg: AssetsMessage) => void {
  let lastAt = 0;
  let lastOut: string | undefined;
  let percentage = 0;
  const report = (p: AssetProgress) => {
    if (p.phase === 'done') return;
    if (p.phase !== 'render') {
      progress.report(0, p.message);
      return;
    }
    const now = performance.now();
    if (p.out === lastOut && now - lastAt < REPORT_EVERY_MS) return;
    lastAt = now;
    lastOut = p.out;
    const fraction = p.steps ? (p.step ?? 0) / p.steps : 0;
    // Never backwards: VS Code ignores a smaller percentage anyway, and the bar should not jitter.
    percentage = Math.max(percentage, Math.min(100, Math.round((100 * (p.done + fraction)) / Math.max(1, p.total))));
    const eta = p.etaSeconds !== undefined ? ` · ETA ~${formatSeconds(p.etaSeconds)}` : '';
    progress.report(percentage, `${p.done + 1}/${p.total} ${p.out}${eta}`);
  };
  return (msg) => {
    if (msg.kind === 'assets-progress') return report(msg.progress);
    const plan = describePlan(msg.plan);
    log(`assets: ${plan}`);
    progress.report(0, plan);
  };
}
