// A small typed builder for ONNX models on top of onnx-proto's generated protobuf classes.
// Used to export the AdaDiff step policy and to write the test fixture models. It writes the
// graph as given (no shape inference, no checker): onnxruntime validates on load.

import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { DType, ONNX_DTYPE, TensorValue } from './tensor';

/** A dimension: fixed size, symbolic name (e.g. 'batch'), or null for unknown. */
export type Dim = number | string | null;

export type AttrValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'tensor'; readonly value: TensorValue };

/** Attribute constructors: ONNX distinguishes int from float attributes, JS numbers do not. */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: TensorValue): AttrValue => ({ kind: 'tensor', value }),
};

export type Attrs = Readonly<Record<string, AttrValue>>;

export interface ModelOptions {
  /** Default-domain opset (17 unless told: LayerNormalization is there, onnxruntime 1.16+ runs it). */
  opset?: number;
  /** Extra opsets, e.g. { 'com.microsoft': 1 } for contrib ops. */
  extraOpsets?: Readonly<Record<string, number>>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Free-form metadata_props (onnxruntime exposes them as custom metadata). */
  metadata?: Readonly<Record<string, string>>;
}

export interface ExternalDataOptions {
  /** File name beside the model, as real exporters use: 'model.onnx_data' (optimum) or 'weights.pb'. */
  location: string;
  /** Initializers smaller than this many bytes stay inline (onnx's own default is 1024). */
  threshold?: number;
  /** Byte alignment of each tensor's offset in the data file. */
  align?: number;
}

export interface SaveOptions extends ModelOptions {
  externalData?: ExternalDataOptions;
}

export interface SavedModel {
  modelPath: string;
  modelBytes: number;
  /** Absent when every initializer stayed inline. */
  externalDataPath?: string;
  externalBytes: number;
}

interface NodeDef {
  opType: string;
  domain: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs: Attrs;
}

interface ValueDef {
  name: string;
  dtype: DType;
  shape: readonly Dim[];
}

/**
 * Builds one graph. Names are the graph's value names; `op` and `node` invent fresh output names
 * unless given some, so expressions chain: `b.op('Tanh', [b.op('MatMul', [x, w])])`.
 * Pass '' as an input to skip an optional input, as ONNX does.
 */
export class GraphBuilder {
  private readonly inputs: ValueDef[] = [];
  private readonly outputs: ValueDef[] = [];
  private readonly initializers = new Map<string, TensorValue>();
  private readonly nodes: NodeDef[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly name = 'graph') {}

  input(name: string, dtype: DType, shape: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push({ name, dtype, shape: [...shape] });
    return name;
  }

  /** Declares a graph output; the value must be produced by a node, an input or an initializer. */
  output(name: string, dtype: DType, shape: readonly Dim[]): string {
    if (!this.names.has(name)) throw new Error(`output '${name}' is not produced by the graph`);
    if (this.outputs.some((o) => o.name === name)) throw new Error(`output '${name}' declared twice`);
    this.outputs.push({ name, dtype, shape: [...shape] });
    return name;
  }

  initializer(name: string, value: TensorValue): string {
    this.claim(name);
    this.initializers.set(name, value);
    return name;
  }

  /** An initializer under a fresh name. */
  constant(value: TensorValue, hint = 'const'): string {
    return this.initializer(this.fresh(hint), value);
  }

