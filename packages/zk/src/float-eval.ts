/**
 * Plain float64 evaluation of the IR (the reference the fixed-point circuit is measured against)
 * and the classification head, which the verifier applies outside the circuit.
 */
import { fail } from '@verity/protocol';
import type { HeadOp, IrGraph } from './ir.js';

/**
 * Every tensor's values for one input row, indexed by tensor id (float64 arithmetic over the
 * model's float32 weights).
 *
 * @example
 * ```ts
 * const values = evaluateFloat(graph, [5.1, 3.5, 1.4, 0.2]);
 * values[graph.outputs[0]]; // the logits
 * ```
 */
export function evaluateFloat(graph: IrGraph, input: ArrayLike<number>): Float64Array[] {
  if (input.length !== graph.input.size) {
    fail('TENSOR_SHAPE_MISMATCH', `the model takes ${graph.input.size} values per row, got ${input.length}`, {
      expected: graph.input.size,
      actual: input.length,
    });
  }
  const values: Float64Array[] = new Array(graph.tensors.length);
  values[graph.input.id] = Float64Array.from(input);
  const get = (id: number) => values[id] as Float64Array;
  for (const op of graph.ops) {
    switch (op.kind) {
      case 'linear': {
        const x = get(op.input);
        const n = op.bias.length;
        const k = x.length;
        const y = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let s = op.bias[j] as number;
          for (let i = 0; i < k; i++) s += (op.weights[j * k + i] as number) * (x[i] as number);
          y[j] = s;
        }
        values[op.output] = y;
        break;
      }
      case 'relu':
        values[op.output] = get(op.input).map((v) => (v > 0 ? v : 0));
        break;
      case 'reshape':
        values[op.output] = get(op.input);
        break;
      case 'add': {
        const b = get(op.inputs[1]);
        values[op.output] = get(op.inputs[0]).map((v, i) => v + (b[i] as number));
        break;
      }
      case 'addConst':
        values[op.output] = get(op.input).map((v, i) => v + (op.values[i] as number));
        break;
    }
  }
  return values;
}

/**
 * The head outputs (Softmax, LogSoftmax, ArgMax along the last axis) from the proved tensors'
 * values, by ONNX name. ArgMax gives the index of the first maximum (ONNX's default), as a
 * one-element array.
 *
 * @example
 * ```ts
 * applyHead(graph.head, { logits: [0.1, 2.3, -1] }); // { probabilities: [...], label: [1] }
 * ```
 */
export function applyHead(
  head: readonly HeadOp[],
  proved: Readonly<Record<string, ArrayLike<number>>>,
): Record<string, number[]> {
  const known = new Map<string, number[]>(Object.entries(proved).map(([k, v]) => [k, Array.from(v)]));
  const out: Record<string, number[]> = {};
  for (const h of head) {
    const x = known.get(h.input);
    if (x === undefined) fail('INVALID_ARGUMENT', `head input "${h.input}" is missing`, { tensor: h.input });
    const y = h.kind === 'argmax' ? [argMax(x)] : h.kind === 'softmax' ? softmax(x) : logSoftmax(x);
    known.set(h.output, y);
    out[h.output] = y;
  }
  return out;
}

/** Index of the first largest value. */
export function argMax(values: ArrayLike<number | bigint>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function softmax(x: readonly number[]): number[] {
  const max = Math.max(...x);
  const e = x.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function logSoftmax(x: readonly number[]): number[] {
  const max = Math.max(...x);
  const log = Math.log(x.reduce((s, v) => s + Math.exp(v - max), 0));
  return x.map((v) => v - max - log);
}
