import {
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  type InferenceRecord,
  type Receipt,
  type TensorMap,
  tensorsDigest,
  tensorsFromJson,
  tensorsToExactJson,
  toHex,
  VerityError,
  verifyReceipt,
} from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { requestJson } from '../http.js';
import { getModel, type ModelInfo } from './models.js';
import { gatherTrust } from './node-info.js';

/** Inference parameters. */
export interface InferParams {
  /** Manifest CID, `name@version`, or `name`. */
  readonly model: string;
  /** Named tensors, full form (`{ x: { dtype, shape, data } }`) or short form (`{ x: [[…]] }`). */
  readonly input: Record<string, unknown>;
  readonly requestId?: string;
  /** Your own nonce, recorded in the receipt (hex). */
  readonly clientNonce?: string;
  readonly signal?: AbortSignal;
}

/** A verified inference result. */
export interface InferResult {
  readonly requestId: string;
  /** The model's manifest CID. */
  readonly model: string;
  /** Output tensors, decoded. */
  readonly output: TensorMap;
  /** Output as the node sent it (JSON form). */
  readonly outputJson: Record<string, unknown>;
  readonly receipt: Receipt;
  readonly record: InferenceRecord;
  /** A self-contained bundle: receipt, node entry, input and output, for `verity verify`. */
  bundle(): Bundle;
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
  const [model, trust] = await Promise.all([manifestFor(client, params.model), gatherTrust(client)]);
  // What we send, as the node must understand it: the same canonical tensors, the same digest.
  const sent = tensorsFromJson(params.input, model.manifest.inputs);
  const inputDigest = toHex(tensorsDigest(sent));
  const body = await requestJson<{
    requestId: string;
    model: string;
    output: Record<string, unknown>;
    receipt: Receipt;
  }>(client, 'POST', '/v1/infer', {
    json: {
      model: model.id,
      input: params.input,
      ...(params.requestId === undefined ? {} : { requestId: params.requestId }),
      ...(params.clientNonce === undefined ? {} : { clientNonce: params.clientNonce }),
    },
    ...(params.signal === undefined ? {} : { signal: params.signal }),
  });
  let output: TensorMap;
  try {
    output = tensorsFromJson(body.output, model.manifest.outputs);
  } catch (cause) {
    throw new VerityError('RESPONSE_INVALID', 'the node sent an output that does not match the model', { cause });
  }
  const outputDigest = toHex(tensorsDigest(output));
  const result = verifyReceipt(body.receipt, trust, { cache: client.cache, inputDigest, outputDigest });
  if (!result.ok) throw result.error;
  const verified = result.receipts[0] as { record: InferenceRecord };
  if (verified.record.model !== model.id) {
    throw new VerityError('RESPONSE_INVALID', 'the receipt is for another model', {
      details: { expected: model.id, actual: verified.record.model },
    });
  }
  if (params.clientNonce !== undefined && verified.record.clientNonce !== params.clientNonce) {
    throw new VerityError('RESPONSE_INVALID', 'the receipt does not carry our nonce');
  }
  return {
    requestId: body.requestId,
    model: model.id,
    output,
    outputJson: body.output,
    receipt: body.receipt,
    record: verified.record,
    bundle: () => ({
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: [body.receipt],
      nodes: trust.nodes.filter((n) => n.address.toLowerCase() === verified.record.node.toLowerCase()),
      input: tensorsToExactJson(sent),
      output: body.output,
    }),
  };
}
