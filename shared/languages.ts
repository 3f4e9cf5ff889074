// Which documents the client hands the server: the language ids with a built-in prompt finder
// (server/prompts maps each to its parser, typed from this list), and how an
// `adadiff.prompts.languages` entry names one. No imports.

export const BUILTIN_PROMPT_LANGUAGES = ['markdown', 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact'] as const;
export type BuiltinPromptLanguage = (typeof BUILTIN_PROMPT_LANGUAGES)[number];

/** An entry is a language id, or `id=parser` to scan that id with a built-in parser (`mdx=markdown`): the document's language id. */
export const entryLanguageId = (entry: string): string => entry.split('=')[0].trim();
