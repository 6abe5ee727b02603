import type { ZkEvidence } from '@verity/protocol';
import type { Address, PublicClient } from 'viem';

/** `verifyProof` of a snarkjs Groth16 verifier with `n` public signals. */
function verifierAbi(n: number) {
  return [
    {
      type: 'function',
      name: 'verifyProof',
      stateMutability: 'view',
      inputs: [
        { name: '_pA', type: 'uint256[2]' },
        { name: '_pB', type: 'uint256[2][2]' },
        { name: '_pC', type: 'uint256[2]' },
        { name: '_pubSignals', type: `uint256[${n}]` },
      ],
      outputs: [{ name: '', type: 'bool' }],
    },
  ] as const;
}

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
  if (!Array.isArray(publicSignals) || publicSignals.length === 0) return undefined;
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

/**
 * Checks a zk bundle's Groth16 proof with the model's Solidity verifier on chain (a view call:
 * free, no transaction), e.g. at the address `GET /v1/models/:ref` gives as `zk.verifier`.
 * `true` iff the contract accepts the proof for these public signals; `false` for a proof or
 * signals it rejects or that cannot be encoded (wrong shape, not decimal, a signal count other
 * than the contract's). Throws only if the chain cannot be reached.
 *
 * This checks the proof against the key the contract was generated from: check that the
 * contract is the one for the manifest's key (or trust whoever deployed it), and the rest of the
 * bundle with `verifyZkBundle`. Do not pass a gas limit from `eth_estimateGas`: the verifier
 * answers `false`, without reverting, when its precompile calls run short of gas.
 *
 * @example
 * ```ts
 * const { zk } = await client.model('iris@1.0.0'); // zk.verifier.address
 * await verifyZkProofOnChain(publicClient, zk.verifier.address, bundle.zk); // true
 * ```
 */
export async function verifyZkProofOnChain(
  publicClient: Pick<PublicClient, 'readContract'>,
  address: Address,
  zk: Pick<ZkEvidence, 'proof' | 'publicSignals'> & { readonly vk?: unknown },
): Promise<boolean> {
  const args = callArgs(zk);
  if (args === undefined) return false;
  // The contract ignores calldata past its fixed signal array: with the key at hand, extra (or
  // missing) signals are refused here rather than silently cut off.
  const nPublic = (zk.vk as { nPublic?: unknown } | undefined)?.nPublic;
  if (typeof nPublic === 'number' && args[3].length !== nPublic) return false;
  try {
    return await publicClient.readContract({
      address,
      abi: verifierAbi(args[3].length),
      functionName: 'verifyProof',
      args: args as never,
    });
  } catch (e) {
    // A call that reverts (e.g. a signal count the contract does not take) is a rejection.
    if ((e as { name?: string }).name === 'ContractFunctionExecutionError' && /revert/i.test(String(e))) return false;
    throw e;
  }
}
