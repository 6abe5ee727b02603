/**
 * Trust from the chain registry: the keys of the nodes registered (and active) at a block, read
 * from `NodeRegistry`. This is the "gather trust" step for answers from several nodes (`quorum`):
 * the receiving node's word about who its peers are is not taken.
 */
import { listNodes } from '@verity/contracts';
import { encodeVerifierKey, fromHex, type Trust } from '@verity/protocol';
import { createPublicClient, http, type PublicClient } from 'viem';
import type { ClientBase } from '../client.js';

/** Where the registry is. */
export interface RegistryOptions {
  /** JSON-RPC URL of the chain. */
  readonly rpcUrl: string;
  /** The `NodeRegistry` address (from the deployment file). */
  readonly nodeRegistry: `0x${string}`;
}

/**
 * The trust of a registry snapshot: every active node at `block` (address, log key, stake).
 *
 * @example
 * ```ts
 * const trust = await trustFromRegistry({ rpcUrl, nodeRegistry }, 120n);
 * ```
 */
export async function trustFromRegistry(registry: RegistryOptions, block?: bigint): Promise<Trust> {
  const publicClient = createPublicClient({ transport: http(registry.rpcUrl) }) as PublicClient;
  const nodes = await listNodes(publicClient, {
    nodeRegistry: registry.nodeRegistry,
    activeOnly: true,
    ...(block === undefined ? {} : { blockNumber: block }),
  });
  return {
    nodes: nodes.map((n) => ({
      address: n.account,
      logKey: encodeVerifierKey(n.origin, fromHex(n.logKey.slice(2))),
    })),
  };
}

/** The registry trust a client was configured with, at `block`; undefined without a registry. */
export function registryTrust(client: ClientBase, block: number): Promise<Trust> | undefined {
  return client.registry === undefined ? undefined : trustFromRegistry(client.registry, BigInt(block));
}
