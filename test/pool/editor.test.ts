// The editor's way onto a pool: the language server with adadiff.pool.redis set and the password
// in its environment, as the client starts it from SecretStorage (ADADIFF_REDIS_PASSWORD). Generate
// All Assets renders on the pool's worker and writes what the CLI writes alone; the password never
// travels in a request (a verbose LSP trace would log it).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ExecuteCommandRequest } from 'vscode-languageserver-protocol/node';
import { type GenerateAssetsResult, ServerCommands } from '../../shared/protocol';
import { buildOnce } from '../build';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { startServer, type TestServer } from '../lsp/harness';
import { filesOf, PASSWORD, type RedisServer, runCli, startRedis, startWorkers, stopWorkers, tempDir, type WorkerProcess } from './harness';

const MANIFEST = ['assets:', ...[0, 1, 2].map((i) => `  - prompt: badge ${i}\n    out: badges/${i}.png\n    size: 32x32\n    steps: 12\n    seed: ${i}`)].join('\n') + '\n';

describe('Generate All Assets on a pool', () => {
  let redis: RedisServer;
  let workers: WorkerProcess[];
  let server: TestServer;
  let withoutPassword: TestServer;
  let model: string;
  const root = tempDir('editor-ws');
  writeFileSync(join(root, 'adadiff.yaml'), MANIFEST);
  const other = tempDir('editor-ws-nopw');
  writeFileSync(join(other, 'adadiff.yaml'), MANIFEST);

  before(async () => {
    buildOnce();
    model = (await ensureFixtures()).optimum;
    redis = await startRedis();
    workers = await startWorkers(redis, model, 1, tempDir('editor-worker-cache'));
    const settings = () => ({ model: { path: model }, pool: { redis: redis.bareUrl, allowUnauthenticated: false } });
    server = await startServer({ workspace: root, init: { trusted: true }, settings, env: { ADADIFF_REDIS_PASSWORD: PASSWORD } });
    withoutPassword = await startServer({ workspace: other, init: { trusted: true }, settings });
  });
  after(async () => {
    await server?.stop();
    await withoutPassword?.stop();
    stopWorkers(workers ?? []);
    redis?.kill();
  });

  const generate = (on: TestServer) => on.conn.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.generateAssets, arguments: [{}] }) as Promise<GenerateAssetsResult>;

  test('without the stored password the command fails with what Redis said', async () => {
    await assert.rejects(generate(withoutPassword), /Redis at redis:\/\/127\.0\.0\.1:\d+ refused the credentials/);
  });

  test('with it, the worker renders every image and the files are what the CLI writes alone', async () => {
    const { summary } = await generate(server);
    assert.equal(summary.counts.generated, 3, JSON.stringify(summary));
    // The worker logs each image as it sends it; its log may trail the answer by a moment.
    for (let i = 0; i < 100 && workers[0].finished() < 3; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(workers[0].finished(), 3, 'every image came from the pool');
    const local = tempDir('editor-local');
    writeFileSync(join(local, 'adadiff.yaml'), MANIFEST);
    const r = runCli(['assets', local, '--model', model], tempDir('editor-local-cache'));
    assert.equal(r.code, 0, r.out);
    const [a, b] = [filesOf(local), filesOf(root)];
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${name} is byte-identical`);
  });
});
