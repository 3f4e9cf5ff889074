// One build, four bundles: the extension client, the language server, the CLI and the preview
// webview's script (for the browser, under media/ since the webview may load nothing else).
// onnxruntime-node stays external: it loads native binaries relative to its own package.
import { chmodSync } from 'node:fs';
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['onnxruntime-node', 'vscode'],
  logLevel: 'warning',
};
// esbuild writes a new file on every build, without the executable bit npm gave the bin when it
// linked it: after `npm run build` (or `npm test`, which packages), `npx adadiff` answered
// "Permission denied" wherever npx had linked the package before.
const executable = (file) => ({ name: 'executable', setup: (build) => build.onEnd(() => chmodSync(file, 0o755)) });
const entries = [
  { entryPoints: ['client/extension.ts'], outfile: 'dist/client.js' },
  { entryPoints: ['server/lsp/main.ts'], outfile: 'dist/server.js' },
  { entryPoints: ['server/cli.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' }, plugins: [executable('dist/cli.js')] },
  { entryPoints: ['media/preview.ts'], outfile: 'media/dist/preview.js', platform: 'browser', format: 'iife', target: 'es2022' },
];
const { mkdirSync, copyFileSync } = await import('node:fs');
// tree-sitter runtime and grammars for server/prompts (see server/prompts/treeSitter.ts): loaded at
// run time from dist/wasm/, beside the server and CLI bundles.
const wasmFiles = ['tree-sitter.wasm', 'tree-sitter-python.wasm', 'tree-sitter-javascript.wasm', 'tree-sitter-typescript.wasm', 'tree-sitter-tsx.wasm'];
mkdirSync('dist/wasm', { recursive: true });
for (const file of wasmFiles) copyFileSync(`node_modules/@vscode/tree-sitter-wasm/wasm/${file}`, `dist/wasm/${file}`);
const contexts = await Promise.all(entries.map((e) => esbuild.context({ ...common, ...e })));
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
