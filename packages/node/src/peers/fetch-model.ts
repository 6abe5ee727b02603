/**
 * Model replication: a node that lacks a model fetches it from a peer by manifest CID
 * (docs/design.md §3), trusting nothing the peer says. The manifest must hash to the CID asked for
 * and carry its publisher's valid signature; the artifact comes as a CAR from the peer's IPFS
 * trustless gateway, every block checked against its CID as it arrives, and the file rebuilt
 * from it must hash to the manifest's artifact CID before anything is kept (`ModelStore.putReplica`).
 * Every call goes through the URL policy (`url-policy.ts`); `admit` decides, from the checked
 * manifest and before the artifact is asked for, whether the model may be copied at all and under
 * which name (`model-source.ts`: only what ModelRegistry maps), and the store's quotas apply.
 */
import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CODEC_RAW,
  fail,
  isVerityError,
  type Manifest,
  manifestCid,
  parseCid,
  parseManifest,
  readCar,
  type SignedManifest,
  VerityError,
} from '@verity/protocol';
import type { ModelStore, StoredModel } from '../store/index.js';
import { peerFetch, type UrlPolicy } from './url-policy.js';

/** Options for {@link fetchModel}. */
export interface FetchModelOptions {
  /** Largest artifact accepted, bytes. */
  readonly maxSize: number;
  /** The outbound URL policy the peer's endpoint must pass (`ENDPOINT_REFUSED`): `config.peers`. */
  readonly policy: UrlPolicy;
  readonly signal?: AbortSignal;
  /** Per-request timeout for the manifest, ms (the artifact streams as long as it flows). */
  readonly timeoutMs?: number;
  /**
   * Called with the verified manifest before the artifact is fetched: throws to refuse the model
   * (e.g. `MODEL_NOT_REGISTERED`), or says whether it may be filed under its own name. Default:
   * admitted, unnamed.
   */
  readonly admit?: (manifest: Manifest, cid: string) => Promise<{ readonly named: boolean }>;
  /** Quotas on the store's replicas (`REPLICA_QUOTA_EXCEEDED`), checked before the artifact is fetched. */
  readonly maxReplicas?: number;
  readonly maxReplicaBytes?: number;
}

async function get(
  url: string,
  policy: UrlPolicy,
  signal: AbortSignal | undefined,
  accept?: string,
): Promise<Response> {
  // ENDPOINT_REFUSED and NETWORK_ERROR come from peerFetch as they are.
  const response = await peerFetch(
    url,
    { ...(signal ? { signal } : {}), ...(accept ? { headers: { accept } } : {}) },
    policy,
  );
  if (response.status === 404) fail('MODEL_NOT_FOUND', 'the peer does not have this model', { url });
  if (!response.ok) fail('RESPONSE_INVALID', `the peer answered HTTP ${response.status}`, { url });
  return response;
}

/** The file's bytes, in order, from a CAR with duplicates: raw leaves as the walk meets them. */
async function* leaves(body: ReadableStream<Uint8Array>, root: string): AsyncGenerator<Uint8Array> {
  const sha256 = (bytes: Uint8Array) => hash('sha256', bytes, 'buffer');
  for await (const block of readCar(Readable.fromWeb(body as never), root, undefined, sha256)) {
    if (parseCid(block.cid).codec === CODEC_RAW) yield block.bytes;
  }
}

/**
 * Fetches the model `manifestCid` from the peer at `peerUrl` into `store` (a no-op when it is
 * already there). Throws `MODEL_NOT_FOUND` when the peer lacks it, `RESPONSE_INVALID` when the
 * peer's manifest is not the one asked for, `MANIFEST_SIGNATURE_INVALID` for a bad signature,
 * `CID_INVALID` / `MODEL_INVALID` when a block or the whole file does not match, and
 * `NETWORK_ERROR` when the peer cannot be reached; nothing is stored on any failure.
 *
 * @example
 * ```ts
 * const model = await fetchModel('http://10.0.0.2:8700', cid, store, { maxSize: 1 << 30 });
 * ```
 */
export async function fetchModel(
  peerUrl: string,
  cid: string,
  store: ModelStore,
  options: FetchModelOptions,
): Promise<StoredModel> {
  try {
    return store.resolve(cid);
  } catch (e) {
    if (!isVerityError(e, 'MODEL_NOT_FOUND')) throw e;
  }
  const base = peerUrl.replace(/\/+$/, '');
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const view = (await (
    await get(`${base}/v1/models/${cid}`, options.policy, signal)
  ).json()) as Partial<SignedManifest>;
  let signed: SignedManifest;
  try {
    const manifest = parseManifest(view.manifest);
    if (manifestCid(manifest) !== cid) fail('RESPONSE_INVALID', 'the peer sent another manifest', { cid });
    if (typeof view.signature !== 'string') fail('MANIFEST_SIGNATURE_INVALID', 'the peer sent no publisher signature');
    signed = { manifest, signature: view.signature };
  } catch (e) {
    if (isVerityError(e, 'MANIFEST_INVALID')) {
      throw new VerityError('RESPONSE_INVALID', 'the peer sent an invalid manifest', { cause: e });
    }
    throw e;
  }
  const { named } = options.admit ? await options.admit(signed.manifest, cid) : { named: false };
  const artifact = signed.manifest.artifact.cid;
  // Asked for only when the store starts reading: after its quota checks.
  const source = (async function* () {
    const car = await get(
      `${base}/ipfs/${artifact}?format=car&dups=y`,
      options.policy,
      options.signal,
      'application/vnd.ipld.car; version=1; order=dfs; dups=y',
    );
    if (!car.body) fail('RESPONSE_INVALID', 'the peer sent no CAR body');
    yield* leaves(car.body, artifact);
  })();
  return store.putReplica(source, signed, {
    maxSize: options.maxSize,
    named,
    ...(options.maxReplicas === undefined ? {} : { maxReplicas: options.maxReplicas }),
    ...(options.maxReplicaBytes === undefined ? {} : { maxReplicaBytes: options.maxReplicaBytes }),
  });
}
