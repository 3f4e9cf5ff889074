// The e2e entry point on machines that cannot download VS Code: a real VS Code (code-server from
// npm) in headless Chromium. 1) The extension tests (test/e2e/suite) run in the extension host
// through VS Code's smoke-test driver; 2) the UI test clicks through the workbench. With --vsix
// the UI test runs against the packaged extension installed the way a user installs it. 3) A
// second code-server with workspace trust enabled runs suite/trust.ts in an untrusted folder,
// reading and clicking the workbench when that suite asks (trust-ui.ts).
//
//   node --import tsx test/e2e/run.ts [--vsix adadiff-linux-x64-0.1.0.vsix] [--skip-ui] [--skip-trust | --only-trust]
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browser';
import { type CodeServerInstall, ensureCodeServer, installVsix, type RunningCodeServer, startCodeServer } from './code-server';
import { prepare, prepareTrust, ROOT } from './setup';
import { answerSuite } from './answers';
import { uiTest } from './ui';

const OUT = join(__dirname, 'out');
const args = process.argv.slice(2);
const vsix = args.includes('--vsix') ? resolve(args[args.indexOf('--vsix') + 1]) : undefined;
const t0 = Date.now();
const log = (line: string) => console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`);

/**
 * Opens a workbench on `ws`; `payload` is VS Code's development payload (extension and tests
 * paths); `setup` runs before the page loads.
 */
async function openWorkbench(browser: Browser, server: RunningCodeServer, ws: string, payload?: [string, string][], setup?: (page: Page) => Promise<void>): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  await setup?.(page);
  const params = new URLSearchParams({ folder: ws });
  if (payload) params.set('payload', JSON.stringify(payload));
  await page.goto(`${server.url}/?${params}`);
  return page;
}

const remote = (server: RunningCodeServer, path: string) => `vscode-remote://127.0.0.1:${server.port}${path}`;

/** A suite asks the runner for what only the page shows with a line "@@e2e NAME FILE"; the answer goes to FILE. */
async function extensionTests(browser: Browser, server: RunningCodeServer, ws: string, suite: string, logName: string): Promise<number> {
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => (exit = r));
  // Everything the extension host prints goes to a log file; the suite's own lines to the console too.
  const hostLog = createWriteStream(join(OUT, `${logName}.log`));
  let page: Page | undefined;
  const answer = answerSuite(OUT, logName);
  const ask = (name: string, file: string) => {
    log(`  the suite asks: ${name}`);
    void answer(name, page!)
      .catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))
      .then((result) => {
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, JSON.stringify(result));
      });
  };
  const payload: [string, string][] = [
    ['extensionDevelopmentPath', remote(server, ROOT)],
    ['extensionTestsPath', remote(server, suite)],
    ['skipWelcome', 'true'],
  ];
  // VS Code's smoke-test driver reports through these two functions.
  page = await openWorkbench(browser, server, ws, payload, async (p) => {
    await p.exposeFunction('codeAutomationExit', (code: number) => exit(code));
    await p.exposeFunction('codeAutomationLog', (type: string, logArgs: unknown[]) => {
      const text = logArgs.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      hostLog.write(`[${type}] ${text}\n`);
      if (/^[✔✖]|extension tests passed/.test(text)) console.log(`  ${text}`);
      const asked = /^@@e2e (\S+) (\S+)$/.exec(text);
      if (asked) ask(asked[1], asked[2]);
    });
  });
  const timeout = new Promise<number>((r) => setTimeout(() => r(124), 300_000).unref());
  const code = await Promise.race([exited, timeout]);
  if (code === 124) await page.screenshot({ path: join(OUT, `${logName}-timeout.png`) });
  await page.close();
  hostLog.end();
  return code;
}

