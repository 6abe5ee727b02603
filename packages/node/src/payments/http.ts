/**
 * x402 on the routes: the few calls a paid route makes (docs/api.md "Payments").
 *
 * ```ts
 * const paid = await paymentFor(ctx, request, { cid, name, version });   // 402 unless paid
 * if (paid.kind === 'replay') return sendReplay(reply, paid);            // same payment, same request
 * … run, with record.payment = commitmentOf(ctx, paid) …
 * return settleAnswer(ctx, reply, paid, body);                           // journal, settle, PAYMENT-RESPONSE
 * ```
 */
import {
  encodePaymentHeader,
  fail,
  PAYMENT_HEADERS,
  type PaymentCommitment,
  type ReceiptPayment,
  type SettleResponse,
} from '@verity/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import { type PaymentCheck, type PricedModel, priceOf, requestKeyOf } from './payments.js';

/** The key a payment is bound to: the route and the request body as received. */
function requestKey(request: FastifyRequest): string {
  const body = request.body;
  const bytes = body instanceof Uint8Array ? body : JSON.stringify(body ?? null);
  return requestKeyOf(`${request.method} ${request.url}`, bytes);
}

/** The absolute URL of the resource paid for (x402 `resource.url`). */
function resourceUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.headers.host ?? 'localhost'}${request.url}`;
}

/**
 * Checks the payment a request for `model` carries: `free` for a model without a price, `paid`
 * with the verified payment, or `replay` with the answer the same payment already bought for
 * the same request. Throws the 402 `PAYMENT_*` errors (with `PAYMENT-REQUIRED`).
 */
export async function paymentFor(
  ctx: NodeContext,
  request: FastifyRequest,
  model: PricedModel,
  options: { readonly maxAmount?: bigint; readonly amount?: bigint } = {},
): Promise<PaymentCheck> {
  if (priceOf(ctx.config.payments, model) === undefined) return { kind: 'free' };
  const payments = ctx.payments;
  // A priced model is never served free, not even while the node is still reading its chain.
  if (payments === undefined) return fail('CHAIN_UNAVAILABLE', 'payments are not ready yet: retry shortly');
  const header = request.headers[PAYMENT_HEADERS.signature.toLowerCase()];
  return payments.check(
    typeof header === 'string' ? header : undefined,
    payments.requirements(model, options),
    resourceUrl(request),
    requestKey(request),
  );
}

/**
 * The most a language model's request may cost under a per-token price: every token of the
 * context as prompt plus `maxTokens` generated (what the payer authorizes up front; the actual
 * tokens are charged and the rest goes back). Undefined for a per-request price or a free model.
 */
export function meteredMaximum(
  ctx: NodeContext,
  model: PricedModel,
  contextSize: number,
  maxTokens: number,
): bigint | undefined {
  const price = priceOf(ctx.config.payments, model);
  if (price === undefined || 'request' in price) return undefined;
  return BigInt(price.inputToken) * BigInt(contextSize) + BigInt(price.outputToken) * BigInt(maxTokens);
}

/**
 * What a paid check charges: an `exact` payment its value; a `metered` one the tokens used at the
 * model's price (never above the authorized maximum).
 */
export function chargeOf(
  ctx: NodeContext,
  check: PaymentCheck,
  model: PricedModel,
  tokens?: { readonly promptTokens: number; readonly completionTokens: number },
): bigint {
  if (check.kind !== 'paid') return 0n;
  const price = priceOf(ctx.config.payments, model);
  if (check.payment.payload.accepted.scheme !== 'metered' || price === undefined || 'request' in price) {
    return check.payment.value;
  }
  const used =
    BigInt(price.inputToken) * BigInt(tokens?.promptTokens ?? 0) +
    BigInt(price.outputToken) * BigInt(tokens?.completionTokens ?? 0);
  return used < check.payment.value ? used : check.payment.value;
}

/** The record's `payment` for a paid check charging `amount` (default: its value); undefined when free. */
export function commitmentOf(ctx: NodeContext, check: PaymentCheck, amount?: bigint): PaymentCommitment | undefined {
  if (check.kind !== 'paid' || ctx.payments === undefined) return undefined;
  return ctx.payments.commitment(check.payment, amount ?? check.payment.value);
}

/**
 * Journals a paid answer (durably) and settles `amount`; the `PAYMENT-RESPONSE` content, or
 * undefined for a free check. For answers whose headers went out before the end (a stream).
 */
export async function settlePayment(
  ctx: NodeContext,
  check: PaymentCheck,
  amount: bigint,
  answer: { readonly contentType: string; readonly body: string },
): Promise<SettleResponse | undefined> {
  if (check.kind !== 'paid' || ctx.payments === undefined) return undefined;
  return ctx.payments.settle(check.payment, amount, {
    status: 200,
    contentType: answer.contentType,
    body: Buffer.from(answer.body).toString('base64'),
  });
}

/** The receipt's `payment` for a paid check. */
export function receiptPaymentFor(check: PaymentCheck): ReceiptPayment | undefined {
  return check.kind === 'paid' ? check.payment.receipt : undefined;
}

/** Answers a retried payment with the answer it bought, as it went out the first time. */
export function sendReplay(reply: FastifyReply, check: PaymentCheck & { kind: 'replay' }): Buffer {
  reply.status(check.answer.status);
  reply.header('content-type', check.answer.contentType);
  reply.header(PAYMENT_HEADERS.response, encodePaymentHeader(check.response));
  return Buffer.from(check.answer.body, 'base64');
}

/**
 * Journals the paid answer `body` (durably), settles the payment, and sets `PAYMENT-RESPONSE`;
 * returns the body to send. A free check returns `body` as it is. A settlement that fails
 * throws 402 `PAYMENT_SETTLEMENT_FAILED` and the answer is not sent.
 */
export async function settleAnswer(
  ctx: NodeContext,
  reply: FastifyReply,
  check: PaymentCheck,
  body: string | Buffer,
): Promise<string | Buffer> {
  if (check.kind !== 'paid' || ctx.payments === undefined) return body;
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const contentType = String(reply.getHeader('content-type') ?? 'application/json');
  const response = await ctx.payments.settle(check.payment, check.payment.value, {
    status: 200,
    contentType,
    body: bytes.toString('base64'),
  });
  reply.header(PAYMENT_HEADERS.response, encodePaymentHeader(response));
  return body;
}

/** Lets go of a paid check whose request failed before its answer (nothing was charged). */
export function releasePayment(ctx: NodeContext, check: PaymentCheck): void {
  if (check.kind === 'paid') ctx.payments?.release(check.payment);
}
