/**
 * Linking a bundle to the chain (docs/design.md §2.4): a node anchors (tree size, root) of its log in
 * `LogAnchor`; a bundle can carry, per receipt, a consistency proof between the receipt's
 * checkpoint and the node's latest anchor. A verifier that trusts the anchored root (read from
 * the chain: {@link anchorTrust}) then knows the receipt is in the one history the node committed
 * to on chain: a node that rewrites or truncates its log after anchoring cannot produce such a
 * proof (`BUNDLE_CONSISTENCY_INVALID`, or `BUNDLE_ANCHOR_MISMATCH` at the anchored size).
 */
import { getLatestAnchor } from '@verity/contracts';
import {
  type Bundle,
  type ConsistencyEvidence,
  parseCheckpoint,
  type Trust,
  type TrustedAnchor,
  VerityError,
} from '@verity/protocol';
import { createPublicClient, http, type PublicClient } from 'viem';
import type { ClientBase } from '../client.js';

/** Where anchors are read from. */
export interface AnchorSource {
  readonly rpcUrl: string;
  /** The `LogAnchor` address (from the deployment file). */
  readonly logAnchor: `0x${string}`;
}

/** Each receipt's node's latest anchor, read from the chain (at `block`, default latest). */
export async function anchorTrust(
  source: AnchorSource,
  nodes: readonly string[],
  block?: bigint,
): Promise<TrustedAnchor[]> {
  const publicClient = createPublicClient({ transport: http(source.rpcUrl) }) as PublicClient;
  const anchors: TrustedAnchor[] = [];
  for (const node of new Set(nodes.map((n) => n.toLowerCase()))) {
    const a = await getLatestAnchor(publicClient, {
      logAnchor: source.logAnchor,
      node: node as `0x${string}`,
      ...(block === undefined ? {} : { blockNumber: block }),
    });
    if (a !== undefined) anchors.push({ node, size: Number(a.treeSize), rootHash: a.rootHash.slice(2) });
  }
  return anchors;
}

/**
 * Adds to `bundle` a consistency proof from each receipt's checkpoint to its node's anchor in
 * `anchors`, fetched from the node (`GET /v1/log/proof`); returns the new bundle and the trust
 * that requires those anchors. The proof is checked by `verifyBundle`, not here.
 *
 * @example
 * ```ts
 * const anchors = await anchorTrust(source, bundle.receipts.map((r) => r.record.node));
 * const linked = await linkToAnchors(client, bundle, anchors);
 * verifyBundle(linked, { ...trust, anchors }, { requireAnchor: true });
 * ```
 */
export async function linkToAnchors(
  client: ClientBase,
  bundle: Bundle,
  anchors: readonly TrustedAnchor[],
  /** Each node's URL by lower-case address (default: the client's node, for its own receipts). */
  endpoints: ReadonlyMap<string, string> = new Map(),
): Promise<Bundle> {
  const consistency: ConsistencyEvidence[] = [...(bundle.consistency ?? [])];
  for (const receipt of bundle.receipts) {
    const node = receipt.record.node.toLowerCase();
    const anchor = anchors.find((a) => a.node.toLowerCase() === node);
    if (!anchor) continue;
    const size = parseCheckpoint(`${receipt.checkpoint.split('\n\n')[0]}\n`).size;
    if (size === anchor.size) continue; // same size: the roots are compared directly
    const [from, to] = size < anchor.size ? [size, anchor.size] : [anchor.size, size];
    const base = endpoints.get(node) ?? client.url;
    const response = await client.fetch(`${base}/v1/log/proof?from=${from}&to=${to}`);
    if (!response.ok) {
      throw new VerityError('RESPONSE_INVALID', `the node gave no consistency proof from ${from} to ${to}`, {
        details: { status: response.status, node },
      });
    }
    const body = (await response.json()) as { proof?: string[] };
    consistency.push({ node: receipt.record.node, size1: from, size2: to, proof: body.proof ?? [] });
  }
  return { ...bundle, consistency };
}

/** Trust plus the anchors, for {@link linkToAnchors}'s bundles (use with `requireAnchor`). */
export function withAnchors(trust: Trust, anchors: readonly TrustedAnchor[]): Trust {
  return { ...trust, anchors: [...(trust.anchors ?? []), ...anchors] };
}
