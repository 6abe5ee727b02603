/**
 * Trust from the chain registry: the keys of the nodes registered (and active) at a block, read
 * from `NodeRegistry`. This is the "gather trust" step for answers from several nodes (`quorum`):
 * the receiving node's word about who its peers are is not taken.
 */
import { readRegistrySnapshot } from '@verity/contracts';
import { fail, type RegistrySnapshot, type Trust } from '@verity/protocol';
import { createPublicClient, http, type PublicClient } from 'viem';
import { type ChainOptions, chainOf } from '../client.js';

/** Where the registry is. */
export interface RegistryOptions {
  /** JSON-RPC URL of the chain. */
  readonly rpcUrl: string;
  /** The `NodeRegistry` address (from the deployment file). */
  readonly nodeRegistry: `0x${string}`;
  /** A client to read with (default: one made for `rpcUrl`). */
  readonly publicClient?: PublicClient;
}

const publicClients = new Map<string, PublicClient>();
/** One viem client per RPC URL. */
export function registryClient(options: RegistryOptions): PublicClient {
  if (options.publicClient) return options.publicClient;
  let c = publicClients.get(options.rpcUrl);
  if (!c) {
    c = createPublicClient({ transport: http(options.rpcUrl) }) as PublicClient;
    if (publicClients.size >= 16) publicClients.clear();
    publicClients.set(options.rpcUrl, c);
  }
  return c;
}

/** Snapshots by registry and block: a block's registry never changes, and verification caches keys per snapshot. */
const snapshots = new Map<string, Promise<RegistrySnapshot>>();

/**
 * `NodeRegistry` at `block` (default: the latest) as verification takes it (`Trust.registry`):
 * every registered or unbonding entry, `minStake`, the chain id and the block's number and hash.
 *
 * @example
 * ```ts
 * const registry = await registrySnapshot({ rpcUrl, nodeRegistry }, 120n);
 * verifyBundle(bundle, { nodes: [], registry });
 * ```
 */
export async function registrySnapshot(options: RegistryOptions, block?: bigint): Promise<RegistrySnapshot> {
  const publicClient = registryClient(options);
  const blockNumber = block ?? (await publicClient.getBlockNumber({ cacheTime: 0 }));
  const id = `${options.rpcUrl}\u0000${options.nodeRegistry.toLowerCase()}\u0000${blockNumber}`;
  let snapshot = snapshots.get(id);
  if (!snapshot) {
    snapshot = readRegistrySnapshot(publicClient, { nodeRegistry: options.nodeRegistry, blockNumber });
    snapshot.catch(() => snapshots.delete(id));
    if (snapshots.size >= 32) snapshots.delete(snapshots.keys().next().value as string);
    snapshots.set(id, snapshot);
  }
  return snapshot;
}

/**
 * The trust of the registry at `block` (default: the latest): `Trust.registry`, so that a node
 * must be registered, active and staked there (the same as {@link registrySnapshot}).
 *
 * @example
 * ```ts
 * const trust = await trustFromRegistry({ rpcUrl, nodeRegistry }, 120n);
 * ```
 */
export async function trustFromRegistry(registry: RegistryOptions, block?: bigint): Promise<Trust> {
  return { nodes: [], registry: await registrySnapshot(registry, block) };
}

/** A snapshot read through an RPC endpoint must be of the deployment's chain (`CONFIG_INVALID`). */
export function assertDeploymentChain(snapshot: RegistrySnapshot, chainId: number): RegistrySnapshot {
  if (snapshot.chainId !== chainId) {
    fail('CONFIG_INVALID', 'the RPC endpoint serves another chain than the deployment', {
      expected: chainId,
      actual: snapshot.chainId,
    });
  }
  return snapshot;
}

/**
 * The registry of a deployment (`chain`: RPC URL and deployment file content) at `block`
 * (default: the latest): {@link registrySnapshot} for callers without a client, such as
 * `verity verify`.
 *
 * @example
 * ```ts
 * const registry = await chainRegistrySnapshot({ rpcUrl, deployment }, bundleRegistryBlock(bundle));
 * ```
 */
export async function chainRegistrySnapshot(chain: ChainOptions, block?: number): Promise<RegistrySnapshot> {
  const c = chainOf(chain);
  const snapshot = await registrySnapshot(
    { rpcUrl: c.rpcUrl, nodeRegistry: c.deployment.contracts.nodeRegistry, publicClient: c.publicClient },
    block === undefined ? undefined : BigInt(block),
  );
  return assertDeploymentChain(snapshot, c.deployment.chainId);
}

/**
 * The block a bundle names for its registry entries: its quorum's block, else the block its
 * `nodes` entries were read at (the latest of them); undefined when it names none. A verifier
 * reads the registry there: a node answers for what it signed while it was registered and staked.
 *
 * @example
 * ```ts
 * const registry = await chainRegistrySnapshot(chain, bundleRegistryBlock(bundle));
 * ```
 */
export function bundleRegistryBlock(bundle: unknown): number | undefined {
  if (typeof bundle !== 'object' || bundle === null) return undefined;
  const b = bundle as { quorum?: { block?: unknown }; nodes?: unknown };
  const q = b.quorum?.block;
  // A quorum names its block as a number or as { number, hash }.
  const quorumBlock = typeof q === 'object' && q !== null ? (q as { number?: unknown }).number : q;
  if (Number.isSafeInteger(quorumBlock)) return quorumBlock as number;
  const blocks = (Array.isArray(b.nodes) ? b.nodes : [])
    .map((n) => (n as { block?: unknown } | null)?.block)
    .filter((x): x is number => Number.isSafeInteger(x) && (x as number) >= 0);
  return blocks.length === 0 ? undefined : Math.max(...blocks);
}
