// Loads the tree-sitter runtime and grammars (WebAssembly, from @vscode/tree-sitter-wasm: the
// runtime and grammars VS Code itself ships, built together so their ABI matches) once per process.
//
// Where the .wasm files are found at run time:
//  - bundled (dist/server.js, dist/cli.js): dist/wasm/, which esbuild.mjs fills (keep its list in
//    step with GRAMMAR_FILES below);
//  - from source (tsx, tests): the package's own wasm/ folder in node_modules.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Language, Parser, Query } from '@vscode/tree-sitter-wasm';

export type Grammar = 'python' | 'javascript' | 'typescript' | 'tsx';

const RUNTIME_FILE = 'tree-sitter.wasm';
export const GRAMMAR_FILES: Record<Grammar, string> = {
  python: 'tree-sitter-python.wasm',
  javascript: 'tree-sitter-javascript.wasm', // JSX included
  typescript: 'tree-sitter-typescript.wasm',
  tsx: 'tree-sitter-tsx.wasm',
};

/** Query sources per use; each entry is one pattern (see loadGrammar). */
export interface QuerySources {
  /** Every site a prompt can come from: named values, calls, comments. */
  readonly sites: readonly string[];
  /** String literal nodes, to find the literal after a marker comment. */
  readonly literals: readonly string[];
}

export interface LoadedGrammar {
  readonly parser: Parser;
  readonly language: Language;
  readonly sites: Query;
  readonly literals: Query;
}

function wasmDirectory(): string {
  const candidates = [join(__dirname, 'wasm')];
  try {
    candidates.push(dirname(require.resolve('@vscode/tree-sitter-wasm')));
  } catch {
    // Bundled without node_modules: only dist/wasm can hold them.
  }
  const found = candidates.find((dir) => existsSync(join(dir, RUNTIME_FILE)));
  if (!found) {
    throw new Error(
      `AdaDiff: the tree-sitter WebAssembly files were not found (looked in ${candidates.join(', ')}). ` +
        'The build copies them into dist/wasm; run `npm run build`.',
    );
  }
  return found;
}

let runtime: Promise<string> | undefined;
const grammars = new Map<Grammar, Promise<LoadedGrammar>>();

function initRuntime(): Promise<string> {
  runtime ??= (async () => {
    const dir = wasmDirectory();
    await Parser.init({ locateFile: (file: string) => join(dir, file) });
    return dir;
  })().catch((err) => {
    runtime = undefined; // let a later call retry, e.g. after the files were restored
    throw err;
  });
  return runtime;
}

/**
 * The parser, language and compiled queries for a grammar, created on first use and reused.
 * A pattern naming a node type the grammar lacks is dropped, so that one list of patterns serves
 * a family of grammars (JavaScript has no `required_parameter`, TypeScript no `field_definition`).
 */
export function loadGrammar(grammar: Grammar, sources: QuerySources): Promise<LoadedGrammar> {
  let loaded = grammars.get(grammar);
  if (!loaded) {
    loaded = (async () => {
      const dir = await initRuntime();
      const language = await Language.load(join(dir, GRAMMAR_FILES[grammar]));
      const compile = (patterns: readonly string[]) =>
        new Query(
          language,
          patterns
            .filter((p) => {
              try {
                new Query(language, p).delete();
                return true;
              } catch {
                return false;
              }
            })
            .join('\n'),
        );
      const parser = new Parser();
      parser.setLanguage(language);
      return { parser, language, sites: compile(sources.sites), literals: compile(sources.literals) };
    })();
    loaded.catch(() => grammars.delete(grammar));
    grammars.set(grammar, loaded);
  }
  return loaded;
}
