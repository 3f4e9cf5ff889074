// The runner's half of the trust suite (suite/trust.ts): what only the workbench shows or lets
// one do, read and clicked with Playwright when the suite asks ("@@e2e NAME").
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { findInFrames } from './browser';
import type { UntrustedUi } from './suite/trust-handshake';

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

export const answerTrustSuite =
  (out: string) =>
  async (name: string, page: Page): Promise<unknown> => {
    switch (name) {
      case 'untrusted-ui': {
        // The suite opened the notification center.
        const messages = page.locator('.notifications-center .notification-list-item-message');
        await messages.first().waitFor({ timeout: 10_000 });
        const ui: UntrustedUi = { notifications: (await messages.allInnerTexts()).map((t) => t.trim()), save: await saveButton(page) };
        await page.screenshot({ path: join(out, 'untrusted-refusals.png') });
        return ui;
      }
      case 'trust': {
        // The suite opened the Workspace Trust editor (workbench.trust.manage).
        const trust = page.locator('.workspace-trust-editor .workspace-trust-buttons .monaco-button', { hasText: /^Trust/ }).first();
        try {
          await trust.waitFor({ timeout: 15_000 });
        } finally {
          await page.screenshot({ path: join(out, 'untrusted-trust-editor.png') });
        }
        await trust.click();
        return {};
      }
      case 'trusted-ui': {
        // The panel learns of the trust by a message: give it a moment, then say what is there.
        let save = await saveButton(page);
        for (let i = 0; i < 20 && save.disabled; i++) save = await page.waitForTimeout(250).then(() => saveButton(page));
        return { notifications: [], save } satisfies UntrustedUi;
      }
      default:
        throw new Error(`the runner knows no "${name}"`);
    }
  };
