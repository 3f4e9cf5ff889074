// What a workspace asks for: Markdown images, prompt fences with out:, manifests (validated with
// file, line and entry in every error), the walk's skips and limits, and lexical path refusals.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { resolveTarget } from '../../server/assets/paths';
import { collectTargets } from '../../server/assets/targets';
import { tempWorkspace } from './assets-helpers';

describe('asset targets', () => {
  it('finds Markdown images, prompt fences with out:, and manifest entries, with their options', async () => {
    const root = tempWorkspace({
      'README.md': [
        '# Docs',
        '![red apple emoji](img/apple.png "seed: 7, size: 32x32")',
        '![a screenshot](shots/panel.jpg)',
        '![](img/empty.png)',
        '```prompt',
        'out: img/cat.png, steps: 20, negative: blurry',
        'a watercolour cat',
        '```',
        '```prompt',
        'a fence without out is only a preview',
        '```',
      ].join('\n'),
      'guide/page.md': '![blue whale](../img/whale.png)\n',
      'adadiff.yaml': 'assets:\n  - prompt: a green leaf\n    out: icons/leaf.png\n    steps: auto\n    seed: 3\n',
    });
    const { targets, problems, warnings } = await collectTargets(root);
    assert.deepEqual(problems, []);
    assert.deepEqual(warnings, []);
    const byKey = Object.fromEntries(targets.map((t) => [t.key, t]));
    assert.deepEqual(Object.keys(byKey).sort(), ['icons/leaf.png', 'img/apple.png', 'img/cat.png', 'img/whale.png']);
    assert.equal(byKey['img/apple.png'].prompt, 'red apple emoji');
    assert.equal(byKey['img/apple.png'].seed, 7);
    assert.deepEqual(byKey['img/apple.png'].size, { width: 32, height: 32 });
    assert.equal(byKey['img/apple.png'].explicit, false);
    assert.deepEqual(byKey['img/apple.png'].source, { file: 'README.md', line: 2 });
    assert.equal(byKey['img/cat.png'].prompt, 'a watercolour cat');
    assert.equal(byKey['img/cat.png'].steps, 20);
    assert.equal(byKey['img/cat.png'].negative, 'blurry');
    assert.equal(byKey['img/cat.png'].explicit, true);
    assert.equal(byKey['img/whale.png'].source.file, 'guide/page.md');
    assert.equal(byKey['icons/leaf.png'].kind, 'manifest');
    assert.equal(byKey['icons/leaf.png'].steps, 'auto');
    assert.equal(byKey['icons/leaf.png'].source.line, 2);
  });

  it('skips node_modules, hidden folders and files over the size limit', async () => {
    const root = tempWorkspace({
      'node_modules/pkg/README.md': '![a](a.png)',
      '.git/x.md': '![b](b.png)',
      '.hidden/y.md': '![c](c.png)',
      'big.md': `![d](d.png)\n${'x'.repeat(2000)}`,
      'ok.md': '![e](e.png)',
    });
    const { targets, warnings } = await collectTargets(root, { maxFileBytes: 1000 });
    assert.deepEqual(targets.map((t) => t.key), ['e.png']);
    assert.match(warnings.join('\n'), /big\.md: \d+ bytes, over the 1000-byte limit/);
  });

  it('validates manifest entries with clear errors naming file, line and entry', async () => {
    const root = tempWorkspace({
      'adadiff.yaml': [
        'assets:',
        '  - prompt: fine',
        '    out: a.png',
        '  - prompt: bad seed',
        '    out: b.png',
        '    seed: -1',
        '  - out: c.png',
        '  - prompt: typo',
        '    out: d.png',
        '    stpes: 4',
        '  - prompt: x',
        '    out: e.png',
        '    steps: fast',
        '  - prompt: y',
        '    out: f.png',
        '    size: 30x30',
      ].join('\n'),
      'sub/adadiff.json': '{"assets": [{"prompt": "j", "out": "j.png", "size": "big"}]}',
      'broken/adadiff.json': '{"assets": [',
    });
    const { targets, problems } = await collectTargets(root);
    assert.deepEqual(targets.map((t) => t.key).sort(), ['a.png']);
    const text = problems.map((p) => `${p.source} ${p.message}`).join('\n');
    assert.match(text, /adadiff\.yaml:4 entry 2 \(b\.png\): "seed" must be an integer from 0 to 4294967295, got -1/);
    assert.match(text, /adadiff\.yaml:7 entry 3 \(c\.png\): "prompt" must be non-empty text/);
    assert.match(text, /adadiff\.yaml:8 entry 4 \(d\.png\): unknown key "stpes"/);
    assert.match(text, /adadiff\.yaml:11 entry 5 \(e\.png\): "steps" must be auto or an integer/);
    assert.match(text, /adadiff\.yaml:14 entry 6: size 30x30: width and height must be multiples of 8/);
    assert.match(text, /sub\/adadiff\.json:1 entry 1 \(j\.png\): "size" must look like 512x512/);
    assert.match(text, /broken\/adadiff\.json:1 is not valid JSON/);
  });

  it('one path asked for with different inputs is a conflict; the same image twice is one target', async () => {
    const root = tempWorkspace({
      'a.md': '![same](img/s.png)\n\n![same](img/s.png)\n\n![one](img/c.png)\n',
      'b.md': '![two](img/c.png)\n',
    });
    const { targets, problems } = await collectTargets(root);
    assert.deepEqual(targets.map((t) => t.key), ['img/s.png']);
    assert.equal(problems.length, 1);
    assert.match(problems[0].message, /img\/c\.png is asked for with different prompts or options at a\.md:5, b\.md:1/);
  });

  it('refuses absolute paths and .. escapes: errors for explicit outputs, warnings for prose images', async () => {
    const root = tempWorkspace({
      'docs/README.md': [
        '![shared logo](../../logo.png)',
        '![site root](/img/x.png)',
        '![ok](../top.png)',
        '```prompt',
        'out: ../../../etc/evil.png',
        'escape',
        '```',
        '```prompt',
        'out: /tmp/evil.png',
        'absolute',
        '```',
        '```prompt',
        'out: C:\\evil.png',
        'drive',
        '```',
        '```prompt',
        'out: img/photo.jpg',
        'not a png',
        '```',
      ].join('\n'),
    });
    const { targets, problems, warnings } = await collectTargets(root);
    assert.deepEqual(targets.map((t) => t.key), ['top.png']);
    assert.equal(problems.length, 4);
    assert.match(problems.map((p) => p.message).join('\n'), /leads outside the workspace[\s\S]*absolute path[\s\S]*absolute path[\s\S]*only \.png outputs/);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /docs\/README\.md:1: not generated: "..\/..\/logo.png" leads outside the workspace/);
  });

  it('examples/docs asks for its images without problems', async () => {
    const { targets, problems, warnings } = await collectTargets(path.resolve(__dirname, '..', '..', 'examples', 'docs'));
    assert.deepEqual([problems, warnings], [[], []]);
    assert.deepEqual(targets.map((t) => t.key).sort(), ['icons/heart.png', 'icons/leaf.png', 'img/apple.png', 'img/cat.png', 'img/coffee.png', 'img/sailboat.png', 'img/sun.png']);
  });

  it('resolveTarget normalises separators and keeps keys inside the root', () => {
    assert.deepEqual(resolveTarget('/w', '/w/docs', 'img\\a.png').key, 'docs/img/a.png');
    assert.deepEqual(resolveTarget('/w', '/w/docs', './x/../b.png').key, 'docs/b.png');
    assert.throws(() => resolveTarget('/w', '/w', '../w2/a.png'), /leads outside/);
    assert.throws(() => resolveTarget('/w', '/w', '\\\\server\\share\\a.png'), /absolute path/);
    assert.throws(() => resolveTarget('/w', '/w', 'a\0.png'), /not a usable file name/);
  });
});
