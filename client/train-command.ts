// "AdaDiff: Train Step Policy for the Model…": where the prompts come from (the workspace's own
// image prompts, a prompts file, or the general set shipped with the extension), what it will cost
// on this machine, then adadiff.server.trainPolicy with a cancellable progress notification. The
// server does the work (on its render worker) and refuses what it must (untrusted workspace,
// bundled model, unwritable folder, too few prompts); this side only asks and shows.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { LSPErrorCodes, ResponseError } from 'vscode-languageclient/node';
import { formatSeconds } from '../shared/format';
import {
  type PromptsFileArgs,
  type PromptsFileResult,
  ServerCommands,
  type TrainEstimate,
  type TrainEstimateArgs,
  type TrainPolicyArgs,
  type TrainPolicyCommandArgs,
  type TrainPolicyResult,
  type WorkspacePromptsResult,
} from '../shared/protocol';
import { errorMessage } from './preview-panel';
import type { AdaDiffServer } from './server';
import { execute, withServerProgress } from './server-progress';

/** The general prompt set in the extension folder (shipped in the .vsix). */
export const GENERAL_PROMPTS = 'prompts/general.txt';

type Source = 'workspace' | 'file' | 'general';

const isArgs = (x: unknown): x is TrainPolicyCommandArgs => typeof x === 'object' && x !== null && !Array.isArray(x);

export class TrainCommand {
  constructor(
    private readonly server: AdaDiffServer,
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /**
   * From the palette or the hover's link ({ uri }: the settings scope whose model is trained), it
   * asks for the prompts and a confirmation; with `prompts` in the arguments (tests, other
   * extensions) it asks nothing. Resolves with the result, undefined when cancelled or refused
   * (refusals and errors are shown as messages).
   */
  async run(raw?: unknown): Promise<TrainPolicyResult | undefined> {
    const given = isArgs(raw) ? raw : {};
    const uri = given.uri ?? vscode.window.activeTextEditor?.document.uri.toString();
    const options = { uri, seeds: given.seeds, candidates: given.candidates, epochs: given.epochs };
    try {
      const client = await this.server.start();
      // The refusals first (trust, bundled model, folder not writable), before asking for anything.
      const checks = await execute<TrainEstimate>(client, ServerCommands.estimateTraining, options satisfies TrainEstimateArgs);
      const programmatic = Array.isArray(given.prompts);
      const prompts = programmatic ? given.prompts! : await this.pickPrompts(client, uri, checks.minPrompts);
      if (!prompts) return undefined;
      const estimate = await execute<TrainEstimate>(client, ServerCommands.estimateTraining, { ...options, prompts: prompts.length, heldOut: given.heldOut?.length } satisfies TrainEstimateArgs);
      if (!programmatic && !(await confirm(estimate))) return undefined;
      const result = await this.train(client, { ...options, prompts, heldOut: given.heldOut }, estimate);
      if (result) this.announce(result);
      return result;
    } catch (err) {
      this.log.error(`train a step policy: ${errorMessage(err)}`);
      void vscode.window.showErrorMessage(`AdaDiff: ${errorMessage(err)}`);
      return undefined;
    }
  }

  private async train(client: LanguageClient, args: TrainPolicyArgs, estimate: TrainEstimate): Promise<TrainPolicyResult | undefined> {
    this.log.info(`training a step policy for ${estimate.modelPath}: ${estimate.trainPrompts} + ${estimate.heldOutPrompts} held-out prompts, estimated ${formatSeconds(estimate.seconds)}`);
    return withServerProgress(client, `AdaDiff: training a step policy for ${estimate.model}`, async (workDoneToken, cancel) => {
      try {
        return await execute<TrainPolicyResult>(client, ServerCommands.trainPolicy, args, cancel, workDoneToken);
      } catch (err) {
        const cancelled = cancel.isCancellationRequested || err instanceof vscode.CancellationError || (err instanceof ResponseError && err.code === LSPErrorCodes.RequestCancelled);
        if (!cancelled) throw err;
        void vscode.window.showInformationMessage('AdaDiff: training cancelled. The reward table made so far is cached: running it again resumes from there.');
        return undefined;
      }
    });
  }

  private announce(r: TrainPolicyResult): void {
    this.log.info(`trained ${r.onnxPath} in ${formatSeconds(r.seconds)}`);
    const e = r.evaluation;
    const summary = e
      ? `on ${e.prompts} held-out prompts it picks ${e.avgSteps.toFixed(1)} steps on average instead of ${e.baselineSteps} (${e.savingPct.toFixed(0)}% fewer)` +
        (e.shareMeetingTau !== null && e.tau !== null ? `, ${(100 * e.shareMeetingTau).toFixed(0)}% of images reach fidelity ${e.tau}` : '') +
        `, mean fidelity ${e.meanQuality.toFixed(3)}.`
      : 'it was not evaluated.';
    void vscode.window.showInformationMessage(`AdaDiff: step policy trained for ${r.model}; ${summary}`, 'Open policy.json').then(async (pick) => {
      if (pick) await vscode.window.showTextDocument(vscode.Uri.file(r.manifestPath));
    });
  }

  private async pickPrompts(client: LanguageClient, uri: string | undefined, minPrompts: number): Promise<string[] | undefined> {
    const items: (vscode.QuickPickItem & { source: Source })[] = [
      { source: 'workspace', label: '$(search) Prompts in this workspace', detail: 'The image prompts in its Markdown, Python, JavaScript and TypeScript files: the policy learns the prompts you write.' },
      { source: 'file', label: '$(file) A prompts file…', detail: 'A text file with one prompt a line; lines starting with # are comments.' },
      { source: 'general', label: '$(library) The general prompt set', detail: 'A set shipped with AdaDiff, from "a red circle" to crowded scenes, for a model used on all kinds of prompts.' },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: 'AdaDiff: train a step policy on which prompts?', ignoreFocusOut: true });
    if (!pick) return undefined;
    const prompts = await this.promptsFrom(pick.source, client, uri);
    if (prompts && prompts.length < minPrompts) {
      void vscode.window.showWarningMessage(`AdaDiff: ${prompts.length} prompt${prompts.length === 1 ? '' : 's'} found; training needs at least ${minPrompts}. Pick a prompts file or the general set.`);
      return undefined;
    }
    return prompts;
  }

