// Prompt lists: the file format every reader shares, the deterministic held-out split, and the
// general prompt set the extension ships for training.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { heldOutCount, MIN_TRAINING_PROMPTS, parsePromptLines, splitHeldOut } from '../../server/adadiff/prompt-list';

const ROOT = join(__dirname, '..', '..');

test('one prompt a line: trimmed, blank lines and # comments skipped, CRLF too', () => {
  assert.deepEqual(parsePromptLines('# header\r\n a cat \r\n\r\n#a comment\na dog, #1 friend\n'), ['a cat', 'a dog, #1 friend']);
});

test('every fifth prompt is held out, the same way every time', () => {
  const prompts = Array.from({ length: 12 }, (_, i) => `p${i}`);
  const { train, heldOut } = splitHeldOut(prompts);
  assert.deepEqual(heldOut, ['p4', 'p9']);
  assert.equal(train.length, 10);
  assert.deepEqual([...train, ...heldOut].sort(), [...prompts].sort());
  for (const n of [0, 4, 5, 8, 12, 160]) assert.equal(splitHeldOut(Array(n).fill('x')).heldOut.length, heldOutCount(n));
  assert.ok(heldOutCount(MIN_TRAINING_PROMPTS) >= 1, 'the smallest accepted list still has a held-out prompt');
});

test('the general prompt set: distinct prompts from one-word simple to long scenes, shipped in the .vsix', () => {
  const prompts = parsePromptLines(readFileSync(join(ROOT, 'prompts', 'general.txt'), 'utf8'));
  assert.ok(prompts.length >= 120, `${prompts.length} prompts`);
  assert.equal(new Set(prompts).size, prompts.length, 'no duplicates');
  const words = prompts.map((p) => p.split(/\s+/).length);
  assert.ok(Math.min(...words) <= 3 && Math.max(...words) >= 15, 'simple and rich prompts both');
  assert.match(readFileSync(join(ROOT, '.vscodeignore'), 'utf8'), /^!prompts\/general\.txt$/m);
});
