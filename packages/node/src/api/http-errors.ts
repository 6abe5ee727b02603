/**
 * The one place where error codes become HTTP statuses. Every error body is
 * `{ "error": { "code", "message", "details" } }` (docs/design.md §3).
 */
import { type ErrorCode, isVerityError, VerityError } from '@verity/protocol';

const STATUS: Partial<Record<ErrorCode, number>> = {
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  BLOCK_NOT_FOUND: 404,
  RECEIPT_NOT_FOUND: 404,
  PAYLOAD_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  REQUEST_TIMEOUT: 408,
  MODEL_CONFLICT: 409,
  REQUEST_ID_TAKEN: 409,
  MODEL_NOT_REGISTERED: 403,
  PAYLOAD_TOO_LARGE: 413,
  MODEL_TOO_LARGE: 413,
  INFER_HEADER_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  QUEUE_FULL: 429,
  INTERNAL: 500,
  INFERENCE_FAILED: 500,
  LOG_CORRUPT: 500,
  CONFIG_INVALID: 500,
  KEYSTORE_INVALID: 500,
  OVERLOADED: 503,
  QUORUM_UNAVAILABLE: 503,
  QUORUM_PAID_COORDINATOR: 409,
  QUORUM_DISAGREEMENT: 502,
  CHAIN_UNAVAILABLE: 503,
  CHAIN_REVERTED: 502,
  ENDPOINT_REFUSED: 502,
  REPLICA_QUOTA_EXCEEDED: 507,
  ZK_KEY_TOO_LARGE: 507,
  ZK_CONTRIBUTION_REFUSED: 403,
  ZK_BINDING_MISMATCH: 409,
  SHUTTING_DOWN: 503,
  INFERENCE_TIMEOUT: 504,
  // C2SP tlog-witness statuses (WITNESS_REQUEST_MALFORMED and WITNESS_OLD_SIZE_INVALID are 400)
  WITNESS_UNKNOWN_LOG: 404,
  WITNESS_LOG_UNSIGNED: 403,
  WITNESS_LOG_SIGNATURE_INVALID: 403,
  WITNESS_OLD_SIZE_CONFLICT: 409,
  WITNESS_CONSISTENCY_INVALID: 422,
  // x402 (docs/api.md "Payments"): every refused payment is a 402 with a PAYMENT-REQUIRED header
  PAYMENT_REQUIRED: 402,
  PAYMENT_INVALID: 402,
  PAYMENT_UNDERPAID: 402,
  PAYMENT_EXPIRED: 402,
  PAYMENT_REPLAYED: 402,
  PAYMENT_WRONG_NETWORK: 402,
  PAYMENT_INSUFFICIENT_FUNDS: 402,
  PAYMENT_SIGNATURE_INVALID: 402,
  PAYMENT_SETTLEMENT_FAILED: 402,
};

/** Codes after which a client should retry later; they carry `Retry-After`. */
const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  RATE_LIMITED: 1,
  QUEUE_FULL: 1,
  OVERLOADED: 1,
  SHUTTING_DOWN: 5,
};

/** HTTP status for an error code: listed above, else 400 (the client sent something invalid). */
export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 400;
}

export function retryAfterOf(code: ErrorCode): number | undefined {
  return RETRY_AFTER_SECONDS[code];
}

/** Routes that speak the OpenAI API, whose clients read `error.type` and `error.param` too. */
export function isOpenAiRoute(url: string): boolean {
  return url.startsWith('/v1/chat/completions') || url.startsWith('/v1/completions');
}

/**
 * The fields OpenAI clients expect beside `code` and `message` (the `openai` package shows
 * `type` and `param`): added on the OpenAI routes, so errors there read well in those clients.
 */
export function openAiErrorFields(status: number, details: Record<string, unknown>): { type: string; param: unknown } {
  const type =
    status === 401
      ? 'authentication_error'
      : status === 404
        ? 'not_found_error'
        : status === 429
          ? 'rate_limit_error'
          : status >= 500
            ? 'server_error'
            : 'invalid_request_error';
  return { type, param: typeof details.param === 'string' ? details.param : null };
}

/** Fastify's own errors (body parsing, limits, timeouts), mapped to stable codes. */
const FASTIFY: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_ARGUMENT',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'JSON_INVALID',
  FST_ERR_CTP_INVALID_JSON_BODY: 'JSON_INVALID',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
  FST_ERR_BAD_URL: 'NOT_FOUND',
  FST_ERR_ASYNC_CONSTRAINT: 'INTERNAL',
};

/** Turns anything thrown while handling a request into a VerityError with a stable code. */
export function toVerityError(error: unknown): VerityError {
  if (isVerityError(error)) return error;
  const e = error as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown };
  if (typeof e?.code === 'string' && e.code in FASTIFY) {
    return new VerityError(FASTIFY[e.code] as ErrorCode, String(e.message ?? 'bad request'));
  }
  if (e?.name === 'SyntaxError' && e.statusCode === 400) {
    return new VerityError('JSON_INVALID', 'the request body is not valid JSON');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode === 413) {
    return new VerityError('PAYLOAD_TOO_LARGE', 'the request body is too large');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode === 408) {
    return new VerityError('REQUEST_TIMEOUT', 'the request took too long to arrive');
  }
  return new VerityError('INTERNAL', 'internal error', { cause: error });
}
