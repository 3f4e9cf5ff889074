// The preview page in headless Chromium: the exact HTML the panel uses (client/preview-html.ts)
// and the webview script built from media/preview.ts, served under one fake origin so the CSP
// applies as in VS Code. Screenshots land in test/webview/out/.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { previewHtml } from '../../client/preview-html';
import type { CompareView, FromWebview, PreviewView, ToWebview } from '../../shared/preview-messages';
import { tempDir } from '../temp-dirs';

const ORIGIN = 'https://webview.adadiff.test';
const OUT = join(__dirname, 'out');
const ROOT = join(__dirname, '..', '..');
const HOSTILE = '<img src=x onerror=alert(1)>';

/** A PNG data URI: a smooth gradient, or the same with noise on top (an early x0 estimate). */
function png(size: number, noise: number, seed = 1): string {
  const image = new PNG({ width: size, height: size });
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 255 * noise;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      const cx = x - size / 2, cy = y - size * 0.6;
      const sun = Math.hypot(cx, cy) < size / 5 ? 1 : 0;
      image.data[i] = clamp(30 + 200 * (y / size) + 200 * sun + rnd());
      image.data[i + 1] = clamp(60 + 90 * (y / size) + 150 * sun + rnd());
      image.data[i + 2] = clamp(160 - 100 * (y / size) + rnd());
      image.data[i + 3] = 255;
    }
  }
  return `data:image/png;base64,${PNG.sync.write(image).toString('base64')}`;
}
const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

// A dark theme's worth of the variables VS Code defines in every webview.
const THEME: Record<string, string> = {
  '--vscode-foreground': '#cccccc',
  '--vscode-descriptionForeground': '#9d9d9d',
  '--vscode-errorForeground': '#f48771',
  '--vscode-editor-background': '#1e1e1e',
  '--vscode-editorWidget-background': '#252526',
  '--vscode-panel-border': '#3c3c3c',
  '--vscode-button-foreground': '#ffffff',
  '--vscode-button-background': '#0e639c',
  '--vscode-button-hoverBackground': '#1177bb',
  '--vscode-button-secondaryForeground': '#ffffff',
  '--vscode-button-secondaryBackground': '#3a3d41',
  '--vscode-progressBar-background': '#0e70c0',
  '--vscode-focusBorder': '#007fd4',
  '--vscode-font-family': 'sans-serif',
  '--vscode-font-size': '13px',
};

interface Probe {
  posted: FromWebview[];
  alerts: number;
  cspViolations: string[];
  setStates: number;
}

