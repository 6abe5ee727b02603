/**
 * `quorum` mode (docs/design.md §2.6, docs/protocol.md §11, docs/architecture.md §7): the node that receives the request
 * coordinates. It takes the caller's nonce and the block B the caller names (recent: at most
 * {@link QUORUM_MAX_BLOCK_AGE} blocks behind the head), ranks the nodes of the registry at B by
 * `rankQuorum(snapshot, quorumSeed(hash(B), nonce))` — stake-weighted, nothing in it chosen here —
 * and asks them in rank order to run the same input as quorum members, until k of them agree on
 * one output digest. A node that is down, refuses or answers something unverifiable is skipped;
 * one that answers another output is outvoted, and its receipt travels in the answer as evidence.
 * At most k + QUORUM_MAX_SKIPS ranked nodes are asked; the answer lists every one of them
 * (`quorum.asked`), so a verifier recomputes the ranking and checks the receipts are its head.
 */
import {
  fail,
  type InferenceRecord,
  isVerityError,
  llmChatInput,
  llmCompletionInput,
  llmInputDigest,
  type NoteVerifier,
  type PaymentCommitment,
  paymentDigest,
  QUORUM_MAX_SKIPS,
  QUORUM_NONCE,
  type QuorumAsked,
  type QuorumEvidence,
  quorumCandidates,
  quorumSeed,
  type Receipt,
  type RegistryNode,
  rankQuorum,
  type TensorMap,
  tensorsToExactJson,
  VerityError,
  verifyReceipt,
} from '@verity/protocol';
import type { FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import { createFastVerifier } from '../fast-crypto.js';
import { peerFetch, type UrlPolicy } from '../peers/url-policy.js';
import type { StoredModel } from '../store/index.js';
import { bad } from './llm-request.js';
import { type CompletionRequest, nonceFrom } from './openai-request.js';
import { requestIdFor } from './request-ids.js';
import { inputDigestHex, type OnnxRunner } from './run-onnx.js';

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

/**
 * Whether this node coordinates the request: mode `quorum` asked by a caller. A member call (the
 * {@link QUORUM_MEMBER_HEADER}) runs here like mode `signed` and logs mode `quorum`.
 */
export function coordinatesQuorum(mode: string, headers: Readonly<Record<string, unknown>>): boolean {
  return mode === 'quorum' && headers[QUORUM_MEMBER_HEADER] !== '1';
}

/**
 * How far behind the head the caller's block may be: old enough for the caller to have read it,
 * recent enough that the registry it names is current, and a small window if a caller tried
 * several blocks to pick a seed.
 */
export const QUORUM_MAX_BLOCK_AGE = 64n;

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
export function bundleNode(n: RegistryNode, block: number) {
  return { address: n.address, logKey: n.logKey, stake: n.stake.toString(), block };
}

/** What a member must have logged: this request, this input, this nonce, as a quorum member. */
interface Expected {
  readonly requestId: string;
  readonly model: string;
  readonly inputDigest: string;
  readonly clientNonce: string;
  readonly runtime?: InferenceRecord['runtime'];
}

function checkMemberRecord(node: string, record: InferenceRecord, expected: Expected): void {
  if (
    record.mode !== 'quorum' ||
    record.requestId !== expected.requestId ||
    record.model !== expected.model ||
    record.clientNonce !== expected.clientNonce
  ) {
    fail('RESPONSE_INVALID', 'a quorum member logged another request', { node });
  }
  // Like with like: another runtime, version or profile may honestly give other bits, so such a
  // member is skipped, never counted as agreeing or as dissent (docs/protocol.md §11.3).
  const want = expected.runtime;
  if (
    want !== undefined &&
    (record.runtime.id !== want.id ||
      record.runtime.version !== want.version ||
      record.runtime.profile !== want.profile)
  ) {
    fail('QUORUM_RUNTIME_MISMATCH', 'a quorum member ran another runtime than the quorum compares', {
      node,
      expected: want,
      actual: record.runtime,
    });
  }
}

/**
 * How members are asked: the route and body of the member call (the same for every member), and
 * where the receipt and the output are in its answer.
 */
export interface MemberCall {
  readonly path: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
  read(json: unknown): { readonly receipt: unknown; readonly output: unknown };
}

/**
 * How a member is paid (api/quorum-payments.ts): the headers carrying the payment, and the payment
 * id (the authorization's EIP-712 digest, lower-case hex) that the member's record must commit to.
 */
export interface MemberPayment {
  readonly headers?: Readonly<Record<string, string>>;
  readonly digest?: string;
}

async function askMember(
  peer: RegistryNode,
  call: MemberCall,
  expected: Expected,
  signal: AbortSignal,
  policy: UrlPolicy,
  paid: MemberPayment = {},
): Promise<MemberAnswer> {
  let response: Response;
  try {
    // Every outbound call goes through the URL policy (peers/url-policy.ts).
    response = await peerFetch(
      `${peer.endpoint.replace(/\/+$/, '')}${call.path}`,
      {
        method: 'POST',
        headers: { ...call.headers, ...paid.headers, 'content-type': 'application/json', [QUORUM_MEMBER_HEADER]: '1' },
        body: call.body,
        signal,
      },
      policy,
    );
  } catch (cause) {
    if (isVerityError(cause, 'ENDPOINT_REFUSED')) throw cause;
    throw new VerityError('NETWORK_ERROR', `quorum member ${peer.address} is unreachable`, { cause });
  }
  const json = (await response.json().catch(() => undefined)) as
    | { error?: { code?: string; message?: string } }
    | undefined;
  if (!response.ok) {
    fail('RESPONSE_INVALID', `quorum member ${peer.address} answered HTTP ${response.status}`, {
      node: peer.address,
      memberCode: json?.error?.code,
    });
  }
  const { receipt, output } = call.read(json);
  // The member's receipt must verify against its registered log key, for this very input.
  const verified = verifyReceipt(
    receipt,
    { nodes: [{ address: peer.address, logKey: peer.logKey, verifier: fastVerifier(peer.logKey) }] },
    { inputDigest: expected.inputDigest },
  );
  if (!verified.ok) throw verified.error;
  const record = (verified.receipts[0] as { record: InferenceRecord }).record;
  checkMemberRecord(peer.address, record, expected);
  // A member's answer commits to the payment just sent it and to no other (an old settled
  // authorization from this node would charge the caller for it again; a member sent none commits
  // to none): else it is skipped, as one that did not answer.
  const carried = (receipt as Receipt).payment;
  if (
    record.payment?.digest !== paid.digest ||
    (paid.digest !== undefined && (carried === undefined || paymentDigest(carried) !== paid.digest))
  ) {
    fail('RECEIPT_PAYMENT_MISMATCH', `quorum member ${peer.address} answered for another payment than this node's`, {
      node: peer.address,
    });
  }
  return { node: peer.address, record, receipt: receipt as Receipt, output };
}

/** One ranked place once asked: the node and its answer, or why there is none. */
type Place = { readonly node: RegistryNode } & ({ readonly answer: MemberAnswer } | { readonly code: string });

/** One quorum request, whatever the model kind. */
export interface QuorumRequest {
  /** The model's manifest CID. */
  readonly model: string;
  /** The digest every member's record must have for the input (docs/protocol.md §2.3, §10.2). */
  readonly inputDigest: string;
  readonly requestId: string;
  /** The caller's nonce: it seeds the selection. */
  readonly clientNonce: string | undefined;
  /** The block B the caller names (default: the head). */
  readonly block?: number;
  readonly k: number;
  /** How a member is asked. */
  readonly member: MemberCall;
  /** Runs the request on this node as a member; without it, this node is asked over HTTP like the others. */
  readonly runHere?: RunHere;
  /**
   * The runtime (id, version, profile) every member's record must name: a member that ran
   * another is skipped with `QUORUM_RUNTIME_MISMATCH`. Without it, any runtime counts.
   */
  readonly runtime?: InferenceRecord['runtime'];
  /**
   * The headers that pay a member (a priced model, api/quorum-payments.ts); throws when this
   * node will not pay it, and the member is skipped with that code.
   */
  readonly payMember?: (node: RegistryNode) => Promise<MemberPayment>;
  /**
   * When set, `runHere` answers provisionally (its record's output digest only, nothing logged)
   * and, once k agree, this logs this node's record knowing the members whose receipts the
   * bundle holds (a metered quorum charges its caller what they charged, quorum-payments.ts).
   * This node must then have answered: without its record the quorum is `QUORUM_UNAVAILABLE`.
   */
  readonly sealHere?: (members: readonly MemberAnswer[]) => Promise<MemberAnswer>;
}

/**
 * Coordinates a quorum of `k` for an ONNX request whose input (already validated) is `inputs`;
 * this node, when ranked, runs it through `onnx` as a member. Returns the agreed answer with its
 * `quorum` evidence, or throws `QUORUM_DISAGREEMENT` / `QUORUM_UNAVAILABLE` (and
 * `QUORUM_BLOCK_UNKNOWN` / `QUORUM_BLOCK_STALE` for the caller's block).
 */
export function coordinateQuorum(
  ctx: NodeContext,
  onnx: OnnxRunner,
  params: {
    readonly stored: StoredModel;
    readonly inputs: TensorMap;
    /** A binary request's tensor bytes as received. */
    readonly inputBytes: Uint8Array | undefined;
    readonly requestId: string;
    readonly clientNonce: string | undefined;
    readonly block?: number;
    readonly k: number;
    /** The execution profile every member runs under (sent to each), and the runtime it names. */
    readonly profile: string;
    /** A priced model: this node's record commits to the caller's payment, members are paid (quorum-payments.ts). */
    readonly payment?: PaymentCommitment;
    readonly payMember?: (node: RegistryNode) => Promise<MemberPayment>;
  },
) {
  const { stored, inputs, requestId, clientNonce, profile } = params;
  return runQuorum(ctx, {
    model: stored.manifestCid,
    inputDigest: inputDigestHex(inputs, params.inputBytes),
    requestId,
    clientNonce,
    ...(params.block === undefined ? {} : { block: params.block }),
    k: params.k,
    runHere: async () => {
      const r = await onnx.run({
        stored,
        inputs,
        mode: 'quorum',
        requestId,
        clientNonce,
        profile,
        receivedBytes: params.inputBytes,
        payment: params.payment,
      });
      return { node: ctx.keys.address, record: r.record, receipt: r.receipt, output: tensorsToExactJson(r.output) };
    },
    runtime: onnx.runtime(profile),
    ...(params.payMember === undefined ? {} : { payMember: params.payMember }),
    member: {
      path: '/v1/infer',
      body: JSON.stringify({
        model: stored.manifestCid,
        input: tensorsToExactJson(inputs),
        mode: 'quorum',
        requestId,
        clientNonce,
        profile,
      }),
      read: (json) => {
        const j = json as { receipt?: unknown; output?: unknown } | undefined;
        return { receipt: j?.receipt, output: j?.output };
      },
    },
  });
}

/**
 * The body every member of a language model quorum runs: the caller's, with the model by its
 * manifest CID, the seed and max_tokens fixed, whole (`stream: false`). Refuses a request a
 * quorum cannot run alike everywhere (no max_tokens) or answer as asked (streamed).
 */
export function llmMemberBody(req: CompletionRequest): Record<string, unknown> {
  const { params, maxTokensGiven } = req.job;
  if (req.body.stream === true) bad('stream', 'mode quorum answers whole completions (stream: false)');
  if (!maxTokensGiven) bad('max_tokens', 'mode quorum needs max_tokens: every member must run the same parameters');
  const { stream_options: _, max_completion_tokens: __, ...rest } = req.body;
  return { ...rest, model: req.stored.manifestCid, seed: params.seed, max_tokens: params.max_tokens, stream: false };
}

/**
 * This node's part in a paid language model quorum (routes-openai.ts): `run` generates the
 * member body here (nothing logged) and gives its output digest; `seal` logs its record once the
 * members in the bundle are known and gives its answer as a member's; `payMember` pays a member.
 */
export interface LlmQuorumHere {
  run(
    req: CompletionRequest,
    ids: { readonly requestId: string; readonly clientNonce: string | undefined },
  ): Promise<string>;
  seal(members: readonly MemberAnswer[]): Promise<MemberAnswer>;
  payMember(node: RegistryNode): Promise<MemberPayment>;
}

/**
 * Coordinates a quorum for a language model: every member runs the same request with the same
 * sampling parameters (the seed fixed here when the caller gave none, max_tokens required) and
 * the model by its manifest CID, so on one runtime and execution profile they give the same
 * tokens; the answer is the first agreeing member's completion with the quorum in `verity`.
 */
export async function coordinateLlmQuorum(
  ctx: NodeContext,
  request: FastifyRequest,
  req: CompletionRequest & { readonly mode: { readonly mode: 'quorum'; readonly k: number; readonly block?: number } },
  here?: LlmQuorumHere,
) {
  const { endpoint, stored } = req;
  const requestId = requestIdFor(ctx.log, request.headers['x-verity-request-id'], 'x-verity-request-id');
  const clientNonce = nonceFrom(request);
  const forwarded = llmMemberBody(req);
  const { params } = req.job;
  const input =
    endpoint === 'chat.completions' ? llmChatInput(forwarded, params) : llmCompletionInput(forwarded, params);
  const answer = await runQuorum(ctx, {
    model: stored.manifestCid,
    inputDigest: llmInputDigest(input),
    requestId,
    clientNonce,
    k: req.mode.k,
    ...(req.mode.block === undefined ? {} : { block: req.mode.block }),
    // Like with like: members on another llama.cpp build or profile are skipped, not outvoted.
    runtime: { id: ctx.llm.id, version: ctx.llm.version, profile: await ctx.llm.ready() },
    // A paid quorum: this node runs its part here and logs it last, committing to the caller's
    // payment the charge its members' receipts justify (quorum-payments.ts).
    ...(here === undefined
      ? {}
      : {
          runHere: async () => {
            const local = { ...req, body: forwarded, stream: false, includeUsage: false };
            const outputDigest = await here.run(local, { requestId, clientNonce });
            return { node: ctx.keys.address, record: { outputDigest } as InferenceRecord } as MemberAnswer;
          },
          sealHere: (members: readonly MemberAnswer[]) => here.seal(members),
          payMember: here.payMember,
        }),
    member: {
      path: endpoint === 'chat.completions' ? '/v1/chat/completions' : '/v1/completions',
      body: JSON.stringify(forwarded),
      headers: {
        'x-verity-mode': 'quorum',
        'x-verity-request-id': requestId,
        ...(clientNonce === undefined ? {} : { 'x-verity-client-nonce': clientNonce }),
      },
      read: (json) => ({
        receipt: (json as { verity?: { receipt?: unknown } } | undefined)?.verity?.receipt,
        output: json,
      }),
    },
  });
  const completion = answer.output as Record<string, unknown>;
  return {
    ...completion,
    verity: {
      requestId,
      model: stored.manifestCid,
      params,
      receipt: answer.receipts[0],
      receipts: answer.receipts,
      nodes: answer.nodes,
      quorum: answer.quorum,
    },
  };
}

/**
 * The ranking of a quorum request: the caller's nonce checked, the block B (default: the head)
 * checked recent, the registry at B, and the first k + QUORUM_MAX_SKIPS nodes in rank order.
 */
export async function quorumOrder(
  ctx: NodeContext,
  params: { readonly clientNonce: string | undefined; readonly block?: number; readonly k: number },
) {
  const chain = ctx.chain;
  if (!chain) return fail('INVALID_ARGUMENT', 'this node is not on a chain: mode "quorum" needs registered peers');
  const nonce = params.clientNonce;
  if (nonce === undefined || !QUORUM_NONCE.test(nonce)) {
    return fail(
      'INVALID_ARGUMENT',
      'mode "quorum" needs a clientNonce of 16 to 64 random bytes (it seeds the selection)',
    );
  }
  let head = await chain.head();
  const number = params.block === undefined ? head : BigInt(params.block);
  if (number > head) head = await chain.head(true);
  if (number > head) fail('QUORUM_BLOCK_UNKNOWN', 'the block named is not on the chain yet', { block: params.block });
  if (head - number > QUORUM_MAX_BLOCK_AGE) {
    fail('QUORUM_BLOCK_STALE', `the block named is more than ${QUORUM_MAX_BLOCK_AGE} blocks behind the head`, {
      block: params.block,
      head: Number(head),
    });
  }
  const snapshot = await chain.registry(number);
  const eligible = quorumCandidates(snapshot).length;
  if (eligible < params.k) {
    fail('QUORUM_UNAVAILABLE', `a quorum of ${params.k} needs that many registered nodes; ${eligible} are`, {
      k: params.k,
      registered: eligible,
    });
  }
  const order = rankQuorum(snapshot, quorumSeed(snapshot.block.hash, nonce), params.k + QUORUM_MAX_SKIPS);
  return { snapshot, number, order, nonce };
}

/**
 * Runs a quorum (see the module comment): draws the ranking, asks members in rank order until
 * k agree, and returns the agreed answer (the first agreeing member's output) with the k
 * receipts, the node entries and the `quorum` evidence of the bundle.
 */
export async function runQuorum(ctx: NodeContext, params: QuorumRequest) {
  const { snapshot, number, order, nonce } = await quorumOrder(ctx, params);
  const expected: Expected = {
    requestId: params.requestId,
    model: params.model,
    inputDigest: params.inputDigest,
    clientNonce: nonce,
    ...(params.runtime === undefined ? {} : { runtime: params.runtime }),
  };
  const self = ctx.keys.address.toLowerCase();
  const runHere = params.runHere;
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), ctx.config.executor.timeoutMs);
  const places: Place[] = [];
  const ask = async (rank: number, node: RegistryNode): Promise<void> => {
    try {
      const answer =
        runHere !== undefined && node.address.toLowerCase() === self
          ? await runHere()
          : await askMember(
              node,
              params.member,
              expected,
              controller.signal,
              ctx.config.peers,
              params.payMember === undefined ? {} : await params.payMember(node),
            );
      places[rank] = { node, answer };
    } catch (e) {
      places[rank] = { node, code: isVerityError(e) ? e.code : 'INTERNAL' };
    }
  };
  const leading = () => {
    const tally = new Map<string, number>();
    for (const p of places)
      if (p && 'answer' in p)
        tally.set(p.answer.record.outputDigest, (tally.get(p.answer.record.outputDigest) ?? 0) + 1);
    return Math.max(0, ...tally.values());
  };
  // In waves: as many next-ranked nodes as agreements are still missing, in parallel.
  let next = 0;
  try {
    while (leading() < params.k && next < order.length) {
      const wave = order.slice(next, next + params.k - leading());
      await Promise.all(wave.map((node, j) => ask(next + j, node)));
      next += wave.length;
    }
  } finally {
    clearTimeout(timeout);
  }
  // The answer is the first output, in rank order, that k nodes gave; the list ends there.
  const counts = new Map<string, number>();
  let end = -1;
  let agreed: string | undefined;
  for (let i = 0; i < places.length && agreed === undefined; i++) {
    const p = places[i] as Place;
    if (!('answer' in p)) continue;
    const digest = p.answer.record.outputDigest;
    const count = (counts.get(digest) ?? 0) + 1;
    counts.set(digest, count);
    if (count === params.k) {
      agreed = digest;
      end = i;
    }
  }
  if (agreed !== undefined && params.sealHere !== undefined) {
    const at = places.findIndex((p, i) => i <= end && p.node.address.toLowerCase() === self && 'answer' in p);
    if (at < 0) fail('QUORUM_UNAVAILABLE', 'this node did not answer: its record must commit to the payment');
    const members = places
      .slice(0, end + 1)
      .filter((p, i): p is Place & { answer: MemberAnswer } => i !== at && 'answer' in p)
      .map((p) => p.answer);
    places[at] = { node: (places[at] as Place).node, answer: await params.sealHere(members) };
  }
  const answered = places.filter((p): p is Place & { answer: MemberAnswer } => 'answer' in p);
  if (agreed === undefined) {
    const details = {
      k: params.k,
      block: Number(number),
      asked: places.map((p) => ({
        address: p.node.address,
        ...('answer' in p ? { outputDigest: p.answer.record.outputDigest } : { code: p.code }),
      })),
      // (A provisional answer of this node, never logged, has no receipt.)
      receipts: answered.map((a) => a.answer.receipt).filter((r) => r !== undefined),
    };
    if (counts.size > 1) fail('QUORUM_DISAGREEMENT', `no ${params.k} quorum members agree on the output`, details);
    fail('QUORUM_UNAVAILABLE', `only ${answered.length} of ${params.k} quorum members answered`, details);
  }
  const prefix = places.slice(0, end + 1);
  const asked: QuorumAsked[] = prefix.map((p) =>
    'answer' in p
      ? { address: p.node.address, outcome: p.answer.record.outputDigest === agreed ? 'agreed' : 'dissent' }
      : { address: p.node.address, outcome: 'skipped', code: p.code },
  );
  const agreeing = prefix.filter(
    (p): p is Place & { answer: MemberAnswer } => 'answer' in p && p.answer.record.outputDigest === agreed,
  );
  const dissenting = prefix.filter(
    (p): p is Place & { answer: MemberAnswer } => 'answer' in p && p.answer.record.outputDigest !== agreed,
  );
  const quorum: QuorumEvidence = {
    k: params.k,
    block: { number: snapshot.block.number, hash: snapshot.block.hash.toLowerCase() },
    nonce,
    asked,
    dissent: dissenting.map((p) => p.answer.receipt),
  };
  return {
    requestId: params.requestId,
    model: params.model,
    mode: 'quorum' as const,
    k: params.k,
    block: snapshot.block.number,
    output: (agreeing[0] as Place & { answer: MemberAnswer }).answer.output,
    receipts: agreeing.map((p) => p.answer.receipt),
    nodes: [...agreeing, ...dissenting].map((p) => bundleNode(p.node, snapshot.block.number)),
    quorum,
  };
}
