// The one family of errors (server/errors.ts): every class the core throws on purpose says its kind,
// survives the render worker's IPC channel as the class it was (error-wire.ts, through the same
// structured clone the channel uses), and maps to one LSP response error and one CLI exit code.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { LSPErrorCodes, ResponseError } from 'vscode-languageserver';
import { PolicyError } from '../../server/adadiff/policy';
import { AssetError } from '../../server/assets/generate';
import { LockError } from '../../server/assets/lock';
import { AssetPathError } from '../../server/assets/paths';
import { UsageError } from '../../server/cli/args';
import { fromWire, toWire } from '../../server/error-wire';
import { AdaDiffError, CancelledError, kindOf } from '../../server/errors';
import { ModelUnavailable } from '../../server/lsp/models';
import { toResponseError } from '../../server/lsp/response-errors';
import { ModelError } from '../../server/model/errors';
import { NoProviderError } from '../../server/model/providers';
import { PoolError } from '../../server/pool/connection';
import { JobError } from '../../server/pool/jobs';

const ROOT = resolve(__dirname, '..', '..');

/** One instance of every class in the family, with the fields that must survive. */
const samples: AdaDiffError[] = [
  new ModelError('/m/unet/model.onnx', 'is not an ONNX model'),
  new PolicyError('/m/adadiff/policy.json', 'candidates has 3 entries, the policy outputs 12'),
  new NoProviderError([{ name: 'cuda', error: 'libcudart.so.12 missing' }, { name: 'cpu', error: 'bad graph' }], ['bad graph']),
  new AssetError('the workspace is not trusted'),
  new AssetPathError('docs/../../x.png leads outside the workspace'),
  new LockError('adadiff.lock.json is not valid JSON'),
  new CancelledError(),
  new UsageError('--steps needs a number'),
  new PoolError('redis://10.0.0.5:6379 has no password; refusing a pool on another machine without authentication'),
  new JobError('a row result of 9 MB is over the 4 MB limit'),
  new ModelUnavailable({ dir: '/m', bundled: false, providers: ['cpu'] }, new ModelError('/m', 'missing')),
];

/** What the render worker's channel does to a message ('advanced' serialization is V8's structured clone). */
const overIpc = <T>(value: T): T => deserialize(serialize(value)) as T;

describe('errors', () => {
  test('every class that extends AdaDiffError in server/ has a sample here', () => {
    const files = readdirSync(join(ROOT, 'server'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const declared = files.flatMap((f) => [...readFileSync(join(ROOT, 'server', f), 'utf8').matchAll(/^export class (\w+) extends (?:AdaDiffError|FileError)/gm)].map((m) => m[1]));
    assert.ok(declared.length >= 9, `found only ${declared.join(', ')}`);
    assert.deepEqual(new Set(declared), new Set(samples.map((e) => e.constructor.name)));
  });

  test('each kind is its own, and the class name is the error name', () => {
    for (const e of samples) assert.equal(e.name, e.constructor.name);
    assert.deepEqual(
      samples.map(kindOf),
      ['model', 'policy', 'no-provider', 'asset', 'path', 'lock', 'cancelled', 'usage', 'pool', 'job', 'model'],
    );
    assert.equal(kindOf(new RangeError('steps must be an integer in 1..1000, got 0')), 'input');
    assert.equal(kindOf(Object.assign(new Error('aborted'), { name: 'AbortError' })), 'cancelled');
    assert.equal(kindOf(new TypeError('x is undefined')), 'internal');
    assert.equal(kindOf('a string'), 'internal');
  });

  test('an error crosses the worker channel as the class it was, with its fields', () => {
    for (const e of samples.filter((s) => !(s instanceof UsageError) && !(s instanceof ModelUnavailable))) {
      const back = fromWire(overIpc(toWire(e)));
      assert.ok(back instanceof (e.constructor as typeof Error), `${e.name} came back as ${back.constructor.name}`);
      assert.equal(back.message, e.message);
      assert.equal(back.name, e.name);
      assert.equal(kindOf(back), kindOf(e));
    }
    const model = fromWire(overIpc(toWire(samples[0]))) as ModelError;
    assert.deepEqual([model.file, model.problem], ['/m/unet/model.onnx', 'is not an ONNX model']);
    const providers = fromWire(overIpc(toWire(samples[2]))) as NoProviderError;
    assert.deepEqual(providers.tried, (samples[2] as NoProviderError).tried);
    assert.deepEqual(providers.loadErrors, ['bad graph']);
  });

  test('a RangeError stays one, and an internal error keeps its stack for the log', () => {
    const range = fromWire(overIpc(toWire(new RangeError('seed must be an integer in 0..4294967295, got -1'))));
    assert.ok(range instanceof RangeError);
    const bug = new TypeError("Cannot read properties of undefined (reading 'dims')");
    const back = fromWire(overIpc(toWire(bug)));
    assert.equal(back.name, 'TypeError');
    assert.equal(back.stack, bug.stack);
    assert.equal(kindOf(back), 'internal');
    assert.equal(toWire('thrown text').message, 'thrown text');
  });

  test('the language server answers a cancel with RequestCancelled and anything else with RequestFailed', () => {
    const logged: string[] = [];
    const log = (line: string) => logged.push(line);
    assert.equal(toResponseError(new CancelledError(), log).code, LSPErrorCodes.RequestCancelled);
    assert.equal(toResponseError(fromWire(overIpc(toWire(new CancelledError()))), log).code, LSPErrorCodes.RequestCancelled);
    for (const e of samples.filter((s) => kindOf(s) !== 'cancelled')) {
      const r = toResponseError(e, log);
      assert.equal(r.code, LSPErrorCodes.RequestFailed);
      assert.equal(r.message, e.message);
    }
    assert.deepEqual(logged, [], 'expected errors are not logged as bugs');
    toResponseError(new TypeError('boom'), log);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /unexpected error: TypeError: boom\n\s+at /);
    const passed = new ResponseError(LSPErrorCodes.ContentModified, 'changed');
    assert.equal(toResponseError(passed, log), passed);
  });
});
