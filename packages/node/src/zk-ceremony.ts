/**
 * The node's side of phase-2 ceremonies (docs/design.md §2.6): reading a ceremony's record from
 * the chain the node runs on.
 */
import { readCeremony } from '@verity/contracts';
import { fail, type ZkPhase2 } from '@verity/protocol';
import type { Address, Hex } from 'viem';
import type { NodeContext } from './context.js';
import type { CeremonyRecordLike } from './zk-service.js';

/**
 * The on-chain record of the ceremony a manifest names. `ZK_SETUP_UNTRUSTED` when the node runs
 * on no chain or on another one than the ceremony's.
 *
 * @example
 * ```ts
 * const record = await readCeremonyRecord(ctx, zkFacts(manifest).phase2);
 * ```
 */
export async function readCeremonyRecord(ctx: NodeContext, ref: ZkPhase2): Promise<CeremonyRecordLike> {
  const chain = ctx.chain;
  if (chain === undefined || chain.deployment.chainId !== ref.chainId) {
    fail('ZK_SETUP_UNTRUSTED', 'the ceremony is on a chain this node does not run on', { ...ref });
  }
  return readCeremony(chain.publicClient, ref.address as Address, ref.id as Hex);
}
