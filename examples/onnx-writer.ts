/**
 * A tiny ONNX model writer over `onnx-proto` (protobufjs classes generated from onnx/onnx.proto),
 * enough for the example models: float32 initializers, the operators Gemm, MatMul, Add, Conv,
 * Relu, Softmax and ArgMax, opset 17, IR version 8, a symbolic batch dim.
 *
 * The output is deterministic: the same spec always encodes to the same bytes (protobufjs writes
 * fields in schema order; initializers go in as little-endian `raw_data`), so a committed model
 * can be checked by re-running its training script.
 *
 * @example
 * ```ts
 * const bytes = encodeModel({
 *   name: 'double',
 *   inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 2] }],
 *   outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 2] }],
 *   initializers: [floatInitializer('two', [1], [2])],
 *   nodes: [mul('x', 'two', 'y')],
 * });
 * ```
 */
import { DTYPE_CODES, type DType } from '@verity/protocol';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX IR version 8 (onnx 1.10, the schema `onnx-proto` 8.0.1 was generated from). */
export const IR_VERSION = 8;
/** Default-domain operator set the example models use. */
export const OPSET_VERSION = 17;

/** Element types the writer can declare: Verity's dtypes, whose codes are the `TensorProto.DataType` numbers. */
export const ELEM_TYPES = DTYPE_CODES;

/** An element type name. */
export type ElemType = DType;

/**
 * A graph input or output: a number is a fixed dim, a string a symbolic dim (`dim_param`),
 * `null` a dynamic dim without a name.
 */
export interface ValueSpec {
  name: string;
  elemType: ElemType;
  shape: (number | string | null)[];
  doc?: string;
}

/** A float32 constant of the graph (weights, biases). */
export interface InitializerSpec {
  name: string;
  dims: number[];
  /** Row-major values; each is rounded to float32. */
  data: ArrayLike<number>;
}

/** An attribute value: a float, an int, a list of ints, or a string. */
export type AttributeValue = { float: number } | { int: number } | { ints: number[] } | { string: string };

/** One operator node. */
export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attributes?: Record<string, AttributeValue>;
}

/** A whole model. */
export interface ModelSpec {
  /** Graph name. */
  name: string;
  doc?: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers: InitializerSpec[];
  nodes: NodeSpec[];
  /** `metadata_props`, written in the order given. */
  metadata?: Record<string, string>;
  /** Default `verity-examples`. */
  producerName?: string;
  /** Default `1`. */
  producerVersion?: string;
}

/**
 * A float32 initializer from plain numbers.
 *
 * @example
 * ```ts
 * floatInitializer('b', [3], [0.1, 0.2, 0.3]);
 * ```
 */
export function floatInitializer(name: string, dims: number[], data: ArrayLike<number>): InitializerSpec {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count)
    throw new Error(`initializer ${name}: dims [${dims}] need ${count} values, got ${data.length}`);
  return { name, dims: [...dims], data: Float32Array.from(data) };
}

/** `Gemm`: `out = a · b(ᵀ if transB) + c`. */
export function gemm(a: string, b: string, c: string, out: string, options: { transB?: boolean } = {}): NodeSpec {
  return {
    opType: 'Gemm',
    inputs: [a, b, c],
    outputs: [out],
    attributes: options.transB ? { transB: { int: 1 } } : {},
  };
}

/** `MatMul`: `out = a · b`. */
export function matMul(a: string, b: string, out: string): NodeSpec {
  return { opType: 'MatMul', inputs: [a, b], outputs: [out] };
}

/** `Add` (broadcasting): `out = a + b`. */
export function add(a: string, b: string, out: string): NodeSpec {
  return { opType: 'Add', inputs: [a, b], outputs: [out] };
}

/** `Mul` (broadcasting): `out = a × b`. */
export function mul(a: string, b: string, out: string): NodeSpec {
  return { opType: 'Mul', inputs: [a, b], outputs: [out] };
}

/**
 * `Conv` (2-D, `group` 1, no padding unless `pads` is given): `out = conv(x, w) + b`, with `w`
 * `[M, C, kH, kW]` and `b` `[M]`.
 */
