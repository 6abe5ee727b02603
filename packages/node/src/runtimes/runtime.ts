/**
 * The one interface every model runtime implements (onnx native, onnx portable, llm, zk), and
 * which the executor drives (docs/design.md §3; the request path: docs/architecture.md §2). Every runtime passes the shared compliance suite in
 * `test-support/runtime-compliance.ts`.
 */
import type { TensorMap, TensorSignature } from '@verity/protocol';

/**
 * A model loaded into a runtime, ready to run.
 *
 * @example
 * ```ts
 * const model = await runtime.load(bytes);
 * const outputs = await model.run({ x: createTensor('float32', [1, 4], new Float32Array([5.1, 3.5, 1.4, 0.2])) });
 * await model.close();
 * ```
 */
export interface LoadedModel {
  /**
   * The model's inputs, read from the model itself: names, dtypes, and shapes whose dims are fixed
   * numbers or symbols (a string such as `"batch"`). Dynamic dims the model leaves unnamed are
   * named `dim<axis>` (`dim0`, `dim1`…), so a manifest can still carry them as symbols.
   */
  readonly inputs: readonly TensorSignature[];
  /** The model's outputs, as {@link LoadedModel.inputs}. */
  readonly outputs: readonly TensorSignature[];
  /**
   * True when every input and output has the same symbolic first dim, so requests can be
   * concatenated along dim 0, run once, and split back ({@link runBatched}).
   */
  readonly batchable: boolean;
  /**
   * Runs the model once. `inputs` must already be validated against {@link LoadedModel.inputs}
   * (`validateTensors`); the result holds one tensor per output signature. Throws `VerityError`
   * `INFERENCE_FAILED` when the runtime fails or the model is closed.
   */
  run(inputs: TensorMap): Promise<TensorMap>;
  /** Releases the model once the runs in flight have finished; later runs fail. Idempotent. */
  close(): Promise<void>;
}

/**
 * A model runtime: ONNX runtimes load a {@link LoadedModel} (tensors in, tensors out), the LLM
 * runtime a model that generates text (`runtimes/llm.ts`). `id`, `version` and `profile` go into every inference record (docs/design.md §2.3), so
 * a verifier knows which build produced an output; outputs are bit-exact only within one
 * execution profile (docs/design.md §2.6).
 *
 * @example
 * ```ts
 * const runtime: Runtime = createOnnxRuntime();
 * console.log(runtime.id, runtime.version, runtime.profile); // onnxruntime-node 1.30.0 native
 * ```
 */
export interface Runtime<M extends { close(): Promise<void> } = LoadedModel> {
  /** The runtime's name, e.g. `onnxruntime-node`. */
  readonly id: string;
  /** The runtime's version, e.g. `1.30.0`. */
  readonly version: string;
  /** The execution profile (docs/design.md §2.6): `native` or `portable`. */
  readonly profile: string;
  /**
   * Loads a model from its bytes or a file path. Throws `VerityError` `MODEL_INVALID` when the
   * bytes are not a model this runtime can run (empty, truncated, not ONNX, unsupported
   * operators or dtypes), and `MODEL_NOT_FOUND` when the path does not exist.
   */
  load(bytesOrPath: Uint8Array | string): Promise<M>;
}
