/**
 * The `native` ONNX runtime (docs/design.md §2.6): onnxruntime-node on the CPU, the fastest profile,
 * bit-exact only on the same onnxruntime build and CPU instruction set.
 */
import { readFile, stat } from 'node:fs/promises';
import { isVerityError, type TensorMap, VerityError } from '@verity/protocol';
import * as ort from 'onnxruntime-node';
import {
  fromOrtTensor,
  isBatchable,
  namedDims,
  type OrtTensorConstructor,
  signaturesFromMetadata,
  toOrtTensor,
} from './ort-tensors.js';
import type { LoadedModel, Runtime } from './runtime.js';

/**
 * Options for {@link createOnnxRuntime}.
 *
 * @example
 * ```ts
 * const options: OnnxRuntimeOptions = { intraOpThreads: 2 };
 * ```
 */
export interface OnnxRuntimeOptions {
  /**
   * Threads one run may use (onnxruntime's intra-op pool). Default: onnxruntime's choice (one
   * per physical core). Outputs are bit-identical whatever the count.
   */
  intraOpThreads?: number;
}

// onnxruntime's Linux builds carry Microsoft's telemetry SDK, on by default: every process that
// creates a session writes `mat-debug-<pid>.log` and `.ses` into the temp directory and may send
// usage events. What a node runs is its operator's business: off unless they set
// ORT_DISABLE_TELEMETRY themselves (read when the first session is created, so setting it here,
// before any, is enough).
process.env.ORT_DISABLE_TELEMETRY ??= '1';

/** The runtime id written into inference records. */
export const ONNX_RUNTIME_ID = 'onnxruntime-node';

/**
 * The `native` ONNX runtime. Its version is the onnxruntime-node package's.
 *
 * @example
 * ```ts
 * const runtime = createOnnxRuntime({ intraOpThreads: 1 });
 * const model = await runtime.load('examples/models/iris.onnx');
 * model.inputs; // [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }]
 * const { label } = await model.run({ x: createTensor('float32', [1, 4], new Float32Array([5.1, 3.5, 1.4, 0.2])) });
 * await model.close();
 * ```
 */
export function createOnnxRuntime(options: OnnxRuntimeOptions = {}): Runtime {
  const { intraOpThreads } = options;
  if (intraOpThreads !== undefined && !(Number.isSafeInteger(intraOpThreads) && intraOpThreads > 0)) {
    throw new VerityError('INVALID_ARGUMENT', 'intraOpThreads must be a positive integer', {
      details: { actual: String(intraOpThreads) },
    });
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    executionMode: 'sequential',
    interOpNumThreads: 1,
    // Warnings (e.g. unused initializers) would go to the node's stderr; failures still throw.
    logSeverityLevel: 3,
    // onnxruntime's intra-op threads spin after each run, waiting for the next: between a node's
    // runs (HTTP, the log's fsync round) that spin burnt ~2 ms of CPU per run of Silero VAD, 3× the
    // run itself, on cores the node's own thread needs (bench/serve-models.ts). Off: the threads
    // sleep between runs (~0.1–0.2 ms more latency per run on a small model). Outputs do not change.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    ...(intraOpThreads === undefined ? {} : { intraOpNumThreads: intraOpThreads }),
  };
  return {
    id: ONNX_RUNTIME_ID,
    version: ort.env.versions.node ?? ort.env.versions.common,
    profile: 'native',
    load: (bytesOrPath) => loadOnnx(NATIVE_ORT, bytesOrPath, sessionOptions),
  };
}

/**
 * What the session code needs of an onnxruntime package: onnxruntime-node and onnxruntime-web
 * (the portable runtime, `portable.ts`) both expose these `onnxruntime-common` classes.
 */
