// dist/server.js: the language server the extension starts (`--stdio`, `--node-ipc`, `--socket=N`,
// read by createConnection), and, in a child process, the render worker it starts for previews.
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { RENDER_WORKER_ENV, runRenderWorker } from './render-worker';
import { startServer } from './server';

if (process.env[RENDER_WORKER_ENV] === '1') runRenderWorker();
else startServer(createConnection(ProposedFeatures.all));
