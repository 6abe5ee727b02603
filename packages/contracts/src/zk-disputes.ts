/**
 * Settling a dispute over a `zk` record by a Groth16 proof (`Disputes.settleByProof`,
 * docs/protocol.md §15.7): anyone sends the disputed record's bytes, the challenge's input bytes
 * and a proof with its public signals; the contract checks the input signals against the input,
 * the proof under the key the model is bound to (`ZkVerifierRegistry.bindModel`), computes the
 * output digest the proof establishes and resolves at once. Reverts become `VerityError`s with
 * `DISPUTE_*` codes (chain-error.ts).
 */
import { fail } from '@verity/protocol';
import { type Address, type Hex, parseEventLogs, type TransactionReceipt, toHex } from 'viem';
import { address, type ChainClients, sendAndConfirm } from './clients.js';
import { DISPUTE_OUTCOMES, type DisputeOutcome } from './disputes.js';
import { disputesAbi } from './generated/disputes.js';
import { zkVerifierRegistryAbi } from './generated/zk-verifier-registry.js';

/**
 * `Disputes` with the errors of `ZkVerifierRegistry.provenOutput`, which a settlement passes on
 * (an input that does not match, malformed signals, a proof that does not verify).
 */
const settleAbi = [...disputesAbi, ...zkVerifierRegistryAbi.filter((item) => item.type === 'error')] as const;

/**
 * A proof in the form a verifier's `verifyProof(a, b, c, input)` takes it: `@verity/zk`'s
 * `solidityCallArgs(proof, publicSignals)` (pi_b's coordinates as `[c1, c0]`).
 */
export type ZkProofCall = readonly [
  readonly [bigint, bigint],
  readonly [readonly [bigint, bigint], readonly [bigint, bigint]],
  readonly [bigint, bigint],
  readonly bigint[],
];

/** Parameters of {@link settleDisputeByProof}. */
export interface SettleByProofParams {
  readonly disputes: Address;
  readonly id: bigint;
  /** The disputed record's canonical bytes (`encodeRecord`). */
  readonly record: Uint8Array | Hex;
  /** The challenge's input bytes (in the `Challenged` event). */
  readonly input: Uint8Array | Hex;
  /** The proof and its public signals `[...out, ...in]`. */
  readonly proof: ZkProofCall;
}

/** What {@link settleDisputeByProof} settled (the `SettledByProof` and `Resolved` events). */
export interface ProofSettlement {
  /** `node-lied` (the proven output is not the record's) or `challenge-failed`. */
  readonly outcome: DisputeOutcome;
  /** The output digest the proof establishes. */
  readonly provenOutput: Hex;
  readonly vkKey: Hex;
  readonly slashed: bigint;
  readonly challengerPaid: bigint;
  readonly burned: bigint;
  readonly receipt: TransactionReceipt;
}

/**
 * Settles an open dispute over a `zk` record with a proof of the record's input. Refusals:
 * `DISPUTE_NOT_FOUND`, `DISPUTE_WRONG_PHASE` (resolved already), `DISPUTE_RECORD_INVALID` (not the
 * disputed record), `DISPUTE_INPUT_MISMATCH` (not the challenge's input bytes),
 * `DISPUTE_ZK_NOT_ZK_RECORD` (an `onnx` or `llm` record: to the jury), `DISPUTE_ZK_UNBOUND` (the
 * model has no binding, or got it after the record), `DISPUTE_ZK_SIGNALS_INVALID`,
 * `DISPUTE_ZK_INPUT_MISMATCH` (the proof is about another input), `DISPUTE_ZK_PROOF_INVALID`.
 *
 * @example
 * ```ts
 * const { outcome } = await settleDisputeByProof(clients, { disputes, id, record, input, proof: solidityCallArgs(proof, publicSignals) });
 * ```
 */
export async function settleDisputeByProof(
  clients: ChainClients,
  params: SettleByProofParams,
): Promise<ProofSettlement> {
  const hex = (v: Uint8Array | Hex): Hex => (v instanceof Uint8Array ? toHex(v) : v);
  const [a, b, c, signals] = params.proof;
  const { walletClient } = clients;
  const receipt = await sendAndConfirm(clients, 'settleByProof', () =>
    walletClient.writeContract({
      address: address(params.disputes, 'disputes'),
      abi: settleAbi,
      functionName: 'settleByProof',
      args: [params.id, hex(params.record), hex(params.input), a, b, c, signals],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  const [settled] = parseEventLogs({ abi: disputesAbi, logs: receipt.logs, eventName: 'SettledByProof' });
  const [resolved] = parseEventLogs({ abi: disputesAbi, logs: receipt.logs, eventName: 'Resolved' });
  if (settled === undefined || resolved === undefined) {
    return fail('INTERNAL', 'settleByProof: no SettledByProof or Resolved event in the receipt');
  }
  return {
    outcome:
      DISPUTE_OUTCOMES[resolved.args.outcome] ??
      fail('RESPONSE_INVALID', 'unknown dispute outcome', { outcome: resolved.args.outcome }),
    provenOutput: settled.args.provenOutput,
    vkKey: settled.args.vkKey,
    slashed: resolved.args.slashed,
    challengerPaid: resolved.args.challengerPaid,
    burned: resolved.args.burned,
    receipt,
  };
}
