/**
 * ONNX bytes → circom source, fixed-point parameters and a report (the push-time step), plus the
 * encoding of one inference's input and outputs as public signals.
 */
import { createHash } from 'node:crypto';
import { fail } from '@verity/protocol';
import { generateCircom } from './circom-gen.js';
import { decodeSignal, encodeSignals } from './field.js';
import {
  chooseFixedPoint,
  dequantize,
  evaluateFixed,
  type FixedGraph,
  type FixedPointParams,
  quantizeGraph,
  quantizeInput,
  type ScaleOptions,
} from './fixed-point.js';
import { applyHead, argMax, evaluateFloat } from './float-eval.js';
import type { HeadOp, IrGraph, IrTensor } from './ir.js';
import { importOnnx } from './onnx-import.js';

/** This package, as named in generated circuits. */
export const GENERATOR = '@verity/zk 0.1.0';

/** Options for {@link compileModel}: samples to choose the scale from, or the parameters themselves. */
export interface CompileOptions {
  /** Representative input rows (flat, `input.size` values each): the scale is chosen from them and the error measured on them. */
  samples?: readonly ArrayLike<number>[];
  /** Fixed-point parameters to use as they are (to rebuild a circuit recorded earlier). */
  params?: FixedPointParams;
  /** How the scale is chosen from `samples` (ignored with `params`). */
  scale?: ScaleOptions;
}

/** A proved tensor's place in the public outputs. */
export interface CircuitOutput {
  name: string;
  shape: number[];
  /** Index of its first element in the `out` array (public signals start with `out`). */
  offset: number;
  size: number;
}

/**
 * What a verifier needs to read a proof's public signals: JSON-serialisable, no weights.
 * Public signals are `[...out, ...in]`, every value an integer at scale 2^fracBits.
 */
export interface CircuitIo {
  fracBits: number;
  valueBits: number;
  input: { name: string; shape: number[]; size: number };
  outputs: CircuitOutput[];
  /** Softmax/ArgMax applied by the verifier to the decoded outputs (not proved). */
  head: HeadOp[];
}

/** Fixed-vs-float comparison on the samples. */
export interface ErrorReport {
  /** Largest |fixed − float| over every proved output value, in real terms. */
  maxAbs: number;
  meanAbs: number;
  /** maxAbs / the largest |float output|. */
  maxRelative: number;
}

/** What the compiler chose and measured. */
export interface CompileReport {
  params: FixedPointParams;
  /** 2^fracBits. */
  scale: number;
  /** Largest |value| of any tensor on the samples (null without samples). */
  maxAbsValue: number | null;
  intBits: number | null;
  headroomBits: number | null;
  /** Bits of the largest accumulator the circuit can form (the field holds 253). */
  accumulatorBits: number;
  samples: number;
  /** null without samples. */
  error: ErrorReport | null;
  /** Fraction of samples whose argmax (per proved output) matches the float model's (null without samples). */
  argmaxAgreement: number | null;
  publicInputs: number;
  publicOutputs: number;
  /**
   * Predicted constraint count, equal to the compiled circuit's: (s + b) per rescaled value, 1 per
   * fused ReLU, b + 1 per other ReLU. Weights are constants of the circuit, so a linear layer's
   * multiplications cost none: the count depends on the activations, not on the parameters.
   */
  estimatedConstraints: number;
  /** Constants of the ONNX model the circuit computes with (weights and biases, counted once each). */
  parameters: number;
  /** estimatedConstraints / parameters. */
  constraintsPerParameter: number;
  /** One line per op, e.g. `linear 4->16 (Gemm_0)`. */
  ops: string[];
}

/** A model compiled for zk mode. */
export interface CompiledModel {
  /** SHA-256 (hex) of the ONNX bytes. */
  modelSha256: string;
  graph: IrGraph;
  fixed: FixedGraph;
  params: FixedPointParams;
  io: CircuitIo;
  /** The circuit source (deterministic: same model and params, same bytes). */
  circom: string;
  report: CompileReport;
}

/**
 * Compiles an ONNX model into a fixed-point circom circuit. Rejects unsupported models with
 * `MODEL_INVALID` listing every unsupported node in `details.unsupported`.
 *
 * @example
 * ```ts
 * const model = compileModel(readFileSync('iris.onnx'), { samples: [[5, 3.6, 1.4, 0.2]] });
 * model.params; // { fracBits: 16, valueBits: 25 }: record them to rebuild the same circuit
 * model.report.error?.maxAbs; // ~1e-4
 * ```
 */
