// The server the reliability tests drive: the real one over stdio, on the `optimum` fixture model.
import { ensureFixtures } from '../fixtures/make-fixtures';
import { startServer, type TestServer } from '../lsp/harness';

export async function startFixtureServer(): Promise<TestServer> {
  const model = (await ensureFixtures()).optimum;
  return startServer({ init: { trusted: true, bundledModelPath: model }, settings: () => ({ model: { path: model } }) });
}
