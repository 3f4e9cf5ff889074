// Finds image prompts in a document: Markdown images and `prompt` fences (markdown.ts), string
// literals in Python / JavaScript / TypeScript / JSX / TSX (code.ts). No vscode, no file system
// access beyond loading the parsers: the language server, the CLI and asset generation share it.
//
// Contract: never throws on document content (malformed input gives whatever could be found);
// a cancelled token gives []; parsers are loaded once per process and reused. It only throws when
// a parser itself cannot be loaded (a broken install), with a message that says so.
import { type BuiltinPromptLanguage, entryLanguageId } from '../../shared/languages';
import { findCodePrompts } from './code';
import { findMarkdownPrompts } from './markdown';
import type { Grammar } from './treeSitter';
import type { CancellationLike, PromptFinderSettings, PromptScan, PromptSpan, ScanOptions } from './types';

export type { CancellationLike, PromptFinderSettings, PromptOptions, PromptScan, PromptSpan, Range, ScanOptions } from './types';
export { parseOptions } from './options';
export { localImagePath } from './markdown';

type Parser = Grammar | 'markdown';

/** The language ids this finder understands out of the box (the client's list), and the parser each one uses. */
const PARSER_OF_LANGUAGE: Record<BuiltinPromptLanguage, Parser> = {
  markdown: 'markdown',
  python: 'python',
  javascript: 'javascript',
  javascriptreact: 'javascript',
  typescript: 'typescript',
  typescriptreact: 'tsx',
};
const PARSER_NAMES: Record<string, Parser> = { ...PARSER_OF_LANGUAGE, tsx: 'tsx', jsx: 'javascript' };

export const DEFAULT_PROMPT_FINDER_SETTINGS: Readonly<PromptFinderSettings> = Object.freeze({
  names: ['prompt'],
  callees: ['pipe', 'pipeline', 'generate', 'txt2img', 'images.generate'],
  languages: Object.keys(PARSER_OF_LANGUAGE),
});

/**
 * Settings add to the defaults rather than replace them (as the user-facing settings promise:
 * "extra names, callees and languages"). A language entry is either a language id this finder
 * knows or `id=parser`, which scans another language id with one of the parsers: markdown,
 * python, javascript, typescript, tsx (e.g. `mdx=markdown`, `quarto=markdown`).
 */
export function resolveSettings(settings?: Partial<PromptFinderSettings>): PromptFinderSettings {
  const union = (a: readonly string[], b: readonly string[] | undefined) => [...new Set([...a, ...(b ?? [])])];
  return {
    names: union(DEFAULT_PROMPT_FINDER_SETTINGS.names, settings?.names),
    callees: union(DEFAULT_PROMPT_FINDER_SETTINGS.callees, settings?.callees),
    languages: union(DEFAULT_PROMPT_FINDER_SETTINGS.languages, settings?.languages),
  };
}

/** The parser a language id is scanned with under these settings, or undefined if none. */
export function parserFor(languageId: string, languages: readonly string[]): Parser | undefined {
  for (const entry of languages) {
    if (entryLanguageId(entry) !== languageId) continue;
    const parser = entry.split('=')[1]?.trim();
    const chosen = PARSER_NAMES[parser ?? languageId];
    if (chosen) return chosen;
  }
  return undefined;
}

export async function findPrompts(
  text: string,
  languageId: string,
  settings?: Partial<PromptFinderSettings>,
  token?: CancellationLike,
): Promise<PromptSpan[]> {
  return (await scanPrompts(text, languageId, settings, { token })).spans;
}

/** findPrompts, with a time budget of the caller's and whether it cut the scan short (the editor says so). */
export async function scanPrompts(text: string, languageId: string, settings: Partial<PromptFinderSettings> | undefined, options: ScanOptions): Promise<PromptScan> {
  const resolved = resolveSettings(settings);
  const parser = parserFor(languageId, resolved.languages);
  if (!parser || options.token?.isCancellationRequested) return { spans: [], cutOff: false };
  if (parser === 'markdown') return findMarkdownPrompts(text, options);
  return findCodePrompts(text, parser, resolved, options);
}
