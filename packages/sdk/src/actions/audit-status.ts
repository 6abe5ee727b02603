/**
 * Where an audited answer stands on chain (docs/protocol.md §16): `pending` while anyone may still
 * challenge its record in `Disputes`, `final` once the challenge window passed with no dispute lost
 * by the node, `disputed` while a dispute over it is open, `refuted` once its node was slashed for
 * it. Everything is read from the chain the caller names (the node only supplies an inclusion
 * proof, checked against the root the node anchored), at one block.
 *
 * The window runs, as `Disputes` counts it, from the chain's time of the node's first anchor
 * whose tree covers the record (`LogAnchor.anchoredTree`; its root must include the record), not
 * from the record's timestamp, which is the node's word: backdating a record shortens nothing. A
 * record not anchored yet cannot be challenged at all, so it is `pending` with no window, and
 * `AUDIT_NOT_ANCHORED` once its stated time is more than `toleranceSeconds` ago (its node keeps it
 * out of reach of disputes). A record whose stated time is more than `toleranceSeconds` before its
 * first anchor misstates when it was answered: `AUDIT_TIMESTAMP_STALE`.
 */
import {
  type Deployment,
  type DisputeOutcome,
  type DisputePhase,
  disputesAbi,
  getAnchoredTree,
  getAnchorHistory,
  getDispute,
  getDisputeRules,
  getNode,
} from '@verity/contracts';
import {
  auditSampled,
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
   * mined. It bounds only how long a node may keep a record unanchored (`AUDIT_NOT_ANCHORED`) or
   * misstate its time (`AUDIT_TIMESTAMP_STALE`): the window itself is counted on chain from the anchor.
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
  /**
   * Unix seconds after which `Disputes` refuses a challenge: the first covering anchor's block
   * time + challengeWindow. Absent while no anchor covers the record (`pending` only).
   */
  readonly windowClosesAt?: bigint;
  /** The node's first anchor that covers the record (absent while none does: `pending` only). */
  readonly anchor?: { readonly treeSize: bigint; readonly block: bigint; readonly time: bigint };
  /**
   * The audit sample rate `Disputes` fixes (parts per million): before its seed block is mined,
   * the probability that an auditor following the rule checks this record.
   */
  readonly auditRatePpm: number;
  /**
   * Whether the record is in the audit sample at that rate (docs/protocol.md §15.8), once the
   * block after its first anchor is mined (absent before).
   */
  readonly sampled?: boolean;
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
 * Throws `AUDIT_NOT_ANCHORED` when no anchor covers the record more than `toleranceSeconds` after
 * its stated time, `AUDIT_TIMESTAMP_STALE` when its stated time is more than that before its first
 * covering anchor, `AUDIT_ANCHOR_INVALID` when that anchor's root does not include the record,
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
  const base = {
    leaf,
    block: block.number,
    blockTime: block.timestamp,
    auditRatePpm: rules.auditRatePpm,
    disputes: found,
  };

  // The chain's verdicts stand whatever the timestamp: a slash or an open dispute is on chain.
  if (slashed) {
    const lost = found.find((d) => d.outcome === 'node-lied');
    return { ...base, status: 'refuted', ...(lost === undefined ? {} : { disputeId: lost.id }) };
  }
  if (open !== 0n) return { ...base, status: 'disputed', disputeId: open };

  // The first anchor whose tree covers the record, and whose root must include it: the window
  // runs from its time on chain.
  const first = anchors.find((a) => a.treeSize > BigInt(leafIndex));
  if (first === undefined) {
    // Not anchored yet: nobody can challenge it yet, so it cannot become final.
    if (stated + tolerance < block.timestamp) notAnchored(stated, block.timestamp, tolerance);
    return { ...base, status: 'pending' };
  }
  const tree = await getAnchoredTree(publicClient, {
    logAnchor: deployment.contracts.logAnchor,
    node,
    treeSize: first.treeSize,
    ...at,
  });
  if (tree === undefined) throw new VerityError('RESPONSE_INVALID', 'an Anchored event without its anchored tree');
  const url =
    nodeUrl ??
    (await getNode(publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, node, ...at }))?.endpoint ??
    '';
  await checkIncluded(f, url, leafBytes, leafIndex, tree.treeSize, tree.rootHash);
  const anchor = { treeSize: tree.treeSize, block: tree.blockNumber, time: tree.timestamp };
  if (stated + tolerance < anchor.time) stale(stated, anchor.time, tolerance, anchor.block);
  const windowClosesAt = anchor.time + BigInt(rules.challengeWindow);
  // The audit sample, once the block after the anchor exists at the block read.
  const seedBlock = anchor.block + 1n;
  const sampled =
    seedBlock > block.number
      ? undefined
      : auditSampled(
          (await publicClient.getBlock({ blockNumber: seedBlock })).hash,
          node,
          leafIndex,
          rules.auditRatePpm,
        );
  return {
    ...base,
    windowClosesAt,
    anchor,
    ...(sampled === undefined ? {} : { sampled }),
    status: block.timestamp > windowClosesAt ? 'final' : 'pending',
  };
}

function notAnchored(stated: bigint, now: bigint, tolerance: bigint): never {
  throw new VerityError(
    'AUDIT_NOT_ANCHORED',
    `the record says ${stated} but its node had not anchored it at ${now} (tolerance ${tolerance} s): nobody can challenge it, so it cannot become final`,
    { details: { timestamp: stated.toString(), blockTime: now.toString(), toleranceSeconds: tolerance.toString() } },
  );
}

function stale(stated: bigint, anchoredAt: bigint, tolerance: bigint, anchorBlock: bigint): never {
  throw new VerityError(
    'AUDIT_TIMESTAMP_STALE',
    `the record says ${stated} but was first anchored at ${anchoredAt} (tolerance ${tolerance} s): its node misstates when it answered (its window runs from the anchor all the same)`,
    {
      details: {
        timestamp: stated.toString(),
        anchoredAt: anchoredAt.toString(),
        toleranceSeconds: tolerance.toString(),
        anchorBlock: anchorBlock.toString(),
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
