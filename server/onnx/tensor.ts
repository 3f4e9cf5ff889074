// Constant tensors for ONNX initializers and tensor attributes. Values are stored as the
// little-endian bytes ONNX's raw_data field holds, so one code path serves every dtype and the
// same bytes can go inline or into an external data file.

import { toHalfBits } from './float16';

/** Element types, spelled the way onnxruntime's Tensor.Type spells them. */
export type DType = 'float32' | 'float16' | 'float64' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int8: 1,
  uint8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
};

export interface TensorValue {
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Little-endian element bytes (ONNX raw_data layout). */
  readonly bytes: Uint8Array;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/**
 * A tensor from numbers (or bigints for int64). float16 values are rounded from the given
 * float values; pass `rawTensor` instead when you already hold half-precision bit patterns.
 */
export function tensor(dtype: DType, dims: readonly number[], values: ArrayLike<number> | ArrayLike<bigint>): TensorValue {
  checkDims(dims, values.length);
  const size = BYTES_PER_ELEMENT[dtype];
  const bytes = new Uint8Array(values.length * size);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const o = i * size;
    switch (dtype) {
      case 'float32': view.setFloat32(o, Number(v), true); break;
      case 'float64': view.setFloat64(o, Number(v), true); break;
      case 'float16': view.setUint16(o, toHalfBits(Number(v)), true); break;
      case 'int8': view.setInt8(o, Number(v)); break;
      case 'uint8': view.setUint8(o, Number(v)); break;
      case 'bool': view.setUint8(o, v ? 1 : 0); break;
      case 'int32': view.setInt32(o, Number(v), true); break;
      case 'int64': view.setBigInt64(o, typeof v === 'bigint' ? v : BigInt(Math.trunc(v)), true); break;
    }
  }
  return { dtype, dims: [...dims], bytes };
}

/** A tensor from bytes already in ONNX raw_data layout (e.g. Uint16Array half bits on a little-endian host). */
export function rawTensor(dtype: DType, dims: readonly number[], bytes: Uint8Array): TensorValue {
  const size = BYTES_PER_ELEMENT[dtype];
  if (bytes.length % size !== 0) throw new Error(`rawTensor: ${bytes.length} bytes is not a whole number of ${dtype}`);
  checkDims(dims, bytes.length / size);
  return { dtype, dims: [...dims], bytes };
}

/** A scalar (rank 0) tensor. */
export function scalar(dtype: DType, value: number | bigint): TensorValue {
  return tensor(dtype, [], [value] as ArrayLike<number> | ArrayLike<bigint>);
}

function checkDims(dims: readonly number[], length: number): void {
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`invalid dims [${dims.join(', ')}]`);
  if (elementCount(dims) !== length) {
    throw new Error(`dims [${dims.join(', ')}] hold ${elementCount(dims)} elements, got ${length}`);
  }
}
