// Outputs stay inside the workspace whatever the documents say: symlinks in any component that
// lead outside, dangling links and links as the output itself are refused, and writes are atomic
// (no partial file, no leftover temporary file).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { generateAssets } from '../../server/assets';
import { AssetPathError, checkOnDisk, writeAtomic } from '../../server/assets/paths';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { fakeEngine, tempWorkspace, write } from './assets-helpers';

describe('asset output safety', () => {
  let model: string;
  before(async () => {
    model = (await ensureFixtures()).optimum;
  });

  it('refuses a symlinked folder that leads outside the workspace, in any component', async () => {
    const outside = tempWorkspace();
    const root = tempWorkspace({
      'README.md': '![escape by link](img/out.png)\n\n![deeper](docs/img/deep/x.png)\n\n![fine](ok/fine.png)\n',
      'adadiff.yaml': 'assets:\n  - prompt: via manifest\n    out: img/m.png\n',
    });
    symlinkSync(outside, path.join(root, 'img'));
    mkdirSync(path.join(root, 'docs'));
    symlinkSync(outside, path.join(root, 'docs', 'img'));
    const result = await generateAssets({ root, model, engine: fakeEngine() });
    assert.equal(result.ok, false);
    assert.equal(result.counts.generated, 1, 'only ok/fine.png');
    const messages = result.problems.map((p) => `${p.source} ${p.message}`).join('\n');
    assert.match(messages, /README\.md:1 img is a symbolic link that leads outside the workspace/);
    assert.match(messages, /README\.md:3 docs\/img is a symbolic link that leads outside the workspace/);
    assert.match(messages, /adadiff\.yaml:2 img is a symbolic link that leads outside/);
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside, not even a folder');
    assert.ok(existsSync(path.join(root, 'ok/fine.png')));
  });

  it('allows a symlinked folder that stays inside the workspace', async () => {
    const root = tempWorkspace({ 'README.md': '![inside](alias/a.png)\n' });
    mkdirSync(path.join(root, 'real'));
    symlinkSync(path.join(root, 'real'), path.join(root, 'alias'));
    const result = await generateAssets({ root, model, engine: fakeEngine() });
    assert.equal(result.counts.generated, 1);
    assert.ok(existsSync(path.join(root, 'real/a.png')));
  });

  it('refuses to replace a symlink, or to write through a dangling one', async () => {
    const outside = tempWorkspace({ 'target.png': 'theirs' });
    const root = tempWorkspace({ 'README.md': '![linked file](a.png)\n\n![dangling folder](gone/b.png)\n\n![inside link](c.png)\n', 'real.png': 'x' });
    symlinkSync(path.join(outside, 'target.png'), path.join(root, 'a.png'));
    symlinkSync(path.join(outside, 'missing-dir'), path.join(root, 'gone'));
    symlinkSync(path.join(root, 'real.png'), path.join(root, 'c.png'));
    const result = await generateAssets({ root, model, engine: fakeEngine(), force: true });
    assert.equal(result.counts.generated, 0);
    const messages = result.problems.map((p) => p.message).join('\n');
    assert.match(messages, /a\.png is a symbolic link that leads outside/);
    assert.match(messages, /gone is a dangling symbolic link/);
    assert.match(messages, /c\.png is a symbolic link; refusing to replace it/);
    assert.equal(readFileSync(path.join(outside, 'target.png'), 'utf8'), 'theirs');
    assert.ok(!existsSync(path.join(outside, 'missing-dir')));
  });

  it('refuses a lock file that is a symlink leading outside', async () => {
    const outside = tempWorkspace({ 'lock.json': '{"version":1,"assets":{}}' });
    const root = tempWorkspace({ 'README.md': '![x](x.png)\n' });
    symlinkSync(path.join(outside, 'lock.json'), path.join(root, 'adadiff.lock.json'));
    await assert.rejects(generateAssets({ root, model, engine: fakeEngine() }), { name: 'LockError', message: /symbolic link that leads outside/ });
    assert.equal(readFileSync(path.join(outside, 'lock.json'), 'utf8'), '{"version":1,"assets":{}}');
  });

  it('writeAtomic re-checks the real folder right before writing', async () => {
    const outside = tempWorkspace();
    const root = tempWorkspace();
    symlinkSync(outside, path.join(root, 'sneaky'));
    await assert.rejects(writeAtomic(root, 'sneaky/x.png', 'data'), AssetPathError);
    await assert.rejects(checkOnDisk(root, 'sneaky/x.png'), /leads outside/);
    assert.deepEqual(readdirSync(outside), []);
  });

  it('writes atomically: the new content in full, no temporary files left behind', async () => {
    const root = tempWorkspace();
    write(root, 'dir/a.png', 'old');
    await writeAtomic(root, 'dir/a.png', Buffer.alloc(100_000, 7));
    assert.deepEqual(readFileSync(path.join(root, 'dir/a.png')), Buffer.alloc(100_000, 7));
    await writeAtomic(root, 'new/deep/b.png', 'fresh');
    assert.deepEqual(readdirSync(path.join(root, 'dir')), ['a.png']);
    assert.deepEqual(readdirSync(path.join(root, 'new/deep')), ['b.png']);
  });
});
