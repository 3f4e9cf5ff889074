// How many bytes of an ONNX file's weights are of each element type, read from the protobuf wire
// format without loading the file: a 1.7 GB UNet with its weights inline is walked by seeking past
// each field's bytes, so the check costs a few kilobytes of reads, not the file's size in memory.
// (protobufjs and onnx-proto decode whole buffers; this walks only the fields it needs.)
//
// Only the graph's initializers count (optimum's and diffusers' exports keep every weight there);
// an initializer in external data counts by its dims, since its bytes live in another file.
import { promises as fs } from 'node:fs';
import { ONNX_DTYPE, type DType } from './tensor';

export interface WeightTypes {
  /** Bytes per element type name ('float32', 'float16', ...; 'type N' for codes without a name here). */
  readonly bytes: Readonly<Record<string, number>>;
  readonly total: number;
}

const NAME_OF = new Map<number, DType>(Object.entries(ONNX_DTYPE).map(([name, code]) => [code, name as DType]));
const ELEMENT_BYTES: Readonly<Record<number, number>> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

// Field numbers: ModelProto.graph 7; GraphProto.initializer 5; TensorProto.dims 1, data_type 2, raw_data 9, data_location 14.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR = { dims: 1, dataType: 2, rawData: 9, dataLocation: 14 } as const;

/** Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
type Field = { number: number; wire: number; value: number; start: number; end: number };

class FileWalker {
  private buffer = Buffer.alloc(0);
  private bufferAt = 0;
  constructor(
    private readonly handle: fs.FileHandle,
    readonly size: number,
  ) {}

  /** Makes the buffer hold [pos, pos + 10) (or up to the end of the file): a varint's longest span, read in one call. */
  private async cover(pos: number): Promise<void> {
    const end = Math.min(pos + 10, this.size);
    if (pos >= this.bufferAt && end <= this.bufferAt + this.buffer.length) return;
    if (pos >= this.size) throw new Error(`truncated at byte ${pos}`);
    const chunk = Buffer.alloc(Math.min(16 * 1024, this.size - pos));
    const { bytesRead } = await this.handle.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) throw new Error(`truncated at byte ${pos}`);
    this.buffer = chunk.subarray(0, bytesRead);
    this.bufferAt = pos;
  }

  /** A varint at pos: its value (exact up to 2^53, beyond any file offset here) and the position after it. */
  async varint(pos: number): Promise<[number, number]> {
    await this.cover(pos);
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const at = pos - this.bufferAt;
      if (at >= this.buffer.length) throw new Error(`truncated at byte ${pos}`);
      const b = this.buffer[at];
      pos++;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, pos];
      scale *= 128;
    }
    throw new Error(`malformed varint before byte ${pos}`);
  }

  /** The fields of the message in [start, end), with their values (varints) or byte ranges (length-delimited). */
  async *fields(start: number, end: number): AsyncGenerator<Field> {
    let pos = start;
    while (pos < end) {
      const [tag, afterTag] = await this.varint(pos);
      const number = Math.floor(tag / 8);
      const wire = tag % 8;
      // Field 0 does not exist: zeros (a sparse or padded tail) or garbage, not a message to walk byte by byte.
      if (number === 0) throw new Error(`no field at byte ${pos} (field number 0)`);
      let value = 0;
      let next: number;
      if (wire === 0) [value, next] = await this.varint(afterTag);
      else if (wire === 1) next = afterTag + 8;
      else if (wire === 5) next = afterTag + 4;
      else if (wire === 2) {
        const [length, afterLength] = await this.varint(afterTag);
        value = length;
        next = afterLength + length;
        if (next > end) throw new Error(`field ${number} runs past its message (byte ${next} of ${end})`);
        yield { number, wire, value, start: afterLength, end: next };
        pos = next;
        continue;
      } else throw new Error(`unknown wire type ${wire} at byte ${pos}`);
      yield { number, wire, value, start: afterTag, end: next };
      pos = next;
    }
  }
}

async function tensorBytes(walker: FileWalker, start: number, end: number): Promise<{ type: number; bytes: number }> {
  let type = 0;
  let raw: number | undefined;
  let external = false;
  const dims: number[] = [];
  for await (const f of walker.fields(start, end)) {
    if (f.number === TENSOR.dataType && f.wire === 0) type = f.value;
    else if (f.number === TENSOR.dims && f.wire === 0) dims.push(f.value);
    else if (f.number === TENSOR.dims && f.wire === 2) {
      for (let p = f.start; p < f.end; ) {
        const [d, after] = await walker.varint(p);
        dims.push(d);
        p = after;
      }
    } else if (f.number === TENSOR.rawData && f.wire === 2) raw = f.value;
    else if (f.number === TENSOR.dataLocation && f.wire === 0) external = f.value === 1;
  }
  const elements = dims.reduce((a, b) => a * b, 1);
  // Typed fields (float_data, int64_data, ...) are rare for weights and packed per the type: the
  // message's length stands in for them.
  const bytes = external ? elements * (ELEMENT_BYTES[type] ?? 4) : (raw ?? end - start);
  return { type, bytes };
}

/** Initializer bytes of `file` by element type. Throws with the byte where the wire format breaks. */
export async function weightTypes(file: string): Promise<WeightTypes> {
  const handle = await fs.open(file, 'r');
  try {
    const walker = new FileWalker(handle, (await handle.stat()).size);
    const bytes: Record<string, number> = {};
    let total = 0;
    try {
      for await (const model of walker.fields(0, walker.size)) {
        if (model.number !== MODEL_GRAPH || model.wire !== 2) continue;
        for await (const graph of walker.fields(model.start, model.end)) {
          if (graph.number !== GRAPH_INITIALIZER || graph.wire !== 2) continue;
          const t = await tensorBytes(walker, graph.start, graph.end);
          const name = NAME_OF.get(t.type) ?? `type ${t.type}`;
          bytes[name] = (bytes[name] ?? 0) + t.bytes;
          total += t.bytes;
        }
      }
    } catch (error) {
      throw new Error(`${file} is not a readable ONNX model: ${(error as Error).message}`);
    }
    return { bytes, total };
  } finally {
    await handle.close();
  }
}
