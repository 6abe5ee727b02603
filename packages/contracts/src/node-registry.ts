/**
 * Actions on `NodeRegistry` (contracts/NodeRegistry.sol): what a node does on start and while it
 * runs, and what a client reads to find nodes and their log keys at a block.
 */
import { fail, fromHex, type RegistryNode, type RegistrySnapshot, registryLogKey } from '@verity/protocol';
import type { Address, Hex, PublicClient, TransactionReceipt } from 'viem';
import { type Capability, capabilityBits, decodeCapabilities } from './capabilities.js';
import { address, bytes32, type ChainClients, type ReadOptions, read, sendAndConfirm } from './clients.js';
import { nodeRegistryAbi } from './generated/node-registry.js';

/** Where an account stands in the registry (the contract's `Status`, in order). */
export const NODE_STATUSES = ['none', 'registered', 'unbonding', 'exited'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** A node's registry entry as read at some block. */
export interface NodeEntry {
  readonly account: Address;
  /** Ed25519 public key of the node's log (hex, 32 bytes). */
  readonly logKey: Hex;
  /** The log's origin line (also the name of its note key). */
  readonly origin: string;
  readonly endpoint: string;
  readonly capabilities: readonly Capability[];
  /** The raw bitmask, including bits this version does not know. */
  readonly capabilityBits: bigint;
  /** Stake in wei. */
  readonly stake: bigint;
  readonly status: NodeStatus;
  /** Registered, not unbonding and staked at least the minimum: may anchor and serve. */
  readonly active: boolean;
  /** Unix time (seconds) from which the stake can be withdrawn; 0 unless unbonding. */
  readonly withdrawableAt: number;
  /** Block of the latest registration. */
  readonly registeredAt: bigint;
}

interface RawNode {
  logKey: Hex;
  stake: bigint;
  capabilities: bigint;
  withdrawableAt: bigint;
  registeredAt: bigint;
  status: number;
  origin: string;
  endpoint: string;
}

function toEntry(account: Address, raw: RawNode, minStake: bigint): NodeEntry {
  const status = NODE_STATUSES[raw.status] ?? fail('RESPONSE_INVALID', `unknown node status ${raw.status}`);
  return {
    account,
    logKey: raw.logKey,
    origin: raw.origin,
    endpoint: raw.endpoint,
    capabilities: decodeCapabilities(raw.capabilities),
    capabilityBits: raw.capabilities,
    stake: raw.stake,
    status,
    active: status === 'registered' && raw.stake >= minStake,
    withdrawableAt: Number(raw.withdrawableAt),
    registeredAt: raw.registeredAt,
  };
}

/** What a node announces about itself. */
export interface NodeAnnouncement {
  /** Ed25519 public key of the log, 32 bytes. */
  readonly logKey: Uint8Array | Hex;
  /** The log's origin (C2SP note key name), at most 128 bytes. */
  readonly origin: string;
  /** Base URL of the node's HTTP API, at most 256 bytes. */
  readonly endpoint: string;
  readonly capabilities: readonly Capability[] | bigint;
}

/** Parameters of {@link registerNode}. */
export interface RegisterNodeParams extends NodeAnnouncement {
  readonly nodeRegistry: Address;
  /** Stake sent with the registration, in wei (at least the registry's `minStake`). */
  readonly stake: bigint;
}

/**
 * Registers the wallet's account as a node. An account that exited may register again with the
 * same log key and origin (one account, one log: see the contract).
 *
 * @example
 * ```ts
 * await registerNode(clients, { nodeRegistry, logKey, origin: 'verity.example/node-1', endpoint: 'http://127.0.0.1:8080', capabilities: ['mode:signed'], stake: parseEther('1') });
 * ```
 */
export async function registerNode(clients: ChainClients, params: RegisterNodeParams): Promise<TransactionReceipt> {
  const logKey = bytes32(params.logKey, 'logKey');
  const capabilities = capabilityBits(params.capabilities);
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'register', () =>
    walletClient.writeContract({
      address: address(params.nodeRegistry, 'nodeRegistry'),
      abi: nodeRegistryAbi,
      functionName: 'register',
      args: [logKey, params.origin, params.endpoint, capabilities],
      value: params.stake,
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Parameters of {@link updateNode}. */
export interface UpdateNodeParams {
  readonly nodeRegistry: Address;
  readonly endpoint: string;
  readonly capabilities: readonly Capability[] | bigint;
}

/** Changes the endpoint and capabilities of the wallet's node (log key and origin are fixed). */
export async function updateNode(clients: ChainClients, params: UpdateNodeParams): Promise<TransactionReceipt> {
  const capabilities = capabilityBits(params.capabilities);
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'update', () =>
    walletClient.writeContract({
      address: address(params.nodeRegistry, 'nodeRegistry'),
      abi: nodeRegistryAbi,
      functionName: 'update',
      args: [params.endpoint, capabilities],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Adds `amount` wei to the wallet's node stake. */
export async function addStake(
  clients: ChainClients,
  params: { readonly nodeRegistry: Address; readonly amount: bigint },
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'addStake', () =>
    walletClient.writeContract({
      address: address(params.nodeRegistry, 'nodeRegistry'),
      abi: nodeRegistryAbi,
      functionName: 'addStake',
      value: params.amount,
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Starts unbonding: the node is inactive at once; `withdrawStake` works after the delay. */
export async function requestUnbond(
  clients: ChainClients,
  params: { readonly nodeRegistry: Address },
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'requestUnbond', () =>
    walletClient.writeContract({
      address: address(params.nodeRegistry, 'nodeRegistry'),
      abi: nodeRegistryAbi,
      functionName: 'requestUnbond',
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Withdraws what is left of the stake once the unbonding delay is over. */
export async function withdrawStake(
  clients: ChainClients,
  params: { readonly nodeRegistry: Address },
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'withdraw', () =>
    walletClient.writeContract({
      address: address(params.nodeRegistry, 'nodeRegistry'),
      abi: nodeRegistryAbi,
      functionName: 'withdraw',
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Parameters of {@link slashNode}. */
export interface SlashNodeParams {
  readonly nodeRegistry: Address;
  readonly node: Address;
  /** Wei to take; capped at the node's stake. */
  readonly amount: bigint;
  readonly reason: string;
}

/** Slashes a node; only the registry's slasher may: the `Disputes` contract (an account in test deployments). */
export async function slashNode(clients: ChainClients, params: SlashNodeParams): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'slash', () =>
    walletClient.writeContract({
      address: address(params.nodeRegistry, 'nodeRegistry'),
      abi: nodeRegistryAbi,
      functionName: 'slash',
      args: [address(params.node, 'node'), params.amount, params.reason],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** The rules fixed at deployment. */
export interface RegistryRules {
  readonly minStake: bigint;
  /** Seconds between `requestUnbond` and `withdraw`. */
  readonly unbondingDelay: number;
  readonly slasher: Address;
}

/** Reads the registry's minimum stake, unbonding delay and slasher. */
export async function getRegistryRules(
  publicClient: PublicClient,
  params: { readonly nodeRegistry: Address } & ReadOptions,
): Promise<RegistryRules> {
  const contract = { address: params.nodeRegistry, abi: nodeRegistryAbi, blockNumber: params.blockNumber } as const;
  return read('getRegistryRules', async () => {
    const [minStake, unbondingDelay, slasher] = await Promise.all([
      publicClient.readContract({ ...contract, functionName: 'minStake' }),
      publicClient.readContract({ ...contract, functionName: 'unbondingDelay' }),
      publicClient.readContract({ ...contract, functionName: 'slasher' }),
    ]);
    return { minStake, unbondingDelay: Number(unbondingDelay), slasher };
  });
}

/**
 * A node's entry at a block (default: latest), or `undefined` if the account never registered.
 * An exited account still has an entry (status `exited`, stake 0) holding its log key.
 *
 * @example
 * ```ts
 * const entry = await getNode(publicClient, { nodeRegistry, node, blockNumber: receiptBlock });
 * ```
 */
export async function getNode(
  publicClient: PublicClient,
  params: { readonly nodeRegistry: Address; readonly node: Address } & ReadOptions,
): Promise<NodeEntry | undefined> {
  const node = address(params.node, 'node');
  const contract = { address: params.nodeRegistry, abi: nodeRegistryAbi, blockNumber: params.blockNumber } as const;
  return read('getNode', async () => {
    const [raw, minStake] = await Promise.all([
      publicClient.readContract({ ...contract, functionName: 'getNode', args: [node] }),
      publicClient.readContract({ ...contract, functionName: 'minStake' }),
    ]);
    return raw.status === 0 ? undefined : toEntry(node, raw, minStake);
  });
}

/** Entries read per call by {@link listNodes}. */
const PAGE = 100n;

/**
 * Every registered or unbonding node at a block (default: latest), in registry order; with
 * `activeOnly`, only those that may serve. Every page is read at the same block, so the list is
 * one consistent snapshot (what quorum selection by rendezvous hashing needs, docs/design.md §2.6).
 */
export async function listNodes(
  publicClient: PublicClient,
  params: { readonly nodeRegistry: Address; readonly activeOnly?: boolean } & ReadOptions,
): Promise<NodeEntry[]> {
  return read('listNodes', async () => {
    // No cached block number (viem caches it for `cacheTime`): a read right after a write must see it.
    const blockNumber = params.blockNumber ?? (await publicClient.getBlockNumber({ cacheTime: 0 }));
    const contract = { address: params.nodeRegistry, abi: nodeRegistryAbi, blockNumber } as const;
    const [count, minStake] = await Promise.all([
      publicClient.readContract({ ...contract, functionName: 'nodeCount' }),
      publicClient.readContract({ ...contract, functionName: 'minStake' }),
    ]);
    const entries: NodeEntry[] = [];
    for (let offset = 0n; offset < count; offset += PAGE) {
      const [accounts, raws] = await publicClient.readContract({
        ...contract,
        functionName: 'listNodes',
        args: [offset, PAGE],
      });
      accounts.forEach((account, i) => {
        const raw = raws[i];
        if (raw !== undefined) entries.push(toEntry(account, raw, minStake));
      });
    }
    return params.activeOnly === true ? entries.filter((e) => e.active) : entries;
  });
}

/**
 * An entry as verification takes it (`@verity/protocol` RegistryNode): the log key as a C2SP
 * verifier key named by the origin.
 */
export function registryNode(entry: NodeEntry): RegistryNode {
  const status = entry.status === 'none' ? fail('RESPONSE_INVALID', 'an unregistered entry') : entry.status;
  return {
    address: entry.account,
    // Built even when the origin is no valid key name (the contract does not check names): such an
    // entry stays in the snapshot, so rankings agree however the registry was read, and it only
    // refuses its own receipts (RECEIPT_NODE_KEY_INVALID), never every node's.
    logKey: registryLogKey(entry.origin, fromHex(entry.logKey.slice(2))),
    stake: entry.stake,
    status,
    capabilities: entry.capabilityBits,
    endpoint: entry.endpoint,
  };
}

/**
 * `NodeRegistry` at one block as verification receives it (`Trust.registry`): chain id, block
 * number and hash, `minStake`, and every registered or unbonding entry, all read at that block.
 *
 * @example
 * ```ts
 * const snapshot = await readRegistrySnapshot(publicClient, { nodeRegistry, blockNumber: 120n });
 * verifyBundle(bundle, { nodes: [], registry: snapshot });
 * ```
 */
export async function readRegistrySnapshot(
  publicClient: PublicClient,
  params: { readonly nodeRegistry: Address; readonly blockNumber: bigint },
): Promise<RegistrySnapshot> {
  const { nodeRegistry, blockNumber } = params;
  const [chainId, block, rules, entries] = await Promise.all([
    read('getChainId', () => publicClient.getChainId()),
    read('getBlock', () => publicClient.getBlock({ blockNumber })),
    getRegistryRules(publicClient, { nodeRegistry, blockNumber }),
    listNodes(publicClient, { nodeRegistry, blockNumber }),
  ]);
  if (block.hash === null) fail('RESPONSE_INVALID', 'the chain returned a pending block');
  return {
    chainId,
    nodeRegistry,
    block: { number: Number(blockNumber), hash: block.hash },
    minStake: rules.minStake,
    nodes: entries.map(registryNode),
  };
}

/** Parameters of {@link syncNodeRegistration}: the entry a node wants, from its config. */
export interface SyncNodeParams extends NodeAnnouncement {
  readonly nodeRegistry: Address;
  /** The stake the node should hold, in wei: registers with it, or tops up to it. */
  readonly stake: bigint;
}

/** What {@link syncNodeRegistration} did. */
export interface SyncNodeResult {
  /** Transactions sent, in order (empty when the entry was already current). */
  readonly actions: readonly ('register' | 'update' | 'addStake')[];
  readonly entry: NodeEntry;
}

/**
 * Makes the wallet's registry entry match the node's config: registers when absent (or exited),
 * updates endpoint and capabilities when they changed, tops the stake up to `stake`. Called by a
 * node on start and whenever its announced endpoint changes.
 *
 * A registered entry with another log key or origin is `CONFIG_INVALID` (a new log needs a new
 * account), and so is an unbonding one (withdraw first, then start again).
 */
export async function syncNodeRegistration(clients: ChainClients, params: SyncNodeParams): Promise<SyncNodeResult> {
  const nodeRegistry = address(params.nodeRegistry, 'nodeRegistry');
  const node = clients.walletClient.account.address;
  const logKey = bytes32(params.logKey, 'logKey');
  const capabilities = capabilityBits(params.capabilities);
  const actions: ('register' | 'update' | 'addStake')[] = [];
  const current = await getNode(clients.publicClient, { nodeRegistry, node });
  // An exited account keeps its log too: it may only come back with the same one.
  if (current !== undefined && (current.logKey !== logKey || current.origin !== params.origin)) {
    fail('CONFIG_INVALID', 'this account is registered with another log; a new log needs a new account', {
      node,
      registered: { logKey: current.logKey, origin: current.origin },
      configured: { logKey, origin: params.origin },
    });
  }
  if (current === undefined || current.status === 'exited') {
    await registerNode(clients, { ...params, nodeRegistry, logKey, capabilities });
    actions.push('register');
  } else {
    if (current.status === 'unbonding') {
      fail('CONFIG_INVALID', 'this account is unbonding; withdraw its stake before registering again', {
        node,
        withdrawableAt: current.withdrawableAt,
      });
    }
    if (current.endpoint !== params.endpoint || current.capabilityBits !== capabilities) {
      await updateNode(clients, { nodeRegistry, endpoint: params.endpoint, capabilities });
      actions.push('update');
    }
    if (current.stake < params.stake) {
      await addStake(clients, { nodeRegistry, amount: params.stake - current.stake });
      actions.push('addStake');
    }
  }
  const entry = await getNode(clients.publicClient, { nodeRegistry, node });
  if (entry === undefined) return fail('INTERNAL', 'the registry lost the entry just written', { node });
  return { actions, entry };
}
