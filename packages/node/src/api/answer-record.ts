/**
 * The log step of the request path (docs/architecture.md §2): every answer's record — ONNX, LLM,
 * quorum member and zk — is built here and logged here, so what a record commits to and how it
 * reaches the log is written once. A run gives what it determined (kind, mode, model, runtime,
 * digests); the record gets its version, the node's address and the time here.
 *
 * Mode `audited` (docs/api.md "Mode audited", docs/protocol.md §15.8): the payload — the canonical
 * input and output bytes the record's digests are SHA-256 of — is kept durably *before* the record
 * is logged, so no audited record is ever without it; if logging fails, the payload goes again.
 * The answer's `audit` member says when the challenge window closes and where the payload is served.
 */
import { type InferenceRecord, RECORD_VERSION, type Receipt } from '@verity/protocol';
import type { NodeContext } from '../context.js';
import { auditPayload } from '../store/index.js';

/**
 * What a run determined about its answer: every field of the record but version, time and node
 * (which `buildRecord` adds); `clientNonce` is the caller's, when given.
 */
export type AnswerFacts = Omit<InferenceRecord, 'version' | 'timestamp' | 'node' | 'clientNonce'> & {
  readonly clientNonce: string | undefined;
};

/** The canonical input and output bytes an audited record's digests are SHA-256 of. */
export interface AnswerPayload {
  readonly input: Uint8Array;
  readonly output: Uint8Array;
}

/** The `audit` member of an audited answer. */
export interface AuditMember {
  /** When the challenge window closes (ms since the epoch), as `Disputes` computes it. */
  readonly windowClosesAt: number;
  /** Where the payload is served (`/v1/payloads/:requestId`). */
  readonly payload: string;
}

/** A logged answer: its record, the receipt, and for mode `audited` the `audit` member. */
export interface LoggedAnswer {
  readonly record: InferenceRecord;
  readonly receipt: Receipt;
  readonly audit: AuditMember | undefined;
}

/**
 * The record of an answer (docs/protocol.md §5), produced now by this node.
 *
 * @example
 * ```ts
 * const record = buildRecord(ctx, { kind: 'onnx', mode: 'signed', model, runtime, ... });
 * ```
 */
export function buildRecord(ctx: NodeContext, facts: AnswerFacts): InferenceRecord {
  return {
    version: RECORD_VERSION,
    kind: facts.kind,
    mode: facts.mode,
    model: facts.model,
    runtime: facts.runtime,
    inputDigest: facts.inputDigest,
    outputDigest: facts.outputDigest,
    paramsDigest: facts.paramsDigest,
    requestId: facts.requestId,
    ...(facts.clientNonce === undefined ? {} : { clientNonce: facts.clientNonce }),
    timestamp: Date.now(),
    node: ctx.keys.address,
    // A paid request (docs/protocol.md §17): the payment's digest and the amount charged.
    ...(facts.payment === undefined ? {} : { payment: facts.payment }),
  };
}

/**
 * Builds the answer's record and logs it; resolves once it is durable and signed
 * (docs/architecture.md §3), with its receipt. Mode `audited` needs `payload`, kept first.
 *
 * @example
 * ```ts
 * const { record, receipt, audit } = await logAnswer(ctx, facts, { input, output });
 * ```
 */
export async function logAnswer(ctx: NodeContext, facts: AnswerFacts, payload?: AnswerPayload): Promise<LoggedAnswer> {
  const record = buildRecord(ctx, facts);
  const started = performance.now();
  const logged =
    record.mode === 'audited'
      ? await appendAudited(ctx, record, payload)
      : { receipt: await ctx.log.append(record), audit: undefined };
  ctx.metrics.logAppendSeconds.observe((performance.now() - started) / 1000);
  // The receipts of one batch share its note, and batches resolve in order: a new note is a new batch.
  if (lastNotes.get(ctx.metrics) !== logged.receipt.checkpoint) {
    lastNotes.set(ctx.metrics, logged.receipt.checkpoint);
    ctx.metrics.logBatches.inc();
  }
  return { record, receipt: logged.receipt, audit: logged.audit };
}

/** The note of the last receipt each node's `logAnswer` got (for `verity_log_batches_total`). */
const lastNotes = new WeakMap<object, string>();

/** Keeps `record`'s payload, then logs `record` (mode `audited`); the receipt and the `audit` member. */
async function appendAudited(
  ctx: NodeContext,
  record: InferenceRecord,
  payload: AnswerPayload | undefined,
): Promise<{ receipt: Receipt; audit: AuditMember }> {
  if (payload === undefined || record.kind === 'zk')
    throw new Error('an audited record is an onnx or llm one, with its payload');
  // Until when the payload is kept: the record's time in whole seconds plus the window (on a chain,
  // with a margin: Disputes counts the window from the record's first anchor, a little later).
  const windowClosesAt = (Math.floor(record.timestamp / 1000) + ctx.auditWindowSeconds) * 1000;
  await ctx.payloads.put(
    auditPayload({
      requestId: record.requestId,
      kind: record.kind,
      model: record.model,
      inputDigest: record.inputDigest,
      outputDigest: record.outputDigest,
      input: payload.input,
      output: payload.output,
      windowClosesAt,
    }),
  );
  try {
    const receipt = await ctx.log.append(record);
    return { receipt, audit: { windowClosesAt, payload: `/v1/payloads/${record.requestId}` } };
  } catch (e) {
    await ctx.payloads.remove(record.requestId).catch(() => undefined);
    throw e;
  }
}
