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
export async function paymentFor(ctx: NodeContext, request: FastifyRequest, model: PricedModel): Promise<PaymentCheck> {
  if (priceOf(ctx.config.payments, model) === undefined) return { kind: 'free' };
  const payments = ctx.payments;
  // A priced model is never served free, not even while the node is still reading its chain.
  if (payments === undefined) return fail('CHAIN_UNAVAILABLE', 'payments are not ready yet: retry shortly');
  const header = request.headers[PAYMENT_HEADERS.signature.toLowerCase()];
  return payments.check(
    typeof header === 'string' ? header : undefined,
    payments.requirements(model),
    resourceUrl(request),
    requestKey(request),
  );
}

/** The record's `payment` for a paid check (undefined when free): an `exact` payment charges its value. */
export function commitmentOf(ctx: NodeContext, check: PaymentCheck): PaymentCommitment | undefined {
  if (check.kind !== 'paid' || ctx.payments === undefined) return undefined;
  return ctx.payments.commitment(check.payment, check.payment.value);
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
