// The runner's half of the suites' questions (suite/answers.ts): what only the workbench shows or
// lets one do, read and clicked with Playwright when a suite asks ("@@e2e NAME").
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { findInFrames } from './browser';
import type { Asked } from './suite/answers';

/** The preview panel's Save button (the webview is an iframe in an iframe). */
const saveButton = (page: Page) =>
  findInFrames(
    page,
    (f: Frame) =>
      f.evaluate(() => {
        // A frame of the panel that shows a preview (not a blank one being replaced).
        const b = document.getElementById('save') as HTMLButtonElement | null;
        return b && !document.body.classList.contains('empty') ? { disabled: b.disabled, title: b.title } : undefined;
      }),
    30_000,
  );

/** Screenshots go to OUT/PREFIX-NAME-N.png. */
export function answerSuite(out: string, prefix: string): (name: string, page: Page) => Promise<Asked[keyof Asked]> {
  let screenshots = 0;
  const screenshot = (page: Page, name: string) => page.screenshot({ path: join(out, `${prefix}-${name}-${++screenshots}.png`) });
  return async (name, page) => {
    switch (name) {
      case 'notifications': {
        const items = page.locator('.notifications-center .notification-list-item');
        await items.first().waitFor({ timeout: 10_000 });
        await screenshot(page, name);
        const shown: Asked['notifications'] = [];
        for (const item of await items.all()) {
          shown.push({
            message: (await item.locator('.notification-list-item-message').innerText()).trim(),
            buttons: (await item.locator('.notification-list-item-buttons-container .monaco-button').allInnerTexts()).map((b) => b.trim()),
          });
        }
        return shown;
      }
      case 'save-button':
        return saveButton(page);
      case 'status-item': {
        const item = page.locator('.statusbar-item[aria-label^="AdaDiff: "]').first();
        await item.waitFor({ timeout: 10_000 });
        await screenshot(page, name);
        return { text: (await item.innerText()).trim(), ariaLabel: (await item.getAttribute('aria-label')) ?? '' };
      }
      case 'trust': {
        const trust = page.locator('.workspace-trust-editor .workspace-trust-buttons .monaco-button', { hasText: /^Trust/ }).first();
        try {
          await trust.waitFor({ timeout: 15_000 });
        } finally {
          await screenshot(page, name);
        }
        await trust.click();
        return { clicked: true };
      }
      default:
        throw new Error(`the runner knows no "${name}"`);
    }
  };
}
