import { listModelVersions, resolveModel } from '@verity/contracts';
import {
  compareVersions,
  fail,
  isActiveNode,
  isVerityError,
  type Manifest,
  manifestCid,
  parseManifest,
  parseModelRef,
  VerityError,
  verifySignedManifest,
} from '@verity/protocol';
import type { ClientBase, ClientChain } from '../client.js';
import { request, requestJson } from '../http.js';
import { gatherTrust } from './node-info.js';

/** A model as a node lists it. */
export interface ModelInfo {
  /** Manifest CID: the model's identity. */
  readonly id: string;
  /** `name@version`. */
  readonly ref: string;
  readonly manifest: Manifest;
  readonly signature?: string;
}

function check(m: ModelInfo): ModelInfo {
  try {
    return { ...m, manifest: parseManifest(m.manifest) };
  } catch (cause) {
    throw new VerityError('RESPONSE_INVALID', 'the node sent an invalid manifest', { cause });
  }
}

/**
 * Lists the node's models.
 *
 * @example
 * ```ts
 * for (const m of await listModels(client)) console.log(m.ref, m.id);
 * ```
 */
export async function listModels(client: ClientBase): Promise<ModelInfo[]> {
  const { data: models } = await requestJson<{ data: ModelInfo[] }>(client, 'GET', '/v1/models');
  return models.map(check);
}

/**
 * One model by CID, `name@version` or `name` (latest).
 *
 * @example
 * ```ts
 * const iris = await getModel(client, 'iris@1.0.0');
 * ```
 */
export async function getModel(client: ClientBase, ref: string): Promise<ModelInfo> {
  const m = client.chain
    ? await modelFromChain(client, client.chain, ref)
    : check(await requestJson<ModelInfo>(client, 'GET', `/v1/models/${encodeURIComponent(ref)}`));
  client.manifests.set(ref, m);
  return m;
}

/**
 * The manifest of `cid` from the client's node, or, when it does not hold the model yet (it
 * fetches models by CID only when asked to run them), from a registered node that does: the CID
 * is checked by the caller, so where the bytes come from does not matter.
 */
