/**
 * Mode `audited` (docs/api.md "Mode audited", docs/protocol.md §15.8): one way to log an audited
 * record, whatever its kind. The payload — the canonical input and output bytes the record's
 * digests are SHA-256 of — is kept durably *before* the record is logged, so no audited record is
 * ever without it; if logging fails, the payload goes again. The answer's `audit` member says when
 * the challenge window closes and where the payload is served.
 */
import type { InferenceRecord } from '@verity/protocol';
import type { NodeContext } from '../context.js';
import { auditPayload } from '../store/index.js';

/** The `audit` member of an audited answer. */
export interface AuditMember {
  /** When the challenge window closes (ms since the epoch), as `Disputes` computes it. */
  readonly windowClosesAt: number;
  /** Where the payload is served (`/v1/payloads/:requestId`). */
  readonly payload: string;
}

/**
 * Keeps `record`'s payload, then logs `record` (mode `audited`); the receipt and the `audit` member.
 *
 * @example
 * ```ts
 * const { receipt, audit } = await appendAudited(ctx, record, inputBytes, outputBytes);
 * ```
 */
export async function appendAudited(
  ctx: NodeContext,
  record: InferenceRecord & { readonly kind: 'onnx' | 'llm' },
  input: Uint8Array,
  output: Uint8Array,
): Promise<{ receipt: Awaited<ReturnType<NodeContext['log']['append']>>; audit: AuditMember }> {
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
      input,
      output,
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
