// `adadiff lsp --stdio`: the same language server the extension bundles, for any LSP editor.
// Not a defineCommand declaration: the transport flags are vscode-languageserver's, which reads
// them from process.argv itself (and editors add their own, such as --clientProcessId=PID).
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startServer } from '../lsp/server';
import { UsageError } from './args';
import type { Command } from './command';

const usage = 'adadiff lsp (--stdio | --node-ipc | --socket=PORT) [--clientProcessId=PID]';

export const lspCommand: Command = {
  name: 'lsp',
  summary: 'run the language server (hover and CodeLens on prompts, previews) for any editor',
  usage,
  help: () => `usage: ${usage}\n\nrun the language server over the transport the editor chooses`,
  run(argv) {
    if (!argv.some((a) => a === '--stdio' || a === '--node-ipc' || a.startsWith('--socket') || a.startsWith('--pipe'))) {
      throw new UsageError(`choose a transport\nusage: ${usage}`);
    }
    // createConnection reads the transport from process.argv; the server ends the process on `exit`.
    startServer(createConnection(ProposedFeatures.all));
    return new Promise<number>(() => undefined);
  },
};
