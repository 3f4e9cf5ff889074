// The boundaries ARCHITECTURE.md names (vscode-eslint's $shared/, rust-analyzer's thin client): the
// VS Code client and the webview see the server only through shared/, shared/ imports nothing of
// the project outside itself, and nothing under server/ imports `vscode` or the client. Every
// import form counts (import, import type, export from, require, import()), read with
// TypeScript's own pre-processor.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

const ROOT = resolve(__dirname, '..', '..');

interface Rule {
  /** Project folders (repo-relative) a relative import may land in. */
  folders: string[];
  /** Packages it may import (and their subpaths); '*': any but `forbidden`. */
  packages: string[] | '*';
  forbidden?: string[];
  nodeBuiltins: boolean;
}

const RULES: Record<string, Rule> = {
  // The extension host: VS Code's API, the LSP client, Node.
  client: { folders: ['client', 'shared'], packages: ['vscode', 'vscode-languageclient'], nodeBuiltins: true },
  // A browser page inside the webview: nothing but the shared message types.
  media: { folders: ['media', 'shared'], packages: [], nodeBuiltins: false },
  // The wire format: the message types of the LSP package the client and the server both speak.
  shared: { folders: ['shared'], packages: ['vscode-languageserver-protocol'], nodeBuiltins: false },
  // The core and the language server: any npm package but VS Code's API, any project folder but the editor's side.
  server: { folders: ['server', 'shared', 'package.json'], packages: '*', forbidden: ['vscode'], nodeBuiltins: true },
};

const builtins = new Set(builtinModules);

/** What is wrong with one import of `file` (repo-relative), or undefined when the rule allows it. */
function violation(file: string, specifier: string, rule: Rule): string | undefined {
  if (specifier.startsWith('.')) {
    const target = relative(ROOT, resolve(ROOT, dirname(file), specifier)).split(sep).join('/');
    return rule.folders.some((f) => target === f || target.startsWith(`${f}/`)) ? undefined : `${file} imports ${specifier} (${target}), outside ${rule.folders.join(' and ')}`;
  }
  if (rule.nodeBuiltins && (specifier.startsWith('node:') || builtins.has(specifier))) return undefined;
  const names = (list: string[]) => list.some((p) => specifier === p || specifier.startsWith(`${p}/`));
  if (rule.packages === '*') return names(rule.forbidden ?? []) ? `${file} imports ${specifier}` : undefined;
  if (names(rule.packages)) return undefined;
  return `${file} imports the package ${specifier}; allowed: ${[...rule.packages, ...(rule.nodeBuiltins ? ['node builtins'] : [])].join(', ') || 'none'}`;
}

function importsOf(source: string): string[] {
  const info = ts.preProcessFile(source, true, true);
  return info.importedFiles.map((f) => f.fileName);
}

function violations(file: string, source: string): string[] {
  const rule = RULES[file.split('/')[0]];
  return importsOf(source).flatMap((s) => violation(file, s, rule) ?? []);
}

function sources(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|mts|cts|tsx|js|mjs)$/.test(f) && !f.split(sep).includes('dist'))
    .map((f) => `${folder}/${f.split(sep).join('/')}`);
}

describe('the client and the webview speak only the shared protocol; the server knows no editor', () => {
  for (const folder of Object.keys(RULES)) {
    test(`${folder}/ imports only what its rule allows`, () => {
      const files = sources(folder);
      assert.ok(files.length > 0, `no sources under ${folder}/`);
      assert.deepEqual(files.flatMap((f) => violations(f, readFileSync(join(ROOT, f), 'utf8'))), []);
    });
  }

  test('the check catches each way of reaching past the boundary', () => {
    const cases: [string, string][] = [
      ['client/x.ts', "import { SEED } from '../server/limits';"],
      ['client/x.ts', "import type { AssetSummary } from '../server/assets';"],
      ['client/x.ts', "export { describeAsset } from '../server/assets/report';"],
      ['client/x.ts', "const p = require('../server/adadiff/prompt-list');"],
      ['client/x.ts', "const m = await import('../server/lsp/present');"],
      ['client/x.ts', "import ignore from 'ignore';"],
      ['media/x.ts', "import * as vscode from 'vscode';"],
      ['media/x.ts', "import { readFile } from 'node:fs';"],
      ['media/x.ts', "import { formatSeconds } from '../client/status';"],
      ['shared/x.ts', "import { DEFAULTS } from '../server/generation';"],
      ['shared/x.ts', "import * as vscode from 'vscode';"],
      ['server/lsp/x.ts', "import * as vscode from 'vscode';"],
      ['server/lsp/x.ts', "import type { PanelState } from '../../client/preview-panel';"],
    ];
    for (const [file, source] of cases) assert.equal(violations(file, source).length, 1, `${file}: ${source}`);
    assert.deepEqual(violations('server/lsp/x.ts', "import { Connection } from 'vscode-languageserver';\nimport { x } from '../../shared/protocol';\nimport { y } from '../engine';"), []);
    assert.deepEqual(violations('client/x.ts', "import { x } from '../shared/protocol';\nimport * as vscode from 'vscode';\nimport { LanguageClient } from 'vscode-languageclient/node';\nimport { join } from 'node:path';\nimport './status';"), []);
  });
});
