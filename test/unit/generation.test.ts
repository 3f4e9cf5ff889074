// resolveGeneration: for every purpose and parameter, every combination of the sources that could
// give it, against the precedence table below (the README's, written out), plus the "not set"
// values of the settings and the note that the policy was measured for other settings.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type GenerationDefaults, type ParameterValues, type Purpose, resolveGeneration, type Source } from '../../server/generation';
import { generationSettings, normalizeSettings } from '../../server/lsp/settings';

type Parameter = 'seed' | 'steps' | 'guidance' | 'scheduler' | 'size' | 'baselineSteps';
type Level = Exclude<Source, 'default'>;

const R = 'request', P = 'prompt', S = 'settings', M = 'policy', O = 'model';

/** Which source wins, first to last; 'default' when none of them gives a value. */
const PRECEDENCE: Record<Purpose, Record<Parameter, Level[]>> = {
  preview: { seed: [R, P, S], steps: [R, P, S], size: [R, P, S], guidance: [R, P, S, M, O], scheduler: [R, P, S, M, O], baselineSteps: [M, R, P, S, O] },
  // Never the editor's settings: CI's `adadiff assets --check` must agree with the editor.
  asset: { seed: [R, P], steps: [R, P], size: [R, P], guidance: [R, P, M, O], scheduler: [R, P, M, O], baselineSteps: [M, R, P, O] },
  // No prompt's options: a training covers many prompts.
  training: { seed: [R, S], steps: [R, S], size: [R, S], guidance: [R, S, M, O], scheduler: [R, S, M, O], baselineSteps: [M, R, S, O] },
};

const DEFAULTS: GenerationDefaults = { baselineSteps: 51, guidance: 7.5, scheduler: 'lcm', seed: 99 };
const POLICY = { scheduler: 'ddim', guidance: 5, baselineSteps: 23 } as const;
/** What a model's layout recommends (a Turbo model: Euler ancestral, guidance 0, 4 steps). */
const MODEL = { scheduler: 'euler-a', guidance: 0, baselineSteps: 4 } as const;

/** A distinct value per source, so the result says which one won. */
const VALUES: Record<Parameter, Record<Level, ParameterValues>> = {
  seed: { request: { seed: 1 }, prompt: { seed: 2 }, settings: { seed: 3 }, policy: {}, model: {} },
  steps: { request: { steps: 11 }, prompt: { steps: 12 }, settings: { steps: 13 }, policy: {}, model: {} },
  size: { request: { width: 16, height: 16 }, prompt: { width: 24, height: 32 }, settings: { width: 40 }, policy: {}, model: {} },
  guidance: { request: { guidance: 1 }, prompt: { guidance: 2 }, settings: { guidance: 3 }, policy: { guidance: POLICY.guidance }, model: { guidance: MODEL.guidance } },
  scheduler: { request: { scheduler: 'euler' }, prompt: { scheduler: 'dpmpp-2m' }, settings: { scheduler: 'dpmpp-2m-karras' }, policy: { scheduler: POLICY.scheduler }, model: { scheduler: MODEL.scheduler } },
  baselineSteps: { request: { baselineSteps: 20 }, prompt: { baselineSteps: 21 }, settings: { baselineSteps: 22 }, policy: { baselineSteps: POLICY.baselineSteps }, model: { baselineSteps: MODEL.baselineSteps } },
};
const DEFAULT_VALUES: Record<Parameter, ParameterValues> = {
  seed: { seed: DEFAULTS.seed },
  steps: { steps: 'auto' },
  size: {},
  guidance: { guidance: DEFAULTS.guidance },
  scheduler: { scheduler: DEFAULTS.scheduler },
  baselineSteps: { baselineSteps: DEFAULTS.baselineSteps },
};

const LEVELS: Level[] = [R, P, S, M, O];
const subsets = <T>(xs: T[]): T[][] => xs.reduce<T[][]>((all, x) => all.concat(all.map((s) => [...s, x])), [[]]);

