// The model recipe's smoke test (models/recipe/test_recipe.py: a tiny train + export + onnxruntime
// readback). It needs Debian's python3-torch, which CI installs; elsewhere it is reported as
// skipped, with the reason, never as passed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../build';

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy, PIL'], { encoding: 'utf8' });
const missing = probe.status === 0 ? false : `python3-torch, python3-numpy and python3-pil are not installed for ${PYTHON} (apt-get install python3-torch python3-numpy python3-pil)`;

test('model recipe: tiny train, export and ONNX readback', { skip: missing, timeout: 600_000 }, (t) => {
  const run = spawnSync(PYTHON, [join(ROOT, 'models', 'recipe', 'test_recipe.py')], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
  });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  // The script skips itself when the Debian data packages are absent: report that, not a pass.
  const skipped = /^SKIP: (.*)$/m.exec(run.stdout);
  if (skipped) t.skip(skipped[1]);
});
