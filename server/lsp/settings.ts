// The `adadiff` settings, read per resource (workspace/configuration with a scopeUri), cached per
// document until the client says the configuration changed. Values of the wrong type fall back to
// the defaults one by one, so a typo in settings.json never takes the server down.
import type { Connection } from 'vscode-languageserver';
import type { GenerationDefaults } from '../engine';
import type { SchedulerName } from '../model/contract';
import { type AdaDiffSettings, DEFAULT_SETTINGS, type ImageSize, SETTINGS_SECTION } from '../protocol';

const SCHEDULERS = ['auto', 'ddim', 'euler', 'dpmpp-2m', 'dpmpp-2m-karras', 'lcm'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown, fallback: string[]) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : fallback);
const int = (v: unknown, fallback: number, min: number, max: number) => (Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fallback);

/** Accepts the nested object VS Code returns for a section (dotted keys are split into objects). */
export function normalizeSettings(raw: unknown): AdaDiffSettings {
  const d = DEFAULT_SETTINGS;
  if (!isObject(raw)) return structuredClone(d);
  const model = isObject(raw.model) ? raw.model : {};
  const codeLens = isObject(raw.codeLens) ? raw.codeLens : {};
  const prompts = isObject(raw.prompts) ? raw.prompts : {};
  return {
    model: { path: typeof model.path === 'string' ? model.path.trim() : d.model.path },
    providers: strings(raw.providers, d.providers),
    baselineSteps: int(raw.baselineSteps, d.baselineSteps, 1, 1000),
    guidance: typeof raw.guidance === 'number' && raw.guidance >= 0 && raw.guidance <= 50 ? raw.guidance : d.guidance,
    size: typeof raw.size === 'string' && (raw.size === '' || parseSizeSetting(raw.size)) ? raw.size : d.size,
    scheduler: typeof raw.scheduler === 'string' && SCHEDULERS.includes(raw.scheduler) ? (raw.scheduler as AdaDiffSettings['scheduler']) : d.scheduler,
    seed: int(raw.seed, d.seed, 0, Number.MAX_SAFE_INTEGER),
    codeLens: { enabled: typeof codeLens.enabled === 'boolean' ? codeLens.enabled : d.codeLens.enabled },
    prompts: {
      names: strings(prompts.names, d.prompts.names),
      callees: strings(prompts.callees, d.prompts.callees),
      languages: strings(prompts.languages, d.prompts.languages),
    },
  };
}

export function parseSizeSetting(size: string): ImageSize | undefined {
  const m = /^(\d+)x(\d+)$/.exec(size.trim());
  if (!m) return undefined;
  const [width, height] = [Number(m[1]), Number(m[2])];
  return width >= 8 && height >= 8 && width <= 4096 && height <= 4096 && width % 8 === 0 && height % 8 === 0 ? { width, height } : undefined;
}

/** What the settings change in the engine's defaults; 0 guidance and 'auto' scheduler mean "the model's". */
export function generationDefaults(s: AdaDiffSettings): Partial<GenerationDefaults> {
  const out: Partial<GenerationDefaults> = { baselineSteps: s.baselineSteps, seed: s.seed };
  if (s.guidance > 0) out.guidance = s.guidance;
  if (s.scheduler !== 'auto') out.scheduler = s.scheduler as SchedulerName;
  return out;
}

export class SettingsCache {
  private readonly byResource = new Map<string, Promise<AdaDiffSettings>>();

  constructor(
    private readonly connection: Connection,
    /** False when the client cannot answer workspace/configuration: then the defaults apply. */
    private readonly pull: boolean,
  ) {}

  get(uri: string | undefined): Promise<AdaDiffSettings> {
    const key = uri ?? '';
    let settings = this.byResource.get(key);
    if (!settings) {
      settings = this.pull
        ? this.connection.workspace
            .getConfiguration({ scopeUri: uri, section: SETTINGS_SECTION })
            .then(normalizeSettings, () => normalizeSettings(undefined))
        : Promise.resolve(normalizeSettings(undefined));
      this.byResource.set(key, settings);
    }
    return settings;
  }

  forget(uri?: string): void {
    if (uri === undefined) this.byResource.clear();
    else this.byResource.delete(uri);
  }
}
