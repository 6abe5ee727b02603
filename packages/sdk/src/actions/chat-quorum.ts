/**
 * Mode `quorum` for language models (docs/api.md, docs/protocol.md §11): k ranked nodes run the
 * same chat request with one fixed seed and must produce the same message; the answer is
 * verified as one bundle against the registry at the block the caller named.
 */
import {
  assertParamsHonourRequest,
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  type InferenceRecord,
  type LlmAssistantMessage,
  type LlmOutput,
  llmChatInput,
  parseLlmParams,
  type QuorumEvidence,
  type Receipt,
  VerityError,
  verifyBundle,
} from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { request } from '../http.js';
import { answerPayment, paymentOf, type VerifiedPayment, verifyWithPayers } from '../payment.js';
import { messageOf } from './chat.js';
import { askQuorum, quorumTrust } from './quorum.js';

/** A chat request for a quorum. */
export interface ChatQuorumParams {
  /** The OpenAI chat body (not streamed; `max_tokens` required; `seed` optional, fixed by the coordinator if absent). */
  readonly request: Record<string, unknown>;
  /** Quorum size, default 3. */
  readonly k?: number;
  /** The selection's nonce (16 to 64 random bytes, hex); by default 16 random bytes. */
  readonly clientNonce?: string;
  readonly signal?: AbortSignal;
}

/** A verified quorum chat answer. */
export interface ChatQuorumResult {
  /** The completion as the coordinator sent it (the first agreeing member's). */
  readonly completion: Record<string, unknown>;
  readonly message: LlmAssistantMessage;
  readonly record: InferenceRecord;
  /** The k agreeing receipts, in rank order. */
  readonly receipts: readonly Receipt[];
  /** Receipts of ranked nodes that answered another message (outvoted). */
  readonly dissent: readonly Receipt[];
  /**
   * A paid quorum (docs/protocol.md §17.5): the caller's payment, committed to by the
   * coordinator's receipt (the one of the bundle whose record commits to it), and its charge.
   */
  readonly payment?: VerifiedPayment;
  bundle(): Bundle;
}

/**
 * Asks a quorum of language-model nodes and verifies the answer before returning it.
 *
 * @example
 * ```ts
 * const { message, receipts } = await chatQuorum(client, {
 *   request: { model: 'tiny-chat', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 32 },
 * });
 * ```
 */
export async function chatQuorum(client: ClientBase, params: ChatQuorumParams): Promise<ChatQuorumResult> {
  const asked = await askQuorum(client, params.k ?? 3, params.clientNonce);
  const response = await request(client, 'POST', '/v1/chat/completions', {
    json: { ...params.request, stream: false },
    headers: {
      'x-verity-mode': 'quorum',
      'x-verity-k': String(asked.k),
      'x-verity-client-nonce': asked.nonce,
      ...(asked.block === undefined ? {} : { 'x-verity-block': String(asked.block) }),
    },
    ...(params.signal === undefined ? {} : { signal: params.signal }),
  });
  const paid = paymentOf(response);
  let completion: Record<string, unknown>;
  try {
    completion = (await response.json()) as Record<string, unknown>;
  } catch (cause) {
    throw new VerityError('RESPONSE_INVALID', 'the node sent invalid JSON for /v1/chat/completions', { cause });
  }
  const verity = completion.verity as
    | { model?: unknown; params?: unknown; receipts?: Receipt[]; nodes?: unknown; quorum?: QuorumEvidence }
    | undefined;
  if (typeof verity?.model !== 'string' || !Array.isArray(verity.receipts)) {
    throw new VerityError('RESPONSE_INVALID', 'the answer carries no quorum receipts');
  }
  const trust = await quorumTrust(client, asked, verity.quorum);
  const sampling = parseLlmParams(verity.params);
  assertParamsHonourRequest(params.request, sampling);
  // The members ran the request with the model named by its CID (what their records' input holds).
  const input = llmChatInput({ ...params.request, model: verity.model }, sampling);
  const choice = (Array.isArray(completion.choices) ? completion.choices[0] : undefined) as
    | { message?: unknown; finish_reason?: unknown }
    | undefined;
  if (typeof choice?.finish_reason !== 'string')
    throw new VerityError('RESPONSE_INVALID', 'the completion has no choice');
  const message = messageOf(choice.message);
  const output: LlmOutput = { endpoint: 'chat.completions', message, finish_reason: choice.finish_reason };
  const bundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipts: verity.receipts,
    ...(Array.isArray(verity.nodes) ? { nodes: verity.nodes } : {}),
    input,
    output,
    quorum: verity.quorum as QuorumEvidence,
  } as Bundle;
  // A contract wallet's payment signature: its own only if it says so on the chain.
  const result = await verifyWithPayers(
    client.chain,
    bundle.receipts,
    (payment) => verifyBundle(bundle, trust, { cache: client.cache, payment }),
    {},
    bundle.quorum?.dissent,
  );
  if (!result.ok) throw result.error;
  const record = (result.receipts[0] as { record: InferenceRecord }).record;
  if (record.kind !== 'llm' || record.model !== verity.model) {
    throw new VerityError('RESPONSE_INVALID', 'the receipts are not for this language model');
  }
  // Paid: one receipt of the bundle (the coordinator's) commits to this caller's payment; the
  // bundle check above bounded its charge by what the members charged (QUORUM_CHARGE_EXCESS).
  const digest = paid?.digest.slice(2).toLowerCase();
  const mine = [...verity.receipts, ...(bundle.quorum?.dissent ?? [])].find((r) => r.record.payment?.digest === digest);
  // With a chain, the payment is settled on it and (metered) its MeteredSettled charge is the record's.
  const payment = await answerPayment(client.payer, client.chain, paid, mine?.record);
  return {
    completion,
    message,
    record,
    receipts: verity.receipts,
    dissent: bundle.quorum?.dissent ?? [],
    ...(payment === undefined ? {} : { payment }),
    bundle: () => bundle,
  };
}
