import {
  isActiveNode,
  isVerityError,
  type NodeEntry,
  type RegistrySnapshot,
  type Trust,
  type TrustedNode,
  VerityError,
} from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { requestJson } from '../http.js';
import { assertDeploymentChain, registrySnapshot } from './registry.js';

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
 * Fetches the node's identity (what it says about itself: never a root of trust).
 *
 * @example
 * ```ts
 * const { address, logKey } = await getNodeInfo(client);
 * ```
 */
export function getNodeInfo(client: ClientBase): Promise<NodeInfo> {
  return requestJson<NodeInfo>(client, 'GET', '/v1/node');
}

/** How long a snapshot of the latest block serves before the registry is read again. */
const LATEST_MAX_AGE_MS = 5_000;
/** The client's registry at `block` (default: a recent latest one, or a fresh one). */
async function snapshotFor(client: ClientBase, block: number | undefined, fresh: boolean): Promise<RegistrySnapshot> {
  const chain = client.chain as NonNullable<ClientBase['chain']>;
  const registry = client.registry as NonNullable<ClientBase['registry']>;
  // Snapshots by block are cached by `registrySnapshot` (a block's registry never changes).
  if (block !== undefined) {
    return assertDeploymentChain(await registrySnapshot(registry, BigInt(block)), chain.deployment.chainId);
  }
  const latest = client.snapshots.latest;
  const age = latest === undefined ? Number.POSITIVE_INFINITY : Date.now() - latest.at;
  if (!fresh && latest !== undefined && age < LATEST_MAX_AGE_MS) {
    // Past 4/5 of its age, the next one is read in the background: calls under steady load use a
    // snapshot never older than the bound and never wait for the chain themselves.
    if (age >= (LATEST_MAX_AGE_MS * 4) / 5) void readLatest(client).catch(() => undefined);
    return latest.snapshot;
  }
  return readLatest(client);
}

/** Reads the latest registry (one read at a time per client); dated when the read began. */
function readLatest(client: ClientBase): Promise<RegistrySnapshot> {
  const chain = client.chain as NonNullable<ClientBase['chain']>;
  const registry = client.registry as NonNullable<ClientBase['registry']>;
  const at = Date.now();
  client.snapshots.reading ??= registrySnapshot(registry)
    .then((s) => {
      const snapshot = assertDeploymentChain(s, chain.deployment.chainId);
      client.snapshots.latest = { at, snapshot };
      return snapshot;
    })
    .finally(() => {
      client.snapshots.reading = undefined;
    });
  return client.snapshots.reading;
}

/** Each configured node's self-reported key (`insecureTrustNode` only): the nodes that answer. */
async function learnNodeKeys(client: ClientBase): Promise<Trust> {
  const urls = [client.url, ...client.fallbackUrls];
  const infos = await Promise.allSettled(urls.map((url) => getNodeInfo({ ...client, url, fallbackUrls: [] })));
  const nodes: TrustedNode[] = [];
  for (const r of infos) if (r.status === 'fulfilled') nodes.push({ address: r.value.address, logKey: r.value.logKey });
  if (nodes.length === 0) {
    const first = infos.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    throw first?.reason ?? new VerityError('NETWORK_ERROR', `cannot reach ${client.url}`);
  }
  return { nodes };
}

/**
 * The trust this client verifies with, gathered in a step of its own (verification itself never
 * fetches anything): with a `chain`, the registry at `block` (default: the latest) plus any keys
 * pinned by hand; without one, the pinned keys; with `insecureTrustNode`, the keys the configured
 * nodes report about themselves. With none of these, `TRUST_UNCONFIGURED`.
 *
 * @example
 * ```ts
 * const trust = await gatherTrust(client);
 * ```
 */
export async function gatherTrust(
  client: ClientBase,
  options: { block?: number; fresh?: boolean } = {},
): Promise<Trust> {
  if (client.chain) {
    // At a block the answer names, and then also now: a node that has left since cannot name a
    // block from when it was staked (RECEIPT_NODE_EXITED).
    const [registry, current] = await Promise.all([
      snapshotFor(client, options.block, options.fresh === true),
      options.block === undefined ? undefined : snapshotFor(client, undefined, options.fresh === true),
    ]);
    return {
      ...client.trust,
      nodes: client.trust?.nodes ?? [],
      registry,
      ...(current === undefined ? {} : { current }),
    };
  }
  if (client.trust) return client.trust;
  if (client.insecureTrustNode) {
    client.trust = await learnNodeKeys(client);
    return client.trust;
  }
  throw new VerityError(
    'TRUST_UNCONFIGURED',
    'nothing to verify answers against: give `chain` (the registry), `trust` (pinned keys), or insecureTrustNode',
  );
}

const REGISTRY_REFUSALS: ReadonlySet<string> = new Set([
  'RECEIPT_NODE_UNREGISTERED',
  'RECEIPT_NODE_INACTIVE',
  'RECEIPT_NODE_UNSTAKED',
  'RECEIPT_NODE_EXITED',
]);

/** Whether a verification code is the registry refusing a node (worth one look at a fresh snapshot). */
export function isRegistryRefusal(code: string): boolean {
  return REGISTRY_REFUSALS.has(code);
}

/**
 * Runs a verification with the client's trust. A node the cached registry snapshot does not
 * admit is looked up once more in a fresh one (it may have registered since, or the answer came
 * from a fallback node that joined later): each answer verifies against the registry entry of
 * the node that gave it.
 */
export async function withTrust<T>(client: ClientBase, run: (trust: Trust) => T | Promise<T>): Promise<T> {
  const trust = await gatherTrust(client);
  try {
    return await run(trust);
  } catch (e) {
    if (!client.chain || !isVerityError(e) || !isRegistryRefusal(e.code)) throw e;
    return run(await gatherTrust(client, { fresh: true }));
  }
}

/**
 * The bundle entries (`bundle.nodes`, informative: verifiers do not trust them) of `addresses`:
 * from the registry snapshot (with stake and block) or from the pinned keys.
 *
 * @example
 * ```ts
 * const nodes = bundleNodes(await gatherTrust(client), [receipt.record.node]);
 * ```
 */
export function bundleNodes(trust: Trust, addresses: readonly string[]): NodeEntry[] {
  const wanted = new Set(addresses.map((a) => a.toLowerCase()));
  const pinned = trust.nodes.filter((n) => wanted.has(n.address.toLowerCase()));
  const seen = new Set(pinned.map((n) => n.address.toLowerCase()));
  const registry = trust.registry;
  const fromChain = (registry?.nodes ?? [])
    .filter((n) => wanted.has(n.address.toLowerCase()) && !seen.has(n.address.toLowerCase()))
    .filter((n) => isActiveNode(registry as RegistrySnapshot, n))
    .map((n) => ({
      address: n.address,
      logKey: n.logKey,
      stake: n.stake.toString(),
      block: (registry as RegistrySnapshot).block.number,
    }));
  return [...pinned.map((n) => ({ address: n.address, logKey: n.logKey })), ...fromChain];
}
