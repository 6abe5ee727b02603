/**
 * Actions on `LogAnchor` (contracts/LogAnchor.sol): a node anchors checkpoints of its log; a
 * verifier reads the anchored roots to check consistency (docs/design.md §2.4).
 */
import type { Address, Hash, Hex, PublicClient, TransactionReceipt } from 'viem';
import { address, bytes32, type ChainClients, type ReadOptions, read, sendAndConfirm } from './clients.js';
import { logAnchorAbi } from './generated/log-anchor.js';

/** One anchored checkpoint. */
export interface Anchor {
  readonly node: Address;
  readonly treeSize: bigint;
  /** RFC 6962 root hash (hex, 32 bytes). */
  readonly rootHash: Hex;
  readonly blockNumber: bigint;
}

/** One tree a node anchored, as `LogAnchor` keeps it for every anchored size. */
export interface AnchoredTree {
  readonly node: Address;
  readonly treeSize: bigint;
  readonly rootHash: Hex;
  /** Block of the anchor, and its time (unix seconds): when the chain first saw this tree. */
  readonly blockNumber: bigint;
  readonly timestamp: bigint;
  /**
   * The node's anchored size before this one (0 for its first): the leaves with an index in
   * [previousSize, treeSize) were first anchored by this tree.
   */
  readonly previousSize: bigint;
}

/** Parameters of {@link anchorCheckpoint}. */
export interface AnchorCheckpointParams {
  readonly logAnchor: Address;
  /** Greater than the node's last anchored size. */
  readonly treeSize: bigint | number;
  readonly rootHash: Uint8Array | Hex;
  /**
   * RFC 9162 consistency proof from the node's latest anchor ({@link getLatestAnchor}) to
   * (treeSize, rootHash), as the log gives it (`consistencyProof(previousSize, treeSize)`); empty
   * for a node's first anchor.
   */
  readonly consistency: readonly (Uint8Array | Hex)[];
}

/**
 * Anchors (treeSize, rootHash) of the wallet's log. Only an active node may anchor; sizes must
 * strictly increase (`ANCHOR_NOT_INCREASING`) and the consistency proof from the previous anchor
 * must verify on chain (`ANCHOR_INCONSISTENT`, `details.args` [previousSize, treeSize]).
 *
 * @example
 * ```ts
 * const previous = (await getLatestAnchor(publicClient, { logAnchor, node }))?.treeSize ?? 0n;
 * const consistency = previous === 0n ? [] : log.consistencyProof(Number(previous), checkpoint.size);
 * await anchorCheckpoint(clients, { logAnchor, treeSize: checkpoint.size, rootHash: checkpoint.rootHash, consistency });
 * ```
 */
