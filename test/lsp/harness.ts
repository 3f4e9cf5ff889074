// The language server as an editor sees it: `node dist/cli.js lsp --stdio` in a child process,
// driven by a real LSP client connection (vscode-languageserver-protocol) over its stdin/stdout.
import { type ChildProcess, spawn } from 'node:child_process';
import { buildOnce, ROOT } from '../build';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigurationRequest,
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  type ProtocolConnection,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';
import { type AdaDiffSettings, DEFAULT_SETTINGS } from '../../server/lsp/settings';
import { type InitializationOptions, StatusNotification, type StatusParams } from '../../shared/protocol';
import { tempDir } from '../temp-dirs';

export { ROOT } from '../build';

export interface ServerOptions {
  /** Settings per document URI (workspace/configuration with a scopeUri). */
  settings: (uri: string | undefined) => Partial<AdaDiffSettings>;
  init: InitializationOptions;
  workspace?: string;
  /** Extra environment for the server process (test hooks such as ADADIFF_TEST_UNET_LOAD_DELAY_MS). */
  env?: Record<string, string>;
  /** The CLI bundle to run; default this checkout's dist/cli.js (bench/memory.ts runs another build's beside it). */
  cli?: string;
  /** Node options before the script, e.g. `--require` of a test preload (test/reliability). */
  nodeArgs?: string[];
}

export interface TestServer {
  conn: ProtocolConnection;
  child: ChildProcess;
  statuses: StatusParams[];
  stderr: () => string;
  open(name: string, languageId: string, text: string): string;
  /** Resolves with the first status (already received or future) that matches. */
  waitForStatus(match: (s: StatusParams) => boolean, timeoutMs?: number): Promise<StatusParams>;
  /**
   * The ready status that carries the measured cost. Hovers answer before it (the render worker
   * loads the UNet and measures in the background, started by the first request that loads the
   * model); a test that checks times waits for it.
   */
  waitForCost(modelPath?: string, timeoutMs?: number): Promise<StatusParams>;
  stop(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<TestServer> {
  if (!options.cli) buildOnce();
  const workspace = options.workspace ?? tempDir('adadiff-lsp-ws-');
  const cacheDir = options.init.cacheDir ?? tempDir('adadiff-lsp-cache-');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.cli ?? join(ROOT, 'dist', 'cli.js'), 'lsp', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env, ADADIFF_CACHE_DIR: cacheDir } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const conn = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const statuses: StatusParams[] = [];
  const waiters: { match: (s: StatusParams) => boolean; resolve: (s: StatusParams) => void }[] = [];
  conn.onNotification(StatusNotification, (s) => {
    statuses.push(s);
    for (const w of [...waiters]) if (w.match(s)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(s));
  });
  conn.onRequest(ConfigurationRequest.type, (params) => params.items.map((item) => ({ ...structuredClone(DEFAULT_SETTINGS), ...options.settings(item.scopeUri) })));
  conn.onRequest(WorkDoneProgressCreateRequest.type, () => null);
  conn.listen();
  await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(workspace).href,
    workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: 'ws' }],
    capabilities: { workspace: { configuration: true, codeLens: { refreshSupport: false } }, window: { workDoneProgress: true }, textDocument: { hover: { contentFormat: ['markdown'] } } },
    initializationOptions: { ...options.init, cacheDir },
  });
  await conn.sendNotification(InitializedNotification.type, {});
  const server: TestServer = {
    conn,
    child,
    statuses,
    stderr: () => stderr,
    open(name, languageId, text) {
      const uri = pathToFileURL(join(workspace, name)).href;
      void conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
      return uri;
    },
    waitForStatus(match, timeoutMs = 60_000) {
      const seen = statuses.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching status in ${timeoutMs} ms; got ${JSON.stringify(statuses)}\n${stderr}`)), timeoutMs);
        waiters.push({ match, resolve: (s) => (clearTimeout(timer), resolve(s)) });
      });
    },
    waitForCost(modelPath, timeoutMs = 120_000) {
      return server.waitForStatus((s) => s.state === 'ready' && /UNet step/.test(s.detail ?? '') && (!modelPath || s.model?.path === modelPath), timeoutMs);
    },
    async stop() {
      const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      try {
        await Promise.race([conn.sendRequest(ShutdownRequest.type), new Promise((r) => setTimeout(r, 5000))]);
        await conn.sendNotification(ExitNotification.type);
      } catch {
        // already gone
      }
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
      conn.dispose();
    },
  };
  return server;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
