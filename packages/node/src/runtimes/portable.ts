/**
 * The `portable` ONNX runtime (docs/design.md §2.6, docs/protocol.md §5.5): onnxruntime-web's
 * WebAssembly backend inside Node.js, one thread, fixed-width SIMD only, with the settings a page
 * uses to re-execute (`portableSessionOptions` in @verity/protocol). Its outputs are the same bits
 * on every host and in browsers running the same onnxruntime-web version, which its records
 * carry as `runtime.version`; they may differ from the `native` profile's by a few ulp.
 *
 * Slower than `native` (bench/portable.ts): it is the profile to ask for when someone else
 * (a quorum on other hardware, a browser) must reproduce the output bit for bit.
 */
import { PORTABLE_RUNTIME, portableSessionOptions } from '@verity/protocol';
import type { InferenceSession } from 'onnxruntime-node';
import * as ort from 'onnxruntime-web';
import { loadOnnx, type OrtBackend } from './onnx.js';
import type { OrtTensorConstructor } from './ort-tensors.js';
import type { Runtime } from './runtime.js';

// Applied once, before onnxruntime-web starts its WebAssembly module (it reads the flags then).
const { sessionOptions, version } = portableSessionOptions(ort.env);

const WEB_ORT: OrtBackend = {
  // onnxruntime-web reads a string as a URL; the node hands it the file's bytes instead.
  create: (model, options) =>
    ort.InferenceSession.create(
      model as Uint8Array,
      options as ort.InferenceSession.SessionOptions,
    ) as Promise<unknown> as Promise<InferenceSession>,
  Tensor: ort.Tensor as unknown as OrtTensorConstructor,
  readsPaths: false,
};

/**
 * The `portable` ONNX runtime: id `onnxruntime-web`, version the onnxruntime-web package's,
 * profile `portable`.
 *
 * @example
 * ```ts
 * const runtime = createPortableRuntime();
 * const model = await runtime.load('examples/models/iris.onnx');
 * const { label } = await model.run({ x: createTensor('float32', [1, 4], new Float32Array([5.1, 3.5, 1.4, 0.2])) });
 * runtime.version; // '1.30.0'
 * ```
 */
export function createPortableRuntime(): Runtime {
  return {
    id: PORTABLE_RUNTIME.id,
    version,
    profile: PORTABLE_RUNTIME.profile,
    load: (bytesOrPath) => loadOnnx(WEB_ORT, bytesOrPath, sessionOptions as InferenceSession.SessionOptions),
  };
}
