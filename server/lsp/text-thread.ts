// The text encoders' sessions live in a worker thread of the server process, not on its main
// thread: onnxruntime-node creates a session synchronously on the calling thread, and a full-size
// text encoder takes seconds to load (SD 1.5's 490 MB one: 18 s on this 2-core machine under load),
// during which a main thread holding it would answer nothing at all. The thread is still the
// server's process, so the render worker borrows the same sessions (remote-text.ts) and each part
// stays loaded once. A hover pays a message each way (features of a few hundred KB, copied).
import { join, resolve } from 'node:path';
import { type MessagePort, Worker } from 'node:worker_threads';
import { openModelFolder } from '../model/folder';
import { liveSessions, loadTextModel, NO_SESSIONS, type TextModel, type TextPart } from '../model/session';
import { answerTextRequest, TextClient, type TextReply, type TextRequest, type TextTarget } from './remote-text';

/** workerData of the thread, which main.ts reads to know which role to play. */
export const TEXT_THREAD = 'adadiffTextThread';

type Sessions = ReturnType<typeof liveSessions>;
type ToThread = TextRequest | { kind: 'sessions'; rid: number };
type FromThread = TextReply | { kind: 'sessions'; rid: number; sessions: Sessions };

/** The main thread's side: one thread, started on the first model and again after it died. */
export class TextThread {
  private worker: Worker | undefined;
  private client: TextClient | undefined;
  private nextRid = 1;
  private readonly sessionWaits = new Map<number, (s: Sessions) => void>();

  /** The server bundle doubles as the thread's script (see main.ts). */
  constructor(private readonly script = join(__dirname, 'server.js')) {}

  /** The text part of a model, its sessions in the thread; disposing it releases them there. */
  textPart(target: TextTarget, tokenizerDir: string): Promise<TextPart> {
    return this.start().textPart(target, tokenizerDir, true);
  }

  /** The sessions the thread holds, per part; all zero before it starts. */
  async sessions(): Promise<Sessions> {
    if (!this.worker) return { ...NO_SESSIONS };
    const worker = this.worker;
    const rid = this.nextRid++;
    return new Promise<Sessions>((done) => {
      this.sessionWaits.set(rid, done);
      worker.postMessage({ kind: 'sessions', rid } satisfies ToThread);
    });
  }

  private start(): TextClient {
    if (this.worker && this.client) return this.client;
    const worker = new Worker(this.script, { workerData: { [TEXT_THREAD]: true }, execArgv: process.execArgv.filter((arg) => !arg.startsWith('--inspect')), stdout: true, stderr: true });
    // Nothing the thread prints may land on stdout, the LSP channel.
    worker.stdout.pipe(process.stderr);
    worker.stderr.pipe(process.stderr);
    const client = new TextClient({ postMessage: (msg) => worker.postMessage(msg) });
    worker.on('message', (msg: FromThread) => {
      if (msg.kind === 'sessions') {
        this.sessionWaits.get(msg.rid)?.(msg.sessions);
        this.sessionWaits.delete(msg.rid);
      } else client.receive(msg);
    });
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.client = undefined;
      client.failAll(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the text encoder thread stopped (exit code ${code}); the next request starts a new one`)));
    worker.unref();
    this.worker = worker;
    this.client = client;
    return client;
  }

  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.client = undefined;
    await worker?.terminate();
  }
}

/** The thread's side: each model's text part opened on the first request that names it. */
export function runTextThread(port: MessagePort): void {
  const models = new Map<string, Promise<TextModel>>();
  const keyOf = (t: TextTarget) => `${resolve(t.model)}\n${t.providers.join(',')}`;
  const open = (t: TextTarget): Promise<TextModel> => {
    const key = keyOf(t);
    let model = models.get(key);
    if (!model) {
      model = openModelFolder(t.model).then((folder) => loadTextModel(folder, { providers: t.providers }));
      models.set(key, model);
      // A failed load is not kept: a fixed folder loads on the next request.
      model.catch(() => models.delete(key));
    }
    return model;
  };
  port.on('message', (msg: ToThread) => {
    if (msg.kind === 'sessions') return port.postMessage({ kind: 'sessions', rid: msg.rid, sessions: liveSessions() } satisfies FromThread);
    if (msg.op === 'release') {
      const model = models.get(keyOf(msg));
      models.delete(keyOf(msg));
      void (model?.then((m) => m.dispose()) ?? Promise.resolve())
        .catch(() => undefined)
        .then(() => port.postMessage({ kind: 'text-reply', rid: msg.rid, released: true } satisfies FromThread));
      return;
    }
    void answerTextRequest(msg, open).then((reply) => port.postMessage(reply));
  });
}
