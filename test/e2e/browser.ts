// Debian's chromium driven by playwright-core: no browser download, flags from shared/notes/vscode-e2e.md.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Frame, type Page } from 'playwright-core';

export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'adadiff-chromium-'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    env: { ...process.env, XDG_CONFIG_HOME: profile, XDG_CACHE_HOME: profile },
  });
  // Each run's profile went on filling the temp folder.
  browser.on('disconnected', () => rmSync(profile, { recursive: true, force: true, maxRetries: 2 }));
  return browser;
}

/** Webviews are iframes inside iframes: polls every frame of the page until `probe` finds something. */
export async function findInFrames<T>(page: Page, probe: (frame: Frame) => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      const found = await probe(frame).catch(() => undefined);
      if (found !== undefined) return found;
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`nothing found in ${page.frames().length} frames within ${timeoutMs} ms`);
}
