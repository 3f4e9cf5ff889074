// The `adadiff` settings, read per resource (workspace/configuration with a scopeUri), cached per
// document until the client says the configuration changed. A value of the wrong type or out of
// bounds falls back to its default, one by one, so a typo in settings.json never takes the server
// down, and is reported (not dropped in silence): readSettings says what was ignored and why.
import type { Connection } from 'vscode-languageserver';
import { SETTINGS_SECTION } from '../../shared/protocol';
import type { ParameterValues } from '../generation';
import { passwordFromEnv, type PoolSpec, poolTarget } from '../pool/session';
import { BASELINE_SETTING, GUIDANCE, integerRule, isIntegerIn, isNumberIn, numberRule, parseImageSize, SCHEDULER_SETTINGS, type SchedulerSetting, SEED, SIZE_RULE } from '../limits';

// The section's shape as package.json's contributes.configuration declares it (its bounds and
// names are limits.ts's; test/unit/limits.test.ts checks package.json against both). Server-side:
// the client reads no setting but the few it acts on itself (seed, preview.openBeside,
// prompts.languages), by name.
export interface AdaDiffSettings {
  /** `adadiff.model.path`: a diffusers ONNX model folder; '' = the bundled model. Ignored in an untrusted workspace. */
  model: { path: string };
  /** `adadiff.providers`: execution providers to try in order (e.g. ["cuda", "cpu"]); [] = the platform's default order. */
  providers: string[];
  /** `adadiff.baselineSteps`: for a model without a policy, its steps and what savings are measured against (a policy brings its own); 0 = the model's own, else the default. */
  baselineSteps: number;
  /** `adadiff.guidance`: classifier-free guidance scale; 0 = what the step policy was trained with, else the default. Not for assets. */
  guidance: number;
  /** `adadiff.size`: "WIDTHxHEIGHT", '' = the model's default size. Not for assets. */
  size: string;
  /** `adadiff.scheduler`: 'auto' = what the step policy was trained with, else the default. Not for assets. */
  scheduler: SchedulerSetting;
  /** `adadiff.seed`: the seed previews start from. */
  seed: number;
  /** `adadiff.codeLens.enabled`. */
  codeLens: { enabled: boolean };
  /** `adadiff.prompts.*`: extend the prompt finder. */
  prompts: {
    /** Extra identifier fragments that mark a prompt (besides "prompt"). */
    names: string[];
    /** Extra callees whose first argument is a prompt (besides pipe, pipeline, generate, txt2img, images.generate). */
    callees: string[];
    /** Extra language ids to look for prompts in. */
    languages: string[];
  };
  /**
   * `adadiff.pool.*` (machine scope: a workspace cannot send prompts to a Redis of its choosing):
   * the pool Generate All Assets and Train Step Policy run on; its password is in the client's
   * SecretStorage, not here.
   */
  pool: { redis: string; allowUnauthenticated: boolean };
}