export function conv(
  x: string,
  w: string,
  b: string,
  out: string,
  options: { strides?: [number, number]; pads?: [number, number, number, number] } = {},
): NodeSpec {
  return {
    opType: 'Conv',
    inputs: [x, w, b],
    outputs: [out],
    attributes: {
      ...(options.strides ? { strides: { ints: options.strides } } : {}),
      ...(options.pads ? { pads: { ints: options.pads } } : {}),
    },
  };
}

/** `Relu`: `out = max(x, 0)`. */
export function relu(x: string, out: string): NodeSpec {
  return { opType: 'Relu', inputs: [x], outputs: [out] };
}

/** `Softmax` along `axis` (default the last). */
export function softmax(x: string, out: string, axis = -1): NodeSpec {
  return { opType: 'Softmax', inputs: [x], outputs: [out], attributes: { axis: { int: axis } } };
}

/** `ArgMax` along `axis`; the output is int64, without the reduced axis unless `keepdims`. */
export function argMax(x: string, out: string, axis = -1, keepdims = false): NodeSpec {
  return {
    opType: 'ArgMax',
    inputs: [x],
    outputs: [out],
    attributes: { axis: { int: axis }, keepdims: { int: keepdims ? 1 : 0 } },
  };
}

function valueInfo(v: ValueSpec): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    ...(v.doc === undefined ? {} : { docString: v.doc }),
    type: {
      tensorType: {
        elemType: ELEM_TYPES[v.elemType],
        shape: {
          dim: v.shape.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function littleEndianFloat32(data: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
  return bytes;
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('int' in value) return { name, type: AttributeType.INT, i: value.int };
  if ('ints' in value) return { name, type: AttributeType.INTS, ints: value.ints };
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value.string) };
}

/**
 * The `.onnx` bytes of `spec`. Nodes are named `<opType>_<index>` unless named; attributes are
 * written sorted by name so that the bytes do not depend on object key order.
 *
 * @example
 * ```ts
 * writeFileSync('model.onnx', encodeModel(spec));
 * ```
 */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const model: onnxProto.onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    producerName: spec.producerName ?? 'verity-examples',
    producerVersion: spec.producerVersion ?? '1',
    graph: {
      name: spec.name,
      ...(spec.doc === undefined ? {} : { docString: spec.doc }),
      node: spec.nodes.map((n, i) => ({
        name: n.name ?? `${n.opType}_${i}`,
        opType: n.opType,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.keys(n.attributes ?? {})
          .sort()
          .map((key) => attribute(key, (n.attributes as Record<string, AttributeValue>)[key] as AttributeValue)),
      })),
      initializer: spec.initializers.map((t) => ({
        name: t.name,
        dims: t.dims,
        dataType: ELEM_TYPES.float32,
        rawData: littleEndianFloat32(t.data),
      })),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
    },
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  const problem = onnx.ModelProto.verify(model);
  if (problem !== null) throw new Error(`invalid ONNX model spec: ${problem}`);
  // protobufjs hands back a Node Buffer (a view into a shared pool) where it can: copy to a plain Uint8Array.
  return new Uint8Array(onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish());
}

/**
 * Parses `.onnx` bytes back into protobufjs objects (for tests and inspection).
 *
 * @example
 * ```ts
 * decodeModel(bytes).graph?.initializer?.length;
 * ```
 */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/**
 * The float32 values of initializer `name` of a decoded model (written as `raw_data` or `float_data`).
 *
 * @example
 * ```ts
 * const w1 = initializerValues(decodeModel(bytes), 'W1');
 * ```
 */
export function initializerValues(
  model: onnxProto.onnx.IModelProto,
  name: string,
): { dims: number[]; data: Float32Array } {
  const t = model.graph?.initializer?.find((x) => x.name === name);
  if (t === undefined || t.dataType !== ELEM_TYPES.float32) throw new Error(`no float32 initializer ${name}`);
  const dims = (t.dims ?? []).map((d) => Number(d));
  if (t.rawData && t.rawData.length > 0) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    const data = new Float32Array(t.rawData.byteLength / 4);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
    return { dims, data };
  }
  return { dims, data: Float32Array.from(t.floatData ?? []) };
}
