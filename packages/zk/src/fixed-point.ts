/**
 * Fixed-point arithmetic of the circuits (README "Fixed point"): a real value v is the integer
 * round(v · 2^s), s = `fracBits`. Weights are at scale 2^s, biases at 2^2s (the scale of the
 * products they are added to); a linear layer's accumulator is rescaled back to 2^s by
 * round(acc / 2^s). Every rescaled value and every ReLU input must lie in
 * [−2^(b−1), 2^(b−1)), b = `valueBits`: the circuit range-checks exactly that.
 *
 * Rounding is always half up (toward +∞ on ties): round(x) = ⌊x + 1/2⌋, for quantizing floats and
 * for rescaling (⌊(acc + 2^(s−1)) / 2^s⌋), so that this evaluator and the circuit agree bit for bit.
 */
import { fail, VerityError } from '@verity/protocol';
import { bitLength, FIELD_PRIME, floorDiv } from './field.js';
import { evaluateFloat } from './float-eval.js';
import type { AddConstOp, AddOp, IrGraph, LinearOp, ReluOp, ReshapeOp } from './ir.js';

/**
 * The two numbers that, with the model bytes, fix the circuit: record them to rebuild it.
 */
export interface FixedPointParams {
  /** s: values are integers at scale 2^s. */
  fracBits: number;
  /** b: range-checked values lie in [−2^(b−1), 2^(b−1)) (integers, i.e. ±2^(b−1−s) in real terms). */
  valueBits: number;
}

/** How {@link chooseFixedPoint} picks the scale. */
export interface ScaleOptions {
  /** Upper bound on s (each fractional bit costs one constraint per neuron). Default 16. */
  maxFracBits?: number;
  /** Lower bound on s: below it the model is rejected as too imprecise. Default 4. */
  minFracBits?: number;
  /** Extra integer bits beyond the largest value seen on the samples (2^3 = 8× headroom). Default 3. */
  headroomBits?: number;
  /** Upper bound on b. Default 64. */
  maxValueBits?: number;
}

/** What {@link chooseFixedPoint} saw and chose. */
export interface ScaleChoice {
  params: FixedPointParams;
  /** The largest |value| of any tensor (input, layer outputs) over the samples, in real terms. */
  maxAbsValue: number;
  /** Integer bits that value needs: the smallest i ≥ 0 with 2^i ≥ maxAbsValue. */
  intBits: number;
  headroomBits: number;
}

/** A linear op with integer weights (scale 2^s, `outSize × inSize` row-major) and biases (scale 2^2s). */
export interface FixedLinear {
  readonly kind: 'linear';
  readonly op: LinearOp;
  readonly weights: readonly bigint[];
  readonly bias: readonly bigint[];
}

/** An op of the fixed-point graph: linear and addConst carry integer constants. */
export type FixedOp =
  | FixedLinear
  | { readonly kind: 'addConst'; readonly op: AddConstOp; readonly values: readonly bigint[] }
  | { readonly kind: 'relu'; readonly op: ReluOp }
  | { readonly kind: 'reshape'; readonly op: ReshapeOp }
  | { readonly kind: 'add'; readonly op: AddOp };

/** The graph with every constant quantized, ready for evaluation and circuit generation. */
export interface FixedGraph {
  readonly graph: IrGraph;
  readonly params: FixedPointParams;
  readonly ops: readonly FixedOp[];
  /** Per tensor id, the largest |integer| it can hold given range-checked inputs. */
  readonly bounds: readonly bigint[];
  /** Bits of the largest possible linear accumulator (must stay far below the field's 253). */
  readonly accumulatorBits: number;
}

/** The field is ~2^253.6; keeping every integer below 2^250 in magnitude leaves ample margin. */
const FIELD_SAFE_BITS = 250;

/**
 * round(x · 2^bits), half up, as a bigint (exact: x · 2^bits is exact in float64).
 *
 * @example
 * ```ts
 * quantize(0.75, 2); // 3n
 * quantize(-0.125, 2); // 0n (−0.5 rounds up)
 * ```
 */
export function quantize(x: number, bits: number): bigint {
  if (!Number.isFinite(x)) fail('TENSOR_DATA_INVALID', 'cannot quantize a non-finite value', { value: String(x) });
  const v = x * 2 ** bits;
  const f = Math.floor(v);
  return BigInt(f) + (v - f >= 0.5 ? 1n : 0n);
}

/** v / 2^bits as a float. */
export function dequantize(v: bigint, bits: number): number {
  return Number(v) / 2 ** bits;
}

