/**
 * Witness computation, Groth16 proving and verification (snarkjs, in-process). Keep the zkey and
 * wasm bytes in memory and reuse the process: the first proof builds the curve's worker pool
 * (cold), later ones reuse it (warm).
 */
import { VerityError } from '@verity/protocol';
import type { Groth16Proof, MemFile } from 'snarkjs';
import { encodeSignals, FIELD_PRIME } from './field.js';
import { encodeWtns, parseWtns } from './r1cs.js';
import type { CircuitKeys, SetupKind, VerificationKey } from './setup.js';
import { loadSnarkjs } from './snarkjs.js';

export type { Groth16Proof } from 'snarkjs';

/** A proof and the public signals it is about (`[...outputs, ...inputs]`, field elements as decimal strings). */
export interface ZkProof {
  proof: Groth16Proof;
  publicSignals: string[];
}

/** A proof of one inference, marked with the circuit and the setup its key came from. */
export interface InferenceProof extends ZkProof {
  /** The circuit proved (SHA-256 of its R1CS). */
  r1csHash: string;
  /** `local-dev` proofs are for development only: the key's maker could forge them. */
  setup: SetupKind;
}

/**
 * The full witness (wire 0 = 1, then public outputs, public inputs, the rest) for a quantized
 * input row, as the circuit's generated witness calculator computes it.
 *
 * @example
 * ```ts
 * const witness = await computeWitness(circuit.wasm, quantizeInput(fixed, row));
 * ```
 */
export async function computeWitness(wasm: Uint8Array, input: readonly bigint[]): Promise<bigint[]> {
  const snarkjs = await loadSnarkjs();
  const out = memFile();
  try {
    await snarkjs.wtns.calculate({ in: encodeSignals(input) }, wasm, out);
  } catch (cause) {
    throw witnessError(cause);
  }
  return parseWtns(out.data as Uint8Array);
}

/**
 * Proves one inference: the quantized input row in (`encodeInput`), a Groth16 proof and the
 * public signals out, marked with the circuit's R1CS hash and the kind of setup of the key.
 *
 * @example
 * ```ts
 * const { proof, publicSignals, setup } = await prove(circuit, keys, encodeInput(model, row));
 * setup; // 'local-dev'
 * ```
 */
export async function prove(
  circuit: { wasm: Uint8Array },
  keys: Pick<CircuitKeys, 'zkey' | 'setup' | 'r1csHash'>,
  input: readonly bigint[],
): Promise<InferenceProof> {
  const snarkjs = await loadSnarkjs();
  const witness = memFile();
  try {
    await snarkjs.wtns.calculate({ in: encodeSignals(input) }, circuit.wasm, witness);
  } catch (cause) {
    throw witnessError(cause);
  }
  const { proof, publicSignals } = await snarkjs.groth16.prove(keys.zkey, witness);
  return { proof, publicSignals, r1csHash: keys.r1csHash, setup: keys.setup };
}

/**
 * A proof from a witness given as is (not computed from an input), e.g. a doctored one in a
 * soundness test: snarkjs does not check the witness, so a bad one gives a proof that fails
 * verification.
 *
 * @example
 * ```ts
 * const forged = await proveWitness(keys.zkey, tamperedWitness);
 * ```
 */
export async function proveWitness(zkey: Uint8Array, witness: readonly bigint[]): Promise<ZkProof> {
  const snarkjs = await loadSnarkjs();
  return snarkjs.groth16.prove(zkey, { type: 'mem', data: encodeWtns(witness) });
}

/**
 * True iff `proof` is a valid Groth16 proof for `publicSignals` under `verificationKey`. Never
 * throws on untrusted input: anything malformed (not a point, not on the curve, not a canonical
 * field element, wrong count) is simply not valid.
 *
 * @example
 * ```ts
 * await verifyProof(keys.verificationKey, proof, publicSignals); // true
 * ```
 */
export async function verifyProof(
  verificationKey: VerificationKey,
  proof: Groth16Proof,
  publicSignals: readonly string[],
): Promise<boolean> {
  if (!isProofShape(proof) || !Array.isArray(publicSignals)) return false;
  if (typeof verificationKey !== 'object' || verificationKey === null) return false;
  if (verificationKey.protocol !== 'groth16' || verificationKey.nPublic !== publicSignals.length) return false;
  if (!publicSignals.every(isFieldElement)) return false;
  const snarkjs = await loadSnarkjs();
  // snarkjs logs "Invalid proof" through console when given no logger and the pairing fails.
  const silent = { info() {}, warn() {}, error() {}, debug() {} };
  try {
    return (await snarkjs.groth16.verify(verificationKey, publicSignals, proof, silent)) === true;
  } catch {
    return false;
  }
}

function isFieldElement(s: unknown): boolean {
  return typeof s === 'string' && /^(0|[1-9][0-9]{0,76})$/.test(s) && BigInt(s) < FIELD_PRIME;
}

function isCoordinate(s: unknown): boolean {
  return typeof s === 'string' && /^(0|[1-9][0-9]{0,77})$/.test(s);
}

function isProofShape(p: unknown): p is Groth16Proof {
  if (typeof p !== 'object' || p === null) return false;
  const { pi_a, pi_b, pi_c, protocol } = p as Record<string, unknown>;
  const g1 = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every(isCoordinate);
  const g2 = (v: unknown) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => Array.isArray(x) && x.length === 2 && x.every(isCoordinate));
  return (protocol === undefined || protocol === 'groth16') && g1(pi_a) && g2(pi_b) && g1(pi_c);
}

function memFile(): MemFile {
  return { type: 'mem' };
}

function witnessError(cause: unknown): VerityError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new VerityError('INVALID_ARGUMENT', `the circuit rejects this input: ${reason.slice(0, 300)}`, {
    details: { reason: reason.slice(0, 2000) },
    cause,
  });
}
