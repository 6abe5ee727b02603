/**
 * Where an audited answer stands on chain (docs/protocol.md §16): `pending` while anyone may still
 * challenge its record in `Disputes`, `final` once the challenge window passed with no dispute lost
 * by the node, `disputed` while a dispute over it is open, `refuted` once its node was slashed for
 * it. Everything is read from the chain the caller names (the node only supplies an inclusion
 * proof, checked against the root the node anchored), at one block.
 *
 * The record's timestamp is the node's word, and the window runs from it. A node that backdates a
 * record (or anchors it only after its window closed) would make it look final at once, although
 * nobody could ever have challenged it. So the status also needs the time the record was first
 * anchored (the block time of the node's first `Anchored` event whose tree covers the record's
 * index, whose root must include the record): a timestamp earlier than that minus `toleranceSeconds`
 * is `AUDIT_TIMESTAMP_STALE`, never `final`; so is a record first anchored after its window closed.
 */
import {
  type Deployment,
  type DisputeOutcome,
  type DisputePhase,
  disputesAbi,
  getAnchorHistory,
  getDispute,
  getDisputeRules,
  getNode,
} from '@verity/contracts';
import {
  encodeRecord,
  fromHex,
  hashLeaf,
  type InferenceRecord,
  isVerityError,
  toHex,
  VerityError,
  verifyInclusion,
} from '@verity/protocol';
import type { PublicClient } from 'viem';
import type { ClientBase } from '../client.js';

/** Default tolerance between a record's timestamp and its first anchor: one hour (see {@link AuditStatusOptions}). */
export const DEFAULT_ANCHOR_TOLERANCE_SECONDS = 3600;

/** The chain and the node to read an audit status from, without a client. */
export interface AuditStatusSource {
  readonly publicClient: PublicClient;
  /** The deployment (its `Disputes` and `LogAnchor`, and the block to search events from). */
  readonly deployment: Deployment;
  /**
   * Where to ask for the record's inclusion proof at its first covering anchor (checked against
   * the anchored root, so any copy of the log will do); default: the endpoint the record's node
   * registered in `NodeRegistry`.
   */
  readonly nodeUrl?: string;
  readonly fetch?: typeof fetch;
}

export interface AuditStatusOptions {
  /**
   * Seconds a record's timestamp may precede the block time of the first anchor that covers it
   * (default {@link DEFAULT_ANCHOR_TOLERANCE_SECONDS}). It must exceed the node's anchoring
   * interval (`chain.anchorIntervalMs`, 10 s by default) plus the time its anchor takes to be
   * mined; the window in which the record could really be challenged is then at least
   * `challengeWindow − toleranceSeconds`.
   */
  readonly toleranceSeconds?: number;
  /** The block to read at (default: the latest). */
  readonly blockNumber?: bigint;
}

/** A dispute over the record, as the chain has it. */
export interface AuditDispute {
  readonly id: bigint;
  readonly phase: DisputePhase;
  readonly outcome: DisputeOutcome;
  /** The block of its `Challenged` event. */
  readonly block: bigint;
}

/** What {@link auditStatus} found. */
export interface AuditStatus {
  /**
   * `pending`: the window is open and the node lost no dispute so far; `final`: the window passed
   * and the node lost no dispute over this record; `disputed`: a dispute is open (`openDispute`);
   * `refuted`: the node was slashed for this record (`slashedRecord`).
   */
  readonly status: 'pending' | 'final' | 'disputed' | 'refuted';
  /** The RFC 9162 leaf hash of the record (the key `Disputes` keeps per record). */
  readonly leaf: `0x${string}`;
  /** The block everything was read at, and its time (unix seconds). */
  readonly block: bigint;
  readonly blockTime: bigint;
  /** Unix seconds after which `Disputes` refuses a challenge: floor(timestamp / 1000) + challengeWindow. */
  readonly windowClosesAt: bigint;
  /** The node's first anchor that covers the record (absent while none does: `pending` only). */
  readonly anchor?: { readonly treeSize: bigint; readonly block: bigint; readonly time: bigint };
  /** Every dispute ever opened over this record, oldest first. */
  readonly disputes: readonly AuditDispute[];
  /** The open dispute's id (`disputed`), or the one that slashed the node (`refuted`). */
  readonly disputeId?: bigint;
}

