// The UI test: what a user sees in the workbench. The CodeLens above the Markdown prompt, its
// hover, a click on Preview, and the image inside the webview iframe; screenshots to look at.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { findInFrames } from './browser';
import { NO_POLICY } from './trainable-models';

const FOX = 'a watercolor fox in a snowy forest, soft morning light';
const LIGHTHOUSE = 'a lighthouse on a cliff at dusk, oil painting';

/** The AdaDiff language server processes (dist/server.js) whose environment holds this pool password. */
function serversWith(secret: string): number[] {
  const wanted = `ADADIFF_REDIS_PASSWORD=${secret}`;
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((pid) => {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return env.includes(wanted) && cmd.includes('server.js') ? [Number(pid)] : [];
    } catch {
      return []; // gone, or not ours
    }
  });
}

export async function uiTest(page: Page, out: string, log: (line: string) => void, workspace: string): Promise<void> {
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const r = await fn();
    log(`✔ ui: ${name} (${Date.now() - t0} ms)`);
    return r;
  };
  /** Runs a command from the palette, as a user types it. */
  const command = async (name: string) => {
    // F1 reaches the workbench only from a focused part of it (not the webview's iframe, not a closed toast).
    const palette = page.locator('.quick-input-widget');
    // A palette the last command left open would take this one's name as more filter text.
    if (await palette.isVisible()) {
      await page.keyboard.press('Escape');
      await palette.waitFor({ state: 'hidden', timeout: 3_000 }).catch(() => undefined);
    }
    for (let i = 0; i < 3 && !(await palette.isVisible()); i++) {
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('F1');
      await palette.waitFor({ timeout: 3_000 }).catch(() => undefined);
    }
    await page.keyboard.type(name);
    // Enter runs the focused row: wait until the filter has put this command there, not just in the list.
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: name.split(': ')[1] }).first().waitFor({ timeout: 10_000 }).catch(async (err) => {
      await page.screenshot({ path: join(out, 'palette-failure.png') });
      log(`  palette rows: ${JSON.stringify(await page.locator('.quick-input-list .monaco-list-row').allInnerTexts())}`);
      throw err;
    });
    await page.keyboard.press('Enter');
  };
  await step('workbench loads', () => page.locator('.monaco-workbench').waitFor({ timeout: 60_000 }));
  await step('open README.md from the Explorer', async () => {
    // The explorer is the dependable way in: Quick Open's file index may still be building.
    const item = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' });
    await item.waitFor({ timeout: 30_000 });
    await item.click();
    await page.locator('.monaco-editor .view-line', { hasText: 'Demo assets' }).waitFor({ timeout: 30_000 });
  });
  const lens = page.locator('.monaco-editor .codelens-decoration');
  const cost = await step('CodeLens shows steps, time and saving', async () => {
    const costLens = lens.locator('a, span', { hasText: /\d+ steps/ }).first();
    await costLens.waitFor({ timeout: 120_000 });
    return costLens.innerText();
  });
  log(`  lens: ${cost}`);
  const status = await step('the status item names the model and its execution provider', async () => {
    const item = page.locator('.statusbar-item[aria-label^="AdaDiff: ready"]');
    await item.waitFor({ timeout: 30_000 });
    return item.innerText();
  });
  log(`  status item: ${status}`);
  assert.match(status, / · (cpu|cuda|webgpu|dml|coreml)/);
  assert.match(cost, /\d+ steps/);
  await step('hover on the alt text shows the prediction', async () => {
    await page.locator('.monaco-editor .view-line span', { hasText: 'watercolor' }).first().hover();
    await page.locator('.monaco-hover-content', { hasText: /steps/ }).first().waitFor({ timeout: 30_000 });
  });
  await page.screenshot({ path: join(out, 'editor-lens-hover.png') });
  await step('click the Preview lens', async () => {
    await page.mouse.move(0, 0);
    await page.keyboard.press('Escape');
    await lens.locator('a', { hasText: /^Preview$/ }).first().click();
  });
  const frame = await step('the preview webview shows the image', () =>
    findInFrames(
      page,
      async (f: Frame) => {
        const done = await f.evaluate(() => {
          const img = document.getElementById('image') as HTMLImageElement | null;
          return img?.src.startsWith('data:image/png') && img.complete && img.naturalWidth > 0 && document.getElementById('cancel') && (document.getElementById('cancel') as HTMLButtonElement).disabled;
        });
        return done ? f : undefined;
      },
      180_000,
    ),
  );
  const prompt = await frame.locator('#prompt').textContent();
  assert.equal(prompt, FOX);
  const facts = await frame.locator('#facts').innerText();
  log(`  preview facts: ${facts.replace(/\n/g, ' | ')}`);
  // The bundled policy has a first-step-aware network, so a preview records the count it chose after
  // the first call; another model (ADADIFF_E2E_MODEL) may have a prompt-only policy or none.
  assert.match(
    facts,
    process.env.ADADIFF_E2E_MODEL
      ? /\d+ (chosen after the first step \(the prompt alone: \d+\)|predicted) · \d+ baseline/
      : /\d+ chosen after the first step \(the prompt alone: \d+\) · \d+ baseline/,
  );
  // Hover again, so the screenshot holds the lens, the hover and the panel together.
  await page.locator('.monaco-editor .view-line span', { hasText: 'watercolor' }).first().hover();
  await page.locator('.monaco-hover-content', { hasText: /steps/ }).first().waitFor({ timeout: 30_000 }).catch(() => log('  (hover did not reappear for the final screenshot)'));
  await page.screenshot({ path: join(out, 'preview-panel.png') });
  await step('Compare with baseline: both images side by side with the SSIM figure', async () => {
    await frame.locator('#compare').click();
    await frame.locator('#fidelity:not([hidden])').waitFor({ timeout: 120_000 });
    assert.match((await frame.locator('#fidelity').textContent()) ?? '', /SSIM\): [01]\.\d{3}/);
    assert.match((await frame.locator('#baseline-image').getAttribute('src')) ?? '', /^data:image\/png/);
  });
  await page.screenshot({ path: join(out, 'compare.png') });
  await step('a reload restores the panel from its saved state (WebviewPanelSerializer)', async () => {
    // Through the workbench (Developer: Reload Window), which saves its state as it shuts down; a
    // bare browser reload gives the web workbench no time to.
    await page.keyboard.press('F1');
    await page.keyboard.type('Developer: Reload Window');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Reload Window' }).first().waitFor({ timeout: 10_000 });
    await Promise.all([page.waitForEvent('load', { timeout: 60_000 }), page.keyboard.press('Enter')]);
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    const restored = await findInFrames(page, async (f: Frame) => ((await f.locator('#fidelity:not([hidden])').count()) ? f : undefined), 60_000);
    assert.equal(await restored.locator('#prompt').textContent(), FOX);
    assert.match((await restored.locator('#image').getAttribute('src')) ?? '', /^data:image\/png/);
  });
  await step('the Preview link in a hover renders that prompt', async () => {
    await page.locator('.monaco-editor .view-line span', { hasText: 'lighthouse' }).first().hover();
    await page.locator('.monaco-hover-content a', { hasText: /^Preview$/ }).first().click();
    await findInFrames(page, async (f: Frame) => ((await f.locator('#prompt', { hasText: LIGHTHOUSE }).count()) && (await f.locator('#cancel:disabled').count()) ? f : undefined), 60_000);
  });
  await step('Python: CodeLens on pipe(prompt=...) (tree-sitter grammars load)', async () => {
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'app.py' }).click();
    await page.locator('.monaco-editor .view-line', { hasText: 'StableDiffusionPipeline' }).first().waitFor({ timeout: 30_000 });
    await lens.locator('a, span', { hasText: /\d+ steps/ }).first().waitFor({ timeout: 60_000 });
  });
  await step('Cancel stops a long render ($/cancelRequest, honoured by the server)', async () => {
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'slow.md' }).click();
    await page.locator('.monaco-editor .view-line', { hasText: 'cathedral' }).first().waitFor({ timeout: 30_000 });
    await lens.locator('a', { hasText: /^Preview$/ }).first().click();
    const f = await findInFrames(page, async (fr: Frame) => ((await fr.locator('#status-text', { hasText: /denoising step \d+ \/ 1000|Error/ }).count()) ? fr : undefined), 60_000);
    assert.match((await f.locator('#status-text').textContent()) ?? '', /denoising/);
    // The intermediate x0 prediction (adadiff/previewProgress) shows while it denoises.
    await f.locator('#main-figure:not([hidden]) #image[src^="data:image/png"]').waitFor({ timeout: 20_000 });
    assert.equal(await f.locator('#cancel').isDisabled(), false, 'still running when the first x0 image arrived');
    await page.screenshot({ path: join(out, 'preview-running.png') });
    const running = (await f.locator('#status-text').textContent()) ?? '';
    const clicked = Date.now();
    await f.locator('#cancel').click();
    await f.locator('#status-text', { hasText: 'Cancelled.' }).waitFor({ timeout: 10_000 });
    log(`  cancel: "Cancelled." ${Date.now() - clicked} ms after the click, at ${running.replace(/^.*step /, 'step ')}`);
  });
  await step('Generate All Assets: the summary notification', async () => {
    // A page of eight images (emoji names: what the bundled model knows) besides the fox.
    const names = ['sunflower', 'rainbow', 'snowman', 'red apple', 'sailboat', 'hot beverage', 'cat face', 'sun behind cloud'];
    const gallery = names.map((p) => `![${p}](gallery/${p.replace(/ /g, '-')}.png)`).join('\n');
    writeFileSync(join(workspace, 'gallery.md'), `# Gallery\n\n${gallery}\n`);
    await page.keyboard.press('F1');
    await page.keyboard.type('AdaDiff: Generate All Assets');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Generate All Assets' }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
    // The bundled model makes these in a few seconds: the progress is gone before it could be caught
    // reliably, and so may the summary's toast be; the notification center keeps it.
    const deadline = Date.now() + 120_000;
    const images = names.map((p) => join(workspace, 'gallery', `${p.replace(/ /g, '-')}.png`));
    while (!images.every((f) => existsSync(f))) {
      if (Date.now() > deadline) throw new Error(`not generated: ${images.filter((f) => !existsSync(f)).join(', ')}`);
      await page.waitForTimeout(250);
    }
    await command('Notifications: Show Notifications');
    const summary = page.getByText(/generated \d+ of 9 assets/).first();
    await summary.waitFor({ timeout: 30_000 });
    assert.match(await summary.innerText(), /generated \d+ of 9 assets, \d+ current in [\d.]+ s; \d+ steps vs \d+ at the fixed schedule/);
    await page.screenshot({ path: join(out, 'assets-summary.png') });
    await command('Notifications: Clear All Notifications');
  });
  await step('Set Pool Password: kept in SecretStorage; the server restarts with it in its environment', async () => {
    // The password travels in the server's environment, never in a request: a verbose LSP trace
    // writes every request's arguments into the output channel.
    const secret = `e2e-pool-secret-${process.pid}`;
    assert.deepEqual(serversWith(secret), [], 'no server has it before it is set');
    const box = page.locator('.quick-input-widget', { hasText: 'AdaDiff: pool password' });
    await command('AdaDiff: Set Pool Password');
    await box.waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(out, 'pool-password.png') });
    await page.keyboard.type(secret);
    await page.keyboard.press('Enter');
    await page.getByText('AdaDiff: pool password stored.').first().waitFor({ timeout: 10_000 });
    const deadline = Date.now() + 60_000;
    while (serversWith(secret).length === 0) {
      if (Date.now() > deadline) throw new Error('no language server started with the stored password in its environment');
      await page.waitForTimeout(250);
    }
    await page.locator('.statusbar-item[aria-label^="AdaDiff: ready"]').waitFor({ timeout: 60_000 });
    // Removed again (an empty answer): the next server starts without it.
    await command('AdaDiff: Set Pool Password');
    await box.waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
    await page.getByText('AdaDiff: pool password removed.').first().waitFor({ timeout: 10_000 });
    while (serversWith(secret).length > 0) {
      if (Date.now() > deadline + 30_000) throw new Error('a language server still has the removed password');
      await page.waitForTimeout(250);
    }
    await page.locator('.statusbar-item[aria-label^="AdaDiff: ready"]').waitFor({ timeout: 60_000 });
  });
  await step('a model without a policy: the hover offers to train one', async () => {
    // As a user would: adadiff.model.path in the workspace settings (VS Code watches the file).
    const settings = join(workspace, '.vscode', 'settings.json');
    const saved = readFileSync(settings, 'utf8');
    writeFileSync(settings, JSON.stringify({ ...JSON.parse(saved), 'adadiff.model.path': NO_POLICY }, null, 2));
    try {
      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).first().click();
      const link = page.locator('.monaco-hover-content a', { hasText: /^Train a step policy$/ }).first();
      const deadline = Date.now() + 60_000;
      // A hover shows what the server said when it opened: move away and back until the new model answers.
      while (!(await link.isVisible())) {
        if (Date.now() > deadline) throw new Error('no "Train a step policy" link in the hover');
        await page.mouse.move(0, 0);
        await page.locator('.monaco-editor .view-line span', { hasText: 'watercolor' }).first().hover();
        await link.waitFor({ timeout: 3_000 }).catch(() => undefined);
      }
      await page.screenshot({ path: join(out, 'hover-train-policy.png') });
      // The link runs the command (the client trusts it in hovers): it asks where the prompts come from.
      await link.click();
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Prompts in this workspace' }).waitFor({ timeout: 30_000 });
      await page.screenshot({ path: join(out, 'train-policy-pick.png') });
      await page.keyboard.press('Escape');
    } finally {
      writeFileSync(settings, saved);
    }
  });
}
