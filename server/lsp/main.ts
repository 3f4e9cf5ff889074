// dist/server.js: the language server the extension starts (`--stdio`, `--node-ipc`, `--socket=N`,
// read by createConnection); in a child process, the render worker it starts for previews; in a
// worker thread, the thread that holds its text encoders.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { RENDER_WORKER_ENV, runRenderWorker } from './render-worker';
import { startServer } from './server';
import { runTextThread, TEXT_THREAD } from './text-thread';

if (!isMainThread && (workerData as Record<string, unknown> | undefined)?.[TEXT_THREAD]) runTextThread(parentPort!);
else if (process.env[RENDER_WORKER_ENV] === '1') runRenderWorker();
else startServer(createConnection(ProposedFeatures.all));
