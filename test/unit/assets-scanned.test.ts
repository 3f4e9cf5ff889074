// The server answers adadiff/assetTarget (does a lens's "Generate asset" go through the asset
// core?) from isScannedMarkdown and isIgnoredFile: they must say yes exactly for the Markdown
// files the core's walk reads.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIgnoredFile } from '../../server/assets/gitignore';
import { isScannedMarkdown } from '../../server/assets/scanned';
import { collectTargets } from '../../server/assets/targets';
import { tempWorkspace } from './assets-helpers';

const DOCS = ['README.md', 'docs/guide.markdown', 'docs/deep/Page.MD', '.github/README.md', 'docs/.drafts/x.md', 'node_modules/pkg/README.md', 'notes.txt', 'docs/readme.md.bak'];

describe('which Markdown files the asset walk reads', () => {
  it('isScannedMarkdown agrees with collectTargets, file by file', async () => {
    const root = tempWorkspace(Object.fromEntries(DOCS.map((f, i) => [f, `![prompt number ${i}](img/${i}.png)\n`])));
    const { targets } = await collectTargets(root);
    const walked = new Set(targets.map((t) => t.source.file));
    for (const file of DOCS) assert.equal(isScannedMarkdown(file), walked.has(file), file);
    assert.deepEqual([...walked].sort(), ['README.md', 'docs/deep/Page.MD', 'docs/guide.markdown']);
  });

  it('leaves out what the .gitignore files exclude, in the walk and file by file alike', async () => {
    const files: Record<string, string> = {
      '.gitignore': 'build/\n*.draft.md\n!keep.draft.md\n',
      'docs/.gitignore': 'private.md\n/local/\n',
      'README.md': '',
      'build/out.md': '',
      'notes.draft.md': '',
      'keep.draft.md': '',
      'docs/guide.md': '',
      'docs/private.md': '',
      'docs/deep/private.md': '',
      'docs/local/x.md': '',
      'docs/deep/local/y.md': '',
    };
    const markdown = Object.keys(files).filter((f) => f.endsWith('.md'));
    const root = tempWorkspace(Object.fromEntries(Object.entries(files).map(([f, text], i) => [f, f.endsWith('.md') ? `![prompt number ${i}](img/${i}.png)\n` : text])));
    const { targets } = await collectTargets(root);
    const walked = new Set(targets.map((t) => t.source.file));
    assert.deepEqual([...walked].sort(), ['README.md', 'docs/deep/local/y.md', 'docs/guide.md', 'keep.draft.md']);
    const readText = async (p: string) => (p in files ? files[p] : undefined);
    for (const file of markdown) assert.equal(!(await isIgnoredFile(file, readText)), walked.has(file), file);
  });

  it('takes Windows separators and refuses paths that climb out of the folder', () => {
    assert.equal(isScannedMarkdown('docs\\guide.md'), true);
    assert.equal(isScannedMarkdown('docs\\.hidden\\guide.md'), false);
    assert.equal(isScannedMarkdown('../elsewhere/README.md'), false);
  });
});
