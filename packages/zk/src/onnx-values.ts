/**
 * Reading ONNX values: constants (initializers, `Constant` nodes) as float64, attributes, numpy
 * broadcasting, and the per-node problem the importer collects.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;

/** A constant (initializer or `Constant` node), with its values as float64. */
export interface Constant {
  dims: number[];
  data: Float64Array;
  /** Why the constant cannot be used (unsupported dtype, wrong length…), reported where it is read. */
  error?: string;
}

/** A problem with one node: thrown inside a handler, collected by the importer. */
export class NodeProblem extends Error {}

export function problem(reason: string): never {
  throw new NodeProblem(reason);
}

/** Numpy-style broadcasting of a constant to `shape`; undefined when it does not broadcast. */
export function broadcastTo(c: Constant, shape: readonly number[]): Float64Array | undefined {
  if (c.dims.length > shape.length) {
    // Leading 1s may be dropped.
    const extra = c.dims.slice(0, c.dims.length - shape.length);
    if (extra.some((d) => d !== 1)) return undefined;
  }
  const dims = c.dims.slice(Math.max(0, c.dims.length - shape.length));
  const padded = [...new Array<number>(shape.length - dims.length).fill(1), ...dims];
  if (padded.some((d, i) => d !== 1 && d !== shape[i])) return undefined;
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(size);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < size; flat++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++)
      src = src * (padded[d] as number) + ((padded[d] as number) === 1 ? 0 : (idx[d] as number));
    out[flat] = c.data[src] as number;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      if ((idx[d] as number) < (shape[d] as number)) break;
      idx[d] = 0;
    }
  }
  return out;
}

export function attributesOf(list: AttributeProto[]): Map<string, AttributeProto> {
  return new Map(list.filter((a) => a.name).map((a) => [a.name as string, a]));
}

export function intAttr(attrs: Map<string, AttributeProto>, name: string, fallback: number): number {
  const a = attrs.get(name);
  return a === undefined ? fallback : toInt(a.i);
}

export function floatAttr(attrs: Map<string, AttributeProto>, name: string, fallback: number): number {
  const a = attrs.get(name);
  return a === undefined ? fallback : (a.f ?? 0);
}

export function intsAttr(attrs: Map<string, AttributeProto>, name: string, fallback: number[]): number[] {
  const a = attrs.get(name);
  return a === undefined ? fallback : (a.ints ?? []).map(toInt);
}

export function stringAttr(attrs: Map<string, AttributeProto>, name: string, fallback: string): string {
  const a = attrs.get(name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}

/** protobufjs gives int64 fields as `Long` objects (or numbers); both as a safe integer. */
export function toInt(v: unknown): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : Number(String(v));
  if (!Number.isSafeInteger(n)) problem(`integer ${String(v)} is out of range`);
  return n;
}

/** The values of a float32, float64 or int64 constant; never throws (problems go in `error`). */
export function constantOf(t: TensorProto): Constant {
  const { DataType } = onnx.TensorProto;
  let dims: number[] = [];
  try {
    dims = (t.dims ?? []).map(toInt);
    const count = dims.reduce((a, b) => a * b, 1);
    if ((t.dataLocation ?? 0) !== 0)
      return { dims, data: new Float64Array(0), error: 'external data is not supported' };
    const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : undefined;
    const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
    const fromRaw = (width: number, read: (offset: number) => number) =>
      Float64Array.from({ length: Math.floor((raw as Uint8Array).byteLength / width) }, (_, i) => read(i * width));
    let data: Float64Array;
    if (t.dataType === DataType.FLOAT) {
      data = view ? fromRaw(4, (o) => view.getFloat32(o, true)) : Float64Array.from(t.floatData ?? []);
    } else if (t.dataType === DataType.DOUBLE) {
      data = view ? fromRaw(8, (o) => view.getFloat64(o, true)) : Float64Array.from(t.doubleData ?? []);
    } else if (t.dataType === DataType.INT64) {
      data = view
        ? fromRaw(8, (o) => Number(view.getBigInt64(o, true)))
        : Float64Array.from((t.int64Data ?? []).map(toInt));
    } else {
      return {
        dims,
        data: new Float64Array(0),
        error: `data type ${t.dataType} is not supported (float32, float64, int64)`,
      };
    }
    if (data.length !== count) {
      return { dims, data, error: `dims [${dims}] need ${count} values, the tensor holds ${data.length}` };
    }
    return { dims, data };
  } catch (e) {
    return { dims, data: new Float64Array(0), error: e instanceof Error ? e.message : String(e) };
  }
}
