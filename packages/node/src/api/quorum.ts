/**
 * `quorum` mode (DESIGN.md §2.6): the node that receives the request ranks the registered nodes
 * by `rankQuorum(requestId, …)` at the latest block, asks them in that order (in parallel, k at a
 * time) to run the same input as quorum members, and answers only if k distinct nodes returned
 * the same output digest — with all k receipts. A node that is down, overloaded or answers
 * something unverifiable is skipped and the next in rank takes its place; disagreement is
 * `QUORUM_DISAGREEMENT` with every receipt as evidence (each is signed and logged by its node).
 */
import type { NodeEntry } from '@verity/contracts';
import {
  encodeVerifierKey,
  fail,
  type InferenceRecord,
  isVerityError,
  type NoteVerifier,
  type Receipt,
  rankQuorum,
  type TensorMap,
  tensorsToExactJson,
  VerityError,
  verifyReceipt,
} from '@verity/protocol';
import type { NodeContext } from '../context.js';
import { createFastVerifier } from '../fast-crypto.js';
import { peerFetch, type UrlPolicy } from '../peers/url-policy.js';
import type { StoredModel } from '../store/index.js';

const verifiers = new Map<string, NoteVerifier>();
/** Native verifiers for members' log keys, made once per key. */
function fastVerifier(logKey: string): NoteVerifier {
  let v = verifiers.get(logKey);
  if (!v) {
    v = createFastVerifier(logKey);
    if (verifiers.size > 1024) verifiers.clear();
    verifiers.set(logKey, v);
  }
  return v;
}

/** The header that marks a member call (run here, do not coordinate again). */
export const QUORUM_MEMBER_HEADER = 'x-verity-quorum-member';

/** What one member answered. */
export interface MemberAnswer {
  readonly node: string;
  readonly record: InferenceRecord;
  readonly receipt: Receipt;
  readonly output: unknown;
}

/** Runs the request on this node as a member (the route's local path). */
export type RunHere = () => Promise<MemberAnswer>;

/** The registry entry of a node as a bundle carries it (docs/protocol.md §8.2). */
export function bundleNode(n: NodeEntry, block: bigint) {
  const key = Uint8Array.from(Buffer.from(n.logKey.slice(2), 'hex'));
  return {
    address: n.account,
    logKey: encodeVerifierKey(n.origin, key),
    stake: n.stake.toString(),
    block: Number(block),
  };
}

async function askMember(
  peer: NodeEntry,
  body: string,
  logKey: string,
  inputDigest: string,
  signal: AbortSignal,
  policy: UrlPolicy,
): Promise<MemberAnswer> {
  let response: Response;
  try {
    // Every outbound call goes through the URL policy (peers/url-policy.ts).
    response = await peerFetch(
      `${peer.endpoint.replace(/\/+$/, '')}/v1/infer`,
      { method: 'POST', headers: { 'content-type': 'application/json', [QUORUM_MEMBER_HEADER]: '1' }, body, signal },
      policy,
    );
  } catch (cause) {
    if (isVerityError(cause, 'ENDPOINT_REFUSED')) throw cause;
    throw new VerityError('NETWORK_ERROR', `quorum member ${peer.account} is unreachable`, { cause });
  }
  const json = (await response.json().catch(() => undefined)) as
    | { receipt?: unknown; output?: unknown; error?: { code?: string; message?: string } }
    | undefined;
  if (!response.ok) {
    fail('RESPONSE_INVALID', `quorum member ${peer.account} answered HTTP ${response.status}`, {
      node: peer.account,
      memberCode: json?.error?.code,
    });
  }
  // The member's receipt must verify against its registered log key, for this very input.
  const verified = verifyReceipt(
    json?.receipt,
    { nodes: [{ address: peer.account, logKey, verifier: fastVerifier(logKey) }] },
    { inputDigest },
  );
  if (!verified.ok) throw verified.error;
  const record = (verified.receipts[0] as { record: InferenceRecord }).record;
  if (record.mode !== 'quorum') fail('RESPONSE_INVALID', 'a quorum member logged another mode', { node: peer.account });
  return { node: peer.account, record, receipt: json?.receipt as Receipt, output: json?.output };
}

