/**
 * `verity verify FILE --block NUMBER:HASH --deployment FILE`: trust from the registry proof the
 * bundle carries, checked against a block the user pins (from a block explorer, their own node,
 * a friend), with no network access (docs/protocol.md §13). `verify.ts` calls
 * {@link offlineTrust} when `--block` is given and verifies the bundle with the trust it returns.
 */
import { readDeploymentFile } from '@verity/contracts/node';
import type { PinnedBlock, Trust, TrustedNode } from '@verity/protocol';
import { trustFromRegistryProof } from '@verity/sdk';
import { UsageError } from '../usage.js';

/** `--block` forms: `NUMBER:HASH` (decimal number, 32-byte 0x hash), or the block header's RLP in hex. */
const NUMBER_HASH = /^(0|[1-9][0-9]{0,15}):(0x[0-9a-fA-F]{64})$/;
const HEADER = /^0x(?:[0-9a-fA-F]{2}){100,8192}$/;

/**
 * Parses `--block`: `NUMBER:HASH`, or a block header (RLP hex) the user trusts.
 *
 * @example
 * ```ts
 * parsePinnedBlock('120:0x5c…') // { number: 120, hash: '0x5c…' }
 * ```
 */
export function parsePinnedBlock(text: string): PinnedBlock {
  const m = NUMBER_HASH.exec(text);
  if (m !== null) {
    const number = Number(m[1]);
    if (Number.isSafeInteger(number)) return { number, hash: (m[2] as string).toLowerCase() };
  }
  if (HEADER.test(text)) return { header: text.toLowerCase() };
  throw new UsageError('--block takes NUMBER:HASH (e.g. 120:0x5c…, 32-byte hash) or a block header in RLP hex');
}

/** What `--block` and `--deployment` say. */
export interface OfflineTrustFlags {
  /** `--block`: the pinned block. */
  readonly block: string;
  /** `--deployment`: the deployment file (chain id, NodeRegistry address, minStake). */
  readonly deployment: string | undefined;
  /** `--node/--key` pairs, trusted besides the registry. */
  readonly nodes?: readonly TrustedNode[];
}

/**
 * The trust of a bundle's registry proof under the pinned block and the deployment file. Throws
 * `UsageError` for bad flags, and a `VerityError` with the proof's code (`REGISTRY_PROOF_MISSING`,
 * `REGISTRY_HEADER_MISMATCH`, `REGISTRY_STORAGE_PROOF_INVALID`, …) when the proof does not hold:
 * report that as a failed verification.
 *
 * @example
 * ```ts
 * const trust = await offlineTrust(JSON.parse(text), { block: '120:0x5c…', deployment: 'deployment.json' });
 * report(verifyBundle(value, trust, options));
 * ```
 */
export async function offlineTrust(bundle: unknown, flags: OfflineTrustFlags): Promise<Trust> {
  const block = parsePinnedBlock(flags.block);
  if (flags.deployment === undefined) {
    throw new UsageError('--block needs --deployment FILE (the chain id, NodeRegistry and minStake to trust)');
  }
  const d = await readDeploymentFile(flags.deployment);
  return trustFromRegistryProof(bundle, {
    block,
    deployment: { chainId: d.chainId, nodeRegistry: d.contracts.nodeRegistry, minStake: d.params.minStake },
    ...(flags.nodes === undefined ? {} : { nodes: flags.nodes }),
  });
}
