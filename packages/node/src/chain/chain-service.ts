/**
 * The node on the chain (docs/design.md §2.4, §2.7): on start it checks the deployment, then makes
 * its `NodeRegistry` entry match its config (register with the configured stake, or update the
 * endpoint and capabilities); while running it anchors its latest checkpoint in `LogAnchor` every
 * `anchorIntervalMs` when the log grew, publishes the models it is given in `ModelRegistry`, and
 * reads the registry to find its peers. Off the request path (docs/architecture.md §4).
 */
import {
  anchorCheckpoint,
  type Capability,
  type ChainClients,
  type Deployment,
  getLatestAnchor,
  listModelVersions,
  listNodes,
  type NodeEntry,
  publishModel,
  readRegistrySnapshot,
  registerZkVerifier,
  resolveModel,
  syncNodeRegistration,
  verifyDeployment,
} from '@verity/contracts';
import { fail, openCheckpoint, parseVerifierKey, type RegistrySnapshot, toHex, VerityError } from '@verity/protocol';
import {
  type Abi,
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { verifierKeyBytes } from '../fast-crypto.js';
import type { NodeKeys } from '../keys.js';
import type { NodeLog } from '../log/index.js';
import { compareVersions } from '../store/model-ref.js';

/** What the chain service needs from the node's config. */
export interface ChainServiceOptions {
  readonly rpcUrl: string;
  readonly deployment: Deployment;
  /** Stake to hold in the registry, in wei. */
  readonly stake: bigint;
  /** Anchor the latest checkpoint this often (when the log grew), ms; 0 turns anchoring off. */
  readonly anchorIntervalMs: number;
  /** The URL peers reach this node at (announced in the registry). */
  readonly endpoint: string;
  readonly capabilities: readonly Capability[];
  /** Called with anchoring failures (the loop keeps going). */
  readonly onError?: (e: VerityError) => void;
}

/** A running chain service. */
export interface ChainService {
  readonly deployment: Deployment;
  readonly publicClient: PublicClient;
  /** The node's registry entry as of its last sync. */
  entry(): NodeEntry;
  /** Registered, active nodes (this one included) at `blockNumber` (default: latest). */
  peers(blockNumber?: bigint): Promise<{ blockNumber: bigint; nodes: NodeEntry[] }>;
  /** The latest block number (cached for up to a second; `fresh` reads it now). */
  head(fresh?: boolean): Promise<bigint>;
  /** `NodeRegistry` at a block as verification takes it (cached per block: a block never changes). */
  registry(blockNumber: bigint): Promise<RegistrySnapshot>;
  /** Anchors the latest checkpoint now if the log grew since the last anchor; the anchored size. */
  anchorNow(): Promise<number | undefined>;
  /** Publishes `name@version → manifestCid` unless that version is already published. */
  publish(name: string, version: string, manifestCid: string): Promise<void>;
  /**
   * The manifest CID ModelRegistry maps `name@version` to, or (no version) the highest published
   * version of `name` by Semantic Versioning precedence; `undefined` when it maps nothing.
   * Cached: a published version never changes, so a found one is kept; what is not found, and a
   * name's latest version, are asked again after a second (and at once after a local publish).
   */
  resolveName(name: string, version?: string): Promise<string | undefined>;
  /**
   * Deploys a contract (no constructor arguments) from the node's account, in the same
   * transaction queue as anchoring and publishing; resolves when mined.
   */
  deployContract(abi: Abi, bytecode: Hex): Promise<{ address: Address; gasUsed: bigint; transactionHash: Hex }>;
  /**
   * Sends transactions from the node's account with `fn` (e.g. a ceremony step), in the same
   * transaction queue as anchoring and publishing; resolves with what `fn` resolves to.
   */
  transact<T>(fn: (clients: ChainClients) => Promise<T>): Promise<T>;
  /**
   * Registers a deployed zk verifier in the deployment's `ZkVerifierRegistry` (same queue); the
   * registered verifier of its key (an earlier one stays) and the gas used.
   */
  registerZkVerifier(verifier: Address): Promise<{ vkKey: Hex; verifier: Address; gasUsed: bigint }>;
  stop(): Promise<void>;
}

/** The raw 32-byte Ed25519 key of a C2SP verifier key (what the registry stores). */
export function rawLogKey(verifierKey: string): Hex {
  return `0x${toHex(verifierKeyBytes(verifierKey))}`;
}

/**
 * Starts the chain service: verifies the deployment, syncs the registry entry, starts anchoring.
 *
 * @example
 * ```ts
 * const chain = await startChainService(keys, log, { rpcUrl, deployment, stake: parseEther('1'), anchorIntervalMs: 10_000, endpoint: url, capabilities: ['mode:signed'] });
 * ```
 */
export async function startChainService(
  keys: NodeKeys,
  log: NodeLog,
  options: ChainServiceOptions,
): Promise<ChainService> {
  const { deployment } = options;
  const chain: Chain = defineChain({
    id: deployment.chainId,
    name: `chain-${deployment.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
  });
  const transport = http(options.rpcUrl, { retryCount: 1, timeout: 10_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 }) as PublicClient;
  const account = privateKeyToAccount(keys.accountKey as Hex);
  const walletClient = createWalletClient({ account, chain, transport }) as WalletClient<
    Transport,
    Chain | undefined,
    Account
  >;
  const clients = { publicClient, walletClient };
  await verifyDeployment(publicClient, deployment);
  const synced = await syncNodeRegistration(clients, {
    nodeRegistry: deployment.contracts.nodeRegistry,
    logKey: rawLogKey(keys.logKey),
    origin: keys.origin,
    endpoint: options.endpoint,
    capabilities: options.capabilities,
    stake: options.stake,
  });
  let entry = synced.entry;

  // One transaction at a time from this account (nonces), anchoring and publishing alike.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  // The previous anchor is read from the chain each time, never remembered: the contract checks the
  // consistency proof from exactly that anchor, whatever this process did before (a restart, a
  // transaction that was mined after a timeout, another process with the same account).
  const logAnchor = deployment.contracts.logAnchor;
  const anchorNow = () =>
    serial(async () => {
      const { checkpoint } = openCheckpoint(log.checkpoint(), [parseVerifierKey(keys.logKey)], keys.origin);
      if (checkpoint.size === 0) return undefined;
      const previous = Number(
        (await getLatestAnchor(publicClient, { logAnchor, node: account.address }))?.treeSize ?? 0,
      );
      if (checkpoint.size <= previous) return undefined;
      // A log rewritten or replaced since that anchor still gives a proof (within itself), which
      // the contract refuses with ANCHOR_INCONSISTENT: the loop reports it through `onError`.
      const consistency =
        previous === 0 ? [] : log.consistencyProof(previous, checkpoint.size).map((h) => `0x${h}` as Hex);
      await anchorCheckpoint(clients, {
        logAnchor,
        treeSize: checkpoint.size,
        rootHash: checkpoint.rootHash,
        consistency,
      });
      return checkpoint.size;
    });

  let recent: { at: number; value: { blockNumber: bigint; nodes: NodeEntry[] } } | undefined;
  // name@version → manifest CID (found: for ever; not found, and `name` → latest: for a second).
  const modelRegistry = deployment.contracts.modelRegistry;
  const published = new Map<string, string>();
  const recentLookups = new Map<string, { at: number; value: Promise<string | undefined> }>();
  const lookup = (key: string, ask: () => Promise<string | undefined>): Promise<string | undefined> => {
    const found = published.get(key);
    if (found !== undefined) return Promise.resolve(found);
    const cached = recentLookups.get(key);
    if (cached && Date.now() - cached.at < 1000) return cached.value;
    const value = ask();
    recentLookups.set(key, { at: Date.now(), value });
    if (recentLookups.size > 4096) recentLookups.clear();
    value.catch(() => recentLookups.delete(key));
    return value;
  };
  const resolveName = (name: string, version?: string): Promise<string | undefined> => {
    if (version !== undefined) {
      const key = `${name}@${version}`;
      return lookup(key, async () => {
        const v = await resolveModel(publicClient, { modelRegistry, name, version });
        if (v !== undefined) published.set(key, v.manifestCid);
        return v?.manifestCid;
      });
    }
    return lookup(name, async () => {
      const versions = [...(await listModelVersions(publicClient, { modelRegistry, name }))].sort(compareVersions);
      const latest = versions.at(-1);
      return latest === undefined ? undefined : resolveName(name, latest);
    });
  };
  let latest: { at: number; value: bigint } | undefined;
  const snapshots = new Map<bigint, Promise<RegistrySnapshot>>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let ticking: Promise<unknown> = Promise.resolve();
  if (options.anchorIntervalMs > 0) {
    timer = setInterval(() => {
      ticking = anchorNow().catch((e: unknown) => {
        options.onError?.(e instanceof VerityError ? e : new VerityError('INTERNAL', 'anchoring failed', { cause: e }));
      });
    }, options.anchorIntervalMs);
    timer.unref();
  }

  return {
    deployment,
    publicClient,
    entry: () => entry,
    async peers(blockNumber) {
      // The registry changes only with a block; a snapshot serves for a second (a quorum request
      // would otherwise pay three JSON-RPC round trips before it starts).
      if (blockNumber === undefined && recent && Date.now() - recent.at < 1000) return recent.value;
      const block = blockNumber ?? (await publicClient.getBlockNumber({ cacheTime: 0 }));
      const nodes = await listNodes(publicClient, {
        nodeRegistry: deployment.contracts.nodeRegistry,
        activeOnly: true,
        blockNumber: block,
      });
      const self = nodes.find((n) => n.account.toLowerCase() === account.address.toLowerCase());
      if (self) entry = self;
      const value = { blockNumber: block, nodes };
      if (blockNumber === undefined) recent = { at: Date.now(), value };
      return value;
    },
    async head(fresh = false) {
      if (!fresh && latest && Date.now() - latest.at < 1000) return latest.value;
      const value = await publicClient.getBlockNumber({ cacheTime: 0 });
      latest = { at: Date.now(), value };
      return value;
    },
    registry(blockNumber) {
      let snapshot = snapshots.get(blockNumber);
      if (!snapshot) {
        snapshot = readRegistrySnapshot(publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, blockNumber });
        // A failed read is not kept; a few recent blocks are.
        snapshot.catch(() => snapshots.delete(blockNumber));
        if (snapshots.size >= 16) snapshots.delete(snapshots.keys().next().value as bigint);
        snapshots.set(blockNumber, snapshot);
      }
      return snapshot;
    },
    anchorNow,
    publish: (name, version, manifestCid) =>
      serial(async () => {
        const existing = await resolveModel(publicClient, { modelRegistry, name, version });
        if (existing === undefined) await publishModel(clients, { modelRegistry, name, version, manifestCid });
        recentLookups.delete(name);
        recentLookups.delete(`${name}@${version}`);
      }),
    resolveName,
    transact: (fn) => serial(() => fn(clients)),
    deployContract: (abi, bytecode) =>
      serial(async () => {
        const hash = await walletClient.deployContract({ abi, bytecode, account, chain, args: [] });
        const receipt = await publicClient.waitForTransactionReceipt({ hash });
        if (receipt.status !== 'success' || !receipt.contractAddress) {
          fail('CHAIN_REVERTED', 'the contract deployment reverted', { transactionHash: hash });
        }
        return { address: receipt.contractAddress, gasUsed: receipt.gasUsed, transactionHash: hash };
      }),
    registerZkVerifier: (verifier) =>
      serial(async () => {
        const r = await registerZkVerifier(clients, { zkVerifiers: deployment.contracts.zkVerifiers, verifier });
        return { vkKey: r.vkKey, verifier: r.verifier, gasUsed: r.receipt.gasUsed };
      }),
    async stop() {
      if (timer) clearInterval(timer);
      await ticking;
      await queue;
    },
  };
}