/** round(acc / 2^s), half up: what the `Rescale` gadget computes. */
export function rescale(acc: bigint, fracBits: number): bigint {
  return floorDiv(acc + (1n << BigInt(fracBits - 1)), 1n << BigInt(fracBits));
}

/**
 * Picks the fixed-point parameters from sample inputs: b covers the largest value any tensor
 * reaches on the samples with `headroomBits` to spare, s is as large as allowed.
 *
 * @example
 * ```ts
 * chooseFixedPoint(graph, samples).params; // { fracBits: 16, valueBits: 25 }
 * ```
 */
export function chooseFixedPoint(
  graph: IrGraph,
  samples: readonly ArrayLike<number>[],
  options: ScaleOptions = {},
): ScaleChoice {
  const maxFracBits = options.maxFracBits ?? 16;
  const minFracBits = options.minFracBits ?? 4;
  const headroomBits = options.headroomBits ?? 3;
  const maxValueBits = options.maxValueBits ?? 64;
  for (const [k, v] of Object.entries({ maxFracBits, minFracBits, headroomBits, maxValueBits })) {
    if (!Number.isSafeInteger(v) || v < 0 || v > 200) {
      fail('INVALID_ARGUMENT', `${k} must be an integer in [0, 200]`, { [k]: v });
    }
  }
  if (samples.length === 0) fail('INVALID_ARGUMENT', 'choosing the scale needs at least one sample input', {});
  let maxAbsValue = 0;
  for (const sample of samples) {
    for (const values of evaluateFloat(graph, sample)) {
      if (values === undefined) continue;
      for (const v of values) {
        if (!Number.isFinite(v)) fail('TENSOR_DATA_INVALID', 'a sample gives a non-finite value', {});
        maxAbsValue = Math.max(maxAbsValue, Math.abs(v));
      }
    }
  }
  let intBits = 0;
  while (2 ** intBits < maxAbsValue) intBits++;
  const fracBits = Math.min(maxFracBits, maxValueBits - 1 - headroomBits - intBits);
  if (fracBits < Math.max(1, minFracBits)) {
    fail('INVALID_ARGUMENT', `values up to ${maxAbsValue} leave fewer than ${minFracBits} fractional bits`, {
      maxAbsValue,
      maxValueBits,
      headroomBits,
    });
  }
  return { params: { fracBits, valueBits: 1 + intBits + headroomBits + fracBits }, maxAbsValue, intBits, headroomBits };
}

/**
 * Quantizes the graph's constants and checks that no integer the circuit handles can wrap around
 * the field (the soundness argument of the gadgets needs that).
 *
 * @example
 * ```ts
 * const fixed = quantizeGraph(graph, { fracBits: 16, valueBits: 25 });
 * ```
 */
export function quantizeGraph(graph: IrGraph, params: FixedPointParams): FixedGraph {
  const { fracBits: s, valueBits: b } = params;
  if (!Number.isSafeInteger(s) || s < 1 || !Number.isSafeInteger(b) || b < 2 || s + b > 240) {
    fail('INVALID_ARGUMENT', 'fracBits must be ≥ 1, valueBits ≥ 2 and their sum ≤ 240', { fracBits: s, valueBits: b });
  }
  const limit = 1n << BigInt(b - 1);
  const bounds: bigint[] = new Array(graph.tensors.length).fill(0n);
  bounds[graph.input.id] = limit;
  let accBound = 0n;
  const ops: FixedOp[] = graph.ops.map((op): FixedOp => {
    switch (op.kind) {
      case 'linear': {
        const weights = Array.from(op.weights, (w) => quantize(w, s));
        const bias = Array.from(op.bias, (v) => quantize(v, 2 * s));
        const k = weights.length / bias.length;
        const inBound = bounds[op.input] as bigint;
        for (let j = 0; j < bias.length; j++) {
          let acc = abs(bias[j] as bigint);
          for (let i = 0; i < k; i++) acc += abs(weights[j * k + i] as bigint) * inBound;
          if (acc > accBound) accBound = acc;
        }
        bounds[op.output] = limit;
        return { kind: 'linear', op, weights, bias };
      }
      case 'addConst': {
        const values = Array.from(op.values, (v) => quantize(v, s));
        bounds[op.output] = (bounds[op.input] as bigint) + values.reduce((m, v) => (abs(v) > m ? abs(v) : m), 0n);
        return { kind: 'addConst', op, values };
      }
      case 'add':
        bounds[op.output] = (bounds[op.inputs[0]] as bigint) + (bounds[op.inputs[1]] as bigint);
        return { kind: 'add', op };
      case 'relu':
        bounds[op.output] = bounds[op.input] as bigint;
        return { kind: 'relu', op };
      case 'reshape':
        bounds[op.output] = bounds[op.input] as bigint;
        return { kind: 'reshape', op };
      default:
        return assertNever(op);
    }
  });
  const largest = bounds.reduce((m, v) => (v > m ? v : m), accBound);
  const accumulatorBits = bitLength(accBound);
  if (bitLength(largest) + s + 1 > FIELD_SAFE_BITS || FIELD_PRIME <= largest) {
    fail('INVALID_ARGUMENT', 'the model’s integers could wrap around the field at this scale', {
      accumulatorBits,
      limitBits: FIELD_SAFE_BITS,
    });
  }
  return { graph, params, ops, bounds, accumulatorBits };
}

