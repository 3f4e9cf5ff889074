// Seeded random documents for the fuzz tests: snippets that hold prompts in each language the
// finder reads (the shapes its unit tests cover), stitched together, then mutated byte by byte and
// with snippets of other languages, plus random incremental edits, some with invalid ranges.
// Document i of seed s depends on (s, i) alone, so one failing document replays on its own.
import type { Position, Range, TextDocumentContentChangeEvent } from 'vscode-languageserver-protocol';
import { Rng } from '../fixtures/fixture-models';

export const LANGUAGES = ['markdown', 'python', 'javascript', 'typescript', 'typescriptreact'] as const;
export type FuzzLanguage = (typeof LANGUAGES)[number];

/** Text that breaks naive code: quotes, escapes, lone surrogates, RTL, combining marks, NUL, emoji. */
const NASTY = ['"', "'", '`', '\\', '\\"', '${', '}', '\ud800', '\udfff', '\u202e', 'שלום', 'مرحبا', 'e\u0301\u0301', '\u0000', '🦊', '👩‍👩‍👧', '\r', '\r\n', '\t', ']', '[', '(', ')', '<', '>', '</', '*/', '#', '\n'];
const WORDS = ['a', 'red', 'fox', 'in', 'the', 'snow', 'watercolour', 'castle', 'oil painting', 'cat', 'astronaut', 'steps:', 'seed: 7', 'size: 64x64', 'negative: blurry', 'out: img/x.png', '50', 'auto'];

export class FuzzRng extends Rng {
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.uniform() < p;
  }
}

/** A prompt's text: words, now and then something nasty. */
function promptText(rng: FuzzRng): string {
  const n = 1 + rng.int(8);
  let out = '';
  for (let i = 0; i < n; i++) out += (i ? ' ' : '') + (rng.chance(0.15) ? rng.pick(NASTY) : rng.pick(WORDS));
  return out;
}

