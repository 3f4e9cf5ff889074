// One declaration per `adadiff` command: its positionals and options, each option with how its
// text parses, its default and its line of help. From it come the parser (node:util parseArgs,
// strict), the typed values, the usage line that errors repeat and the `--help` text, so a flag,
// its check and its documentation cannot drift apart.
import { parseArgs } from 'node:util';
import { UsageError } from './args';

/** One option. Build them with flag(), text(), option() below; `value` absent means a flag. */
export interface Option<T> {
  /** The value's name in the usage line (FILE, N, WxH); absent for a flag. */
  value?: string;
  short?: string;
  /** --help's line for it. */
  help: string;
  /** Text to value; throws a UsageError that names the flag (`name` is the option's, without --). */
  parse(text: string, name: string): T;
  /** Given at least once, or the command stops with a usage error. */
  required?: true;
  /** Given as often as wanted: the values come as a list, in order. */
  multiple?: true;
  /** The CLI's value when the option is absent. */
  default?: () => T;
  /** What an absent option means, for --help, when it says more than the default's value (or the core applies it). */
  defaultText?: string;
  /** False: the positionals' usage shows it (sheet's `(--prompts FILE | "PROMPT"...)`). */
  inUsage?: false;
}

/** Given always (required or defaulted): T; repeatable: T[]; otherwise T | undefined. */
type ValueOf<O> =
  O extends Option<infer T>
    ? O extends { multiple: true }
      ? O extends { required: true } ? T[] : T[] | undefined
      : O extends { required: true } | { default: () => unknown } ? T : T | undefined
    : never;

export type Values<Opts> = { [K in keyof Opts]: ValueOf<Opts[K]> };

/** What an option may add to its value, help and parser. */
export type Extra<T> = Omit<Option<T>, 'value' | 'help' | 'parse'>;

/** A boolean flag: true when given, else undefined. */
export const flag = (help: string): Option<boolean> => ({ help, parse: () => true });

/** An option whose value `parse` checks; `extra` adds short, required, multiple, default... */
export function option<T, const E extends Extra<T> = {}>(value: string, help: string, parse: (text: string, name: string) => T, extra?: E): Option<T> & E {
  return { value, help, parse, ...(extra as E) };
}

/** An option whose value is any text. */
export const text = <const E extends Extra<string> = {}>(value: string, help: string, extra?: E) => option(value, help, (t) => t, extra);

export interface Positionals {
  /** In the usage line: `"PROMPT"`, `[DIR]`, `"PROMPT"...`. */
  usage: string;
  /** What one is, for the count's error: "prompt", "folder". */
  noun: string;
  min: number;
  max: number;
}

export interface CommandSpec<Opts extends Record<string, Option<unknown>>> {
  name: string;
  summary: string;
  /** Absent: the command takes none, and any is an error. */
  positionals?: Positionals;
  options: Opts;
  run(values: Values<Opts>, positionals: string[], usage: string): Promise<number>;
}

/** What cli.ts dispatches: the declaration's name, words and runner. */
export interface Command {
  name: string;
  summary: string;
  /** One line, repeated after every usage error. */
  usage: string;
  /** `adadiff NAME --help`: the usage, the summary and a line per option with its default. */
  help(): string;
  run(argv: string[]): Promise<number>;
}

const COUNT_WORDS = ['no', 'one', 'two', 'three'];
const some = (n: number, noun: string) => `${COUNT_WORDS[n] ?? n} ${n === 1 ? noun : `${noun}s`}`;

/** "expected one prompt, got 2", "expected at most one folder, got 2". */
function countError(p: Positionals, n: number): string {
  if (p.min === p.max) return `expected ${some(p.min, p.noun)}, got ${n}`;
  return n > p.max ? `expected at most ${some(p.max, p.noun)}, got ${n}` : `expected at least ${some(p.min, p.noun)}, got ${n}`;
}

const flagName = (name: string, o: Option<unknown>) => (o.required && o.short ? `-${o.short}` : `--${name}`);

function usageOf(name: string, positionals: Positionals | undefined, options: Record<string, Option<unknown>>): string {
  const parts = [`adadiff ${name}`];
  if (positionals) parts.push(positionals.usage);
  for (const [key, o] of Object.entries(options)) {
    if (o.inUsage === false) continue;
    const word = o.value ? `${flagName(key, o)} ${o.value}` : flagName(key, o);
    const optional = `[--${key}${o.value ? ` ${o.value}` : ''}]`;
    parts.push(o.required ? (o.multiple ? `${word} ${optional}...` : word) : o.multiple ? `${optional}...` : optional);
  }
  return parts.join(' ');
}

function defaultOf(o: Option<unknown>): string | undefined {
  if (o.defaultText !== undefined) return o.defaultText;
  if (!o.default) return undefined;
  const v = o.default();
  return Array.isArray(v) ? v.join(',') : String(v);
}

function helpOf(spec: CommandSpec<Record<string, Option<unknown>>>, usage: string): string {
  const rows = Object.entries(spec.options).map(([key, o]) => {
    const names = `${o.short ? `-${o.short}, ` : ''}--${key}${o.value ? ` ${o.value}` : ''}${o.multiple ? ' (repeatable)' : ''}`;
    const d = defaultOf(o);
    return [names, `${o.help}${o.required ? ' (required)' : ''}${d !== undefined ? ` (default: ${d})` : ''}`];
  });
  const width = Math.min(34, Math.max(...rows.map(([n]) => n.length)) + 2);
  const lines = rows.map(([n, h]) => `  ${n.padEnd(width)}${n.length >= width ? `\n  ${' '.repeat(width)}` : ''}${h}`);
  return [`usage: ${usage}`, '', spec.summary, ...(lines.length ? ['', 'options:', ...lines] : [])].join('\n');
}

export function defineCommand<Opts extends Record<string, Option<unknown>>>(spec: CommandSpec<Opts>): Command {
  const usage = usageOf(spec.name, spec.positionals, spec.options);
  const withUsage = (message: string) => new UsageError(`${message}\nusage: ${usage}`);
  return {
    name: spec.name,
    summary: spec.summary,
    usage,
    help: () => helpOf(spec, usage),
    async run(argv) {
      const config = Object.fromEntries(
        Object.entries(spec.options).map(([key, o]) => [key, { type: o.value ? 'string' : 'boolean', ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }] as const),
      );
      let parsed: ReturnType<typeof parseArgs>;
      try {
        parsed = parseArgs({ args: argv, options: { ...config, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
      } catch (err) {
        throw withUsage((err as Error).message);
      }
      const { positionals } = parsed;
      const p = spec.positionals;
      if (!p && positionals.length) throw withUsage(`unexpected argument "${positionals[0]}"`);
      if (p && (positionals.length < p.min || positionals.length > p.max)) throw withUsage(countError(p, positionals.length));
      const values: Record<string, unknown> = {};
      for (const [key, o] of Object.entries(spec.options)) {
        const raw = parsed.values[key] as string | boolean | (string | boolean)[] | undefined;
        if (raw === undefined) {
          if (o.required) throw withUsage(`missing ${flagName(key, o)}${o.value ? ` ${o.value}` : ''}`);
          values[key] = o.default?.();
        } else if (Array.isArray(raw)) {
          values[key] = raw.map((r) => o.parse(String(r), key));
        } else {
          values[key] = o.parse(String(raw), key);
        }
      }
      return spec.run(values as Values<Opts>, positionals, usage);
    },
  };
}