/**
 * Coordinates a quorum of `k` for an ONNX request whose input (already validated) is `inputs`.
 * Returns the agreed answer, or throws `QUORUM_DISAGREEMENT` / `QUORUM_UNAVAILABLE`.
 */
export async function coordinateQuorum(
  ctx: NodeContext,
  params: {
    readonly stored: StoredModel;
    readonly inputs: TensorMap;
    readonly inputDigest: string;
    readonly requestId: string;
    readonly clientNonce?: string;
    readonly k: number;
    readonly runHere: RunHere;
  },
) {
  const chain = ctx.chain;
  if (!chain) return fail('INVALID_ARGUMENT', 'this node is not on a chain: mode "quorum" needs registered peers');
  const { blockNumber, nodes } = await chain.peers();
  const eligible = nodes.filter((n) => n.capabilities.includes('mode:quorum'));
  if (eligible.length < params.k) {
    fail('QUORUM_UNAVAILABLE', `a quorum of ${params.k} needs that many registered nodes; ${eligible.length} are`, {
      k: params.k,
      registered: eligible.length,
    });
  }
  const byAddress = new Map(eligible.map((n) => [n.account.toLowerCase(), n]));
  const order = rankQuorum(
    params.requestId,
    eligible.map((n) => n.account),
  ).map((a) => byAddress.get(a.toLowerCase()) as NodeEntry);
  const self = ctx.keys.address.toLowerCase();
  const body = JSON.stringify({
    model: params.stored.manifestCid,
    input: tensorsToExactJson(params.inputs),
    mode: 'quorum',
    requestId: params.requestId,
    ...(params.clientNonce === undefined ? {} : { clientNonce: params.clientNonce }),
  });
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), ctx.config.executor.timeoutMs);
  const answers: MemberAnswer[] = [];
  const skipped: { node: string; code: string; memberCode?: string }[] = [];
  let next = 0;
  // Asks the next node in rank; on failure, the one after it, until the ranking runs out.
  const fill = async (): Promise<void> => {
    while (next < order.length) {
      const peer = order[next++] as NodeEntry;
      try {
        const answer =
          peer.account.toLowerCase() === self
            ? await params.runHere()
            : await askMember(
                peer,
                body,
                bundleNode(peer, blockNumber).logKey,
                params.inputDigest,
                controller.signal,
                ctx.config.peers,
              );
        answers.push(answer);
        return;
      } catch (e) {
        skipped.push({
          node: peer.account,
          code: isVerityError(e) ? e.code : 'INTERNAL',
          ...(isVerityError(e) && typeof e.details.memberCode === 'string' ? { memberCode: e.details.memberCode } : {}),
        });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: params.k }, fill));
  } finally {
    clearTimeout(timeout);
  }
  const entries = answers.map((a) => bundleNode(byAddress.get(a.node.toLowerCase()) as NodeEntry, blockNumber));
  if (answers.length < params.k) {
    fail('QUORUM_UNAVAILABLE', `only ${answers.length} of ${params.k} quorum members answered`, {
      k: params.k,
      skipped,
      receipts: answers.map((a) => a.receipt),
    });
  }
  const digests = new Set(answers.map((a) => a.record.outputDigest));
  if (digests.size !== 1) {
    fail('QUORUM_DISAGREEMENT', 'the quorum members disagree on the output', {
      block: Number(blockNumber),
      outputs: answers.map((a) => ({ node: a.node, outputDigest: a.record.outputDigest })),
      receipts: answers.map((a) => a.receipt),
      nodes: entries,
    });
  }
  // Receipts in rank order, so a verifier can check the set against the ranking.
  const rank = new Map(order.map((n, i) => [n.account.toLowerCase(), i]));
  const sorted = [...answers].sort(
    (x, y) => (rank.get(x.node.toLowerCase()) ?? 0) - (rank.get(y.node.toLowerCase()) ?? 0),
  );
  return {
    requestId: params.requestId,
    model: params.stored.manifestCid,
    mode: 'quorum' as const,
    k: params.k,
    block: Number(blockNumber),
    output: (sorted[0] as MemberAnswer).output,
    receipts: sorted.map((a) => a.receipt),
    nodes: sorted.map((a) => bundleNode(byAddress.get(a.node.toLowerCase()) as NodeEntry, blockNumber)),
    skipped,
  };
}