function picked(g: ReturnType<typeof resolveGeneration>, parameter: Parameter): ParameterValues {
  if (parameter === 'size') return { ...(g.width !== undefined ? { width: g.width } : {}), ...(g.height !== undefined ? { height: g.height } : {}) };
  return { [parameter]: g[parameter] };
}

describe('resolveGeneration', () => {
  for (const purpose of Object.keys(PRECEDENCE) as Purpose[]) {
    test(`${purpose}: every combination of sources, for every parameter`, () => {
      let cases = 0;
      for (const parameter of Object.keys(VALUES) as Parameter[]) {
        for (const given of subsets(LEVELS)) {
          const has = (l: Level) => given.includes(l);
          // The policy and the model's layout are present or not as a whole; they give scheduler, guidance and baseline only.
          const g = resolveGeneration({
            purpose,
            defaults: DEFAULTS,
            ...(has(R) ? { request: VALUES[parameter].request } : {}),
            ...(has(P) ? { prompt: VALUES[parameter].prompt } : {}),
            ...(has(S) ? { settings: VALUES[parameter].settings } : {}),
            policy: has(M) ? POLICY : null,
            ...(has(O) ? { model: MODEL } : {}),
          });
          const winner = PRECEDENCE[purpose][parameter].find((l) => has(l) && Object.keys(VALUES[parameter][l]).length > 0) ?? 'default';
          const label = `${purpose} ${parameter} from [${given.join(', ')}]`;
          assert.equal(g.from[parameter], winner, label);
          assert.deepEqual(picked(g, parameter), winner === 'default' ? DEFAULT_VALUES[parameter] : VALUES[parameter][winner], label);
          cases++;
        }
      }
      assert.equal(cases, 6 * 32);
    });
  }

  test('the policy was measured for other settings exactly when its scheduler or guidance is not the one used', () => {
    const measured = (sources: { request?: ParameterValues; settings?: ParameterValues; policy?: typeof POLICY | null }, purpose: Purpose = 'preview') =>
      resolveGeneration({ purpose, defaults: DEFAULTS, ...sources }).policyMeasuredWith;
    assert.equal(measured({ policy: null, settings: { guidance: 3 } }), undefined, 'no policy');
    assert.equal(measured({ policy: POLICY }), undefined, "the policy's own");
    assert.equal(measured({ policy: POLICY, settings: { guidance: POLICY.guidance, scheduler: POLICY.scheduler } }), undefined, 'set to the same');
    assert.deepEqual(measured({ policy: POLICY, settings: { guidance: 3 } }), { scheduler: 'ddim', guidance: 5 });
    assert.deepEqual(measured({ policy: POLICY, request: { scheduler: 'euler' } }), { scheduler: 'ddim', guidance: 5 });
    assert.equal(measured({ policy: POLICY, settings: { guidance: 3 } }, 'asset'), undefined, 'assets use the policy\'s');
  });

  test('settings of guidance 0, scheduler auto and an empty size are not set: the policy\'s (else the defaults) apply', () => {
    const unset = generationSettings(normalizeSettings({ guidance: 0, scheduler: 'auto', size: '', seed: 4 }));
    assert.deepEqual(unset, { seed: 4 });
    const g = resolveGeneration({ purpose: 'preview', settings: unset, policy: POLICY, defaults: DEFAULTS });
    assert.deepEqual([g.scheduler, g.guidance, g.width, g.seed], ['ddim', 5, undefined, 4]);
    const none = resolveGeneration({ purpose: 'preview', settings: unset, defaults: DEFAULTS });
    assert.deepEqual([none.scheduler, none.guidance], [DEFAULTS.scheduler, DEFAULTS.guidance]);
    const set = generationSettings(normalizeSettings({ guidance: 3, scheduler: 'euler', size: '128x96' }));
    assert.deepEqual(set, { seed: 0, guidance: 3, scheduler: 'euler', width: 128, height: 96 });
    assert.deepEqual(generationSettings(normalizeSettings({ baselineSteps: 30 })), { seed: 0, baselineSteps: 30 });
  });
});