const quoteFree = (s: string) => s.replace(/["'`\\\n\r]/g, ' ');

const SNIPPETS: Record<FuzzLanguage, ((rng: FuzzRng) => string)[]> = {
  markdown: [
    (r) => `![${promptText(r)}](img/${r.int(100)}.png)\n`,
    (r) => `![${promptText(r)}](img/a.png "seed: ${r.int(9)}, steps: ${r.int(60)}")\n`,
    (r) => `![${promptText(r)}][ref${r.int(3)}]\n\n[ref${r.int(3)}]: img/r.png\n`,
    (r) => `\`\`\`prompt\nseed: ${r.int(9)}, steps: ${r.pick(['auto', String(r.int(60))])}\n${promptText(r)}\n\`\`\`\n`,
    (r) => `~~~prompt out: img/f.png\n${promptText(r)}\n~~~\n`,
    (r) => `# ${promptText(r)}\n\n${promptText(r)} text\n`,
    (r) => `> - ![${promptText(r)}](q.png)\n`,
    (r) => `| a | b |\n|---|---|\n| ![${promptText(r)}](t.png) | x |\n`,
  ],
  python: [
    (r) => `image = pipe(prompt="${quoteFree(promptText(r))}", negative_prompt="blurry", num_inference_steps=${r.int(60)}).images[0]\n`,
    (r) => `prompt = '${quoteFree(promptText(r))}'\n`,
    (r) => `prompts = ["${quoteFree(promptText(r))}", "${quoteFree(promptText(r))}"]\n`,
    (r) => `# adadiff: prompt seed: ${r.int(9)}\nx = """${promptText(r).replace(/"/g, '')}"""\n`,
    (r) => `def render(pipe, prompt="${quoteFree(promptText(r))}"):\n    return pipe(prompt, width=64, height=64)\n`,
    (r) => `caption = f"a {subject} ${quoteFree(promptText(r))}"\n`,
    (r) => `job = {"prompt": r"${quoteFree(promptText(r))}" "tail", "seed": ${r.int(9)}}\n`,
    (r) => `class A:\n    prompt: str = "${quoteFree(promptText(r))}"\n`,
  ],
  javascript: [
    (r) => `const prompt = "${quoteFree(promptText(r))}";\n`,
    (r) => `await client.images.generate({ model: "m", prompt: "${quoteFree(promptText(r))}", steps: ${r.int(60)} });\n`,
    (r) => `pipe(\`${quoteFree(promptText(r))}\`, { num_inference_steps: ${r.int(60)} });\n`,
    (r) => `const jobs = [{ prompt: '${quoteFree(promptText(r))}' }, { prompt: "a" + "${quoteFree(promptText(r))}" }];\n`,
    (r) => `// adadiff: prompt steps: ${r.int(60)}\nconst s = "${quoteFree(promptText(r))}";\n`,
    (r) => `function f({ prompt = "${quoteFree(promptText(r))}" } = {}) { return generate(prompt); }\n`,
  ],
  typescript: [
    (r) => `const prompt: string = "${quoteFree(promptText(r))}";\n`,
    (r) => `export const job = { prompt: "${quoteFree(promptText(r))}" as const, negativePrompt: 'dark', seed: ${r.int(9)} } satisfies Job;\n`,
    (r) => `class C { prompt = "${quoteFree(promptText(r))}"; constructor(private caption = "${quoteFree(promptText(r))}") {} }\n`,
    (r) => `function g(prompt: string = "${quoteFree(promptText(r))}"): void { txt2img(prompt!); }\n`,
  ],
  typescriptreact: [
    (r) => `const e = <Image prompt="${quoteFree(promptText(r))}" steps={${r.int(60)}} />;\n`,
    (r) => `export const C = () => <div><Gen prompt={"${quoteFree(promptText(r))}"} /></div>;\n`,
    (r) => `const prompt: string = "${quoteFree(promptText(r))}";\n`,
  ],
};

const ALL_SNIPPETS = Object.values(SNIPPETS).flat();

/** Random ways to damage text: insert noise, delete, duplicate, cut anywhere (through a surrogate pair too). */
function mutate(rng: FuzzRng, text: string): string {
  const n = rng.int(6);
  for (let i = 0; i < n; i++) {
    const at = rng.int(text.length + 1);
    switch (rng.int(5)) {
      case 0:
        text = text.slice(0, at) + rng.pick(NASTY) + text.slice(at);
        break;
      case 1:
        text = text.slice(0, at) + text.slice(Math.min(text.length, at + 1 + rng.int(20)));
        break;
      case 2: {
        const from = rng.int(text.length + 1);
        text = text.slice(0, at) + text.slice(from, from + rng.int(80)) + text.slice(at);
        break;
      }
      case 3:
        text = text.slice(0, at) + rng.pick(ALL_SNIPPETS)(rng) + text.slice(at);
        break;
      default:
        text = text.slice(0, at) + String.fromCharCode(rng.int(0x10000)) + text.slice(at);
    }
  }
  return text;
}

export interface FuzzDocument {
  languageId: FuzzLanguage;
  text: string;
  /** didChange events, in order; each one a list of content changes as LSP sends them. */
  edits: TextDocumentContentChangeEvent[][];
  /** Positions to hover after the edits; some lie past the end of a line or of the document. */
  hovers: Position[];
}

export function fuzzSeed(): number {
  const fromEnv = process.env.ADADIFF_FUZZ_SEED;
  return fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** Document `index` of the run with `seed`. */
export function fuzzDocument(seed: number, index: number): FuzzDocument {
  const rng = new FuzzRng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const languageId = rng.pick(LANGUAGES);
  const pieces = 1 + rng.int(12);
  let text = '';
  for (let i = 0; i < pieces; i++) text += rng.pick(SNIPPETS[languageId])(rng) + (rng.chance(0.3) ? '\n' : '');
  if (rng.chance(0.7)) text = mutate(rng, text);
  const opening = text;
  const edits: TextDocumentContentChangeEvent[][] = [];
  const lines = () => text.split('\n');
  for (let e = rng.int(4); e > 0; e--) {
    const changes: TextDocumentContentChangeEvent[] = [];
    for (let c = 1 + rng.int(3); c > 0; c--) {
      if (rng.chance(0.05)) {
        changes.push({ text: mutate(rng, rng.pick(SNIPPETS[languageId])(rng)) });
        continue;
      }
      const replacement = rng.chance(0.5) ? rng.pick(SNIPPETS[languageId])(rng) : rng.chance(0.5) ? rng.pick(NASTY) : '';
      changes.push({ range: randomRange(rng, lines()), text: replacement });
    }
    edits.push(changes);
    // Only roughly tracked (the server's copy is what matters); it guides where later edits land.
    text += changes.map((c) => c.text).join('');
  }
  const hovers = Array.from({ length: 1 + rng.int(4) }, () => randomPosition(rng, lines(), rng.chance(0.1)));
  return { languageId, text: opening, edits, hovers };
}

function randomPosition(rng: FuzzRng, lines: string[], wild: boolean): Position {
  if (wild) return { line: rng.int(lines.length + 5), character: rng.int(200) };
  const line = rng.int(lines.length);
  return { line, character: rng.int(lines[line].length + 1) };
}

/** Mostly valid; one in five is out of the document, reversed, or past a line's end. */
function randomRange(rng: FuzzRng, lines: string[]): Range {
  const a = randomPosition(rng, lines, rng.chance(0.1));
  const b = rng.chance(0.5) ? a : randomPosition(rng, lines, rng.chance(0.1));
  const [start, end] = (a.line < b.line || (a.line === b.line && a.character <= b.character)) !== rng.chance(0.1) ? [a, b] : [b, a];
  return { start, end };
}
