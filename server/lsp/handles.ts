// Settings are read per resource, but ONNX sessions are created once per model folder: a handle
// view shares the loaded model and policy and carries the settings, one source of resolveGeneration.
import { type Engine, ModelHandle } from '../engine';
import type { ParameterValues } from '../generation';
import type { LoadedModel, TextModel } from '../model/session';

export async function openWithSettings<M extends TextModel>(engine: Engine<M>, dir: string, settings: ParameterValues): Promise<ModelHandle<M>> {
  const base = await engine.open(dir);
  return new ModelHandle(base.model, base.policy, base.costs, engine.defaults, settings);
}

/** One Engine per execution-provider order (usually exactly one): the order decides how sessions are made. */
export class Engines<M extends TextModel = LoadedModel> {
  private readonly engines = new Map<string, Engine<M>>();

  constructor(private readonly create: (providers: string[] | undefined) => Engine<M>) {}

  get(providers: string[]): Engine<M> {
    const key = providers.join(',');
    let engine = this.engines.get(key);
    if (!engine) {
      engine = this.create(providers.length ? providers : undefined);
      this.engines.set(key, engine);
    }
    return engine;
  }

  /** Every engine's handle of this folder, no longer served (see Engine.forget); the caller disposes them. */
  forget(dir: string): Promise<ModelHandle<M>>[] {
    return [...this.engines.values()].flatMap((e) => e.forget(dir) ?? []);
  }

  async dispose(): Promise<void> {
    const all = [...this.engines.values()];
    this.engines.clear();
    await Promise.all(all.map((e) => e.dispose()));
  }
}