/**
 * Quantizes one input row (round(x · 2^s)) and checks it is in range.
 *
 * @example
 * ```ts
 * quantizeInput(fixed, [5.1, 3.5, 1.4, 0.2]); // [334234n, …]
 * ```
 */
export function quantizeInput(fixed: FixedGraph, input: ArrayLike<number>): bigint[] {
  const { size } = fixed.graph.input;
  if (input.length !== size) {
    fail('TENSOR_SHAPE_MISMATCH', `the model takes ${size} values per row, got ${input.length}`, {
      expected: size,
      actual: input.length,
    });
  }
  const values = Array.from(input, (x) => quantize(x, fixed.params.fracBits));
  checkRange(fixed, values, fixed.graph.input.name);
  return values;
}

/**
 * The integer value of every tensor for one quantized input row, by tensor id: exactly what the
 * circuit's witness holds. Throws `INVALID_ARGUMENT` (with the tensor, index and value) when a
 * range-checked value leaves [−2^(b−1), 2^(b−1)): no proof exists for such an input.
 *
 * @example
 * ```ts
 * const values = evaluateFixed(fixed, quantizeInput(fixed, row));
 * values[fixed.graph.outputs[0]]; // the logits, at scale 2^s
 * ```
 */
export function evaluateFixed(fixed: FixedGraph, input: readonly bigint[]): bigint[][] {
  const { graph } = fixed;
  const s = fixed.params.fracBits;
  if (input.length !== graph.input.size) {
    fail('TENSOR_SHAPE_MISMATCH', `the model takes ${graph.input.size} values per row, got ${input.length}`, {
      expected: graph.input.size,
      actual: input.length,
    });
  }
  checkRange(fixed, input, graph.input.name);
  const values: bigint[][] = new Array(graph.tensors.length);
  values[graph.input.id] = [...input];
  const get = (id: number) => values[id] as bigint[];
  for (const f of fixed.ops) {
    switch (f.kind) {
      case 'linear': {
        const op = f.op;
        const x = get(op.input);
        const n = f.bias.length;
        const k = x.length;
        const y: bigint[] = new Array(n);
        for (let j = 0; j < n; j++) {
          let acc = f.bias[j] as bigint;
          for (let i = 0; i < k; i++) acc += (f.weights[j * k + i] as bigint) * (x[i] as bigint);
          y[j] = rescale(acc, s);
        }
        checkRange(fixed, y, graph.tensors[op.output]?.name ?? '');
        values[op.output] = y;
        break;
      }
      case 'relu': {
        const x = get(f.op.input);
        checkRange(fixed, x, `input of ${f.op.node}`);
        values[f.op.output] = x.map((v) => (v > 0n ? v : 0n));
        break;
      }
      case 'reshape':
        values[f.op.output] = get(f.op.input);
        break;
      case 'add': {
        const [a, b] = f.op.inputs;
        const y = get(b);
        values[f.op.output] = get(a).map((v, i) => v + (y[i] as bigint));
        break;
      }
      case 'addConst':
        values[f.op.output] = get(f.op.input).map((v, i) => v + (f.values[i] as bigint));
        break;
    }
  }
  return values;
}

function checkRange(fixed: FixedGraph, values: readonly bigint[], tensor: string): void {
  const limit = 1n << BigInt(fixed.params.valueBits - 1);
  const index = values.findIndex((v) => v < -limit || v >= limit);
  if (index >= 0) {
    throw new VerityError(
      'INVALID_ARGUMENT',
      `value out of the circuit's range in "${tensor}": the input is too far from the samples the scale was chosen from`,
      {
        details: {
          tensor,
          index,
          value: (values[index] as bigint).toString(),
          limit: limit.toString(),
          fracBits: fixed.params.fracBits,
          valueBits: fixed.params.valueBits,
        },
      },
    );
  }
}

function assertNever(op: never): never {
  throw new Error(`unknown op ${(op as { kind?: unknown }).kind}`);
}

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}
