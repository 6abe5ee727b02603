/**
 * Finding a model the node does not hold (DESIGN.md §3): a model pushed to one node is
 * published in `ModelRegistry`; any other node asked for it resolves `name@version` there, then
 * fetches it by manifest CID from a registered peer that has it, every block verified
 * (`fetchModel`). One fetch per model at a time, however many requests wait for it.
 */
import { listModelVersions, resolveModel } from '@verity/contracts';
import { fail, isCid, isVerityError, VerityError } from '@verity/protocol';
import type { NodeContext } from '../context.js';
import type { StoredModel } from '../store/index.js';
import { compareVersions, parseModelRef } from '../store/model-ref.js';
import { fetchModel } from './fetch-model.js';

const inflight = new Map<string, Promise<StoredModel>>();

/** The manifest CID a reference names on chain, or `MODEL_NOT_FOUND`. */
async function cidOnChain(ctx: NodeContext, ref: string): Promise<string> {
  const chain = ctx.chain;
  if (!chain) return fail('MODEL_NOT_FOUND', 'no such model', { ref });
  if (isCid(ref)) return ref;
  const r = parseModelRef(ref);
  if ('cid' in r) return r.cid;
  const modelRegistry = chain.deployment.contracts.modelRegistry;
  let version = r.version;
  if (version === undefined) {
    const versions = [...(await listModelVersions(chain.publicClient, { modelRegistry, name: r.name }))];
    versions.sort(compareVersions);
    version = versions.at(-1);
  }
  const published =
    version === undefined
      ? undefined
      : await resolveModel(chain.publicClient, { modelRegistry, name: r.name, version });
  if (!published) return fail('MODEL_NOT_FOUND', 'no such model, here or on chain', { ref });
  return published.manifestCid;
}

/**
 * The stored model `ref` names, fetched from a peer first when this node lacks it and runs on a
 * chain. `MODEL_NOT_FOUND` when neither this node nor any reachable peer has it.
 *
 * @example
 * ```ts
 * const stored = await resolveModel(ctx, 'iris@1.0.0');
 * ```
 */
export async function resolveOrFetch(ctx: NodeContext, ref: string): Promise<StoredModel> {
  try {
    return ctx.store.resolve(ref);
  } catch (e) {
    if (!isVerityError(e, 'MODEL_NOT_FOUND') || !ctx.chain) throw e;
  }
  const cid = await cidOnChain(ctx, ref);
  try {
    return ctx.store.resolve(cid);
  } catch (e) {
    if (!isVerityError(e, 'MODEL_NOT_FOUND')) throw e;
  }
  let pending = inflight.get(cid);
  if (!pending) {
    pending = (async () => {
      const { nodes } = await (ctx.chain as NonNullable<NodeContext['chain']>).peers();
      const self = ctx.keys.address.toLowerCase();
      let last: unknown;
      for (const peer of nodes) {
        if (peer.account.toLowerCase() === self) continue;
        try {
          return await fetchModel(peer.endpoint, cid, ctx.store, { maxSize: ctx.config.limits.modelBytes });
        } catch (e) {
          last = e; // that peer lacks it, lies or is down: try the next
        }
      }
      throw new VerityError('MODEL_NOT_FOUND', 'no peer could provide this model', {
        details: { ref, cid },
        ...(last === undefined ? {} : { cause: last }),
      });
    })();
    inflight.set(cid, pending);
    pending.finally(() => inflight.delete(cid)).catch(() => undefined);
  }
  return pending;
}
