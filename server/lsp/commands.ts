// workspace/executeCommand (asset runs, training, recalibration) and the small typed requests the
// client and the tests ask: is this target asset-managed, which sessions does the server hold.
import { ExecuteCommandRequest } from 'vscode-languageserver';
import { AssetTargetRequest, ServerCommands, SessionsRequest } from '../../shared/protocol';
import { liveSessions } from '../model/session';
import { abortSignal, untilCancelled } from './cancellation';
import type { ServerContext } from './context';
import { failed, toResponseError } from './response-errors';
import { TRAINING_COMMANDS } from './train-command';

const sum = <K extends string>(a: Readonly<Record<K, number>>, b: Readonly<Record<K, number>>): Record<K, number> =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k as K] + b[k as K]])) as Record<K, number>;

export const SERVER_COMMANDS: readonly string[] = [ServerCommands.recalibrate, ServerCommands.generateAssets, ...TRAINING_COMMANDS];

export function registerCommands(ctx: ServerContext): void {
  const { connection } = ctx;
  // The client asks before it sends a lens's Generate asset through generateAssets.
  connection.onRequest(AssetTargetRequest, (params) => ctx.assets.assetTarget(params));

  // Not connection.onExecuteCommand: that deletes params.workDoneToken, and progressFor needs it to
  // report on the client's own progress (a notification with Cancel) rather than create one.
  connection.onRequest(ExecuteCommandRequest.type, async (params, token) => {
    if (TRAINING_COMMANDS.includes(params.command)) return ctx.training.execute(params, token);
    if (params.command === ServerCommands.generateAssets) {
      const progress = await ctx.progressFor(params, 'AdaDiff: generating assets');
      try {
        return await ctx.assets.run(params.arguments?.[0], progress.reporter, abortSignal(token, progress.cancel));
      } catch (err) {
        throw toResponseError(err);
      } finally {
        progress.reporter.done();
      }
    }
    if (params.command !== ServerCommands.recalibrate) throw failed(`unknown command ${params.command}`);
    const uri = (params.arguments?.[0] as { uri?: string } | undefined)?.uri;
    const s = await ctx.settings.get(uri);
    await untilCancelled(ctx.models.recalibrate(s, uri), token);
    ctx.refreshLenses();
    return null;
  });

  // Which sessions this server holds, per process and part, and its resident memory: for the tests
  // and `npm run bench -- memory`, which check that every part is held once. `main` is the server
  // process: its main thread and its text thread.
  connection.onRequest(SessionsRequest, async () => ({
    main: sum(liveSessions(), await ctx.textThread.sessions()),
    worker: await ctx.renderer.sessions(),
    rssBytes: process.memoryUsage.rss(),
  }));
}
