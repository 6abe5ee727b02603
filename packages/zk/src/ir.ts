/**
 * The small graph IR the ONNX importer produces and every later stage (float and fixed-point
 * evaluation, circuit generation) reads. It describes how one row (batch of one) flows through
 * the model; every tensor is a flat vector in row-major order with its shape alongside.
 */

/** A tensor of the graph: its ONNX name and its shape without the batch dim. */
export interface IrTensor {
  readonly id: number;
  /** The ONNX value name. */
  readonly name: string;
  /** Shape of one row (the batch dim, if the model has one, left out). */
  readonly shape: readonly number[];
  /** Number of elements (product of `shape`). */
  readonly size: number;
}

/**
 * `output = weights · input + bias`: Gemm, MatMul(+Add) and Conv all become this. `weights` is
 * `outSize × inSize`, row-major (row j holds the weights of output j).
 */
export interface LinearOp {
  readonly kind: 'linear';
  /** The ONNX node(s) this op came from, for messages and comments. */
  readonly node: string;
  readonly input: number;
  readonly output: number;
  readonly weights: Float64Array;
  readonly bias: Float64Array;
  /**
   * How many constants of the ONNX model it stands for (weight and bias initializer values):
   * not `weights.length`, since a convolution's matrix repeats its kernel.
   */
  readonly parameters: number;
}

/** `output = max(input, 0)` elementwise. */
export interface ReluOp {
  readonly kind: 'relu';
  readonly node: string;
  readonly input: number;
  readonly output: number;
}

/** Same data, another shape (Reshape, Flatten, Identity, Dropout at inference). */
export interface ReshapeOp {
  readonly kind: 'reshape';
  readonly node: string;
  readonly input: number;
  readonly output: number;
}

/** `output = a + b` elementwise, both activations of the same shape. */
export interface AddOp {
  readonly kind: 'add';
  readonly node: string;
  readonly inputs: readonly [number, number];
  readonly output: number;
}

/** `output = input + values` (a constant, already broadcast to the input's size). */
export interface AddConstOp {
  readonly kind: 'addConst';
  readonly node: string;
  readonly input: number;
  readonly output: number;
  readonly values: Float64Array;
  /** How many constants of the ONNX model it stands for (before broadcasting). */
  readonly parameters: number;
}

/** An operation inside the circuit. */
export type IrOp = LinearOp | ReluOp | ReshapeOp | AddOp | AddConstOp;

/**
 * A classification-head operation, computed by the verifier outside the circuit from a proved
 * tensor (or from another head output): Softmax, LogSoftmax or ArgMax along the last axis.
 */
export interface HeadOp {
  readonly kind: 'softmax' | 'logSoftmax' | 'argmax';
  readonly node: string;
  /** ONNX name of the input: a proved tensor or another head op's output. */
  readonly input: string;
  /** ONNX name of the output. */
  readonly output: string;
  /** ArgMax only: whether the output keeps the reduced axis (`[batch, 1]` instead of `[batch]`). */
  readonly keepdims: boolean;
}

/** One model, as the circuit sees it. */
export interface IrGraph {
  readonly name: string;
  /** The one graph input (float32), a public input of the circuit. */
  readonly input: IrTensor;
  /** All tensors; `tensors[id].id === id`. */
  readonly tensors: readonly IrTensor[];
  /** In evaluation order. */
  readonly ops: readonly IrOp[];
  /** The tensors the circuit exposes as public outputs, in this order. */
  readonly outputs: readonly number[];
  /** Head ops in evaluation order. */
  readonly head: readonly HeadOp[];
  /** Whether the ONNX input has a leading batch dim (symbolic or 1). */
  readonly batched: boolean;
}

/** The operators the importer accepts, as documented in the package README. */
export const SUPPORTED_OPS: readonly string[] = [
  'Gemm',
  'MatMul',
  'Add',
  'Sub',
  'Relu',
  'Conv',
  'Flatten',
  'Reshape',
  'Identity',
  'Dropout',
  'Constant',
  'Softmax',
  'LogSoftmax',
  'ArgMax',
];

/** The tensor with id `id` (ids are dense indexes). */
export function tensorOf(graph: IrGraph, id: number): IrTensor {
  const t = graph.tensors[id];
  if (t === undefined) throw new Error(`no tensor ${id}`);
  return t;
}

/** Inputs of an op. */
export function opInputs(op: IrOp): readonly number[] {
  return op.kind === 'add' ? op.inputs : [op.input];
}