  /**
   * Adds a node and returns its output names. `outputs` is either the names to use or how many
   * fresh names to make (default 1).
   */
  node(
    opType: string,
    inputs: readonly string[],
    attrs: Attrs = {},
    opts: { outputs?: number | readonly string[]; name?: string; domain?: string } = {},
  ): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.names.has(i)) throw new Error(`${opType}: input '${i}' is not defined yet`);
    }
    const spec = opts.outputs ?? 1;
    const outputs = typeof spec === 'number' ? Array.from({ length: spec }, () => this.fresh(opType.toLowerCase())) : [...spec];
    for (const o of outputs) this.claim(o);
    const name = opts.name ?? `${opType}_${this.nodes.length}`;
    this.nodes.push({ opType, domain: opts.domain ?? '', name, inputs: [...inputs], outputs, attrs });
    return outputs;
  }

  /** A single-output node; `output` names its result, otherwise a fresh name is made. */
  op(opType: string, inputs: readonly string[], attrs: Attrs = {}, output?: string): string {
    return this.node(opType, inputs, attrs, { outputs: output === undefined ? 1 : [output] })[0];
  }

  /** The ModelProto; with `external`, big initializers point into that data file instead of holding bytes. */
  toModelProto(opts: ModelOptions = {}, external?: ExternalLayout): onnx.ModelProto {
    if (this.outputs.length === 0) throw new Error(`graph '${this.name}' has no outputs`);
    const opset = opts.opset ?? 17;
    const opsetImport = [{ domain: '', version: opset }];
    for (const [domain, version] of Object.entries(opts.extraOpsets ?? {})) opsetImport.push({ domain, version });
    return onnx.ModelProto.create({
      irVersion: irVersionFor(opset),
      opsetImport,
      producerName: opts.producerName ?? 'adadiff',
      producerVersion: opts.producerVersion ?? '',
      docString: opts.docString ?? '',
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes.map(nodeProto),
        initializer: [...this.initializers].map(([name, t]) => tensorProto(name, t, external?.get(name))),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
  }

  /** Serialized model with every initializer inline (fine below protobuf's 2 GiB limit). */
  toBytes(opts: ModelOptions = {}): Uint8Array {
    return onnx.ModelProto.encode(this.toModelProto(opts)).finish();
  }

  /**
   * Writes the model to `modelPath`, optionally with initializers in an external data file
   * beside it (ONNX external-data convention: data_location EXTERNAL, external_data entries
   * location/offset/length). Files are written under temporary names and renamed into place.
   */
  async save(modelPath: string, opts: SaveOptions = {}): Promise<SavedModel> {
    const dir = path.dirname(modelPath);
    await mkdir(dir, { recursive: true });
    const ext = opts.externalData;
    const layout = ext ? this.layoutExternal(ext) : undefined;
    const model = onnx.ModelProto.encode(this.toModelProto(opts, layout?.entries)).finish();
    const tmpSuffix = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const written: string[] = [];
    try {
      let externalDataPath: string | undefined;
      if (ext && layout && layout.entries.size > 0) {
        externalDataPath = path.join(dir, ext.location);
        await writeFile(externalDataPath + tmpSuffix, layout.data);
        written.push(externalDataPath);
      }
      await writeFile(modelPath + tmpSuffix, model);
      written.push(modelPath);
      for (const p of written) await rename(p + tmpSuffix, p);
      return { modelPath, modelBytes: model.length, externalDataPath, externalBytes: externalDataPath ? layout!.data.length : 0 };
    } catch (err) {
      await Promise.all(written.map((p) => rm(p + tmpSuffix, { force: true })));
      throw err;
    }
  }

  private layoutExternal(ext: ExternalDataOptions): { entries: ExternalLayout; data: Uint8Array } {
    if (ext.location !== path.basename(ext.location) || ext.location === '') {
      throw new Error(`external data location must be a plain file name, got '${ext.location}'`);
    }
    const threshold = ext.threshold ?? 1024;
    const align = ext.align ?? 64;
    const entries = new Map<string, { location: string; offset: number; length: number }>();
    let size = 0;
    for (const [name, t] of this.initializers) {
      if (t.bytes.length < threshold) continue;
      const offset = Math.ceil(size / align) * align;
      entries.set(name, { location: ext.location, offset, length: t.bytes.length });
      size = offset + t.bytes.length;
    }
    const data = new Uint8Array(size);
    for (const [name, e] of entries) data.set(this.initializers.get(name)!.bytes, e.offset);
    return { entries, data };
  }

  private claim(name: string): void {
    if (name === '') throw new Error('value names must not be empty');
    if (this.names.has(name)) throw new Error(`value '${name}' is defined twice`);
    this.names.add(name);
  }

  /** An unused value name; the caller claims it. */
  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }
}

/** Where each externalized initializer lives, by initializer name. */
export type ExternalLayout = ReadonlyMap<string, { location: string; offset: number; length: number }>;

/** The IR version that introduced the opset (onnx/docs/Versioning.md), so older runtimes still load it. */
function irVersionFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function nodeProto(n: NodeDef): onnx.INodeProto {
  return {
    opType: n.opType,
    domain: n.domain,
    name: n.name,
    input: [...n.inputs],
    output: [...n.outputs],
    attribute: Object.entries(n.attrs).map(([name, a]) => attributeProto(name, a)),
  };
}

function attributeProto(name: string, a: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int': return { name, type: T.INT, i: checkInt(name, a.value) };
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value.map((v) => checkInt(name, v)) };
    case 'floats': return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string': return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor': return { name, type: T.TENSOR, t: tensorProto('', a.value) };
  }
}

function checkInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v)) throw new Error(`attribute '${name}': ${v} is not an integer`);
  return v;
}

function tensorProto(name: string, t: TensorValue, external?: { location: string; offset: number; length: number }): onnx.ITensorProto {
  const base = { name, dims: [...t.dims], dataType: ONNX_DTYPE[t.dtype] };
  if (!external) return { ...base, rawData: t.bytes };
  return {
    ...base,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: external.location },
      { key: 'offset', value: String(external.offset) },
      { key: 'length', value: String(external.length) },
    ],
  };
}

function valueInfo(v: ValueDef): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[v.dtype],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) },
      },
    },
  };
}
