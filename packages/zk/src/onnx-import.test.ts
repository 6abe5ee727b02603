/**
 * ONNX import: the IR of the example and test models, float evaluation against onnxruntime, and
 * the rejection of unsupported models with every offending node listed.
 */
import { isVerityError, type VerityError } from '@verity/protocol';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { encodeModel, floatInitializer, gemm, relu, softmax } from '../../../examples/onnx-writer.js';
import { applyHead, evaluateFloat } from './float-eval.js';
import type { IrGraph, LinearOp } from './ir.js';
import { importOnnx } from './onnx-import.js';
import {
  cnnOnnx,
  irisOnnx,
  irisTestRows,
  MLP,
  mlpOnnx,
  patchModel,
  runOrt,
  uniformRows,
  unsupportedOnnx,
} from './test-support/models.js';

const { onnx } = onnxProto;

function rejection(bytes: Uint8Array): VerityError {
  try {
    importOnnx(bytes);
  } catch (e) {
    if (isVerityError(e)) return e;
    throw e;
  }
  throw new Error('expected the import to fail');
}

/** Max |a − b| over two equally long arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

function proved(graph: IrGraph, row: readonly number[]): Record<string, Float64Array> {
  const values = evaluateFloat(graph, row);
  return Object.fromEntries(graph.outputs.map((id) => [graph.tensors[id]?.name ?? '', values[id] as Float64Array]));
}

describe('the iris example', () => {
  const graph = importOnnx(irisOnnx());

  it('is Gemm → Relu → Gemm, with Softmax and ArgMax as the head, proving the logits', () => {
    expect(graph.input).toMatchObject({ name: 'x', shape: [4], size: 4 });
    expect(graph.batched).toBe(true);
    expect(graph.ops.map((op) => op.kind)).toEqual(['linear', 'relu', 'linear']);
    expect(graph.outputs.map((id) => graph.tensors[id])).toMatchObject([{ name: 'logits', shape: [3] }]);
    expect(graph.head).toEqual([
      { kind: 'softmax', node: 'Softmax_3', input: 'logits', output: 'probabilities', keepdims: false },
      { kind: 'argmax', node: 'ArgMax_4', input: 'logits', output: 'label', keepdims: false },
    ]);
  });

  it('evaluates like onnxruntime on the whole test set (logits, probabilities, label)', async () => {
    const rows = irisTestRows().map((r) => r.x);
    const bytes = irisOnnx();
    const probabilities = await runOrt(bytes, 'x', [4], rows, 'probabilities');
    const labels = await runOrt(bytes, 'x', [4], rows, 'label');
    rows.forEach((row, i) => {
      const head = applyHead(graph.head, proved(graph, row));
      expect(maxDiff(head.probabilities as number[], probabilities[i] as number[])).toBeLessThan(1e-6);
      expect(head.label).toEqual(labels[i]);
    });
  });
});

describe('the 64→64→16 MLP', () => {
  const bytes = mlpOnnx();
  const graph = importOnnx(bytes);

  it('folds MatMul + Add into one dense layer and Flatten into a reshape', () => {
    expect(graph.ops.map((op) => `${op.kind} ${op.node}`)).toEqual([
      'reshape Flatten_0',
      'linear MatMul_1+Add_2',
      'relu Relu_3',
      'linear Gemm_4',
    ]);
    const [l1, l2] = graph.ops.filter((op): op is LinearOp => op.kind === 'linear');
    expect(l1?.weights.length).toBe(MLP.inputs * MLP.hidden);
    expect(l2?.weights.length).toBe(MLP.hidden * MLP.outputs);
    const params =
      (l1?.weights.length ?? 0) + (l1?.bias.length ?? 0) + (l2?.weights.length ?? 0) + (l2?.bias.length ?? 0);
    expect(params).toBe(5200);
  });

  it('evaluates like onnxruntime', async () => {
    const rows = uniformRows(20, MLP.inputs, 99);
    const logits = await runOrt(bytes, 'x', [MLP.inputs], rows, 'logits');
    rows.forEach((row, i) => {
      expect(maxDiff(proved(graph, row).logits as Float64Array, logits[i] as number[])).toBeLessThan(1e-5);
    });
  });
});

describe('Conv, Reshape and Gemm attributes', () => {
  it('a CNN (Conv with pads and strides, Reshape with an int64 shape) evaluates like onnxruntime', async () => {
    const bytes = cnnOnnx();
    const graph = importOnnx(bytes);
    expect(graph.ops.map((op) => op.kind)).toEqual(['linear', 'relu', 'reshape', 'linear']);
    expect(graph.tensors[graph.ops[0]?.output ?? -1]?.shape).toEqual([2, 3, 3]);
    const rows = uniformRows(10, 36, 5);
    const expected = await runOrt(bytes, 'x', [1, 6, 6], rows, 'probabilities');
    rows.forEach((row, i) => {
      const head = applyHead(graph.head, proved(graph, row));
      expect(maxDiff(head.probabilities as number[], expected[i] as number[])).toBeLessThan(1e-6);
    });
  });

  it('Gemm alpha, beta and a [1, N] bias are folded into the weights', async () => {
    const bytes = patchModel(
      encodeModel({
        name: 'scaled',
        inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 3] }],
        outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 2] }],
        initializers: [
          floatInitializer('W', [3, 2], [1, -2, 0.5, 3, -1, 0.25]),
          floatInitializer('B', [1, 2], [0.5, -1]),
        ],
        nodes: [gemm('x', 'W', 'B', 'y')],
      }),
      (model) => {
        const node = model.graph?.node?.[0] as onnxProto.onnx.INodeProto;
        const FLOAT = onnx.AttributeProto.AttributeType.FLOAT;
        node.attribute = [
          { name: 'alpha', type: FLOAT, f: 0.5 },
          { name: 'beta', type: FLOAT, f: 2 },
        ];
      },
    );
    const graph = importOnnx(bytes);
    const rows = uniformRows(5, 3, 1);
    const expected = await runOrt(bytes, 'x', [3], rows, 'y');
    rows.forEach((row, i) => {
      expect(maxDiff(proved(graph, row).y as Float64Array, expected[i] as number[])).toBeLessThan(1e-6);
    });
  });
});

describe('unsupported models are rejected with every problem listed', () => {
  it('lists each unsupported operator with its node index and name', () => {
    const e = rejection(unsupportedOnnx());
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.details.unsupported).toEqual([
      { index: 1, node: 'act', opType: 'Sigmoid', reason: 'operator not supported' },
      { index: 2, node: 'gate', opType: 'Mul', reason: 'operator not supported' },
      { index: 3, node: 'squash', opType: 'Tanh', reason: 'operator not supported' },
    ]);
    expect(e.details.supportedOps).toContain('Gemm');
    expect(e.message).toContain('Sigmoid');
    expect(e.message).toContain('Tanh');
  });

  it('rejects supported operators used in ways the circuit cannot express', () => {
    const bytes = encodeModel({
      name: 'bad-use',
      inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 2] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 2] }],
      initializers: [floatInitializer('W', [2, 2], [1, 0, 0, 1]), floatInitializer('B', [2], [0, 0])],
      nodes: [
        softmax('x', 'p'),
        // A Softmax output feeding a layer: the head must end the graph.
        gemm('p', 'W', 'B', 'h'),
        // The weights must be constants.
        { opType: 'MatMul', inputs: ['W', 'x'], outputs: ['m'], name: 'const_times_x' },
        relu('h', 'y'),
      ],
    });
    const e = rejection(bytes);
    expect(e.code).toBe('MODEL_INVALID');
    const listed = (e.details.unsupported as { node: string; opType: string; reason: string }[]).map(
      (u) => `${u.opType} ${u.node}`,
    );
    expect(listed).toEqual(['Gemm Gemm_1', 'MatMul const_times_x']);
  });

  it('rejects a fixed batch larger than one, and bytes that are not ONNX', () => {
    const batch3 = encodeModel({
      name: 'batch3',
      inputs: [{ name: 'x', elemType: 'float32', shape: [3, 2] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: [3, 2] }],
      initializers: [],
      nodes: [relu('x', 'y')],
    });
    expect(rejection(batch3).details.unsupported).toMatchObject([{ opType: 'input' }]);
    expect(rejection(new Uint8Array([1, 2, 3, 4, 5])).code).toBe('MODEL_INVALID');
  });
});