describe('preview webview', () => {
  let browser: Browser;
  let script: string;
  const profile = tempDir('adadiff-chromium-');

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    // Same options as esbuild.mjs gives media/dist/preview.js, built fresh from the source.
    const built = await esbuild.build({ entryPoints: [join(ROOT, 'media/preview.ts')], bundle: true, platform: 'browser', format: 'iife', target: 'es2022', write: false });
    script = built.outputFiles[0].text;
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      env: { ...process.env, XDG_CONFIG_HOME: profile, XDG_CACHE_HOME: profile },
    });
  });

  after(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  async function open(): Promise<{ page: Page; probe: () => Promise<Probe> }> {
    const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
    const nonce = randomBytes(16).toString('base64');
    const html = previewHtml({ cspSource: ORIGIN, nonce, scriptUri: `${ORIGIN}/media/dist/preview.js`, styleUri: `${ORIGIN}/media/preview.css` });
    await page.route(`${ORIGIN}/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      const files: Record<string, [string, string]> = {
        '/index.html': ['text/html', html],
        '/media/dist/preview.js': ['text/javascript', script],
        '/media/preview.css': ['text/css', readFileSync(join(ROOT, 'media/preview.css'), 'utf8')],
      };
      const file = files[path];
      return file ? route.fulfill({ contentType: file[0], body: file[1] }) : route.fulfill({ status: 404 });
    });
    // What VS Code provides: acquireVsCodeApi (its state survives reloads, like the real one) and the
    // theme variables. A string, not a function: tsx's helpers would not exist in the page.
    await page.addInitScript(`
      window.__probe = { posted: [], alerts: 0, cspViolations: [], setStates: 0 };
      window.alert = () => { window.__probe.alerts++; };
      document.addEventListener('securitypolicyviolation', (e) => window.__probe.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
      window.acquireVsCodeApi = () => ({
        postMessage: (m) => window.__probe.posted.push(m),
        getState: () => JSON.parse(sessionStorage.getItem('state') ?? 'null') ?? undefined,
        setState: (s) => (window.__probe.setStates++, sessionStorage.setItem('state', JSON.stringify(s ?? null))),
      });
      document.addEventListener('DOMContentLoaded', () => {
        for (const [k, v] of Object.entries(${JSON.stringify(THEME)})) document.documentElement.style.setProperty(k, v);
      });
    `);
    page.on('dialog', (d) => void d.dismiss());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${ORIGIN}/index.html`);
    assert.deepEqual(errors, []);
    return { page, probe: () => page.evaluate(() => (window as unknown as { __probe: Probe }).__probe) };
  }

  // Resolves once the page has handled the message (its listener was added first, so it runs first).
  const post = (page: Page, msg: ToWebview) =>
    page.evaluate(
      (m) =>
        new Promise<void>((resolve) => {
          // The page renders once per animation frame; this frame callback runs after its one.
          window.addEventListener('message', () => requestAnimationFrame(() => resolve()), { once: true });
          window.postMessage(m, '*');
        }),
      msg,
    );

  const subject = { uri: 'file:///ws/README.md', prompt: HOSTILE, negativePrompt: 'blurry, <b>bold</b>', seed: 42 };
  const result: PreviewView = {
    id: 'p1', image: png(64, 0), width: 64, height: 64, prompt: HOSTILE, steps: 15, predictedSteps: 15, baselineSteps: 50,
    seed: 42, estimatedSeconds: 0.41, actualSeconds: 0.38, model: 'tiny-sd', provider: 'cpu', policy: true,
  };

  it('streams the sharpening image, then shows the final image and the facts; the prompt stays text', async () => {
    const { page, probe } = await open();
    assert.deepEqual((await probe()).posted, [{ type: 'ready' }]);
    await post(page, { type: 'start', subject, kind: 'preview', trusted: true });
    const early = png(64, 1.2);
    const persisted = (await probe()).setStates;
    for (let step = 1; step <= 3; step++) await post(page, { type: 'progress', step, total: 15, ...(step === 3 ? { image: early } : {}) });
    assert.equal((await probe()).setStates, persisted, 'progress is not persisted: each setState crosses to the workbench, with the image');
    assert.equal(await page.locator('#image').getAttribute('src'), early);
    assert.equal(await page.locator('#status-text').textContent(), 'denoising step 3 / 15');
    assert.equal(await page.locator('#cancel').isDisabled(), false);
    assert.equal(await page.locator('#save').isDisabled(), true);
    await page.screenshot({ path: join(OUT, 'preview-running.png') });
    // A burst of progress (a fast model's steps, or messages queued behind a large image's decode)
    // is rendered once per frame, not once per message.
    const renders = await page.evaluate(
      (total) =>
        new Promise<number>((resolve) => {
          let changes = 0;
          const observer = new MutationObserver(() => changes++);
          observer.observe(document.getElementById('status-text')!, { childList: true, characterData: true, subtree: true });
          for (let step = 4; step <= total; step++) window.postMessage({ type: 'progress', step, total }, '*');
          window.addEventListener('message', (e) => {
            if (e.data?.step === total) requestAnimationFrame(() => (observer.disconnect(), resolve(changes)));
          });
        }),
      300,
    );
    assert.equal(await page.locator('#status-text').textContent(), 'denoising step 300 / 300');
    assert.ok(renders <= 10, `297 progress messages rendered ${renders} times`);

    await post(page, { type: 'preview', result });
    const img = page.locator('#image');
    assert.equal(await img.getAttribute('src'), result.image);
    assert.equal(await img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth), 64);
    assert.equal(await page.locator('#prompt').textContent(), HOSTILE);
    assert.equal(await page.locator('#negative').textContent(), 'Negative: blurry, <b>bold</b>');
    assert.equal(await page.locator('img').count(), 2, 'only the two figure images exist: the prompt made no <img>');
    assert.equal(await page.locator('b').count(), 0);
    const facts = await page.locator('#facts').innerText();
    assert.match(facts, /15 predicted · 50 baseline \(−70%\)/);
    assert.match(facts, /0\.38 s actual · 0\.41 s predicted/);
    assert.match(facts, /tiny-sd/);
    assert.match(facts, /cpu/);
    assert.match(facts, /42/);
    assert.equal(await page.locator('#cancel').isDisabled(), true);
    assert.equal(await page.locator('#save').isDisabled(), false);
    await page.locator('#new-seed').click();
    await page.locator('#save').click();
    const p = await probe();
    assert.deepEqual(p.posted.slice(1), [{ type: 'newSeed' }, { type: 'save' }]);
    assert.equal(p.alerts, 0);
    assert.deepEqual(p.cspViolations, []);
    await page.screenshot({ path: join(OUT, 'preview.png'), fullPage: true });

    // A reload (VS Code restarting, the panel moved) restores everything from getState.
    await page.reload();
    assert.equal(await page.locator('#image').getAttribute('src'), result.image);
    assert.equal(await page.locator('#prompt').textContent(), HOSTILE);
    assert.equal((await probe()).alerts, 0);
    await page.close();
  });

  it('shows a comparison side by side with the fidelity figure', async () => {
    const { page, probe } = await open();
    await post(page, { type: 'start', subject: { ...subject, prompt: 'a lighthouse at dusk, oil painting' }, kind: 'preview', trusted: true });
    await post(page, { type: 'preview', result: { ...result, prompt: 'a lighthouse at dusk, oil painting' } });
    await post(page, { type: 'start', subject: { ...subject, prompt: 'a lighthouse at dusk, oil painting' }, kind: 'compare', trusted: true });
    await post(page, { type: 'progress', step: 20, total: 50, phase: 'baseline', image: png(64, 0.6) });
    assert.match((await page.locator('#status-text').textContent()) ?? '', /Comparing \(baseline\): denoising step 20 \/ 50/);
    const compare: CompareView = {
      id: 'c1', prompt: 'a lighthouse at dusk, oil painting', seed: 42, width: 64, height: 64,
      baseline: { image: png(64, 0), steps: 50, seconds: 1.31 }, predicted: { image: png(64, 0.08, 3), steps: 15, seconds: 0.4 },
      fidelity: 0.934, model: 'tiny-sd', provider: 'cpu',
    };
    await post(page, { type: 'compare', result: compare });
    assert.equal(await page.locator('#baseline-image').getAttribute('src'), compare.baseline.image);
    assert.equal(await page.locator('#image').getAttribute('src'), compare.predicted.image);
    assert.equal(await page.locator('#fidelity').textContent(), 'Fidelity to the baseline image (SSIM): 0.934');
    assert.equal(await page.locator('#baseline-caption').textContent(), 'Baseline: 50 steps · 1.31 s');
    assert.equal(await page.locator('#main-caption').textContent(), 'Predicted: 15 steps · 0.40 s');
    assert.deepEqual((await probe()).cspViolations, []);
    await page.screenshot({ path: join(OUT, 'compare.png'), fullPage: true });
    await page.close();
  });

  it('injection payloads in every text it shows stay text; the CSP blocks inline scripts, handlers, styles and other origins', async () => {
    const payloads = [
      '<script>alert(1)</script>',
      '<img src=x onerror=alert(1)>',
      '<svg onload=alert(1)><circle r=9 /></svg>',
      '"><iframe srcdoc="<script>parent.alert(1)</script>"></iframe>',
      '</p><style>body { display: none }</style>',
      '<a href="javascript:alert(1)">click</a>',
      '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
      '<link rel="stylesheet" href="https://evil.example/x.css">',
      '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
      '<base href="https://evil.example/">',
      '<div style="background: url(https://evil.example/leak)">x</div>',
      '${alert(1)} {{constructor.constructor("alert(1)")()}} javascript:alert(1)',
      '\u202e<b>reversed</b>\u0000',
    ];
    const { page, probe } = await open();
    const elsewhere: string[] = [];
    await page.route((url) => !url.href.startsWith(ORIGIN) && !url.href.startsWith('data:'), (route) => (elsewhere.push(route.request().url()), route.abort()));
    const counts = () => page.evaluate(() => ['img', 'script', 'iframe', 'svg', 'style', 'link', 'a', 'meta', 'base', 'b', 'math'].map((tag) => `${tag}:${document.getElementsByTagName(tag).length}`).join(' '));
    const clean = await counts();
    for (const payload of payloads) {
      const hostile = { ...result, prompt: payload, negativePrompt: payload, model: payload, provider: payload };
      await post(page, { type: 'start', subject: { ...subject, prompt: payload, negativePrompt: payload }, kind: 'preview', trusted: true });
      await post(page, { type: 'preview', result: hostile });
      assert.equal(await page.locator('#prompt').textContent(), payload);
      assert.equal(await page.locator('#negative').textContent(), `Negative: ${payload}`);
      assert.ok((await page.locator('#facts').textContent())?.includes(payload), 'the model and provider are shown as text');
      await post(page, { type: 'saved', path: payload });
      await post(page, { type: 'error', message: payload });
      assert.equal(await page.locator('#status-text').textContent(), `Error: ${payload}`);
      assert.equal(await counts(), clean, `the page gained elements from ${JSON.stringify(payload)}`);
    }
    // An image that is not a data URI: the CSP keeps the page from fetching it.
    await post(page, { type: 'preview', result: { ...result, image: 'https://evil.example/track.png' } });
    // And what the CSP is for: script, handlers and styles injected past the page's own code do not run.
    const injected = await page.evaluate(async () => {
      const w = window as unknown as Record<string, unknown>;
      const script = document.createElement('script');
      script.textContent = 'window.__inlineScript = 1';
      document.body.append(script);
      document.body.insertAdjacentHTML('beforeend', '<img id="bad" src="data:image/png;base64,AAAA" onerror="window.__inlineHandler = 1"><div id="styled" style="color: rgb(255, 0, 0)">x</div>');
      await new Promise((r) => setTimeout(r, 200));
      return { script: w.__inlineScript, handler: w.__inlineHandler, color: getComputedStyle(document.getElementById('styled')!).color };
    });
    assert.deepEqual({ script: injected.script, handler: injected.handler }, { script: undefined, handler: undefined }, 'no inline script ran');
    assert.notEqual(injected.color, 'rgb(255, 0, 0)', 'the inline style was not applied');
    const p = await probe();
    assert.equal(p.alerts, 0);
    assert.deepEqual(elsewhere, [], 'nothing was fetched from another origin');
    const violations = p.cspViolations.join('\n');
    for (const directive of ['script-src', 'style-src', 'img-src']) assert.match(violations, new RegExp(directive), `the CSP reported the blocked ${directive}`);
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).display), 'block', 'no injected style hid the page');
    assert.equal(page.url(), `${ORIGIN}/index.html`, 'no redirect');
    await page.close();
  });

  it('refuses to save in an untrusted workspace and reports errors and cancellation as text', async () => {
    const { page } = await open();
    await post(page, { type: 'start', subject, kind: 'preview', trusted: false });
    await post(page, { type: 'preview', result });
    assert.equal(await page.locator('#save').isDisabled(), true);
    assert.match((await page.locator('#save').getAttribute('title')) ?? '', /untrusted/);
    await post(page, { type: 'trust', trusted: true });
    assert.equal(await page.locator('#save').isDisabled(), false);
    await post(page, { type: 'start', subject, kind: 'preview', trusted: true });
    await post(page, { type: 'cancelled' });
    assert.equal(await page.locator('#status-text').textContent(), 'Cancelled.');
    await post(page, { type: 'error', message: HOSTILE });
    assert.equal(await page.locator('#status-text').textContent(), `Error: ${HOSTILE}`);
    assert.equal(await page.locator('img').count(), 2);
    await page.close();
  });
});
