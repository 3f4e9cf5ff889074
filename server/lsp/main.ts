// dist/server.js: the language server the extension starts (`--stdio`, `--node-ipc`, `--socket=N`,
// read by createConnection), and, on a worker thread, the render worker it starts for previews.
import { isMainThread } from 'node:worker_threads';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { runRenderWorker } from './render-worker';
import { startServer } from './server';

if (isMainThread) startServer(createConnection(ProposedFeatures.all));
else runRenderWorker();