export async function anchorCheckpoint(
  clients: ChainClients,
  params: AnchorCheckpointParams,
): Promise<TransactionReceipt> {
  const rootHash = bytes32(params.rootHash, 'rootHash');
  const treeSize = BigInt(params.treeSize);
  const consistency = params.consistency.map((h, i) => bytes32(h, `consistency[${i}]`));
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'anchor', () =>
    walletClient.writeContract({
      address: address(params.logAnchor, 'logAnchor'),
      abi: logAnchorAbi,
      functionName: 'anchor',
      args: [treeSize, rootHash, consistency],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** A node's latest anchor at a block (default: latest), or `undefined` if it never anchored. */
export async function getLatestAnchor(
  publicClient: PublicClient,
  params: { readonly logAnchor: Address; readonly node: Address } & ReadOptions,
): Promise<Anchor | undefined> {
  const node = address(params.node, 'node');
  return read('getLatestAnchor', async () => {
    const a = await publicClient.readContract({
      address: params.logAnchor,
      abi: logAnchorAbi,
      functionName: 'latestAnchor',
      args: [node],
      blockNumber: params.blockNumber,
    });
    return a.treeSize === 0n
      ? undefined
      : { node, treeSize: a.treeSize, rootHash: a.rootHash, blockNumber: a.blockNumber };
  });
}

/** The root a node anchored for exactly `treeSize`, or `undefined` if it anchored none there. */
export async function getAnchoredRoot(
  publicClient: PublicClient,
  params: { readonly logAnchor: Address; readonly node: Address; readonly treeSize: bigint | number } & ReadOptions,
): Promise<Hex | undefined> {
  const node = address(params.node, 'node');
  return read('getAnchoredRoot', async () => {
    const root = await publicClient.readContract({
      address: params.logAnchor,
      abi: logAnchorAbi,
      functionName: 'anchorAt',
      args: [node, BigInt(params.treeSize)],
      blockNumber: params.blockNumber,
    });
    return /^0x0{64}$/.test(root) ? undefined : root;
  });
}

/**
 * The tree a node anchored for exactly `treeSize`, with its block, time and previous size, or
 * `undefined` if it anchored none there.
 */
export async function getAnchoredTree(
  publicClient: PublicClient,
  params: { readonly logAnchor: Address; readonly node: Address; readonly treeSize: bigint | number } & ReadOptions,
): Promise<AnchoredTree | undefined> {
  const node = address(params.node, 'node');
  const treeSize = BigInt(params.treeSize);
  return read('getAnchoredTree', async () => {
    const t = await publicClient.readContract({
      address: params.logAnchor,
      abi: logAnchorAbi,
      functionName: 'anchoredTree',
      args: [node, treeSize],
      blockNumber: params.blockNumber,
    });
    return /^0x0{64}$/.test(t.rootHash)
      ? undefined
      : {
          node,
          treeSize,
          rootHash: t.rootHash,
          blockNumber: t.blockNumber,
          timestamp: t.timestamp,
          previousSize: t.previousSize,
        };
  });
}

/**
 * The node's first anchored tree that covers `leafIndex` (the one a challenge of that record
 * proves against, and whose time starts its window), or `undefined` while none does. Found from
 * the `Anchored` events (from `fromBlock`, the deployment block), read at `blockNumber`.
 */
export async function getFirstAnchor(
  publicClient: PublicClient,
  params: {
    readonly logAnchor: Address;
    readonly node: Address;
    readonly leafIndex: bigint | number;
    readonly fromBlock?: bigint;
  } & ReadOptions,
): Promise<AnchoredTree | undefined> {
  const history = await getAnchorHistory(publicClient, {
    logAnchor: params.logAnchor,
    node: params.node,
    ...(params.fromBlock === undefined ? {} : { fromBlock: params.fromBlock }),
    ...(params.blockNumber === undefined ? {} : { toBlock: params.blockNumber }),
  });
  const first = history.find((a) => a.treeSize > BigInt(params.leafIndex));
  if (first === undefined) return undefined;
  return getAnchoredTree(publicClient, {
    logAnchor: params.logAnchor,
    node: params.node,
    treeSize: first.treeSize,
    ...(params.blockNumber === undefined ? {} : { blockNumber: params.blockNumber }),
  });
}

/** An anchor with the transaction that made it, from the `Anchored` events. */
export interface AnchorEvent extends Anchor {
  /** 0 for the node's first anchor, then 1, 2, … */
  readonly index: bigint;
  readonly transactionHash: Hash;
}

/**
 * The anchor history (`Anchored` events) of one node or of all, oldest first. Start at the
 * deployment block (`Deployment.block`); a public RPC endpoint may limit the block range.
 */
export async function getAnchorHistory(
  publicClient: PublicClient,
  params: {
    readonly logAnchor: Address;
    readonly node?: Address;
    readonly fromBlock?: bigint;
    readonly toBlock?: bigint;
  },
): Promise<AnchorEvent[]> {
  const node = params.node === undefined ? undefined : address(params.node, 'node');
  return read('getAnchorHistory', async () => {
    const logs = await publicClient.getContractEvents({
      address: params.logAnchor,
      abi: logAnchorAbi,
      eventName: 'Anchored',
      args: node === undefined ? {} : { node },
      fromBlock: params.fromBlock ?? 0n,
      toBlock: params.toBlock ?? 'latest',
      strict: true,
    });
    return logs.map((log) => ({
      node: log.args.node,
      treeSize: log.args.treeSize,
      rootHash: log.args.rootHash,
      index: log.args.index,
      blockNumber: log.blockNumber,
      transactionHash: log.transactionHash,
    }));
  });
}
