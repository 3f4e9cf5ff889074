// The quick fix "Use the step policy's N steps": where code fixes a prompt's steps with an integer
// literal, write the policy's count over it. Pure, like present.ts; the server supplies the choice.
import { type CodeAction, CodeActionKind } from 'vscode-languageserver';
import type { PromptSpan } from '../prompts/types';
import type { PolicyChoice } from './models';

/** Undefined where there is nothing to rewrite (no literal: a variable, a marker comment) or no differing choice. */
export function useStepPolicyFix(uri: string, span: PromptSpan, choice: PolicyChoice | undefined): CodeAction | undefined {
  const range = span.options.stepsRange;
  if (!range || !choice) return undefined;
  return {
    title: `Use the step policy's ${choice.steps} steps (instead of ${span.options.steps})`,
    kind: CodeActionKind.QuickFix,
    edit: { changes: { [uri]: [{ range, newText: String(choice.steps) }] } },
  };
}

/** Whether a request that asks `only` for some kinds (a prefix each, `''` for any) wants this kind. */
export function wantsKind(only: readonly string[] | undefined, kind: string): boolean {
  return !only || only.some((k) => k === '' || kind === k || kind.startsWith(`${k}.`));
}
