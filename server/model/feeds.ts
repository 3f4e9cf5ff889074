// Tensors in and out of a model's sessions in the dtype each graph declares (fp16 exports take
// and give float16; ids are int32 or int64), so callers deal in Float32Array and plain numbers.

import * as ort from 'onnxruntime-node';
import { float16ToFloat32, float32ToFloat16 } from '../onnx/float16';

export function floatTensor(type: ort.Tensor.Type, data: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', float32ToFloat16(data), dims) : new ort.Tensor('float32', data, dims);
}

export function toFloat32(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float16') return float16ToFloat32(tensor.data as Uint16Array);
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  throw new Error(`expected a float tensor, got ${tensor.type}`);
}

export function intTensor(type: ort.Tensor.Type, values: readonly number[], dims: readonly number[]): ort.Tensor {
  return type === 'int64'
    ? new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(Math.round(v))), dims)
    : new ort.Tensor('int32', Int32Array.from(values, (v) => Math.round(v)), dims);
}

export function checkLength(what: string, data: ArrayLike<number>, dims: readonly number[]): void {
  const expected = dims.reduce((n, d) => n * d, 1);
  if (data.length !== expected) throw new RangeError(`${what}: dims [${dims.join(', ')}] need ${expected} values, got ${data.length}`);
}
