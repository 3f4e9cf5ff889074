// npm run package [-- --target linux-x64]: a platform-specific .vsix (as rust-analyzer ships):
// the bundles, media, the bundled model and onnxruntime-node with the native binaries of that one
// platform. The target defaults to this machine's. The file list comes from .vscodeignore plus
// the target's binary folder, written to a temporary ignore file for vsce.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const target = option('--target') ?? `${process.platform}-${process.arch}`;
// VS Code target -> onnxruntime-node's bin/napi-v6/<platform>/<arch>.
const ORT = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};
if (!ORT[target]) {
  console.error(`no onnxruntime-node binaries for ${target}; targets: ${Object.keys(ORT).join(', ')}`);
  process.exit(1);
}
const binaries = `node_modules/onnxruntime-node/bin/napi-v6/${ORT[target]}`;
if (!existsSync(binaries)) {
  console.error(`${binaries} is missing: run npm ci first`);
  process.exit(1);
}
if (!existsSync('models/default/model_index.json')) {
  const message = 'models/default has no model: the .vsix would ship without its bundled model';
  if (!args.includes('--allow-no-model')) {
    console.error(`${message} (pass --allow-no-model to package anyway)`);
    process.exit(1);
  }
  console.warn(`warning: ${message}`);
}

const run = (cmd, cmdArgs) => {
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run(process.execPath, ['esbuild.mjs']);

const { name, version } = JSON.parse(readFileSync('package.json', 'utf8'));
const out = option('--out') ?? `${name}-${target}-${version}.vsix`;
const dir = mkdtempSync(join(tmpdir(), 'adadiff-vsix-'));
const ignoreFile = join(dir, '.vscodeignore');
writeFileSync(ignoreFile, `${readFileSync('.vscodeignore', 'utf8')}\n!${binaries}/**\n`);
try {
  run(process.execPath, [
    'node_modules/@vscode/vsce/vsce',
    'package',
    '--target', target,
    '--ignoreFile', ignoreFile,
    '--out', out,
    '--allow-missing-repository',
    ...(existsSync('LICENSE') || existsSync('LICENSE.md') ? [] : ['--skip-license']),
  ]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${out}: ${(statSync(out).size / 1024 / 1024).toFixed(1)} MiB`);