/** The AdaDiff output channel of every window (VS Code writes log channels to files) into out/, as PREFIX-windowN.log. */
function keepExtensionLogs(home: string, prefix: string): void {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  const logs = existsSync(join(home, 'user-data', 'logs')) ? walk(join(home, 'user-data', 'logs')).filter((f) => f.endsWith('/adadiff.adadiff/AdaDiff.log')) : [];
  logs.forEach((f, i) => copyFileSync(f, join(OUT, `${prefix}-window${i + 1}.log`)));
}

/**
 * Workspace trust enabled (a code-server of its own, since trust is set at its start), the folder
 * untrusted: suite/trust.ts. Returns the number of failed parts.
 */
async function trustTests(browser: Browser, install: CodeServerInstall, home: string): Promise<number> {
  mkdirSync(home, { recursive: true });
  const { workspace: ws, suite } = await prepareTrust(home);
  const server = await startCodeServer(install, { home, trust: true, vscodeOptions: ['enable-smoke-test-driver'], log: process.env.E2E_VERBOSE ? (l) => console.log(`[code-server] ${l}`) : undefined });
  log(`code-server with workspace trust enabled on ${server.url}`);
  try {
    const code = await extensionTests(browser, server, ws, suite, 'extension-host-trust');
    log(`trust tests exited with ${code}`);
    return code === 0 ? 0 : 1;
  } finally {
    await server.stop();
    keepExtensionLogs(home, 'AdaDiff-trust');
  }
}

async function main(): Promise<number> {
  mkdirSync(OUT, { recursive: true });
  const install = ensureCodeServer(log);
  log('code-server ready in the cache');
  for (const built of ['dist/client.js', 'dist/server.js', 'media/dist/preview.js']) {
    if (!existsSync(join(ROOT, built))) throw new Error(`${built} is missing: run npm run build first`);
  }
  const home = mkdtempSync(join(tmpdir(), 'adadiff-e2e-'));
  const browser = await launchChromium();
  let failures = 0;
  try {
    if (!args.includes('--only-trust')) failures += await mainTests(browser, install, join(home, 'main'));
    if (!args.includes('--skip-trust')) failures += await trustTests(browser, install, join(home, 'trust'));
  } finally {
    await browser.close();
    if (!process.env.E2E_KEEP) rmSync(home, { recursive: true, force: true });
  }
  log(failures ? `${failures} e2e part(s) failed` : 'e2e passed');
  return failures ? 1 : 0;
}

/** Trust disabled: the extension tests, then the UI test. Returns the number of failed parts. */
async function mainTests(browser: Browser, install: CodeServerInstall, home: string): Promise<number> {
  mkdirSync(home, { recursive: true });
  const { workspace: ws, suite, model } = await prepare(home);
  log(`model: ${model ?? 'the bundled models/default'}`);
  if (vsix) {
    installVsix(install, home, vsix);
    log(`installed ${vsix}`);
  }
  const server = await startCodeServer(install, { home, vscodeOptions: ['enable-smoke-test-driver'], log: process.env.E2E_VERBOSE ? (l) => console.log(`[code-server] ${l}`) : undefined });
  log(`code-server listening on ${server.url}`);
  let failures = 0;
  try {
    const code = await extensionTests(browser, server, ws, suite, 'extension-host');
    log(`extension tests exited with ${code}`);
    if (code !== 0) failures++;
    if (!args.includes('--skip-ui')) {
      // Without --vsix the UI test runs the development copy, as the extension tests do.
      const page = await openWorkbench(browser, server, ws, vsix ? undefined : [['extensionDevelopmentPath', remote(server, ROOT)], ['skipWelcome', 'true']]);
      try {
        await uiTest(page, OUT, log, ws);
        log(`UI test passed${vsix ? ' (installed .vsix)' : ''}; screenshots in ${OUT}`);
      } catch (err) {
        failures++;
        await page.screenshot({ path: join(OUT, 'ui-failure.png') }).catch(() => undefined);
        log(`✖ UI test: ${err instanceof Error ? err.stack : String(err)}`);
      }
      await page.close();
    }
  } finally {
    await server.stop();
    keepExtensionLogs(home, 'AdaDiff');
  }
  return failures;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
