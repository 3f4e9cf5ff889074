// One Engine per CLI run, with the user's calibration cache and provider order from the environment.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../engine';

export function cacheDir(): string {
  return process.env.ADADIFF_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'adadiff');
}

/** ADADIFF_PROVIDERS=cuda,cpu overrides the platform's default execution-provider order. */
export function cliEngine(): Engine {
  const providers = process.env.ADADIFF_PROVIDERS?.split(',').map((p) => p.trim()).filter(Boolean);
  return new Engine({ cacheDir: cacheDir(), providers });
}
