import { fileURLToPath } from 'node:url';
import { isVerityError } from '@verity/protocol';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createOnnxRuntime } from './onnx.js';
import { exampleModels } from './test-support/onnx-fixtures.js';
import { describeRuntimeBasics } from './test-support/runtime-basics.js';
import { describeRuntimeCompliance } from './test-support/runtime-compliance.js';

describeRuntimeBasics('onnxruntime-node', () => createOnnxRuntime({ intraOpThreads: 1 }), {
  modelPath: fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url)),
  profiles: ['native'],
  job: { x: { dtype: 'float32', shape: [1, 4], data: new Float32Array([5.1, 3.5, 1.4, 0.2]) } },
});
describeRuntimeCompliance('onnxruntime-node (1 thread)', () => createOnnxRuntime({ intraOpThreads: 1 }));
describeRuntimeCompliance('onnxruntime-node (default threads)', () => createOnnxRuntime());

describe('createOnnxRuntime', () => {
  it('is onnxruntime-node, its package version, profile native', () => {
    const runtime = createOnnxRuntime();
    expect(runtime.id).toBe('onnxruntime-node');
    expect(runtime.version).toBe(ort.env.versions.node);
    expect(runtime.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(runtime.profile).toBe('native');
  });

  it('refuses a thread count that is not a positive integer with INVALID_ARGUMENT', () => {
    for (const intraOpThreads of [0, -1, 1.5, Number.NaN]) {
      let code: string | undefined;
      try {
        createOnnxRuntime({ intraOpThreads });
      } catch (e) {
        if (isVerityError(e)) code = e.code;
      }
      expect(code).toBe('INVALID_ARGUMENT');
    }
  });

  it('gives the same bits with 1 thread and with 4', async () => {
    const iris = exampleModels()[0]!;
    const one = await createOnnxRuntime({ intraOpThreads: 1 }).load(iris.bytes);
    const four = await createOnnxRuntime({ intraOpThreads: 4 }).load(iris.bytes);
    const x = Float32Array.from({ length: 4 * 256 }, (_, i) => ((i * 7919) % 83) / 10);
    const inputs = { x: { dtype: 'float32' as const, shape: [256, 4], data: x } };
    const [a, b] = await Promise.all([one.run(inputs), four.run(inputs)]);
    expect(a).toEqual(b);
    await Promise.all([one.close(), four.close()]);
  });
});
