/**
 * Gathering trust from the chain (DESIGN.md §2.6a): `NodeRegistry` read at one block, as the
 * {@link RegistrySnapshot} that verification takes in `Trust.registry`. Verification itself never
 * reads the chain; this action is the separate, explicit step that does.
 */
import { chainError, listNodes, nodeRegistryAbi } from '@verity/contracts';
import { encodeVerifierKey, fail, fromHex, type RegistryNode, type RegistrySnapshot } from '@verity/protocol';
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
  /** The chain id the registry must be on (from the deployment); another is `CONFIG_INVALID`. */
  readonly chainId?: number;
}

/**
 * `NodeRegistry` at `block` (default: the latest): every registered or unbonding entry with its
 * log key, stake, status, capabilities and endpoint, the registry's `minStake`, and the block's
 * number and hash, all read at that one block.
 *
 * @example
 * ```ts
 * const registry = await registrySnapshot({ rpcUrl, nodeRegistry: deployment.contracts.nodeRegistry });
 * verifyBundle(bundle, { nodes: [], registry });
 * ```
 */
export async function registrySnapshot(options: RegistryOptions, block?: bigint): Promise<RegistrySnapshot> {
  const publicClient =
    options.publicClient ?? (createPublicClient({ transport: http(options.rpcUrl) }) as PublicClient);
  let read: [number, { hash: string | null; number: bigint | null }, Awaited<ReturnType<typeof listNodes>>, bigint];
  try {
    const blockNumber = block ?? (await publicClient.getBlockNumber({ cacheTime: 0 }));
    read = await Promise.all([
      publicClient.getChainId(),
      publicClient.getBlock({ blockNumber }),
      listNodes(publicClient, { nodeRegistry: options.nodeRegistry, blockNumber }),
      publicClient.readContract({
        address: options.nodeRegistry,
        abi: nodeRegistryAbi,
        functionName: 'minStake',
        blockNumber,
      }),
    ]);
  } catch (e) {
    throw chainError(e, 'registrySnapshot');
  }
  const [chainId, header, entries, minStake] = read;
  if (options.chainId !== undefined && chainId !== options.chainId) {
    fail('CONFIG_INVALID', 'the RPC endpoint serves another chain than the deployment', {
      expected: options.chainId,
      actual: chainId,
    });
  }
  const nodes: RegistryNode[] = entries.flatMap((n) =>
    n.status === 'none'
      ? []
      : [
          {
            address: n.account,
            logKey: encodeVerifierKey(n.origin, fromHex(n.logKey.slice(2))),
            stake: n.stake,
            status: n.status,
            capabilities: n.capabilityBits,
            endpoint: n.endpoint,
          },
        ],
  );
  return {
    chainId,
    nodeRegistry: options.nodeRegistry,
    block: { number: Number(header.number), hash: header.hash as string },
    minStake,
    nodes,
  };
}

/**
 * The block a bundle names for its registry entries: its quorum's block, else the block its
 * `nodes` entries were read at (the latest of them); undefined when it names none. A verifier
 * reads the registry there: a node answers for what it signed while it was registered and staked.
 *
 * @example
 * ```ts
 * const registry = await registrySnapshot(source, BigInt(bundleRegistryBlock(bundle) ?? 0));
 * ```
 */
export function bundleRegistryBlock(bundle: unknown): number | undefined {
  if (typeof bundle !== 'object' || bundle === null) return undefined;
  const b = bundle as { quorum?: { block?: unknown }; nodes?: unknown };
  if (Number.isSafeInteger(b.quorum?.block)) return b.quorum?.block as number;
  const blocks = (Array.isArray(b.nodes) ? b.nodes : [])
    .map((n) => (n as { block?: unknown } | null)?.block)
    .filter((x): x is number => Number.isSafeInteger(x) && (x as number) >= 0);
  return blocks.length === 0 ? undefined : Math.max(...blocks);
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
export function chainRegistrySnapshot(chain: ChainOptions, block?: number): Promise<RegistrySnapshot> {
  const c = chainOf(chain);
  return registrySnapshot(
    {
      rpcUrl: c.rpcUrl,
      nodeRegistry: c.deployment.contracts.nodeRegistry,
      publicClient: c.publicClient,
      chainId: c.deployment.chainId,
    },
    block === undefined ? undefined : BigInt(block),
  );
}
