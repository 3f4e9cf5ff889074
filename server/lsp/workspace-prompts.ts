// The image prompts already written in a workspace, as training prompts for a step policy: the
// prompts a user writes are the ones the policy should be good at. The same finder as hovers and
// lenses (server/prompts, with the user's prompt settings); bounded, because a workspace may be huge.
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { isScannedFolder } from '../assets/scanned';
import { walkFiles } from '../assets/walk';
import { findPrompts, type PromptFinderSettings } from '../prompts';
import type { WorkspacePromptsResult } from '../../shared/protocol';

/** File extensions the built-in finders read, and the language id each is scanned as. */
const LANGUAGE_OF: Record<string, string> = {
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.py': 'python',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.jsx': 'javascriptreact',
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.tsx': 'typescriptreact',
};

/** Python environments hold other people's prompts (and many files), like node_modules, which the asset walk's rule already skips with hidden folders. */
const PYTHON_ENV_DIRS = new Set(['__pycache__', 'venv', 'site-packages']);

export interface WorkspacePromptLimits {
  /** Files read at most. */
  files: number;
  /** Larger files are generated or data: skipped. */
  fileBytes: number;
  /** Distinct prompts at most. */
  prompts: number;
}

export const WORKSPACE_PROMPT_LIMITS: WorkspacePromptLimits = { files: 2000, fileBytes: 512 * 1024, prompts: 1000 };

export interface WorkspacePromptsOptions {
  settings: PromptFinderSettings;
  /** The editor's text of an open document (unsaved edits count), by absolute path. */
  openText?: (path: string) => string | undefined;
  limits?: WorkspacePromptLimits;
  signal?: AbortSignal;
}

export async function findWorkspacePrompts(folders: readonly string[], opts: WorkspacePromptsOptions): Promise<WorkspacePromptsResult> {
  const limits = opts.limits ?? WORKSPACE_PROMPT_LIMITS;
  const seen = new Set<string>();
  let files = 0;
  let truncated = false;

  // The shared walk (sorted, depth first): the same workspace lists the same prompts in the same order.
  async function scan(folder: string): Promise<void> {
    for await (const path of walkFiles(folder, { enter: (name) => isScannedFolder(name) && !PYTHON_ENV_DIRS.has(name), signal: opts.signal })) {
      if (truncated) return;
      const languageId = LANGUAGE_OF[extname(path).toLowerCase()];
      if (!languageId) continue;
      if (files >= limits.files) {
        truncated = true;
        return;
      }
      const text = opts.openText?.(path) ?? (await readSmall(path, limits.fileBytes));
      if (text === null) truncated = true;
      if (typeof text !== 'string') continue;
      files++;
      for (const span of await findPrompts(text, languageId, opts.settings)) {
        const prompt = span.text.trim();
        if (!prompt || seen.has(prompt)) continue;
        if (seen.size >= limits.prompts) {
          truncated = true;
          return;
        }
        seen.add(prompt);
      }
    }
  }

  for (const folder of folders) if (!truncated && !opts.signal?.aborted) await scan(folder);
  return { prompts: [...seen], files, truncated };
}

/** The file's text; null when it is larger than `maxBytes`, undefined when unreadable. */
async function readSmall(path: string, maxBytes: number): Promise<string | null | undefined> {
  try {
    if ((await stat(path)).size > maxBytes) return null;
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