export const DEFAULT_SETTINGS: AdaDiffSettings = {
  model: { path: '' },
  providers: [],
  baselineSteps: 0,
  guidance: 0,
  size: '',
  scheduler: 'auto',
  seed: 0,
  codeLens: { enabled: true },
  prompts: { names: [], callees: [], languages: [] },
  pool: { redis: '', allowUnauthenticated: false },
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Accepts the nested object VS Code returns for a section (dotted keys are split into objects). */
export function readSettings(raw: unknown): { settings: AdaDiffSettings; problems: string[] } {
  // A copy: the settings' lists must not be DEFAULT_SETTINGS's own.
  const d = structuredClone(DEFAULT_SETTINGS);
  const problems: string[] = [];
  const root = isObject(raw) ? raw : {};
  const section = (key: string) => (isObject(root[key]) ? (root[key] as Record<string, unknown>) : {});
  /** The value if `valid`, else the default; unset (undefined, null) is no problem. */
  const read = <T>(key: string, value: unknown, valid: (v: unknown) => boolean, fallback: T, rule: string): T => {
    if (value === undefined || value === null) return fallback;
    if (valid(value)) return value as T;
    problems.push(`adadiff.${key}: ${JSON.stringify(value)} is not ${rule}; using ${JSON.stringify(fallback)}`);
    return fallback;
  };
  const model = section('model');
  const codeLens = section('codeLens');
  const prompts = section('prompts');
  const pool = section('pool');
  const strings = (key: string, value: unknown, fallback: string[]) => read(key, value, isStrings, fallback, 'a list of strings');
  return {
    settings: {
      model: { path: read('model.path', model.path, (v) => typeof v === 'string', d.model.path, 'a path').trim() },
      providers: strings('providers', root.providers, d.providers),
      baselineSteps: read('baselineSteps', root.baselineSteps, (v) => isIntegerIn(v, BASELINE_SETTING), d.baselineSteps, integerRule(BASELINE_SETTING)),
      guidance: read('guidance', root.guidance, (v) => isNumberIn(v, GUIDANCE), d.guidance, numberRule(GUIDANCE)),
      size: read('size', root.size, (v) => typeof v === 'string' && (v === '' || parseImageSize(v) !== undefined), d.size, `WIDTHxHEIGHT in ${SIZE_RULE}, or empty`),
      scheduler: read<SchedulerSetting>('scheduler', root.scheduler, (v) => SCHEDULER_SETTINGS.includes(v as SchedulerSetting), d.scheduler, `one of ${SCHEDULER_SETTINGS.join(', ')}`),
      seed: read('seed', root.seed, (v) => isIntegerIn(v, SEED), d.seed, integerRule(SEED)),
      codeLens: { enabled: read('codeLens.enabled', codeLens.enabled, (v) => typeof v === 'boolean', d.codeLens.enabled, 'true or false') },
      prompts: {
        names: strings('prompts.names', prompts.names, d.prompts.names),
        callees: strings('prompts.callees', prompts.callees, d.prompts.callees),
        languages: strings('prompts.languages', prompts.languages, d.prompts.languages),
      },
      pool: {
        redis: read('pool.redis', pool.redis, (v) => typeof v === 'string', d.pool.redis, 'a redis:// or rediss:// URL').trim(),
        allowUnauthenticated: read('pool.allowUnauthenticated', pool.allowUnauthenticated, (v) => typeof v === 'boolean', d.pool.allowUnauthenticated, 'true or false'),
      },
    },
    problems,
  };
}

export const normalizeSettings = (raw: unknown): AdaDiffSettings => readSettings(raw).settings;

/**
 * The settings as a source for resolveGeneration (generation.ts): baseline steps 0, guidance 0,
 * scheduler 'auto' and an empty size mean "not set", so the step policy's values (else the model's
 * own, else the defaults) apply.
 */
export function generationSettings(s: AdaDiffSettings): ParameterValues {
  const out: ParameterValues = { seed: s.seed };
  if (s.baselineSteps > 0) out.baselineSteps = s.baselineSteps;
  if (s.guidance > 0) out.guidance = s.guidance;
  if (s.scheduler !== 'auto') out.scheduler = s.scheduler;
  const size = parseImageSize(s.size);
  if (size) Object.assign(out, size);
  return out;
}

/**
 * The pool a run uses: none when `adadiff.pool.redis` is empty. The password is the server's
 * ADADIFF_REDIS_PASSWORD (the client sets it from SecretStorage). The URL and its rules are checked
 * here, so a bad one fails the command at once with what to change (a PoolError).
 */
export function poolSpec(s: AdaDiffSettings): PoolSpec | undefined {
  if (!s.pool.redis) return undefined;
  const password = passwordFromEnv();
  const spec = { url: s.pool.redis, ...(password ? { password } : {}), allowUnauthenticated: s.pool.allowUnauthenticated };
  poolTarget(spec);
  return spec;
}

export class SettingsCache {
  private readonly byResource = new Map<string, Promise<AdaDiffSettings>>();
  /** Each problem is logged once until the configuration changes. */
  private readonly reported = new Set<string>();

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
        ? this.connection.workspace.getConfiguration({ scopeUri: uri, section: SETTINGS_SECTION }).then(
            (raw) => this.report(readSettings(raw)),
            () => normalizeSettings(undefined),
          )
        : Promise.resolve(normalizeSettings(undefined));
      this.byResource.set(key, settings);
    }
    return settings;
  }

  private report({ settings, problems }: ReturnType<typeof readSettings>): AdaDiffSettings {
    for (const p of problems) {
      if (this.reported.has(p)) continue;
      this.reported.add(p);
      this.connection.console.warn(p);
    }
    return settings;
  }

  forget(uri?: string): void {
    if (uri === undefined) {
      this.byResource.clear();
      this.reported.clear();
    } else this.byResource.delete(uri);
  }
}
