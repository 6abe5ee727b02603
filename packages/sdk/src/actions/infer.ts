import {
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  decodeInferFrame,
  encodeInferFrame,
  encodeTensors,
  INFER_MEDIA_TYPE,
  type InferenceRecord,
  type NodeEntry,
  primeVerifyCache,
  type QuorumEvidence,
  type Receipt,
  sha256Async,
  type TensorMap,
  type TensorSignature,
  tensorsFromJson,
  tensorsToExactJson,
  toHex,
  VerityError,
  validateTensors,
  verifyBundle,
  verifyReceipt,
  type ZkEvidence,
} from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { request } from '../http.js';
import { answerPayment, type PaymentMade, paymentOf, type VerifiedPayment, verifyWithPayers } from '../payment.js';
import { getModel, type ModelInfo } from './models.js';
import { bundleNodes, gatherTrust, withTrust } from './node-info.js';
import { askQuorum, quorumTrust } from './quorum.js';
import { verifyZkBundle, type ZkTrustBasis, type ZkTrustOptions } from './zk.js';

/** Inference parameters. */
export interface InferParams {
  /** Manifest CID, `name@version`, or `name`. */
  readonly model: string;
  /**
   * Named tensors: in a JSON form, full (`{ x: { dtype, shape, data: [...] } }`) or short
   * (`{ x: [[…]] }`), or as tensors (`{ x: { dtype: 'float32', shape, data: Float32Array } }`),
   * which go to the node as their bytes and never through decimal text.
   */
  readonly input: Record<string, unknown>;
  readonly requestId?: string;
  /**
   * Your own nonce, recorded in the receipt (hex). Mode `quorum`: it seeds the selection, so it
   * must be 16 to 64 unpredictable bytes; by default the SDK picks 16 random bytes.
   */
  readonly clientNonce?: string;
  /**
   * `signed` (default): one node. `quorum`: k registered nodes must agree. `zk`: a Groth16 proof
   * that the output is the committed model's (fixed-point) answer (docs/design.md §2.6).
   * `audited`: one node, which keeps the input and output for the challenge window so that
   * auditors can re-execute and challenge the record (docs/api.md "Mode audited").
   */
  readonly mode?: 'signed' | 'quorum' | 'audited' | 'zk';
  /** Mode `zk`: accept proofs from a `local-dev` setup (development only; default false). */
  readonly acceptLocalDevSetup?: boolean;
  /**
   * Mode `zk`: the audits of the model's verification key you accept (records, a directory of
   * them, or auditors attesting on chain): a `multi-party` key without one is `ZK_VK_UNAUDITED`.
   */
  readonly zk?: ZkTrustOptions;
  /** Quorum size (mode `quorum`), default 3. */
  readonly k?: number;
  /**
   * The execution profile to run under (ONNX models; docs/design.md §2.6): `native`, or
   * `portable` (onnxruntime-web, WASM: the same bits on every host and in browsers). It must be
   * one the model's manifest lists (else `PROFILE_NOT_LISTED`). Default: the first the manifest
   * lists that the node runs. The SDK refuses a receipt made under another.
   */
  readonly profile?: string;
  /**
   * How tensors travel (docs/api.md "Binary tensors"): `binary` (default), the canonical encoding
   * in a binary inference frame both ways; `json`, the JSON forms. Digests and receipts are the same.
   */
  readonly wire?: 'binary' | 'json';
  readonly signal?: AbortSignal;
}

