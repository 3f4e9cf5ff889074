// The text encoder lives once per server, in the server's process, where hovers and CodeLens use
// it; the render worker (a child process) borrows it through these messages instead of opening a
// second copy. A call costs the worker a message each way over the IPC channel (the features are a
// few hundred KB, copied by its structured clone) and the server the encoder run it would make for
// a hover: milliseconds, once or twice per image.
import { fromWire, toWire, type WireError } from '../error-wire';
import type { TextModel, TextPart } from '../model/session';
import { loadTokenizer } from '../model/tokenizer';

/** Which model's text encoder, as the main thread's engines open it. */
export interface TextTarget {
  model: string;
  providers: string[];
}

type TextAsk = TextTarget & ({ op: 'info' } | { op: 'encode'; prompts: string[] } | { op: 'release' });

export type TextRequest = TextAsk & { kind: 'text-request'; rid: number };

export type TextReply =
  | { kind: 'text-reply'; rid: number; info: { maxLength: number; textDim: number; providers: TextModel['providers'] } }
  | { kind: 'text-reply'; rid: number; hidden: Float32Array; dims: [number, number, number]; pooled?: Float32Array }
  | { kind: 'text-reply'; rid: number; error: WireError }
  | { kind: 'text-reply'; rid: number; released: true };

/** The main thread's side: answer a worker's request from the text model `open` gives. */
export async function answerTextRequest(req: TextRequest, open: (target: TextTarget) => Promise<TextModel>): Promise<TextReply> {
  try {
    if (req.op === 'release') throw new Error('only the text thread releases sessions');
    const model = await open(req);
    if (req.op === 'info') {
      return { kind: 'text-reply', rid: req.rid, info: { maxLength: model.tokenizer.maxLength, textDim: model.textDim, providers: model.providers } };
    }
    const out = await model.encodeText(req.prompts);
    return { kind: 'text-reply', rid: req.rid, hidden: out.hidden, dims: out.dims, ...(out.pooled ? { pooled: out.pooled } : {}) };
  } catch (err) {
    return { kind: 'text-reply', rid: req.rid, error: toWire(err) };
  }
}

/** The borrower's side (the render worker, the server's main thread): requests go out on `port`, replies come back through `receive`. */
export class TextClient {
  private nextRid = 1;
  private readonly waiting = new Map<number, (reply: TextReply) => void>();

  constructor(private readonly port: { postMessage(msg: TextRequest): void }) {}

  receive(reply: TextReply): void {
    const done = this.waiting.get(reply.rid);
    this.waiting.delete(reply.rid);
    done?.(reply);
  }

  /** The answering side went away: every request still waiting fails with `error`. */
  failAll(error: Error): void {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const [rid, done] of waiting) done({ kind: 'text-reply', rid, error: toWire(error) });
  }

  /** The text thread's sessions of this target are released (the thread opens them again when asked). */
  async release(target: TextTarget): Promise<void> {
    await this.ask({ ...target, op: 'release' });
  }

  private ask(req: TextAsk): Promise<TextReply> {
    const rid = this.nextRid++;
    return new Promise<TextReply>((resolve) => {
      this.waiting.set(rid, resolve);
      this.port.postMessage({ ...req, kind: 'text-request', rid } as TextRequest);
    }).then((reply) => {
      if ('error' in reply) throw fromWire(reply.error);
      return reply;
    });
  }

  /**
   * A TextPart whose encoder runs on the main thread. The tokenizer is loaded here too (it is a
   * few MB of vocabulary, not a session), padded to the length the main thread's encoder takes.
   */
  async textPart(target: TextTarget, tokenizerDir: string, owner = false): Promise<TextPart> {
    const reply = await this.ask({ ...target, op: 'info' });
    if (!('info' in reply)) throw new Error('the main thread answered a text-info request with features');
    const tokenizer = await loadTokenizer(tokenizerDir, { maxLength: reply.info.maxLength });
    return {
      tokenizer,
      providers: reply.info.providers,
      declaredDim: reply.info.textDim,
      encodeText: async (prompts) => {
        const out = await this.ask({ ...target, op: 'encode', prompts: [...prompts] });
        if (!('hidden' in out)) throw new Error('the main thread answered an encode request without features');
        return { hidden: out.hidden, dims: out.dims, pooled: out.pooled };
      },
      // A borrower's sessions are the server's, which disposes them; the server's own release them in its text thread.
      dispose: async () => (owner ? this.release(target) : undefined),
    };
  }
}
