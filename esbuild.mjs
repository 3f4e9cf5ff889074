// One build, three bundles: the extension client, the language server and the CLI.
// onnxruntime-node stays external: it loads native binaries relative to its own package.
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
const entries = [
  { entryPoints: ['client/extension.ts'], outfile: 'dist/client.js' },
  { entryPoints: ['server/lsp/main.ts'], outfile: 'dist/server.js' },
  { entryPoints: ['server/cli.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
];
const present = (await import('node:fs')).existsSync;
const contexts = await Promise.all(
  entries.filter((e) => present(e.entryPoints[0])).map((e) => esbuild.context({ ...common, ...e })),
);
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