/** A verified inference result. */
export interface InferResult {
  readonly requestId: string;
  /** The model's manifest CID. */
  readonly model: string;
  /** Output tensors, decoded. */
  readonly output: TensorMap;
  /** Output in its JSON form: as the node sent it over JSON; over binary, made on first read. */
  readonly outputJson: Record<string, unknown>;
  /**
   * Modes `signed` and `audited`: the output's canonical encoding (docs/protocol.md §2.3), whose
   * SHA-256 is the record's output digest (over binary: the bytes as received).
   */
  readonly outputBytes?: Uint8Array;
  /** The (first) receipt. */
  readonly receipt: Receipt;
  /** Every receipt: one, or k in mode `quorum` (in the quorum ranking's order). */
  readonly receipts: readonly Receipt[];
  /** Mode `quorum`: receipts of ranked nodes that answered another output (outvoted; evidence against them). */
  readonly dissent?: readonly Receipt[];
  readonly record: InferenceRecord;
  /** Mode `zk`: the proof, public signals, verification key and setup (the output is what they prove). */
  readonly zk?: ZkEvidence;
  /** Mode `zk`: why the verification key was trusted (an audit, an attestation, an accepted local-dev setup). */
  readonly zkTrust?: ZkTrustBasis;
  /**
   * Mode `audited`: until when the node keeps the payload (ms since the epoch) and its path on
   * the node, as the node states them. The chain decides: `auditStatus` reads the window from
   * `Disputes` and the record's first anchor on chain, never from this.
   */
  readonly audit?: { readonly windowClosesAt: number; readonly payload: string };
  /**
   * What this answer cost, when the client paid for it (the `payment` option): the record was
   * checked to commit to this payment (authorization digest and amount charged).
   */
  readonly payment?: VerifiedPayment;
  /** A self-contained bundle: receipt, node entry, input and output, for `verity verify`. */
  bundle(): Bundle;
}

/** An answer's fields, and its output decoded (checked against `signatures` when given) and in JSON form. */
type Answer<T> = T & {
  output: TensorMap;
  outputJson: Record<string, unknown>;
  /** Binary answers: the output's canonical encoding as received (its digest is the output digest). */
  outputBytes?: Uint8Array;
  /** The payment this answer was bought with (the client's payer answered a 402). */
  paid?: PaymentMade;
};

/**
 * `POST /v1/infer` with the caller's id, nonce and signal, and what the mode adds. `sent` goes as
 * a binary inference frame (docs/protocol.md §2.6) unless `params.wire` is `json`; the answer is
 * read in whichever form the node sent.
 */
async function postInfer<T>(
  client: ClientBase,
  modelId: string,
  params: InferParams,
  sent: TensorMap,
  sentBytes: Uint8Array,
  signatures: readonly TensorSignature[] | undefined,
  extra: Record<string, unknown> = {},
): Promise<Answer<T>> {
  const fields = {
    model: modelId,
    ...extra,
    ...(params.requestId === undefined ? {} : { requestId: params.requestId }),
    ...(params.clientNonce === undefined ? {} : { clientNonce: params.clientNonce }),
    ...(params.profile === undefined ? {} : { profile: params.profile }),
  };
  const signal = params.signal === undefined ? {} : { signal: params.signal };
  const response =
    params.wire === 'json'
      ? await request(client, 'POST', '/v1/infer', {
          json: { ...fields, input: jsonInput(params.input, sent) },
          ...signal,
        })
      : await request(client, 'POST', '/v1/infer', {
          body: encodeInferFrame(JSON.stringify(fields), sentBytes) as BodyInit,
          headers: { 'content-type': INFER_MEDIA_TYPE, accept: `${INFER_MEDIA_TYPE}, application/json;q=0.5` },
          ...signal,
        });
  const paid = paymentOf(response);
  const invalid = (cause: unknown, what = 'an output that does not match the model') =>
    new VerityError('RESPONSE_INVALID', `the node sent ${what}`, { cause });
  if ((response.headers.get('content-type') ?? '').startsWith(INFER_MEDIA_TYPE)) {
    let frame: ReturnType<typeof decodeInferFrame>;
    try {
      const bytes = new Uint8Array(await response.arrayBuffer());
      // The whole answer is in memory already: its header needs no bound of its own.
      frame = decodeInferFrame(bytes, { maxHeaderBytes: bytes.length });
    } catch (cause) {
      throw invalid(cause, 'an invalid binary answer');
    }
    try {
      if (signatures !== undefined) validateTensors(frame.tensors, signatures);
    } catch (cause) {
      throw invalid(cause);
    }
    let json: Record<string, unknown> | undefined;
    return {
      ...(frame.header as T),
      output: frame.tensors,
      // Made when asked for: an image-sized output need not become decimal text.
      get outputJson() {
        json ??= tensorsToExactJson(frame.tensors);
        return json;
      },
      outputBytes: frame.tensorBytes,
      ...(paid === undefined ? {} : { paid }),
    };
  }
  let body: T & { output?: unknown };
  try {
    body = (await response.json()) as T & { output?: unknown };
  } catch (cause) {
    throw invalid(cause, 'invalid JSON');
  }
  let output: TensorMap;
  try {
    output = tensorsFromJson(body.output, signatures);
  } catch (cause) {
    throw invalid(cause, signatures === undefined ? 'an output that is not a tensor map' : undefined);
  }
  return {
    ...body,
    output,
    outputJson: body.output as Record<string, unknown>,
    ...(paid === undefined ? {} : { paid }),
  };
}

