// What the editor asks as the user reads and types: hover, CodeLens (+ resolve) and the steps quick
// fix. All answer from the text encoder and the policy on the server's own thread, in
// milliseconds; a model that cannot load answers with what is wrong instead of failing the request.
import {
  type CancellationToken,
  type CodeAction,
  CodeActionKind,
  type CodeActionParams,
  type CodeLens,
  type CodeLensParams,
  type Hover,
  type HoverParams,
  MarkupKind,
} from 'vscode-languageserver';
import { ClientCommands } from '../../shared/protocol';
import { untilCancelled } from './cancellation';
import type { ServerContext } from './context';
import { spanAt, touches } from './documents';
import { ModelUnavailable } from './models';
import { commandArgs, cutOffLensTitle, cutOffMarkdown, hasAssetTarget, hoverMarkdown, lensTitle, lensTooltip, unavailableMarkdown } from './present';
import { useStepPolicyFix, wantsKind } from './steps-fix';

interface LensData {
  uri: string;
  version: number;
  index: number;
}

export async function hover(ctx: ServerContext, params: HoverParams, token: CancellationToken): Promise<Hover | null> {
  const found = await untilCancelled(ctx.spansOf(params.textDocument.uri), token);
  const span = found && spanAt(found.spans, params.position);
  if (!span) return found?.cutOff ? { contents: { kind: MarkupKind.Markdown, value: cutOffMarkdown(found.doc.getText().length) } } : null;
  const uri = params.textDocument.uri;
  const s = await ctx.settings.get(uri);
  let value: string;
  try {
    const { model, prediction, policyChoice, generation } = await untilCancelled(ctx.models.predict(s, uri, commandArgs(uri, span)), token);
    value = hoverMarkdown({ uri, span, prediction, policyChoice, generation, modelName: model.name, note: model.choice.note });
  } catch (err) {
    if (!(err instanceof ModelUnavailable)) throw err;
    value = unavailableMarkdown(err.message, err.choice.note);
  }
  return { contents: { kind: MarkupKind.Markdown, value }, range: span.range };
}

/** The lenses of a document; the step count of each is resolved later (codeLensResolve). */
export async function codeLenses(ctx: ServerContext, params: CodeLensParams, token: CancellationToken): Promise<CodeLens[]> {
  const uri = params.textDocument.uri;
  const s = await untilCancelled(ctx.settings.get(uri), token);
  if (!s.codeLens.enabled) return [];
  const found = await untilCancelled(ctx.spansOf(uri), token);
  if (!found) return [];
  const top = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
  const cutOff: CodeLens[] = found.cutOff ? [{ range: top, command: { title: cutOffLensTitle(found.doc.getText().length), command: '' } }] : [];
  return cutOff.concat(
    found.spans.flatMap((span, index) => {
      const args = commandArgs(uri, span);
      const range = { start: span.range.start, end: span.range.start };
      const lenses: CodeLens[] = [
        { range, data: { uri, version: found.doc.version, index } satisfies LensData },
        { range, command: { title: 'Preview', command: ClientCommands.preview, arguments: [args] } },
      ];
      if (hasAssetTarget(span)) lenses.push({ range, command: { title: 'Generate asset', command: ClientCommands.generateAsset, arguments: [args] } });
      return lenses;
    }),
  );
}

export async function resolveCodeLens(ctx: ServerContext, lens: CodeLens, token: CancellationToken): Promise<CodeLens> {
  const data = lens.data as LensData | undefined;
  if (!data || lens.command) return lens;
  const found = await untilCancelled(ctx.spansOf(data.uri), token);
  const span = found && found.doc.version === data.version ? found.spans[data.index] : undefined;
  if (!span) return { ...lens, command: { title: 'AdaDiff: …', command: '' } };
  const s = await ctx.settings.get(data.uri);
  try {
    const { prediction, policyChoice } = await untilCancelled(ctx.models.predict(s, data.uri, commandArgs(data.uri, span), 'lens'), token);
    const tooltip = lensTooltip(prediction);
    return { ...lens, command: { title: lensTitle(prediction, policyChoice), command: '', ...(tooltip ? { tooltip } : {}) } };
  } catch (err) {
    if (!(err instanceof ModelUnavailable)) throw err;
    return { ...lens, command: { title: 'AdaDiff: model not loaded (hover for details)', command: '' } };
  }
}

/**
 * Asked at every cursor move: only prompts whose steps are an integer literal in code cost a
 * prediction, and those are cached as for hovers.
 */
export async function stepsQuickFixes(ctx: ServerContext, params: CodeActionParams, token: CancellationToken): Promise<CodeAction[]> {
  if (!wantsKind(params.context.only, CodeActionKind.QuickFix)) return [];
  const uri = params.textDocument.uri;
  const found = await untilCancelled(ctx.spansOf(uri), token);
  const touched = (found?.spans ?? []).filter((span) => {
    const literal = span.options.stepsRange;
    return literal && (touches(span.range, params.range) || touches(literal, params.range));
  });
  if (!touched.length) return [];
  const s = await ctx.settings.get(uri);
  const actions = new Map<string, CodeAction>();
  for (const span of touched) {
    try {
      const { policyChoice } = await untilCancelled(ctx.models.predict(s, uri, commandArgs(uri, span)), token);
      const fix = useStepPolicyFix(uri, span, policyChoice);
      // Prompts in one list share their steps literal: the same rewrite is offered once.
      if (fix) actions.set(JSON.stringify(fix.edit), fix);
    } catch (err) {
      if (!(err instanceof ModelUnavailable)) throw err;
      return []; // the hover says what is wrong with the model
    }
  }
  return [...actions.values()];
}

export function registerEditorFeatures(ctx: ServerContext): void {
  ctx.connection.onHover((params, token) => hover(ctx, params, token));
  ctx.connection.onCodeLens((params, token) => codeLenses(ctx, params, token));
  ctx.connection.onCodeLensResolve((lens, token) => resolveCodeLens(ctx, lens, token));
  ctx.connection.onCodeAction((params, token) => stepsQuickFixes(ctx, params, token));
}
