import type { Trust } from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { requestJson } from '../http.js';
import { trustFromRegistry } from './registry.js';

/** What a node says about itself (`GET /v1/node`). */
export interface NodeInfo {
  readonly address: string;
  readonly origin: string;
  readonly logKey: string;
  /** Per runtime: the execution profile its records carry (absent while it is not settled yet). */
  readonly runtimes: readonly { id: string; version: string; profile?: string; formats: readonly string[] }[];
  /** The verification modes it serves: `signed`, `zk`, and `quorum` on a chain. */
  readonly modes: readonly string[];
}

/**
 * Fetches the node's identity.
 *
 * @example
 * ```ts
 * const { address, logKey } = await getNodeInfo(client);
 * ```
 */
export function getNodeInfo(client: ClientBase): Promise<NodeInfo> {
  return requestJson<NodeInfo>(client, 'GET', '/v1/node');
}

/**
 * The trust this client verifies with: the one it was given, or the node's own key learned on
 * first use and pinned from then on. This is the separate "gather trust" step: verification
 * itself never fetches anything.
 *
 * @example
 * ```ts
 * const trust = await gatherTrust(client);
 * ```
 */
export async function gatherTrust(client: ClientBase): Promise<Trust> {
  if (client.trust) return client.trust;
  // On a network, every registered node is trusted for what it signs (its stake is at risk).
  if (client.registry) {
    client.trust = await trustFromRegistry(client.registry);
    return client.trust;
  }
  const info = await getNodeInfo(client);
  client.trust = { nodes: [{ address: info.address, logKey: info.logKey }] };
  return client.trust;
}
