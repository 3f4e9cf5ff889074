// A provider that fails to initialise falls through to CPU, and the reason is kept and shown:
// in the session's provider choice, in `adadiff doctor --json`, and in the language server's
// adadiff/status notification (and its log). The hard case is a provider that passes every check
// made without a session (its libraries are on disk) and fails only when the session is created:
// WebGPU with a fake libvulkan.so.1 on the library path (Dawn cannot load it, so there is no
// adapter), and any provider made to fail through createSessionWithFallback's `create` seam.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { HoverRequest, LogMessageNotification } from 'vscode-languageserver-protocol/node';
import { openModelFolder } from '../../server/model/folder';
import { CUDA_INSTALL_COMMAND, createSessionWithFallback, NoProviderError, providerUnavailableReason } from '../../server/model/providers';
import { loadModel } from '../../server/model/session';
import { buildOnce, CLI } from '../build';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { startServer, type TestServer } from '../lsp/harness';
import { tempDir } from '../temp-dirs';

const tmp = tempDir('adadiff-providers-');
/** A "libvulkan.so.1" that exists (the on-disk check passes) but is no library (Dawn fails to load it). */
const fakeVulkanDir = join(tmp, 'fake-vulkan');
const fakeLdPath = [fakeVulkanDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');

let fixtures: Awaited<ReturnType<typeof ensureFixtures>>;
before(async () => {
  mkdirSync(fakeVulkanDir, { recursive: true });
  writeFileSync(join(fakeVulkanDir, 'libvulkan.so.1'), 'not a shared library');
  fixtures = await ensureFixtures();
});

/** Runs `fn` with LD_LIBRARY_PATH pointing at the fake Vulkan loader (our on-disk check reads it at call time). */
async function withFakeVulkan<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.env.LD_LIBRARY_PATH;
  process.env.LD_LIBRARY_PATH = fakeLdPath;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
    else process.env.LD_LIBRARY_PATH = saved;
  }
}

describe('createSessionWithFallback', () => {
  test('a provider that passes the checks but fails at session creation falls through to CPU with its reason', async () => {
    const file = join(fixtures.optimum, 'vae_decoder', 'model.onnx');
    const created: string[] = [];
    const { session, choice } = await withFakeVulkan(() =>
      createSessionWithFallback(file, ['webgpu', 'cpu'], { logSeverityLevel: 3 }, async (f, options) => {
        const name = String(options.executionProviders?.[0]);
        created.push(name);
        if (name === 'webgpu') throw new Error('Failed to get a WebGPU adapter: No supported adapters');
        return ort.InferenceSession.create(f, options);
      }),
    );
    try {
      assert.deepEqual(created, ['webgpu', 'cpu'], 'webgpu passed the on-disk checks, so a session was attempted');
      assert.equal(choice.used, 'cpu');
      assert.equal(choice.tried.length, 2);
      assert.equal(choice.tried[0].name, 'webgpu');
      assert.match(choice.tried[0].error!, /No supported adapters/);
      assert.match(choice.tried[0].error!, /Vulkan driver/, 'the reason says what to install');
      assert.deepEqual(choice.tried[1], { name: 'cpu' });
    } finally {
      await session.release();
    }
  });

  test('any provider failing at creation (an injected failure) falls through, in order, keeping every reason', async () => {
    const file = join(fixtures.optimum, 'vae_decoder', 'model.onnx');
    const { session, choice } = await createSessionWithFallback(file, ['cpu', 'cpu'], { logSeverityLevel: 3 }, (() => {
      let calls = 0;
      return async (f: string, options: ort.InferenceSession.SessionOptions) => {
        if (calls++ === 0) throw new Error('simulated: out of device memory');
        return ort.InferenceSession.create(f, options);
      };
    })());
    await session.release();
    assert.equal(choice.used, 'cpu');
    assert.deepEqual(choice.tried, [{ name: 'cpu', error: 'simulated: out of device memory' }, { name: 'cpu' }]);
  });

  test('a provider refused by admit (the memory check before a CPU fallback) ends the load with that refusal', async () => {
    const file = join(fixtures.optimum, 'vae_decoder', 'model.onnx');
    const created: string[] = [];
    const admitted: string[] = [];
    await assert.rejects(
      withFakeVulkan(() =>
        createSessionWithFallback(
          file,
          ['webgpu', 'cpu'],
          { logSeverityLevel: 3 },
          async (f, options) => {
            created.push(String(options.executionProviders?.[0]));
            throw new Error('Failed to get a WebGPU adapter');
          },
          async (name) => {
            admitted.push(name);
            if (name === 'cpu') throw new Error('does not fit in the memory available now');
          },
        ),
      ),
      /does not fit in the memory available now/,
    );
    assert.deepEqual(admitted, ['webgpu', 'cpu']);
    assert.deepEqual(created, ['webgpu'], 'the refused provider never opens the file');
  });

  test('when every provider fails, NoProviderError lists each reason', async () => {
    const file = join(fixtures.optimum, 'vae_decoder', 'model.onnx');
    await assert.rejects(
      createSessionWithFallback(file, ['dml', 'cpu'], {}, async () => {
        throw new Error('simulated: cpu broken');
      }),
      (err: unknown) => {
        assert.ok(err instanceof NoProviderError);
        assert.match(err.message, /dml: DirectML is only available on Windows/);
        assert.match(err.message, /cpu: simulated: cpu broken/);
        return true;
      },
    );
  });

  test('a provider that is not installed is skipped without a session attempt, with the install command', async (t) => {
    if (!providerUnavailableReason('cuda')) return t.skip('the CUDA provider is installed here');
    const file = join(fixtures.optimum, 'vae_decoder', 'model.onnx');
    const created: string[] = [];
    const { session, choice } = await createSessionWithFallback(file, ['cuda', 'cpu'], { logSeverityLevel: 3 }, (f, options) => {
      created.push(String(options.executionProviders?.[0]));
      return ort.InferenceSession.create(f, options);
    });
    await session.release();
    assert.deepEqual(created, ['cpu']);
    assert.equal(choice.used, 'cpu');
    assert.ok(choice.tried[0].error!.includes(CUDA_INSTALL_COMMAND));
  });
});

