/**
 * On-chain verification of Groth16 proofs: the `verifyProof(a, b, c, input)` arguments of a
 * snarkjs proof. The verifier itself is not generated per key here: every verifier is one fixed
 * template (`Groth16Verifier`, compiled with Verity's contracts) followed by the encoded key, so
 * the code of a key's verifier is a pure function of the key. `@verity/contracts` has it all:
 * `zkVerifierCode(vk)`, `deployZkVerifier`, `registerZkVerifier` and the registry that maps a key
 * to its verifier (`ZkVerifierRegistry`, packages/zk/README.md "On chain").
 */

import { fail, VerityError } from '@verity/protocol';
import type { Groth16Proof } from 'snarkjs';

/** `verifyProof`'s arguments: `a` (G1), `b` (G2, each coordinate as `[c1, c0]`), `c` (G1), the public signals. */
export type SolidityCallArgs = readonly [
  readonly [bigint, bigint],
  readonly [readonly [bigint, bigint], readonly [bigint, bigint]],
  readonly [bigint, bigint],
  readonly bigint[],
];

const UINT256_MAX = (1n << 256n) - 1n;

function uint(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^[0-9]{1,78}$/.test(value)) {
    fail('INVALID_ARGUMENT', `${what} must be a decimal string`, { value: String(value) });
  }
  const v = BigInt(value);
  if (v > UINT256_MAX) fail('INVALID_ARGUMENT', `${what} does not fit in a uint256`, { value });
  return v;
}

function pair(list: unknown, what: string): [unknown, unknown] {
  if (!Array.isArray(list) || list.length < 2) fail('INVALID_ARGUMENT', `${what} must be a list of coordinates`);
  return [list[0], list[1]];
}

/**
 * The arguments of the verifier's `verifyProof(a, b, c, input)` for a snarkjs proof: the affine
 * coordinates of `pi_a` and `pi_c`, `pi_b`'s Fp2 coordinates each swapped to `[c1, c0]` (the EVM
 * pairing precompile's order, as `groth16.exportSolidityCallData` does), and the public signals.
 * Values are not checked against the field: that is the contract's job (a signal ≥ p is answered
 * `false`). Throws `INVALID_ARGUMENT` for anything that cannot be ABI-encoded.
 *
 * @example
 * ```ts
 * const args = solidityCallArgs(proof, publicSignals);
 * await publicClient.readContract({ address, abi: zkVerifierAbi, functionName: 'verifyProof', args }); // true
 * ```
 */
export function solidityCallArgs(
  proof: Pick<Groth16Proof, 'pi_a' | 'pi_b' | 'pi_c'>,
  publicSignals: readonly string[],
): SolidityCallArgs {
  if (typeof proof !== 'object' || proof === null) throw new VerityError('INVALID_ARGUMENT', 'not a Groth16 proof');
  const [ax, ay] = pair(proof.pi_a, 'pi_a');
  const [bx, by] = pair(proof.pi_b, 'pi_b');
  const [bx0, bx1] = pair(bx, 'pi_b[0]');
  const [by0, by1] = pair(by, 'pi_b[1]');
  const [cx, cy] = pair(proof.pi_c, 'pi_c');
  if (!Array.isArray(publicSignals)) fail('INVALID_ARGUMENT', 'publicSignals must be a list');
  return [
    [uint(ax, 'pi_a[0]'), uint(ay, 'pi_a[1]')],
    [
      [uint(bx1, 'pi_b[0][1]'), uint(bx0, 'pi_b[0][0]')],
      [uint(by1, 'pi_b[1][1]'), uint(by0, 'pi_b[1][0]')],
    ],
    [uint(cx, 'pi_c[0]'), uint(cy, 'pi_c[1]')],
    publicSignals.map((s, i) => uint(s, `publicSignals[${i}]`)),
  ];
}
