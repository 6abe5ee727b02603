import {
  type Bundle,
  checkZkSignals,
  fail,
  isVerityError,
  type Manifest,
  manifestCid,
  parseBundle,
  primeVerifyCache,
  type Trust,
  tensorsFromJson,
  type VerifiedReceipt,
  type VerifyOptions,
  type VerifyResult,
  VerityError,
  verifyBundle,
  type ZkFacts,
  zkFacts,
  zkVkDigest,
} from '@verity/protocol';

/** Options for {@link verifyZkBundle}. */
export interface VerifyZkOptions extends VerifyOptions {
  /** The model's manifest, when the bundle does not carry it (`bundle.zk.manifest`). */
  readonly manifest?: Manifest;
  /**
   * Accept proofs made with keys from a `local-dev` setup (one local contributor, who could forge
   * proofs). Default false: `ZK_SETUP_UNTRUSTED`.
   */
  readonly acceptLocalDevSetup?: boolean;
}

/** The result of {@link verifyZkBundle}: on success, what the manifest committed the proof to. */
export type ZkVerifyResult =
  | (Extract<VerifyResult, { ok: true }> & { readonly zk: ZkFacts })
  | Extract<VerifyResult, { ok: false }>;

type Groth16 = { verify(vk: unknown, signals: unknown, proof: unknown, logger?: unknown): Promise<boolean> };
let groth16: Promise<Groth16> | undefined;
// snarkjs ships no types; only `groth16.verify` is used here (packages/zk declares the rest).
const SNARKJS = 'snarkjs';
function loadGroth16(): Promise<Groth16> {
  groth16 ??= (import(SNARKJS) as Promise<{ groth16: Groth16 }>).then((m) => m.groth16);
  return groth16;
}

/** snarkjs logs through console unless given a logger. */
const SILENT = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * Verifies a `zk` bundle (docs/design.md §2.6), offline: everything {@link verifyBundle} checks
 * (receipt, log inclusion, input and output digests), then that the manifest is the record's
 * model, the setup is trusted (`local-dev` only with `acceptLocalDevSetup`: else
 * `ZK_SETUP_UNTRUSTED`), the verification key is the one the manifest commits to
 * (`ZK_VK_MISMATCH`), the public signals encode exactly the bundle's input and output
 * (`ZK_PUBLIC_INPUT_MISMATCH`), and the Groth16 proof holds (`ZK_PROOF_INVALID`). Never throws
 * for a bad bundle.
 *
 * snarkjs keeps worker threads for its curve in Node: call {@link releaseZk} when done.
 *
 * @example
 * ```ts
 * const result = await verifyZkBundle(bundle, trust, { acceptLocalDevSetup: true });
 * if (!result.ok) console.error(result.code);
 * ```
 */
export async function verifyZkBundle(
  bundle: unknown,
  trust: Trust,
  options: VerifyZkOptions = {},
): Promise<ZkVerifyResult> {
  if (options.cache) await primeVerifyCache(bundle, trust, options.cache);
  const base = verifyBundle(bundle, trust, options);
  if (!base.ok) return base;
  try {
    const parsed: Bundle = parseBundle(bundle);
    const { zk, input, output } = parsed;
    if (zk === undefined || input === undefined || output === undefined) {
      fail('BUNDLE_MALFORMED', 'a zk bundle carries zk, input and output');
    }
    const record = (base.receipts[0] as VerifiedReceipt).record;
    if (record.kind !== 'zk') fail('BUNDLE_MALFORMED', 'the record is not a zk record', { kind: record.kind });
    const manifest = options.manifest ?? zk.manifest;
    if (manifest === undefined) fail('BUNDLE_MALFORMED', 'verifying a zk bundle needs the model’s manifest');
    if (manifestCid(manifest) !== record.model) {
      fail('MANIFEST_INVALID', 'the manifest is not the record’s model', { model: record.model });
    }
    const facts = zkFacts(manifest);
    if (zk.setup !== facts.setup) fail('BUNDLE_MALFORMED', 'bundle.zk.setup is not the manifest’s zk.setup');
    if (facts.setup === 'local-dev' && options.acceptLocalDevSetup !== true) {
      fail('ZK_SETUP_UNTRUSTED', 'the proof comes from a local-dev setup (its maker could forge proofs)');
    }
    if (zkVkDigest(zk.vk) !== facts.vk) {
      fail('ZK_VK_MISMATCH', 'the verification key is not the one the manifest commits to');
    }
    if (zk.vk.nPublic !== zk.publicSignals.length) {
      fail('ZK_PUBLIC_INPUT_MISMATCH', 'the number of public signals is not the key’s');
    }
    checkZkSignals(facts.io, zk.publicSignals, tensorsFromJson(input), tensorsFromJson(output));
    let valid = false;
    try {
      valid = (await (await loadGroth16()).verify(zk.vk, zk.publicSignals, zk.proof, SILENT)) === true;
    } catch {
      valid = false;
    }
    if (!valid) fail('ZK_PROOF_INVALID', 'the Groth16 proof does not verify');
    return { ...base, zk: facts };
  } catch (e) {
    const error = isVerityError(e)
      ? (e as VerityError)
      : new VerityError('BUNDLE_MALFORMED', 'the zk bundle could not be checked', { cause: e });
    return { ok: false, code: error.code, error };
  }
}

/**
 * Stops the worker threads snarkjs' BN254 curve keeps (cached in `globalThis.curve_bn128`), so a
 * Node process can exit after verifying zk bundles. The next verification builds it again.
 */
export async function releaseZk(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) {
    g.curve_bn128 = null;
    await curve.terminate();
  }
}