/** True when the caller gave tensors (some value holds typed-array data), not a JSON form. */
function givenAsTensors(input: Record<string, unknown>): boolean {
  return Object.values(input).some((v) => ArrayBuffer.isView((v as { data?: unknown } | null)?.data));
}

/**
 * The input as tensors: a map whose values hold typed-array data is taken as tensors (checked
 * against the signatures); anything else is read as a JSON form.
 */
function inputTensors(input: Record<string, unknown>, signatures: readonly TensorSignature[]): TensorMap {
  if (givenAsTensors(input)) {
    validateTensors(input as TensorMap, signatures);
    return input as TensorMap;
  }
  return tensorsFromJson(input, signatures);
}

/** The input for the JSON wire: as the caller wrote it, or, given as tensors, their exact JSON form. */
function jsonInput(input: Record<string, unknown>, sent: TensorMap): unknown {
  return givenAsTensors(input) ? tensorsToExactJson(sent) : input;
}

async function manifestFor(client: ClientBase, ref: string): Promise<ModelInfo> {
  return (client.manifests.get(ref) as ModelInfo | undefined) ?? getModel(client, ref);
}

/**
 * Runs a model and verifies the answer before returning it: the receipt verifies against the
 * trusted node key, the record names the model asked for, and its input and output digests equal
 * the digests of what was sent and what came back. Any mismatch throws a VerityError.
 *
 * @example
 * ```ts
 * const { output, receipt } = await infer(client, { model: 'iris@1.0.0', input: { x: [[5.1, 3.5, 1.4, 0.2]] } });
 * ```
 */
export async function infer(client: ClientBase, params: InferParams): Promise<InferResult> {
  if (params.mode === 'quorum') return inferQuorum(client, params);
  if (params.mode === 'zk') return inferZk(client, params);
  return inferOne(client, params);
}

/**
 * @internal {@link infer} in modes `signed` and `audited`. `encoded`: the input as tensors with
 * their canonical encoding as received (a binary frame passed on by the gateway): checked against
 * the model's signature, then sent and hashed as they are, never encoded again.
 */
export async function inferOne(
  client: ClientBase,
  params: InferParams,
  encoded?: { readonly tensors: TensorMap; readonly bytes: Uint8Array },
): Promise<InferResult> {
  // Trust first (in parallel): a client with no root of trust fails before anything is sent.
  const [model] = await Promise.all([manifestFor(client, params.model), gatherTrust(client)]);
  // What we send, as the node must understand it: the same canonical tensors, the same digest.
  let sent: TensorMap;
  let sentBytes: Uint8Array;
  if (encoded === undefined) {
    sent = inputTensors(params.input, model.manifest.inputs);
    sentBytes = encodeTensors(sent);
  } else {
    validateTensors(encoded.tensors, model.manifest.inputs);
    sent = encoded.tensors;
    sentBytes = encoded.bytes;
  }
  // Tensors hash natively (WebCrypto) past a few KiB: the portable hash costs ms per image.
  const inputDigest = toHex(await sha256Async(sentBytes));
  const body = await postInfer<{
    requestId: string;
    model: string;
    receipt: Receipt;
    audit?: { windowClosesAt: number; payload: string };
  }>(
    client,
    model.id,
    params,
    sent,
    sentBytes,
    model.manifest.outputs,
    params.mode === 'audited' ? { mode: 'audited' } : {},
  );
  const output = body.output;
  const outputBytes = body.outputBytes ?? encodeTensors(output);
  const outputDigest = toHex(await sha256Async(outputBytes));
  // Whichever node answered (after failover, perhaps not `url`'s), its own registry key decides.
  const { verified, trust } = await withTrust(client, async (trust) => {
    await primeVerifyCache(body.receipt, trust, client.cache); // a new checkpoint's signature, natively
    // A contract wallet's payment signature: its own only if it says so on the chain.
    const result = await verifyWithPayers(client.chain, [body.receipt], (payment) =>
      verifyReceipt(body.receipt, trust, { cache: client.cache, inputDigest, outputDigest, payment }),
    );
    if (!result.ok) throw result.error;
    return { verified: result.receipts[0] as { record: InferenceRecord }, trust };
  });
  if (verified.record.model !== model.id) {
    throw new VerityError('RESPONSE_INVALID', 'the receipt is for another model', {
      details: { expected: model.id, actual: verified.record.model },
    });
  }
  if (params.clientNonce !== undefined && verified.record.clientNonce !== params.clientNonce) {
    throw new VerityError('RESPONSE_INVALID', 'the receipt does not carry our nonce');
  }
  checkProfile(params, [verified.record]);
  // The mode asked for is the mode logged: an audited request answered as `signed` escapes audit.
  const mode = params.mode ?? 'signed';
  if (verified.record.mode !== mode) {
    throw new VerityError('RESPONSE_INVALID', `the receipt is for mode ${verified.record.mode}, not ${mode}`, {
      details: { expected: mode, actual: verified.record.mode },
    });
  }
  const payment = await answerPayment(client.payer, client.chain, body.paid, verified.record);
  const audit = body.audit;
  if (mode === 'audited' && (typeof audit?.windowClosesAt !== 'number' || typeof audit.payload !== 'string')) {
    throw new VerityError('RESPONSE_INVALID', 'an audited answer without its challenge window');
  }
  return {
    ...(mode === 'audited' ? { audit } : {}),
    ...(payment === undefined ? {} : { payment }),
    requestId: body.requestId,
    model: model.id,
    output,
    get outputJson() {
      return body.outputJson;
    },
    outputBytes,
    receipt: body.receipt,
    receipts: [body.receipt],
    record: verified.record,
    bundle: () => ({
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: [body.receipt],
      nodes: bundleNodes(trust, [verified.record.node]),
      input: tensorsToExactJson(sent),
      output: body.outputJson,
    }),
  };
}