function sourceOf(source: ClientBase | AuditStatusSource): AuditStatusSource & { fetch: typeof fetch } {
  if ('publicClient' in source) return { fetch: globalThis.fetch.bind(globalThis), ...source };
  if (source.chain === undefined) {
    throw new VerityError('TRUST_UNCONFIGURED', 'an audit status is read from a chain: give the client `chain`');
  }
  return {
    publicClient: source.chain.publicClient,
    deployment: source.chain.deployment,
    nodeUrl: source.url,
    fetch: source.fetch,
  };
}

/**
 * Reads the audit status of a record (a receipt's `record` and `leafIndex`) from the chain.
 * Throws `AUDIT_TIMESTAMP_STALE` when the record's timestamp is earlier than its first covering
 * anchor allows, `AUDIT_ANCHOR_INVALID` when that anchor's root does not include the record,
 * `TRUST_UNCONFIGURED` without a chain, and `INVALID_ARGUMENT` when the deployment has no `Disputes`.
 *
 * @example
 * ```ts
 * const answer = await verity.infer({ model: 'iris', input, mode: 'audited' });
 * const { status, windowClosesAt } = await auditStatus(verity.base, answer.receipt);
 * ```
 */
export async function auditStatus(
  source: ClientBase | AuditStatusSource,
  receipt: { readonly record: InferenceRecord; readonly leafIndex: number },
  options: AuditStatusOptions = {},
): Promise<AuditStatus> {
  const { publicClient, deployment, nodeUrl, fetch: f } = sourceOf(source);
  const disputes = deployment.contracts.disputes;
  if (disputes === undefined) {
    throw new VerityError('INVALID_ARGUMENT', 'the deployment has no Disputes contract: no record can be audited');
  }
  const tolerance = BigInt(options.toleranceSeconds ?? DEFAULT_ANCHOR_TOLERANCE_SECONDS);
  const { record, leafIndex } = receipt;
  const leafBytes = hashLeaf(encodeRecord(record));
  const leaf = `0x${toHex(leafBytes)}` as const;
  const node = record.node as `0x${string}`;

  const block = await publicClient.getBlock(
    options.blockNumber === undefined ? { blockTag: 'latest' } : { blockNumber: options.blockNumber },
  );
  const at = { blockNumber: block.number };
  const [rules, open, slashed, challenged, anchors] = await Promise.all([
    getDisputeRules(publicClient, { disputes, ...at }),
    publicClient.readContract({
      address: disputes,
      abi: disputesAbi,
      functionName: 'openDispute',
      args: [leaf],
      ...at,
    }),
    publicClient.readContract({
      address: disputes,
      abi: disputesAbi,
      functionName: 'slashedRecord',
      args: [leaf],
      ...at,
    }),
    // `leaf` is not indexed: the node is, and the leaf is matched in each event.
    publicClient.getContractEvents({
      address: disputes,
      abi: disputesAbi,
      eventName: 'Challenged',
      args: { node },
      fromBlock: deployment.block,
      toBlock: block.number,
      strict: true,
    }),
    getAnchorHistory(publicClient, {
      logAnchor: deployment.contracts.logAnchor,
      node,
      fromBlock: deployment.block,
      toBlock: block.number,
    }),
  ]);
  const windowClosesAt = BigInt(Math.floor(record.timestamp / 1000)) + BigInt(rules.challengeWindow);
  const stated = BigInt(Math.floor(record.timestamp / 1000));

  const ours = challenged.filter((e) => e.args.leaf.toLowerCase() === leaf);
  const found: AuditDispute[] = [];
  for (const e of ours) {
    const d = await getDispute(publicClient, { disputes, id: e.args.id, ...at });
    found.push({
      id: e.args.id,
      phase: d.phase,
      outcome: d.outcome,
      block: e.blockNumber,
    });
  }
  const base = { leaf, block: block.number, blockTime: block.timestamp, windowClosesAt, disputes: found };

  // The chain's verdicts stand whatever the timestamp: a slash or an open dispute is on chain.
  if (slashed) {
    const lost = found.find((d) => d.outcome === 'node-lied');
    return { ...base, status: 'refuted', ...(lost === undefined ? {} : { disputeId: lost.id }) };
  }
  if (open !== 0n) return { ...base, status: 'disputed', disputeId: open };

  // The first anchor whose tree covers the record, and whose root must include it.
  // It must be anchored within the tolerance, and before its window closed (nobody could
  // challenge it otherwise: Disputes needs an anchored root).
  const latestAnchorTime = stated + tolerance < windowClosesAt ? stated + tolerance : windowClosesAt;
  const first = anchors.find((a) => a.treeSize > BigInt(leafIndex));
  if (first === undefined) {
    // Not anchored yet: nobody can challenge it yet, and any later anchor is later than now.
    if (latestAnchorTime < block.timestamp) stale(stated, block.timestamp, tolerance, undefined);
    return { ...base, status: 'pending' };
  }
  const url =
    nodeUrl ??
    (await getNode(publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, node, ...at }))?.endpoint ??
    '';
  await checkIncluded(f, url, leafBytes, leafIndex, first.treeSize, first.rootHash);
  const anchorBlock = await publicClient.getBlock({ blockNumber: first.blockNumber });
  const anchor = { treeSize: first.treeSize, block: first.blockNumber, time: anchorBlock.timestamp };
  if (latestAnchorTime < anchor.time) stale(stated, anchor.time, tolerance, anchor.block);
  return { ...base, anchor, status: block.timestamp > windowClosesAt ? 'final' : 'pending' };
}