export interface OrtBackend {
  /** Creates a session from the model's bytes, or its path (where the package reads files itself). */
  create(model: Uint8Array | string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession>;
  readonly Tensor: OrtTensorConstructor;
  /** True when `create` reads a path itself; else the file is read here and its bytes handed over. */
  readonly readsPaths: boolean;
}

const NATIVE_ORT: OrtBackend = {
  create: (model, options) =>
    typeof model === 'string'
      ? ort.InferenceSession.create(model, options)
      : ort.InferenceSession.create(model, options),
  Tensor: ort.Tensor,
  readsPaths: true,
};

/**
 * Loads a model into a session of `backend` (the code both ONNX runtimes share): `MODEL_NOT_FOUND`
 * for a missing path, `MODEL_INVALID` for bytes the runtime refuses.
 */
export async function loadOnnx(
  backend: OrtBackend,
  bytesOrPath: Uint8Array | string,
  sessionOptions: ort.InferenceSession.SessionOptions,
): Promise<LoadedModel> {
  let session: ort.InferenceSession;
  if (typeof bytesOrPath === 'string') {
    await assertModelFile(bytesOrPath);
    const model = backend.readsPaths ? bytesOrPath : await readModelFile(bytesOrPath);
    session = await createSession(() => backend.create(model, sessionOptions), { path: bytesOrPath });
  } else if (bytesOrPath instanceof Uint8Array) {
    if (bytesOrPath.byteLength === 0) {
      throw new VerityError('MODEL_INVALID', 'model is empty (0 bytes)', { details: { size: 0 } });
    }
    session = await createSession(() => backend.create(bytesOrPath, sessionOptions), {
      size: bytesOrPath.byteLength,
    });
  } else {
    throw new VerityError('INVALID_ARGUMENT', 'load takes the model bytes (Uint8Array) or a file path', {
      details: { actual: typeof bytesOrPath },
    });
  }
  try {
    return openModel(session, backend.Tensor);
  } catch (e) {
    await session.release().catch(() => {});
    throw e;
  }
}

async function assertModelFile(path: string): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new VerityError('MODEL_NOT_FOUND', 'model file does not exist', { details: { path }, cause });
    }
    throw new VerityError('MODEL_INVALID', `model file cannot be read (${code ?? 'error'})`, {
      details: { path },
      cause,
    });
  }
  if (!isFile) throw new VerityError('MODEL_INVALID', 'model path is not a file', { details: { path } });
}

async function readModelFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new VerityError('MODEL_INVALID', `model file cannot be read (${code ?? 'error'})`, {
      details: { path },
      cause,
    });
  }
}

/** onnxruntime refuses a model by throwing a plain Error; it becomes `MODEL_INVALID`. */
async function createSession(
  create: () => Promise<ort.InferenceSession>,
  details: Record<string, unknown>,
): Promise<ort.InferenceSession> {
  try {
    return await create();
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new VerityError('MODEL_INVALID', `not a model onnxruntime can load: ${reason}`, {
      details: { ...details, reason },
      cause,
    });
  }
}

function openModel(session: ort.InferenceSession, Tensor: OrtTensorConstructor): LoadedModel {
  const reserved = namedDims(session.inputMetadata, session.outputMetadata);
  const inputs = Object.freeze(signaturesFromMetadata(session.inputMetadata, 'input', reserved));
  const outputs = Object.freeze(signaturesFromMetadata(session.outputMetadata, 'output', reserved));
  const outputNames = outputs.map((s) => s.name);
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  async function runOnce(feeds: Record<string, ort.Tensor>): Promise<TensorMap> {
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds, outputNames);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new VerityError('INFERENCE_FAILED', `onnxruntime failed to run the model: ${reason}`, {
        details: { reason },
        cause,
      });
    }
    const out: TensorMap = Object.create(null);
    for (const name of outputNames) {
      const value = results[name];
      if (value === undefined) {
        throw new VerityError('INFERENCE_FAILED', `onnxruntime returned no output "${name}"`, {
          details: { tensor: name },
        });
      }
      out[name] = fromOrtTensor(name, value);
    }
    return out;
  }

  return {
    inputs,
    outputs,
    batchable: isBatchable(inputs, outputs),
    run(tensors: TensorMap): Promise<TensorMap> {
      if (closing !== undefined) {
        return Promise.reject(
          new VerityError('INFERENCE_FAILED', 'the model is closed', { details: { reason: 'closed' } }),
        );
      }
      let feeds: Record<string, ort.Tensor>;
      try {
        feeds = Object.create(null);
        for (const sig of inputs) {
          const t = tensors[sig.name];
          if (t === undefined || !Object.hasOwn(tensors, sig.name)) {
            throw new VerityError('TENSOR_MISSING', `missing tensor "${sig.name}"`, { details: { tensor: sig.name } });
          }
          feeds[sig.name] = toOrtTensor(Tensor, sig.name, t);
        }
      } catch (e) {
        if (isVerityError(e)) return Promise.reject(e);
        const reason = e instanceof Error ? e.message : String(e);
        return Promise.reject(
          new VerityError('INFERENCE_FAILED', `onnxruntime refused an input: ${reason}`, {
            details: { reason },
            cause: e,
          }),
        );
      }
      const job = runOnce(feeds);
      const tracked = job.catch(() => {});
      inFlight.add(tracked);
      void tracked.then(() => inFlight.delete(tracked));
      return job;
    },
    close(): Promise<void> {
      closing ??= (async () => {
        // Releasing a session while a native run still uses it would free memory under that run.
        await Promise.all(inFlight);
        await session.release();
      })();
      return closing;
    },
  };
}