/**
 * Mode `zk`: the node proves the inference. The answer is verified as a bundle with
 * {@link verifyZkBundle} (receipt, digests, verification key against the manifest, public signals
 * = input and output, Groth16 proof) before it is returned. The output is the circuit's output
 * (proved tensors as float64, ArgMax heads as int64), not the model's float output.
 */
async function inferZk(client: ClientBase, params: InferParams): Promise<InferResult> {
  const [model] = await Promise.all([manifestFor(client, params.model), gatherTrust(client)]);
  const sent = inputTensors(params.input, model.manifest.inputs);
  const body = await postInfer<{
    requestId: string;
    model: string;
    receipt: Receipt;
    zk: ZkEvidence;
  }>(client, model.id, params, sent, encodeTensors(sent), undefined, { mode: 'zk' });
  const output = body.output;
  const node = String((body.receipt as { record?: { node?: unknown } } | undefined)?.record?.node ?? '');
  const { bundle, result } = await withTrust(client, async (trust) => {
    const bundle: Bundle = {
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: [body.receipt],
      nodes: bundleNodes(trust, [node]),
      input: tensorsToExactJson(sent),
      output: body.outputJson,
      // The manifest travels signed: a verifier checks its publisher's signature over its CID.
      zk: {
        ...body.zk,
        manifest:
          model.signature === undefined ? model.manifest : { manifest: model.manifest, signature: model.signature },
      },
    };
    const result = await verifyZkBundle(bundle, trust, {
      cache: client.cache,
      ...(client.chain === undefined ? {} : { chain: client.chain }),
      ...(params.zk === undefined ? {} : { zk: params.zk }),
      ...(params.acceptLocalDevSetup === undefined ? {} : { acceptLocalDevSetup: params.acceptLocalDevSetup }),
    });
    if (!result.ok) throw result.error;
    return { bundle, result };
  });
  const record = (result.receipts[0] as { record: InferenceRecord }).record;
  if (record.mode !== 'zk') throw new VerityError('RESPONSE_INVALID', 'the receipt is not a zk receipt');
  const payment = await answerPayment(client.payer, client.chain, body.paid, record);
  if (params.clientNonce !== undefined && record.clientNonce !== params.clientNonce) {
    throw new VerityError('RESPONSE_INVALID', 'the receipt does not carry our nonce');
  }
  return {
    requestId: body.requestId,
    model: model.id,
    output,
    outputJson: body.outputJson,
    receipt: body.receipt,
    receipts: [body.receipt],
    record,
    zk: body.zk,
    ...(result.ok ? { zkTrust: result.zkTrust } : {}),
    ...(payment === undefined ? {} : { payment }),
    bundle: () => bundle,
  };
}

