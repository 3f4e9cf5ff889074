// One Engine per CLI run, with the user's calibration cache and provider order from the environment.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Engine, type ModelHandle } from '../engine';
import { openModelFolder } from '../model/folder';
import { type LoadedModel, loadModel } from '../model/session';

export function cacheDir(): string {
  return process.env.ADADIFF_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'adadiff');
}

/** ADADIFF_PROVIDERS=cuda,cpu overrides the platform's default execution-provider order. */
export function cliProviders(): string[] | undefined {
  return process.env.ADADIFF_PROVIDERS?.split(',').map((p) => p.trim()).filter(Boolean);
}

/**
 * A CLI run is a batch the user waits for, with no editor to leave a core to: its sessions take
 * every core (CpuShare 'dedicated'); the language server's take one fewer.
 */
export const CLI_CPU = 'dedicated' as const;

function cliEngine(): Engine {
  return new Engine({ cacheDir: cacheDir(), providers: cliProviders(), cpu: CLI_CPU });
}

/** A model's sessions without an Engine (train-policy, eval): the same providers and CPU share. */
export async function cliModel(dir: string): Promise<LoadedModel> {
  return loadModel(await openModelFolder(dir), { providers: cliProviders(), cpu: CLI_CPU });
}

/** Runs `fn` with a CLI engine that is disposed afterwards, whatever `fn` does. */
export async function withEngine<T>(fn: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = cliEngine();
  try {
    return await fn(engine);
  } finally {
    await engine.dispose();
  }
}

/** Runs `fn` with the model folder opened in a CLI engine (generate, predict, sheet, doctor, calibrate). */
export const withModel = <T>(dir: string, fn: (handle: ModelHandle, engine: Engine) => Promise<T>): Promise<T> =>
  withEngine(async (engine) => fn(await engine.open(dir), engine));

/** Runs `fn` with the model's sessions loaded without an Engine (train-policy, eval), disposed afterwards. */
export async function withLoadedModel<T>(dir: string, fn: (model: LoadedModel) => Promise<T>): Promise<T> {
  const model = await cliModel(dir);
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}
