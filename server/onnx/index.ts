// ONNX model writing: a typed graph builder (with external-data support) and fp16 helpers.
export { GraphBuilder, attr } from './graph';
export type { AttrValue, Attrs, Dim, ExternalDataOptions, ExternalLayout, ModelOptions, SaveOptions, SavedModel } from './graph';
export { tensor, rawTensor, scalar, elementCount, ONNX_DTYPE } from './tensor';
export type { DType, TensorValue } from './tensor';
export { float32ToFloat16, float16ToFloat32, toHalfBits, fromHalfBits } from './float16';
