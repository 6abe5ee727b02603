/**
 * The `portable` execution profile for ONNX models (docs/design.md §2.6, docs/protocol.md §5.5):
 * onnxruntime-web's WebAssembly backend, one thread, fixed-width SIMD only (no relaxed SIMD, whose
 * results may differ between hosts), default graph optimisations. The same onnxruntime-web
 * version on any host (a node in Node.js, a page in a browser) gives the same bits, so a record
 * made under this profile can be re-executed anywhere and compared bit for bit.
 *
 * This module holds the settings only (no onnxruntime import): the node's runtime and a page that
 * re-executes both apply them with {@link portableSessionOptions}, so they cannot drift apart.
 */

/** The ONNX execution profiles (a manifest's `profiles`, a record's `runtime.profile`). */
export const ONNX_PROFILES = ['native', 'portable'] as const;

/** An ONNX execution profile. */
export type OnnxProfile = (typeof ONNX_PROFILES)[number];

/** The runtime id and profile of records made under the portable profile; the version is onnxruntime-web's. */
export const PORTABLE_RUNTIME = { id: 'onnxruntime-web', profile: 'portable' } as const;

/** What {@link portableSessionOptions} needs of onnxruntime-web's `env` (structural: no import). */
export interface PortableOrtEnv {
  readonly versions: { readonly web?: string; readonly common: string };
  readonly wasm: { numThreads?: number; simd?: boolean | 'fixed' | 'relaxed'; proxy?: boolean };
}

/** Session options of the portable profile (onnxruntime-common's `SessionOptions` shape). */
export interface PortableSessionOptions {
  readonly executionProviders: ['wasm'];
  readonly executionMode: 'sequential';
  readonly graphOptimizationLevel: 'all';
  readonly logSeverityLevel: 3;
}

/**
 * Sets onnxruntime-web's WebAssembly flags for the portable profile (one thread, fixed-width
 * SIMD, no proxy worker) and returns the session options to create every session with. Call it
 * before the first session is created: onnxruntime-web reads the flags once, when it starts.
 *
 * @returns the options, and the onnxruntime-web version that records carry as `runtime.version`
 * @example
 * ```ts
 * import * as ort from 'onnxruntime-web';
 * const { sessionOptions, version } = portableSessionOptions(ort.env);
 * const session = await ort.InferenceSession.create(modelBytes, sessionOptions);
 * ```
 */
export function portableSessionOptions(env: PortableOrtEnv): {
  sessionOptions: PortableSessionOptions;
  version: string;
} {
  env.wasm.numThreads = 1;
  env.wasm.simd = 'fixed';
  env.wasm.proxy = false;
  return {
    sessionOptions: {
      executionProviders: ['wasm'],
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Warnings (e.g. unused initializers) would go to the console; failures still throw.
      logSeverityLevel: 3,
    },
    version: env.versions.web ?? env.versions.common,
  };
}
