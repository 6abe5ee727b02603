/**
 * Checking a zk bundle's Groth16 proof on chain, with the verifier that `ZkVerifierRegistry`
 * files under the proof's verification key (docs/design.md §2.6; packages/zk/README.md "On
 * chain"). The verifier's address never comes from a node: it is looked up by `vkKey` in the
 * registry of the deployment the caller trusts, and its code is compared with the code generated
 * from the key.
 */

import { chainError, zkVerifierAbi, zkVerifierCode, zkVerifierOf } from '@verity/contracts';
import { VerityError, type ZkEvidence, zkVkKey } from '@verity/protocol';
import type { Address, PublicClient } from 'viem';

const UINT = /^[0-9]{1,78}$/;
const MAX = (1n << 256n) - 1n;

function uint(v: unknown): bigint | undefined {
  if (typeof v !== 'string' || !UINT.test(v)) return undefined;
  const n = BigInt(v);
  return n > MAX ? undefined : n;
}

/** The `(a, b, c, input)` arguments, pi_b's Fp2 coordinates as `[c1, c0]`; undefined if not encodable. */
function callArgs(zk: Pick<ZkEvidence, 'proof' | 'publicSignals'>) {
  const { proof, publicSignals } = zk;
  const pt = (p: unknown, i: number, j?: number): bigint | undefined => {
    const row = Array.isArray(p) ? p[i] : undefined;
    return j === undefined ? uint(row) : uint(Array.isArray(row) ? row[j] : undefined);
  };
  const values = [
    pt(proof?.pi_a, 0),
    pt(proof?.pi_a, 1),
    pt(proof?.pi_b, 0, 1),
    pt(proof?.pi_b, 0, 0),
    pt(proof?.pi_b, 1, 1),
    pt(proof?.pi_b, 1, 0),
    pt(proof?.pi_c, 0),
    pt(proof?.pi_c, 1),
  ];
  if (!Array.isArray(publicSignals)) return undefined;
  const signals = publicSignals.map(uint);
  if (values.some((v) => v === undefined) || signals.some((v) => v === undefined)) return undefined;
  const [ax, ay, b00, b01, b10, b11, cx, cy] = values as bigint[];
  return [
    [ax, ay],
    [
      [b00, b01],
      [b10, b11],
    ],
    [cx, cy],
    signals as bigint[],
  ] as const;
}

/** Parameters of {@link verifyZkProofOnChain}. */
export interface VerifyZkOnChainParams {
  /** `ZkVerifierRegistry` of the deployment the caller trusts (`deployment.contracts.zkVerifiers`). */
  readonly zkVerifiers: Address;
}

/**
 * Checks a zk bundle's Groth16 proof on chain (a view call: free, no transaction) with the
 * verifier `ZkVerifierRegistry` files under the proof's key: `vkKey = zkVkKey(zk.vk)`.
 * Throws `ZK_VERIFIER_UNREGISTERED` when no verifier is registered for the key, and
 * `ZK_VERIFIER_CODE_MISMATCH` when the code at the registered address is not
 * `zkVerifierCode(zk.vk)` (possible only with a registry that is not Verity's: the code is checked
 * here as well, so a wrong registry address cannot make a substitute verifier count).
 * `true` iff the verifier accepts the proof for these public signals; `false` for a proof or
 * signals it rejects or that cannot be encoded, or a signal count other than `vk.nPublic`. An
 * unreachable chain throws (`CHAIN_UNAVAILABLE`); a malformed key `INVALID_ARGUMENT`.
 *
 * This checks the proof against `zk.vk`: that the key is the one the model's manifest commits to
 * (and that it was audited) is `verifyZkBundle`'s job. Do not pass a gas limit from
 * `eth_estimateGas`: the verifier answers `false`, without reverting, when its precompile calls
 * run short of gas.
 *
 * @example
 * ```ts
 * const ok = await verifyZkProofOnChain(publicClient, { zkVerifiers: deployment.contracts.zkVerifiers }, bundle.zk);
 * ```
 */
export async function verifyZkProofOnChain(
  publicClient: Pick<PublicClient, 'readContract' | 'getCode'>,
  params: VerifyZkOnChainParams,
  zk: Pick<ZkEvidence, 'proof' | 'publicSignals' | 'vk'>,
): Promise<boolean> {
  const vkKey = zkVkKey(zk.vk);
  const verifier = await zkVerifierOf(publicClient, { zkVerifiers: params.zkVerifiers, vkKey });
  if (verifier === undefined) {
    throw new VerityError('ZK_VERIFIER_UNREGISTERED', 'no verifier is registered for this verification key', {
      details: { vkKey, zkVerifiers: params.zkVerifiers },
    });
  }
  let code: string | undefined;
  try {
    code = await publicClient.getCode({ address: verifier });
  } catch (e) {
    throw chainError(e, 'verifyZkProofOnChain');
  }
  if ((code ?? '0x').toLowerCase() !== zkVerifierCode(zk.vk).toLowerCase()) {
    throw new VerityError('ZK_VERIFIER_CODE_MISMATCH', 'the registered verifier’s code is not the one for this key', {
      details: { vkKey, verifier },
    });
  }
  const args = callArgs(zk);
  if (args === undefined || args[3].length !== (zk.vk as { nPublic?: unknown }).nPublic) return false;
  // The verifier answers false for anything it refuses; only calldata its ABI decoder cannot
  // read reverts, and these arguments are always well-formed.
  try {
    return await publicClient.readContract({
      address: verifier,
      abi: zkVerifierAbi,
      functionName: 'verifyProof',
      args: args as never,
    });
  } catch (e) {
    throw chainError(e, 'verifyZkProofOnChain');
  }
}