export function compileModel(onnx: Uint8Array, options: CompileOptions = {}): CompiledModel {
  const graph = importOnnx(onnx);
  const samples = options.samples ?? [];
  const choice = options.params === undefined ? chooseFixedPoint(graph, samples, options.scale) : undefined;
  const params = options.params ?? (choice?.params as FixedPointParams);
  const fixed = quantizeGraph(graph, params);
  const modelSha256 = createHash('sha256').update(onnx).digest('hex');
  const circom = generateCircom(fixed, { modelSha256, generator: GENERATOR });
  const io = circuitIo(fixed);
  const measured = samples.length > 0 ? measure(fixed, samples) : null;
  const estimatedConstraints = estimateConstraints(fixed);
  const parameters = graph.ops.reduce(
    (n, op) => n + (op.kind === 'linear' || op.kind === 'addConst' ? op.parameters : 0),
    0,
  );
  const report: CompileReport = {
    params,
    scale: 2 ** params.fracBits,
    maxAbsValue: choice?.maxAbsValue ?? null,
    intBits: choice?.intBits ?? null,
    headroomBits: choice?.headroomBits ?? null,
    accumulatorBits: fixed.accumulatorBits,
    samples: samples.length,
    error: measured?.error ?? null,
    argmaxAgreement: measured?.argmaxAgreement ?? null,
    publicInputs: io.input.size,
    publicOutputs: io.outputs.reduce((n, o) => n + o.size, 0),
    estimatedConstraints,
    parameters,
    constraintsPerParameter: parameters > 0 ? estimatedConstraints / parameters : 0,
    ops: describeOps(graph),
  };
  return { modelSha256, graph, fixed, params, io, circom, report };
}

function circuitIo(fixed: FixedGraph): CircuitIo {
  const { graph, params } = fixed;
  let offset = 0;
  const outputs = graph.outputs.map((id) => {
    const t = graph.tensors[id] as IrTensor;
    const o = { name: t.name, shape: [...t.shape], offset, size: t.size };
    offset += t.size;
    return o;
  });
  return {
    fracBits: params.fracBits,
    valueBits: params.valueBits,
    input: { name: graph.input.name, shape: [...graph.input.shape], size: graph.input.size },
    outputs,
    head: graph.head.map((h) => ({ ...h })),
  };
}

function measure(
  fixed: FixedGraph,
  samples: readonly ArrayLike<number>[],
): { error: ErrorReport; argmaxAgreement: number } {
  const s = fixed.params.fracBits;
  let maxAbs = 0;
  let sumAbs = 0;
  let count = 0;
  let maxOut = 0;
  let agree = 0;
  let compared = 0;
  for (const sample of samples) {
    const floats = evaluateFloat(fixed.graph, sample);
    const ints = evaluateFixed(fixed, quantizeInput(fixed, sample));
    for (const id of fixed.graph.outputs) {
      const f = floats[id] as Float64Array;
      const q = ints[id] as bigint[];
      f.forEach((v, i) => {
        const e = Math.abs(dequantize(q[i] as bigint, s) - v);
        maxAbs = Math.max(maxAbs, e);
        maxOut = Math.max(maxOut, Math.abs(v));
        sumAbs += e;
        count++;
      });
      if (f.length > 1) {
        compared++;
        if (argMax(f) === argMax(q)) agree++;
      }
    }
  }
  return {
    error: { maxAbs, meanAbs: count ? sumAbs / count : 0, maxRelative: maxOut ? maxAbs / maxOut : 0 },
    argmaxAgreement: compared ? agree / compared : 1,
  };
}

function estimateConstraints(fixed: FixedGraph): number {
  const { fracBits: s, valueBits: b } = fixed.params;
  const rescaled = new Set<number>();
  let n = 0;
  for (const f of fixed.ops) {
    const size = fixed.graph.tensors[f.op.output]?.size ?? 0;
    if (f.kind === 'linear') {
      n += size * (s + b);
      rescaled.add(f.op.output);
    } else if (f.kind === 'reshape' && rescaled.has(f.op.input)) {
      rescaled.add(f.op.output);
    } else if (f.kind === 'relu') {
      n += rescaled.has(f.op.input) ? size : size * (b + 1);
    }
  }
  return n;
}

function describeOps(graph: IrGraph): string[] {
  const size = (id: number) => graph.tensors[id]?.size ?? 0;
  return graph.ops.map((op) => {
    switch (op.kind) {
      case 'linear':
        return `linear ${size(op.input)}->${size(op.output)} (${op.node})`;
      case 'add':
        return `add ${size(op.output)} (${op.node})`;
      default:
        return `${op.kind} ${size(op.output)} (${op.node})`;
    }
  });
}

/**
 * One input row as the circuit's public input: round(x · 2^s), range-checked.
 *
 * @example
 * ```ts
 * const input = encodeInput(model, [5.1, 3.5, 1.4, 0.2]);
 * ```
 */
export function encodeInput(model: Pick<CompiledModel, 'fixed'>, row: ArrayLike<number>): bigint[] {
  return quantizeInput(model.fixed, row);
}

/** The result of evaluating or decoding one inference. */
export interface DecodedInference {
  /** Input row as integers (scale 2^s). */
  input: bigint[];
  /** Proved outputs as integers (scale 2^s), by name. */
  fixedOutputs: Record<string, bigint[]>;
  /** Proved outputs dequantized, by name. */
  outputs: Record<string, number[]>;
  /** Head outputs (Softmax, ArgMax…) computed from `outputs`, by name. */
  head: Record<string, number[]>;
}