function stale(stated: bigint, anchoredAt: bigint, tolerance: bigint, anchorBlock: bigint | undefined): never {
  throw new VerityError(
    'AUDIT_TIMESTAMP_STALE',
    `the record says ${stated} but was first anchored at ${anchoredAt} or later (tolerance ${tolerance} s, or its window's close): backdated, or anchored too late to be challenged in its window`,
    {
      details: {
        timestamp: stated.toString(),
        anchoredAt: anchoredAt.toString(),
        toleranceSeconds: tolerance.toString(),
        ...(anchorBlock === undefined ? {} : { anchorBlock: anchorBlock.toString() }),
      },
    },
  );
}

/** The node's inclusion proof of the leaf at `size`, checked against the root it anchored at that size. */
async function checkIncluded(
  f: typeof fetch,
  nodeUrl: string,
  leafHash: Uint8Array,
  index: number,
  size: bigint,
  rootHash: `0x${string}`,
): Promise<void> {
  const details = { index, size: size.toString() };
  try {
    const res = await f(`${nodeUrl.replace(/\/+$/, '')}/v1/log/proof?index=${index}&size=${size}`);
    if (!res.ok) throw new Error(`status ${res.status}`);
    const { proof } = (await res.json()) as { proof: unknown };
    if (!Array.isArray(proof) || !proof.every((h) => typeof h === 'string')) throw new Error('no proof');
    const hashes = (proof as string[]).map((h) => fromHex(h.replace(/^0x/, '')));
    verifyInclusion(leafHash, index, Number(size), hashes, fromHex(rootHash.slice(2)));
  } catch (e) {
    const why = isVerityError(e) ? e.code : (e as Error).message;
    throw new VerityError(
      'AUDIT_ANCHOR_INVALID',
      `the record is not proven in the tree of ${size} its node first anchored over index ${index}`,
      { details: { ...details, why }, cause: e },
    );
  }
}
