/**
 * The two wire forms of `POST /v1/infer` (docs/api.md "Binary tensors", docs/protocol.md §2.6):
 * JSON, the default, and the binary inference frame (`application/vnd.verity.infer.v1`: the
 * message's fields as JSON, then its tensors in the canonical `VTN1` encoding). This module reads a
 * request body in either form, picks the answer's form from `Accept`, and writes the answer; the
 * route in between sees the same fields and tensors either way (docs/architecture.md §2).
 */
import {
  DEFAULT_MAX_INFER_HEADER_BYTES,
  decodeInferFrame,
  encodeInferFrame,
  encodeTensors,
  fail,
  INFER_MEDIA_TYPE,
  type TensorLimits,
  type TensorMap,
  type TensorSignature,
  tensorsFromJson,
  tensorsToExactJson,
  validateTensors,
} from '@verity/protocol';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The tensors of a request as they came: JSON (read once the model's signatures are known) or binary. */
export type WireInput =
  | { readonly kind: 'json'; readonly json: unknown }
  | { readonly kind: 'binary'; readonly tensors: TensorMap; readonly bytes: Uint8Array };

/**
 * Registers the binary frame's body parser: the body is buffered by Fastify under the app's
 * `bodyLimit` (a `Content-Length` above it is refused before a byte is read, a chunked body as
 * soon as it passes), and only on `/v1/infer`; any other route answers 415.
 */
export function registerInferWire(app: FastifyInstance): void {
  app.addContentTypeParser(INFER_MEDIA_TYPE, { parseAs: 'buffer' }, (request, body, done) => {
    if (request.routeOptions.url !== '/v1/infer') {
      done(Object.assign(new Error('unsupported media type'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), undefined);
      return;
    }
    done(null, body);
  });
}

/**
 * Splits a request body (`application/json` or a frame; any other type is 415
 * `UNSUPPORTED_MEDIA_TYPE`) into its fields (an object, checked by the route) and its tensors. A
 * binary body is a frame: its header holds the fields, its tensors the input; `input` in the header
 * is refused (one place for the input). Throws `INFER_FRAME_INVALID`, `INFER_HEADER_TOO_LARGE`,
 * `TENSOR_ENCODING_INVALID` for a malformed frame.
 */
export function readInferBody(contentType: string | undefined, body: unknown): { fields: unknown; input: WireInput } {
  // Other parsers of the app (text/plain, application/octet-stream) accept bodies this route does not.
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json' && type !== INFER_MEDIA_TYPE) {
    fail('UNSUPPORTED_MEDIA_TYPE', `send application/json or ${INFER_MEDIA_TYPE}`, {
      supported: ['application/json', INFER_MEDIA_TYPE],
    });
  }
  if (body instanceof Uint8Array) {
    const frame = decodeInferFrame(body, { maxHeaderBytes: DEFAULT_MAX_INFER_HEADER_BYTES });
    if (Object.hasOwn(frame.header, 'input')) {
      fail('INVALID_ARGUMENT', 'a binary request carries its input as tensors, not in the header', { field: 'input' });
    }
    return {
      fields: frame.header,
      input: { kind: 'binary', tensors: frame.tensors, bytes: frame.tensorBytes },
    };
  }
  const json = (body as { input?: unknown } | null)?.input;
  if (json === undefined) fail('INVALID_ARGUMENT', 'input (named tensors) is required');
  return { fields: body, input: { kind: 'json', json } };
}

/**
 * The input tensors, checked against the model's signatures and the node's limits, and their
 * canonical bytes when they came as such: the decoder accepts only canonical encodings (each
 * byte string has one meaning, docs/protocol.md §2.3), so these are the bytes the input digest is
 * taken over, with no need to encode them again.
 */
export function inputTensors(
  input: WireInput,
  signatures: readonly TensorSignature[],
  limits: TensorLimits,
): { inputs: TensorMap; inputBytes?: Uint8Array } {
  if (input.kind === 'json') return { inputs: tensorsFromJson(input.json, signatures, limits) };
  validateTensors(input.tensors, signatures, limits);
  return { inputs: input.tensors, inputBytes: input.bytes };
}

/** q-value of a media range parameter list (`q=0.5`); 1 when absent, 0 when malformed. */
function qualityOf(params: string[]): number {
  for (const p of params) {
    const [key, value] = p.split('=').map((s) => s.trim());
    if (key?.toLowerCase() === 'q') {
      const q = Number(value);
      return Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0;
    }
  }
  return 1;
}

/**
 * The answer's form from `Accept` (RFC 9110 §12.5.1): for each form, the quality of the most
 * specific range that matches it; the higher quality wins, a tie goes to a form named exactly
 * (binary when both are), and no header, or one that names neither, means JSON, as ever. A header
 * that refuses both (`application/json;q=0`, or only other types) is 406 `NOT_ACCEPTABLE`, before
 * anything runs.
 */
export function answerForm(accept: string | undefined): 'json' | 'binary' {
  if (accept === undefined || accept.trim() === '') return 'json';
  // [quality, specificity]: 3 exact, 2 type/*, 1 */*, 0 no match.
  const best = { json: [0, 0], binary: [0, 0] } as Record<'json' | 'binary', [number, number]>;
  const offers = { json: 'application/json', binary: INFER_MEDIA_TYPE } as const;
  for (const range of accept.split(',')) {
    const [typePart, ...params] = range.split(';');
    const type = (typePart ?? '').trim().toLowerCase();
    if (type === '') continue;
    const q = qualityOf(params);
    for (const form of ['json', 'binary'] as const) {
      const offer = offers[form];
      const specificity = type === offer ? 3 : type === 'application/*' ? 2 : type === '*/*' ? 1 : 0;
      if (specificity > best[form][1]) best[form] = [q, specificity];
    }
  }
  const [qJson, sJson] = best.json;
  const [qBinary, sBinary] = best.binary;
  if (sJson === 0 && sBinary === 0) {
    fail('NOT_ACCEPTABLE', `POST /v1/infer answers application/json or ${INFER_MEDIA_TYPE}`, {
      supported: ['application/json', INFER_MEDIA_TYPE],
    });
  }
  if (qJson === 0 && qBinary === 0) {
    fail('NOT_ACCEPTABLE', `POST /v1/infer answers application/json or ${INFER_MEDIA_TYPE}`, {
      supported: ['application/json', INFER_MEDIA_TYPE],
    });
  }
  if (qBinary !== qJson) return qBinary > qJson ? 'binary' : 'json';
  return sBinary === 3 ? 'binary' : 'json';
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Writes an answer: `fields` are its members as `[name, JSON text]` in order, and the tensors go
 * where `output` is listed: as JSON (the full form, base64 for any tensor whose numbers would not
 * read back bit for bit) or, in a frame, as their canonical encoding (`outputBytes` when the
 * caller has them already).
 */
export function sendAnswer(
  reply: FastifyReply,
  form: 'json' | 'binary',
  fields: readonly (readonly [string, string])[],
  output: TensorMap,
  outputBytes?: Uint8Array,
): string | Buffer {
  if (form === 'json') {
    reply.header('content-type', JSON_TYPE);
    const parts = fields.map(
      ([k, v]) => `${JSON.stringify(k)}:${k === 'output' ? JSON.stringify(tensorsToExactJson(output)) : v}`,
    );
    return `{${parts.join(',')}}`;
  }
  reply.header('content-type', INFER_MEDIA_TYPE);
  const parts = fields.filter(([k]) => k !== 'output').map(([k, v]) => `${JSON.stringify(k)}:${v}`);
  const frame = encodeInferFrame(`{${parts.join(',')}}`, outputBytes ?? encodeTensors(output));
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}