/**
 * The model's fixed-point answer for one input row, computed in TypeScript: exactly the public
 * outputs a proof for that row carries.
 *
 * @example
 * ```ts
 * evaluateModel(model, [5.1, 3.5, 1.4, 0.2]).head.label; // [0]
 * ```
 */
export function evaluateModel(model: Pick<CompiledModel, 'fixed' | 'io'>, row: ArrayLike<number>): DecodedInference {
  const input = quantizeInput(model.fixed, row);
  const values = evaluateFixed(model.fixed, input);
  const out: bigint[] = [];
  for (const id of model.fixed.graph.outputs) out.push(...(values[id] as bigint[]));
  return decodePublicSignals(model.io, [...encodeSignals(out), ...encodeSignals(input)]);
}

/**
 * Splits and decodes a proof's public signals (`[...out, ...in]`) into inputs, outputs and head
 * outputs. Throws `INVALID_ARGUMENT` if the count is wrong or a value is outside the circuit's
 * range (a proof about such signals proves nothing useful: the verifier must reject it).
 *
 * @example
 * ```ts
 * decodePublicSignals(model.io, proof.publicSignals).outputs.logits; // [-3.1, 1.2, 4.0]
 * ```
 */
export function decodePublicSignals(io: CircuitIo, publicSignals: readonly (string | bigint)[]): DecodedInference {
  const nOut = io.outputs.reduce((n, o) => n + o.size, 0);
  if (publicSignals.length !== nOut + io.input.size) {
    fail('INVALID_ARGUMENT', `expected ${nOut + io.input.size} public signals, got ${publicSignals.length}`, {
      expected: nOut + io.input.size,
      actual: publicSignals.length,
    });
  }
  const values = publicSignals.map(decodeSignal);
  const limit = 1n << BigInt(io.valueBits - 1);
  const input = values.slice(nOut);
  const bad = input.findIndex((v) => v < -limit || v >= limit);
  if (bad >= 0) fail('INVALID_ARGUMENT', 'a public input is outside the circuit’s range', { index: bad });
  const fixedOutputs: Record<string, bigint[]> = {};
  const outputs: Record<string, number[]> = {};
  for (const o of io.outputs) {
    const v = values.slice(o.offset, o.offset + o.size);
    fixedOutputs[o.name] = v;
    outputs[o.name] = v.map((x) => dequantize(x, io.fracBits));
  }
  return { input, fixedOutputs, outputs, head: applyHead(io.head, outputs) };
}

/**
 * Input rows from a samples file in Verity's tensor JSON (the examples' `*.samples.json`:
 * `{ samples: [{ inputs: { x: [[…]] } }] }`, or an array of such `inputs` objects): every row of
 * every batch, flattened.
 *
 * @example
 * ```ts
 * samplesFromJson(JSON.parse(readFileSync('iris.samples.json', 'utf8')), 'x'); // [[5, 3.6, 1.4, 0.2], …]
 * ```
 */
export function samplesFromJson(json: unknown, inputName: string): number[][] {
  const list = Array.isArray(json) ? json : (json as { samples?: unknown } | null)?.samples;
  if (!Array.isArray(list)) fail('JSON_INVALID', 'expected an array of samples or { samples: [...] }', {});
  const rows: number[][] = [];
  for (const entry of list) {
    const inputs = (entry as { inputs?: Record<string, unknown> })?.inputs ?? (entry as Record<string, unknown>);
    const tensor = inputs?.[inputName];
    let batch: unknown[];
    if (tensor !== null && typeof tensor === 'object' && !Array.isArray(tensor)) {
      // Full form { dtype, shape, data }: data is flat, shape[0] rows when the rank is 2 or more.
      const { shape, data } = tensor as { shape?: unknown; data?: unknown };
      if (!Array.isArray(data)) fail('JSON_INVALID', `tensor "${inputName}" has no data array`, {});
      const rowsIn =
        Array.isArray(shape) && shape.length >= 2 && Number.isSafeInteger(shape[0]) ? (shape[0] as number) : 1;
      if (rowsIn <= 0 || data.length % rowsIn !== 0) fail('JSON_INVALID', `tensor "${inputName}" has a bad shape`, {});
      const width = data.length / rowsIn;
      batch = Array.from({ length: rowsIn }, (_, r) => data.slice(r * width, (r + 1) * width));
    } else {
      if (!Array.isArray(tensor)) fail('JSON_INVALID', `a sample has no tensor "${inputName}"`, {});
      // Nested arrays: [batch][...]; a flat array is one row.
      batch = tensor.some(Array.isArray) ? tensor : [tensor];
    }
    for (const row of batch) {
      const flat = [row].flat(Number.POSITIVE_INFINITY);
      if (!flat.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        fail('JSON_INVALID', `tensor "${inputName}" must hold finite numbers`, {});
      }
      rows.push(flat as number[]);
    }
  }
  return rows;
}