async function viewByCid(client: ClientBase, cid: string): Promise<ModelInfo> {
  const path = `/v1/models/${encodeURIComponent(cid)}`;
  try {
    return check(await requestJson<ModelInfo>(client, 'GET', path));
  } catch (e) {
    if (!isVerityError(e, 'MODEL_NOT_FOUND')) throw e;
    const { registry } = await gatherTrust(client);
    for (const node of registry?.nodes ?? []) {
      if (!registry || !isActiveNode(registry, node) || !/^https?:\/\//.test(node.endpoint)) continue;
      try {
        return check(
          await requestJson<ModelInfo>(
            { ...client, url: node.endpoint.replace(/\/+$/, ''), fallbackUrls: [] },
            'GET',
            path,
          ),
        );
      } catch {
        // not there either
      }
    }
    throw e;
  }
}

/**
 * A model by reference with the chain as the root (docs/design.md §2.6a): a name resolves through
 * `ModelRegistry` (latest version for a bare name), never through the node; the node only
 * supplies the manifest, which must be the registered CID, carry its publisher's signature, and
 * be published by the name's registered publisher (`MODEL_REGISTRY_MISMATCH` otherwise).
 */
async function modelFromChain(client: ClientBase, chain: ClientChain, ref: string): Promise<ModelInfo> {
  const parsed = parseModelRef(ref);
  let cid: string;
  let registered: { publisher: string; name: string; version: string } | undefined;
  if ('cid' in parsed) {
    cid = parsed.cid;
  } else {
    const modelRegistry = chain.deployment.contracts.modelRegistry;
    let version = parsed.version;
    if (version === undefined) {
      const versions = [...(await listModelVersions(chain.publicClient, { modelRegistry, name: parsed.name }))];
      version = versions.sort(compareVersions).at(-1);
    }
    const published =
      version === undefined
        ? undefined
        : await resolveModel(chain.publicClient, { modelRegistry, name: parsed.name, version });
    if (published === undefined) fail('MODEL_NOT_FOUND', 'no such model in the chain registry', { ref });
    cid = published.manifestCid;
    registered = { publisher: published.publisher, name: published.name, version: published.version };
  }
  const view = await viewByCid(client, cid);
  if (view.id !== cid || manifestCid(view.manifest) !== cid) {
    fail('MODEL_REGISTRY_MISMATCH', 'the node sent another manifest than the one the reference names', {
      ref,
      expected: cid,
      actual: view.id,
    });
  }
  if (registered) {
    verifySignedManifest({ manifest: view.manifest, signature: view.signature });
    const m = view.manifest;
    if (m.publisher.toLowerCase() !== registered.publisher.toLowerCase()) {
      fail('MODEL_REGISTRY_MISMATCH', 'the manifest is not by the publisher registered for the name', {
        ref,
        registered: registered.publisher,
        manifest: m.publisher,
      });
    }
    if (m.name !== registered.name || m.version !== registered.version) {
      fail('MODEL_REGISTRY_MISMATCH', 'the manifest names another model than the registry entry', { ref, cid });
    }
  }
  return view;
}

/** Upload parameters. */
export interface PushModelParams {
  readonly name: string;
  readonly version?: string;
  /** The model file's bytes, or a stream of them (never held whole in memory). */
  readonly data: Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;
  /** Size in bytes; required for streams so the node can check it (and for progress). */
  readonly size?: number;
  readonly license?: string;
  readonly description?: string;
  /**
   * ONNX: the execution profiles the manifest lists, in preference order (default `['native']`):
   * `['native', 'portable']` lets a request ask for either (docs/design.md §2.6).
   */
  readonly profiles?: readonly string[];
  /** `onnx` (default) or `gguf` (a language model). */
  readonly format?: 'onnx' | 'gguf';
  /**
   * Prepare the model for mode `zk` (ONNX only): the node compiles it to a circuit, makes its
   * Groth16 keys and commits to them in the manifest's metadata (`zk.*`). Either `true`
   * (fixed-point parameters chosen for inputs within ±10), or the parameters, or the input range.
   */
  readonly zk?: boolean | { readonly fracBits: number; readonly valueBits: number } | { readonly inputRange: number };
  /** Called as bytes are sent. */
  readonly onProgress?: (sent: number, total: number | undefined) => void;
  readonly signal?: AbortSignal;
}

function toStream(
  data: PushModelParams['data'],
  total: number | undefined,
  onProgress: PushModelParams['onProgress'],
): ReadableStream<Uint8Array> {
  let sent = 0;
  const source: AsyncIterable<Uint8Array> =
    data instanceof Uint8Array
      ? (async function* () {
          for (let i = 0; i < data.length; i += 1 << 20) yield data.subarray(i, i + (1 << 20));
        })()
      : data instanceof ReadableStream
        ? (async function* () {
            const reader = data.getReader();
            for (;;) {
              const { done, value } = await reader.read();
              if (done) return;
              yield value;
            }
          })()
        : data;
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await it.next();
      if (done) {
        controller.close();
        return;
      }
      sent += value.length;
      onProgress?.(sent, total);
      controller.enqueue(value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/**
 * Uploads a model file (streamed, with progress). Needs the node's API key.
 *
 * @example
 * ```ts
 * const model = await pushModel(client, { name: 'iris', version: '1.0.0', data: bytes });
 * ```
 */
export async function pushModel(client: ClientBase, params: PushModelParams): Promise<ModelInfo> {
  const size = params.size ?? (params.data instanceof Uint8Array ? params.data.length : undefined);
  const q = new URLSearchParams({
    name: params.name,
    version: params.version ?? '1.0.0',
    format: params.format ?? 'onnx',
  });
  if (params.license !== undefined) q.set('license', params.license);
  if (params.description !== undefined) q.set('description', params.description);
  if (params.profiles !== undefined) q.set('profiles', params.profiles.join(','));
  if (params.zk !== undefined && params.zk !== false) {
    q.set('zk', '1');
    if (typeof params.zk === 'object' && 'fracBits' in params.zk) {
      q.set('zkFracBits', String(params.zk.fracBits));
      q.set('zkValueBits', String(params.zk.valueBits));
    } else if (typeof params.zk === 'object') q.set('zkInputRange', String(params.zk.inputRange));
  }
  // The declared size travels as a query parameter: browsers do not let scripts set Content-Length.
  if (size !== undefined) q.set('size', String(size));
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  const response = await request(client, 'POST', `/v1/models?${q}`, {
    body: toStream(params.data, size, params.onProgress),
    headers,
    auth: true,
    ...(params.signal === undefined ? {} : { signal: params.signal }),
  });
  return check((await response.json()) as ModelInfo);
}
