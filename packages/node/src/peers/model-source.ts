/**
 * Which model a reference means, and finding it when the node lacks it (docs/design.md §2.6a, §3):
 * the "resolve model" step of the request path (docs/architecture.md §2).
 *
 * On a node with a chain, ModelRegistry is the only source of names (issue 10): `iris` and
 * `iris@1.2.0` resolve there (publisher-owned names) to a manifest CID, never through what this
 * node happens to hold, so a model copied from a peer that calls itself `iris@99.0.0` cannot
 * shadow the real `iris`. A node without a chain (`--no-chain`) keeps its local names.
 *
 * A model the node lacks is fetched by manifest CID from a registered peer (`fetchModel`, every
 * block verified, every call under the URL policy), and only when a publisher registered it: the
 * registry maps the manifest's own `name@version` to that CID, or the request named a
 * `name@version` the registry maps to it. Operators may widen this (`peers.fetchCids`). A replica
 * is filed under its manifest's name only when the registry maps that name to it. Replicas have
 * quotas (`peers.maxReplicas`, `peers.maxReplicaBytes`). One fetch per model at a time, however
 * many requests wait for it.
 */
import { fail, isVerityError, VerityError } from '@verity/protocol';
import type { ChainService } from '../chain/chain-service.js';
import type { NodeContext } from '../context.js';
import type { ModelStore, StoredModel } from '../store/index.js';
import { parseModelRef } from '../store/model-ref.js';
import { fetchModel } from './fetch-model.js';

/** Fetches in flight, per store (several nodes may share a process in tests). */
const inflight = new WeakMap<ModelStore, Map<string, Promise<StoredModel>>>();

/** The manifest CID a name means on chain, or `MODEL_NOT_FOUND`. */
async function cidOnChain(chain: ChainService, ref: string, name: string, version?: string): Promise<string> {
  const cid = await chain.resolveName(name, version);
  if (cid === undefined) return fail('MODEL_NOT_FOUND', 'no such model in the model registry', { ref });
  return cid;
}

/**
 * The stored model `ref` names on this node, without fetching: a CID as is; a name through
 * ModelRegistry on a node with a chain, through the store's names otherwise.
 * `MODEL_NOT_FOUND` when the node does not hold it.
 *
 * @example
 * ```ts
 * const stored = await resolveHere(ctx, 'iris@1.0.0');
 * ```
 */
export async function resolveHere(ctx: NodeContext, ref: string): Promise<StoredModel> {
  const r = parseModelRef(ref);
  if ('cid' in r || !ctx.chain) return ctx.store.resolve(ref);
  return ctx.store.resolve(await cidOnChain(ctx.chain, ref, r.name, r.version));
}

/**
 * The stored model `ref` names (as {@link resolveHere}), fetched from a peer first when this node
 * lacks it and runs on a chain. `MODEL_NOT_FOUND` when no reachable peer has it,
 * `MODEL_NOT_REGISTERED` for a CID no publisher registered (and `peers.fetchCids` does not
 * allow), `REPLICA_QUOTA_EXCEEDED` when the node may keep no more copies.
 *
 * @example
 * ```ts
 * const stored = await resolveOrFetch(ctx, 'iris@1.0.0');
 * ```
 */
export async function resolveOrFetch(ctx: NodeContext, ref: string): Promise<StoredModel> {
  const chain = ctx.chain;
  if (!chain) return ctx.store.resolve(ref);
  const r = parseModelRef(ref);
  const cid = 'cid' in r ? r.cid : await cidOnChain(chain, ref, r.name, r.version);
  try {
    return ctx.store.resolve(cid);
  } catch (e) {
    if (!isVerityError(e, 'MODEL_NOT_FOUND')) throw e;
  }
  let pending = inflight.get(ctx.store)?.get(cid);
  if (!pending) {
    // Asked for by a name the registry maps to this CID: registered, whatever the manifest says.
    pending = fetchFromPeers(ctx, chain, ref, cid, 'cid' in r ? undefined : ref);
    const map = inflight.get(ctx.store) ?? new Map<string, Promise<StoredModel>>();
    inflight.set(ctx.store, map);
    map.set(cid, pending);
    pending.finally(() => map.delete(cid)).catch(() => undefined);
  }
  return pending;
}

/** Refusals that hold whichever peer answers: stop asking. */
const FINAL = ['MODEL_NOT_REGISTERED', 'REPLICA_QUOTA_EXCEEDED'] as const;

async function fetchFromPeers(
  ctx: NodeContext,
  chain: ChainService,
  ref: string,
  cid: string,
  askedByName: string | undefined,
): Promise<StoredModel> {
  const { peers } = ctx.config;
  const { nodes } = await chain.peers();
  const self = ctx.keys.address.toLowerCase();
  // Decided from the manifest (which hashes to `cid`, so every peer sends the same one).
  const admit = async (manifest: { name: string; version: string }) => {
    const own = await chain.resolveName(manifest.name, manifest.version);
    if (own === cid) return { named: true };
    // Asked for by a name the registry maps to this CID (`askedByName` resolved to it).
    if (askedByName !== undefined) return { named: false };
    if (peers.fetchCids.includes('*') || peers.fetchCids.includes(cid)) return { named: false };
    return fail('MODEL_NOT_REGISTERED', 'no publisher registered this model in the model registry', {
      cid,
      manifestRef: `${manifest.name}@${manifest.version}`,
      ...(own === undefined ? {} : { registeredCid: own }),
    });
  };
  let last: unknown;
  for (const peer of nodes) {
    if (peer.account.toLowerCase() === self) continue;
    try {
      return await fetchModel(peer.endpoint, cid, ctx.store, {
        maxSize: ctx.config.limits.modelBytes,
        policy: peers,
        admit,
        maxReplicas: peers.maxReplicas,
        maxReplicaBytes: peers.maxReplicaBytes,
      });
    } catch (e) {
      if (FINAL.some((code) => isVerityError(e, code))) throw e;
      last = e; // that peer lacks it, lies, is down or is refused by the URL policy: try the next
    }
  }
  throw new VerityError('MODEL_NOT_FOUND', 'no peer could provide this model', {
    details: { ref, cid },
    ...(last === undefined ? {} : { cause: last }),
  });
}