  private async promptsFrom(source: Source, client: LanguageClient, uri: string | undefined): Promise<string[] | undefined> {
    if (source === 'workspace') {
      const found = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'AdaDiff: looking for prompts' }, (_, token) =>
        execute<WorkspacePromptsResult>(client, ServerCommands.workspacePrompts, { uri }, token),
      );
      this.log.info(`${found.prompts.length} prompts in ${found.files} files${found.truncated ? ' (search cut short by its limits)' : ''}`);
      return found.prompts;
    }
    const file =
      source === 'general'
        ? vscode.Uri.joinPath(this.extensionUri, GENERAL_PROMPTS)
        : (await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Train on these prompts', filters: { 'Prompt lists': ['txt'], 'All files': ['*'] } }))?.[0];
    if (!file) return undefined;
    // The server reads it, so that the editor and `adadiff train-policy --prompts` parse one format.
    return (await execute<PromptsFileResult>(client, ServerCommands.promptsFile, { uri: file.toString() } satisfies PromptsFileArgs)).prompts;
  }
}

async function confirm(e: TrainEstimate): Promise<boolean> {
  const detail = [
    `${e.trainPrompts} training and ${e.heldOutPrompts} held-out prompts: ${e.images} images (${e.unetSteps} UNet steps), about ${formatSeconds(e.seconds)} on ${e.provider}.`,
    `Training writes adadiff/policy.onnx and policy.json into ${e.modelPath}${e.policy ? ', replacing its current policy' : ''}.`,
    'Rows of an earlier, interrupted run come from the cache; Cancel keeps what is done.',
  ].join('\n\n');
  const go = await vscode.window.showInformationMessage(`Train a step policy for ${e.model}?`, { modal: true, detail }, 'Train');
  return go === 'Train';
}