describe('loadModel', () => {
  test('every part records the provider it fell back from', async () => {
    const folder = await openModelFolder(fixtures.optimum);
    const model = await withFakeVulkan(() => loadModel(folder, { providers: ['dml', 'cpu'] }));
    try {
      for (const part of ['textEncoder', 'unet', 'vaeDecoder'] as const) {
        assert.equal(model.providers[part].used, 'cpu');
        assert.equal(model.providers[part].tried[0].name, 'dml');
        assert.match(model.providers[part].tried[0].error!, /only available on Windows/);
      }
    } finally {
      await model.dispose();
    }
  });
});

// The real thing, in child processes (glibc reads LD_LIBRARY_PATH at start): onnxruntime's WebGPU
// provider is asked for a session, Dawn fails to load the fake Vulkan loader, and CPU takes over.
const childEnv = () => ({ ...process.env, LD_LIBRARY_PATH: fakeLdPath, ADADIFF_CACHE_DIR: join(tmp, 'cache'), ADADIFF_PROVIDERS: 'webgpu,cpu' });

function assertWebgpuFellBack(tried: readonly { name: string; error?: string }[], where: string): void {
  assert.equal(tried[0]?.name, 'webgpu', `${where}: webgpu was tried first`);
  assert.match(tried[0].error ?? '', /adapter/i, `${where}: onnxruntime's reason is kept`);
  assert.match(tried[0].error ?? '', /Vulkan driver/, `${where}: and says what to install`);
}

describe('adadiff doctor --json', { skip: process.platform !== 'linux' && 'the fake Vulkan loader is a Linux setup' }, () => {
  test('shows webgpu as installed, every part on cpu, and why webgpu was not used', async () => {
    buildOnce();
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'doctor', '--model', fixtures.optimum, '--json'], { env: childEnv() });
    const report = JSON.parse(stdout);
    assert.deepEqual(report.providerOrder, ['webgpu', 'cpu']);
    assert.equal(report.providers.find((p: { name: string }) => p.name === 'webgpu').available, true, 'it passes the on-disk checks');
    for (const part of ['textEncoder', 'unet', 'vaeDecoder']) {
      assert.equal(report.model.parts[part].used, 'cpu');
      assertWebgpuFellBack(report.model.parts[part].tried, `doctor ${part}`);
    }
    assert.equal(report.model.calibration.provider, 'cpu');
  });
});

describe('language server status', { skip: process.platform !== 'linux' && 'the fake Vulkan loader is a Linux setup' }, () => {
  let server: TestServer | undefined;
  after(async () => server?.stop());

  test('adadiff/status names cpu per part and carries the reason webgpu was not used; the log says it too', async () => {
    const saved = process.env.LD_LIBRARY_PATH;
    process.env.LD_LIBRARY_PATH = fakeLdPath; // the harness passes process.env to the server
    try {
      server = await startServer({ settings: () => ({ model: { path: fixtures.optimum }, providers: ['webgpu', 'cpu'] }), init: { trusted: true, bundledModelPath: fixtures.optimum } });
    } finally {
      if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
      else process.env.LD_LIBRARY_PATH = saved;
    }
    const logged: string[] = [];
    server.conn.onNotification(LogMessageNotification.type, (m) => logged.push(m.message));
    const uri = server.open('a.md', 'markdown', '```prompt\na red apple\n```\n');
    // A hover needs the model: it starts loading if opening the document did not.
    void server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 1, character: 3 } }).catch(() => undefined);
    // The UNet's and VAE's providers are the render worker's: the status names them once it has measured with them.
    const ready = await server.waitForStatus((s) => (s.state === 'ready' && /UNet step/.test(s.detail ?? '')) || s.state === 'error', 120_000);
    assert.equal(ready.state, 'ready', ready.detail);
    assert.equal(ready.providers?.unet, 'cpu');
    for (const part of ['textEncoder', 'unet', 'vaeDecoder']) {
      const notUsed = ready.providersNotUsed?.[part];
      assert.ok(notUsed, `providersNotUsed.${part}`);
      assertWebgpuFellBack(notUsed, `status ${part}`);
    }
    assert.match(ready.detail ?? '', /not webgpu: .*adapter/, 'the status tooltip says it too');
    assert.ok(logged.some((m) => /unet does not run on webgpu: .*adapter/.test(m)), `the server log says why: ${logged.join('\n')}`);
  });
});