/** The profile asked for is the profile logged: a node may not answer another in its place. */
function checkProfile(params: InferParams, records: readonly InferenceRecord[]): void {
  if (params.profile === undefined) return;
  for (const record of records) {
    if (record.runtime.profile !== params.profile) {
      throw new VerityError(
        'RESPONSE_INVALID',
        `the receipt is for profile ${record.runtime.profile}, not ${params.profile}`,
        { details: { expected: params.profile, actual: record.runtime.profile } },
      );
    }
  }
}

/** The nodes untrusted receipts name (for the bundle's informative `nodes`). */
function recordNodes(receipts: unknown): string[] {
  if (!Array.isArray(receipts)) return [];
  return receipts.map((r) => String((r as { record?: { node?: unknown } } | null)?.record?.node ?? ''));
}

/**
 * Mode `quorum` (docs/protocol.md §11): the SDK picks the selection's seed — a random nonce and,
 * when the client has a `chain`, the latest block — and the receiving
 * node asks the nodes the registry ranks for that seed until k agree. The answer is verified as
 * one bundle against the registry read at that block (`Trust.registry`): every receipt's node
 * registered, active and staked; the receipts the ranking's head; the block the one named.
 * Without a chain: keys pinned by hand, or (only with `insecureTrustNode`) the node entries the
 * receiving node sent (the selection cannot be checked then).
 */
async function inferQuorum(client: ClientBase, params: InferParams): Promise<InferResult> {
  const model = await manifestFor(client, params.model);
  const sent = inputTensors(params.input, model.manifest.inputs);
  const asked = await askQuorum(client, params.k ?? 3, params.clientNonce);
  const { k, nonce, block } = asked;
  const body = await postInfer<{
    requestId: string;
    model: string;
    receipts: Receipt[];
    nodes: NodeEntry[];
    quorum: QuorumEvidence;
  }>(client, model.id, { ...params, clientNonce: nonce }, sent, encodeTensors(sent), model.manifest.outputs, {
    mode: 'quorum',
    k,
    ...(block === undefined ? {} : { block }),
  });
  const output = body.output;
  // The coordinator chooses nothing in the seed: the block and the nonce must be ours.
  const trust = await quorumTrust(client, asked, body.quorum);
  const quorum = body.quorum;
  const bundle: Bundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipts: body.receipts,
    nodes: client.chain ? bundleNodes(trust, recordNodes(body.receipts)) : body.nodes,
    input: tensorsToExactJson(sent),
    output: tensorsToExactJson(output),
    quorum,
  };
  await primeVerifyCache(bundle, trust, client.cache);
  const result = await verifyWithPayers(
    client.chain,
    bundle.receipts,
    (payment) => verifyBundle(bundle, trust, { cache: client.cache, payment }),
    {},
    bundle.quorum?.dissent,
  );
  if (!result.ok) throw result.error;
  const first = (result.receipts[0] as { record: InferenceRecord }).record;
  if (first.model !== model.id) {
    throw new VerityError('RESPONSE_INVALID', 'the receipts are not quorum receipts for this model');
  }
  checkProfile(
    params,
    result.receipts.map((r) => r.record),
  );
  // A paid quorum: the coordinator's record commits to our payment (docs/protocol.md §17.5), each
  // member's to the coordinator's payment of it; ours must be committed to and, with a chain, settled.
  const paid = body.paid;
  const payment =
    paid === undefined
      ? undefined
      : await answerPayment(
          client.payer,
          client.chain,
          paid,
          // The coordinator's receipt, among the agreeing or (its output outvoted) the dissenting ones.
          [...result.receipts, ...(result.quorum?.dissent ?? [])].find(
            (r) => r.record.payment?.digest === paid.digest.slice(2),
          )?.record,
        );
  return {
    requestId: body.requestId,
    model: model.id,
    output,
    outputJson: body.outputJson,
    receipt: body.receipts[0] as Receipt,
    receipts: body.receipts,
    dissent: quorum.dissent,
    record: first,
    ...(payment === undefined ? {} : { payment }),
    bundle: () => bundle,
  };
}
