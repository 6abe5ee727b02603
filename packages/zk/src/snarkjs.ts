/**
 * snarkjs, loaded on first use (it pulls in ffjavascript and its WASM curves: nothing to pay for
 * when only compiling), and the release of the curve's worker threads.
 */
type Snarkjs = typeof import('snarkjs');

let loaded: Promise<Snarkjs> | undefined;

/** The snarkjs module (imported once). */
export function loadSnarkjs(): Promise<Snarkjs> {
  loaded ??= import('snarkjs');
  return loaded;
}

/**
 * Stops the worker threads snarkjs' BN254 curve keeps alive (ffjavascript caches the curve in
 * `globalThis.curve_bn128`): call it when done proving or verifying, or the process will not
 * exit. The next proof builds the curve again (~0.1 s).
 *
 * @example
 * ```ts
 * afterAll(() => releaseCurves());
 * ```
 */
export async function releaseCurves(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) {
    g.curve_bn128 = null;
    await curve.terminate();
  }
}
