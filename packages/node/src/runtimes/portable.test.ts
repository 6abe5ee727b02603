import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { createPortableRuntime } from './portable.js';
import { describeRuntimeBasics } from './test-support/runtime-basics.js';
import { describeRuntimeCompliance } from './test-support/runtime-compliance.js';

describeRuntimeBasics('onnxruntime-web', () => createPortableRuntime(), {
  modelPath: fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url)),
  profiles: ['portable'],
  job: { x: { dtype: 'float32', shape: [1, 4], data: new Float32Array([5.1, 3.5, 1.4, 0.2]) } },
});
// Another execution profile than onnxruntime-node's: equal to it within a few ulp, not bit for bit.
describeRuntimeCompliance('onnxruntime-web (portable)', () => createPortableRuntime(), { tolerance: 1e-5 });

describe('createPortableRuntime', () => {
  it('is onnxruntime-web, its package version, profile portable', () => {
    const runtime = createPortableRuntime();
    expect(runtime.id).toBe('onnxruntime-web');
    expect(runtime.version).toBe(ort.env.versions.web);
    expect(runtime.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(runtime.profile).toBe('portable');
  });

  it('runs onnxruntime-web on one thread with fixed-width SIMD and no proxy worker', () => {
    createPortableRuntime();
    expect(ort.env.wasm).toMatchObject({ numThreads: 1, simd: 'fixed', proxy: false });
  });
});

// A WebAssembly module using one relaxed SIMD instruction (i32x4.relaxed_dot_i8x16_i7x16_add_s),
// the probe onnxruntime-web itself uses to detect relaxed SIMD (lib/wasm/wasm-factory.ts).
const RELAXED_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19, 1, 17, 0, 65, 1, 253, 15, 65, 2, 253, 15, 65,
  3, 253, 15, 253, 147, 2, 11,
];
const relaxedFlag = '--no-experimental-wasm-relaxed-simd';
const hasRelaxedFlag = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).includes(
  'experimental-wasm-relaxed-simd',
);

describe('the WebAssembly binary', () => {
  it.skipIf(!hasRelaxedFlag)('holds no relaxed SIMD instruction: it compiles in a V8 with relaxed SIMD off', () => {
    const wasm = createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
    const script = `const fs = require('node:fs');
      const probe = WebAssembly.validate(new Uint8Array(${JSON.stringify(RELAXED_PROBE)}));
      const ort = WebAssembly.validate(fs.readFileSync(${JSON.stringify(wasm)}));
      process.stdout.write(JSON.stringify({ probe, ort }));`;
    const out = JSON.parse(execFileSync(process.execPath, [relaxedFlag, '-e', script], { encoding: 'utf8' }));
    // The probe shows the check has teeth: with relaxed SIMD off, a module using it is refused.
    expect(out).toEqual({ probe: false, ort: true });
  });
});
