/**
 * The gateway (issue 16): one local endpoint for the whole network. It speaks what a node speaks
 * (`/v1/chat/completions`, `/v1/completions`, `/v1/models`, `/v1/infer`), so an app moves to it by
 * changing its base URL only; each call goes to the best registered node (routing: `routed`) and
 * its answer is returned only once it verifies against the registry (the node's key from
 * `NodeRegistry`, never from the node).
 *
 * Streams: tokens pass through as they come; the node's last chunk (the `verity` receipt) is held
 * until the whole answer verifies, then sent with the route added, or replaced by an error event
 * (`ANSWER_UNVERIFIED`). A stream is failed over to another node only before its first token was
 * passed: text the app has already shown cannot be taken back. Its failure is counted against the
 * node, which is refused for a while, so the next request goes elsewhere.
 *
 * Payments (x402, docs/api.md "Payments") pass through unchanged for the caller: a node's 402 goes
 * back as the node sent it (`PAYMENT-REQUIRED` and body); a retry's `PAYMENT-SIGNATURE` pays one
 * node (`accepted.payTo`), so it goes to that node only (none such, or unreachable:
 * `NO_NODE_AVAILABLE`), and a paid answer that does not verify is not retried elsewhere (the payment
 * is spent): its error is the answer. The node's `PAYMENT-RESPONSE` comes back with the answer.
 *
 * Web-standard (`Request` → `Response`): the CLI serves it over node:http; tests call it directly.
 */
import {
  decodeInferFrame,
  decodePaymentHeader,
  type ErrorCode,
  encodeInferFrame,
  encodeTensors,
  INFER_MEDIA_TYPE,
  isVerityError,
  PAYMENT_HEADERS,
  type PaymentPolicy,
  parsePaymentPayload,
  primeVerifyCache,
  type Receipt,
  type TensorMap,
  VerityError,
  verifyReceipt,
} from '@verity/protocol';
import { verifyChatCompletion, verifyCompletion } from './actions/chat.js';
import { type InferParams, type InferResult, infer, inferOne } from './actions/infer.js';
import { getModel, type ModelInfo } from './actions/models.js';
import { withTrust } from './actions/node-info.js';
import { isVerificationFailure, type Route, type RoutedOptions, routed } from './actions/routed.js';
import type { ClientBase } from './client.js';
import { request, requestJson } from './http.js';
import { askPayers, verifyWithPayers } from './payment.js';
import { sseData } from './sse.js';

/** Gateway options. */
export interface GatewayOptions {
  /** Where failures go (a node passed over, an answer refused): one object per event. Default: none. */
  readonly log?: (event: Record<string, unknown>) => void;
}

/**
 * One HTTP request as the gateway reads it: what a server adapter has at hand without building a
 * web `Request` (which costs more per call than the rest of the gateway's own work; see bench/gateway.ts).
 */
export interface GatewayRequest {
  readonly method: string;
  /** The path with its query, e.g. `/v1/infer`. */
  readonly path: string;
  /** A header's value by its lower-case name. */
  header(name: string): string | undefined;
  /** The whole body (POST). */
  readonly body?: Uint8Array;
}

/** An answer: whole bytes, or an event stream passed on as it comes. */
export interface GatewayResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
}

/** A gateway: a request handler (web `fetch`, or the leaner `handle`) and its counters. */
export interface Gateway {
  /** Answers one HTTP request. */
  fetch(request: Request): Promise<Response>;
  /** Answers one HTTP request given as its parts (what `fetch` does, without web objects). */
  handle(request: GatewayRequest): Promise<GatewayResponse>;
  /** The counters in the Prometheus text format (`GET /metrics`). */
  metrics(): string;
}

/** How many request ids the gateway remembers the serving node of (for `GET /v1/receipts/:id`). */
const SERVED_MAX = 10_000;
/** A node that does not hold a receipt: the lookup moves on, nothing is held against the node. */
const isReceiptNotFound = (e: unknown) => isVerityError(e, 'RECEIPT_NOT_FOUND');

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A JSON answer. */
function json(value: unknown, status = 200, headers: Record<string, string> = {}): GatewayResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: encoder.encode(JSON.stringify(value)),
  };
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  NO_NODE_AVAILABLE: 503,
  ANSWER_UNVERIFIED: 502,
  NETWORK_ERROR: 502,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INFER_HEADER_TOO_LARGE: 413,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
  PAYMENT_INVALID: 402,
};

const pathOf = (endpoint: 'chat.completions' | 'completions') =>
  endpoint === 'chat.completions' ? '/v1/chat/completions' : '/v1/completions';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A node's own error status passes through; a verification failure is the gateway's 502. */
function statusOf(e: VerityError): number {
  const s = e.details.status;
  if (typeof s === 'number' && s >= 400 && s < 600 && e.code !== 'NO_NODE_AVAILABLE') return s;
  return STATUS[e.code] ?? (isVerificationFailure(e.code) ? 502 : 400);
}

function errorResponse(e: unknown, openAi: boolean): GatewayResponse {
  const err = isVerityError(e) ? e : new VerityError('INTERNAL', 'internal error');
  const status = statusOf(err);
  const { status: _s, ...details } = err.details;
  const body: Record<string, unknown> = { code: err.code, message: err.message, details };
  if (openAi) {
    body.type = status >= 500 ? 'server_error' : status === 404 ? 'not_found_error' : 'invalid_request_error';
    body.param = null;
  }
  return json({ error: body }, status);
}

function routeHeaders(route: { node: string; reason: string }): Record<string, string> {
  // Header values are Latin-1: the reason is ASCII by construction.
  return { 'x-verity-node': route.node, 'x-verity-route': route.reason };
}

function jsonBody(req: GatewayRequest): Record<string, unknown> {
  const type = req.header('content-type') ?? '';
  if (!type.includes('application/json')) {
    throw new VerityError('UNSUPPORTED_MEDIA_TYPE', 'the gateway takes JSON bodies (content-type: application/json)');
  }
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(req.body ?? new Uint8Array()));
  } catch (cause) {
    throw new VerityError('JSON_INVALID', 'the body is not JSON', { cause });
  }
  if (!isObject(body)) throw new VerityError('INVALID_ARGUMENT', 'the body must be a JSON object');
  return body;
}

/**
 * Whether an `Accept` header ranks the binary inference frame above JSON (by q-value; JSON on a
 * tie, and when the header is absent), as a node answers `/v1/infer` (docs/api.md "Binary tensors").
 */
function prefersFrame(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let frame = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!Number.isFinite(q)) continue;
    const t = type.trim().toLowerCase();
    if (t === INFER_MEDIA_TYPE) frame = Math.max(frame, q);
    else if (t === 'application/json' || t === 'application/*' || t === '*/*') json = Math.max(json, q);
  }
  return frame > json;
}

/** A path segment decoded; bad percent-encoding is the caller's `INVALID_ARGUMENT`. */
function pathParam(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (cause) {
    throw new VerityError('INVALID_ARGUMENT', 'the path is not valid percent-encoding', { cause });
  }
}

/** The request id of an OpenAI answer's `verity` member (its receipt's record). */
function requestIdOf(verity: Record<string, unknown>): unknown {
  const receipt = verity.receipt;
  return isObject(receipt) && isObject(receipt.record) ? receipt.record.requestId : undefined;
}

const SIGNATURE = PAYMENT_HEADERS.signature.toLowerCase();
const SETTLEMENT = PAYMENT_HEADERS.response.toLowerCase();
const REQUIRED = PAYMENT_HEADERS.required.toLowerCase();

/**
 * One request's payment on its way through the gateway (x402): the caller's `PAYMENT-SIGNATURE`
 * (sent to the node it pays, `payTo`, only), and what the node sent back about payment: its 402
 * whole (`refusal`), or the `PAYMENT-RESPONSE` of its answer (`settlement`).
 */
interface Passage {
  readonly signature: string | undefined;
  /** The node paid (`accepted.payTo` of the payload), when the request carries a payment. */
  readonly payTo: string | undefined;
  refusal?: GatewayResponse;
  settlement?: string;
}

/** A request's payment, decoded with the protocol's x402 codec (a malformed one: `PAYMENT_INVALID`, 402). */
function passageOf(req: GatewayRequest): Passage {
  const signature = req.header(SIGNATURE);
  if (signature === undefined) return { signature, payTo: undefined };
  return { signature, payTo: parsePaymentPayload(decodePaymentHeader(signature)).accepted.payTo };
}

/**
 * Routing options for a request that carries `passage`: a paid call goes to the node paid and no
 * other (another could not take the payment), and is never retried (it is spent once served).
 */
function paidRoute<O extends RoutedOptions>(options: O, passage: Passage): O {
  return passage.payTo === undefined ? options : { ...options, only: passage.payTo, retryable: () => false };
}

/**
 * What a failed call answers, payment-wise: the node's 402 as it sent it (with `PAYMENT-REQUIRED`,
 * which the caller's x402 client reads); a paid call whose node cannot be reached is
 * `NO_NODE_AVAILABLE` (503: no other node could take its payment). Anything else: `e` again.
 */
function paymentFailure(e: unknown, passage: Passage): GatewayResponse {
  if (passage.refusal !== undefined && isVerityError(e) && e.details.status === 402) return passage.refusal;
  if (passage.payTo !== undefined && isVerityError(e, 'NETWORK_ERROR')) {
    throw new VerityError('NO_NODE_AVAILABLE', `the node paid (${passage.payTo}) cannot be reached`, {
      details: { status: 503, payTo: passage.payTo },
      cause: e,
    });
  }
  throw e;
}

/** `headers` with the node's `PAYMENT-RESPONSE`, when it sent one. */
function withSettlement(headers: Record<string, string>, passage: Passage): Record<string, string> {
  return passage.settlement === undefined ? headers : { ...headers, [SETTLEMENT]: passage.settlement };
}

/** Prometheus label value escaping. */
const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * A gateway over `client`, a client without a `url` (it routes across the chain's registered nodes).
 *
 * @example
 * ```ts
 * const { base } = createClient({ chain: { rpcUrl, deployment } });
 * const gateway = createGateway(base);
 * const response = await gateway.fetch(new Request('http://gw/v1/network'));
 * ```
 */
export function createGateway(client: ClientBase, options: GatewayOptions = {}): Gateway {
  const network = client.network;
  if (network === undefined)
    throw new VerityError('CONFIG_INVALID', 'a gateway needs a client without a url (one that routes)');
  const requests = new Map<string, number>();
  const count = (route: string, outcome: string) => {
    const key = `${route}\u0000${outcome}`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
  };
  const log = options.log ?? (() => undefined);
  // Logged: every refusal, and the first failure of a node in a row (a dead node is not logged per call).
  const onFailure = (f: { node: string; url: string; code: string; refused: boolean; error: unknown }) =>
    (f.refused || (network.nodes().find((n) => n.url === f.url)?.failures ?? 0) <= 1) &&
    log({
      event: f.refused ? 'answer_refused' : 'node_failed',
      node: f.node,
      url: f.url,
      code: f.code,
      message: f.error instanceof Error ? f.error.message : String(f.error),
    });
  // Which node served which request (the last SERVED_MAX): a receipt lookup asks that node first.
  const servedBy = new Map<string, string>();
  const served = (requestId: unknown, node: string) => {
    if (typeof requestId !== 'string') return;
    servedBy.delete(requestId);
    servedBy.set(requestId, node);
    if (servedBy.size > SERVED_MAX) servedBy.delete(servedBy.keys().next().value as string);
  };
  const addressOf = (url: string) => network.nodes().find((n) => n.url === url)?.address ?? url;

  /**
   * `node` as one request reaches it: the caller's payment header sent along, the node's 402 kept
   * whole for the caller and its `PAYMENT-RESPONSE` noted (`passage`).
   */
  function via(node: ClientBase, passage: Passage): ClientBase {
    const f = node.fetch;
    return {
      ...node,
      fetch: (async (input: string | URL | Request, init: RequestInit = {}) => {
        const sent =
          passage.signature === undefined
            ? init
            : { ...init, headers: { ...(init.headers as Record<string, string>), [SIGNATURE]: passage.signature } };
        const r = await f(input, sent);
        if (r.status === 402) {
          const body = new Uint8Array(await r.arrayBuffer());
          const headers: Record<string, string> = { 'x-verity-node': addressOf(node.url) };
          for (const name of ['content-type', REQUIRED]) {
            const v = r.headers.get(name);
            if (v !== null) headers[name] = v;
          }
          passage.refusal = { status: 402, headers, body };
          return new Response(body, { status: 402, headers: r.headers });
        }
        const settled = r.headers.get(SETTLEMENT);
        if (settled !== null) passage.settlement = settled;
        return r;
      }) as typeof fetch,
    };
  }

  /** The manifest a reference names, resolved through the chain once per reference (as `infer` does). */
  async function modelOf(node: ClientBase, ref: string): Promise<ModelInfo> {
    return (client.manifests.get(ref) as ModelInfo | undefined) ?? getModel(node, ref);
  }

  async function handleInfer(req: GatewayRequest): Promise<GatewayResponse> {
    // A binary inference frame (docs/protocol.md §2.6: the SDK's default) or JSON, as a node takes.
    const binary = (req.header('content-type') ?? '').startsWith(INFER_MEDIA_TYPE);
    let body: Record<string, unknown>;
    // A frame's tensors go on as their bytes (checked, never re-encoded) in modes signed and audited.
    let encoded: { tensors: TensorMap; bytes: Uint8Array } | undefined;
    if (binary) {
      const frame = decodeInferFrame(req.body ?? new Uint8Array());
      body = { ...(frame.header as Record<string, unknown>), input: frame.tensors };
      encoded = { tensors: frame.tensors, bytes: frame.tensorBytes };
    } else {
      body = jsonBody(req);
    }
    if (typeof body.model !== 'string' || !isObject(body.input)) {
      throw new VerityError('INVALID_ARGUMENT', 'the body needs model (a string) and input (named tensors)');
    }
    const params = body as unknown as InferParams;
    const prefer = req.header('x-verity-prefer-node');
    const passage = passageOf(req);
    let answered: { value: InferResult; route: Route };
    try {
      answered = await routed(
        client,
        paidRoute({ model: params.model, onFailure, ...(prefer === undefined ? {} : { prefer }) }, passage),
        (node, signal) =>
          encoded !== undefined && params.mode !== 'quorum' && params.mode !== 'zk'
            ? inferOne(via(node, passage), { ...params, signal }, encoded)
            : infer(via(node, passage), { ...params, signal }),
      );
    } catch (e) {
      return paymentFailure(e, passage);
    }
    const { value, route } = answered;
    served(value.requestId, route.node);
    const fields = {
      requestId: value.requestId,
      model: value.model,
      ...(value.receipts.length > 1 ? { receipts: value.receipts } : { receipt: value.receipt }),
      ...(value.dissent === undefined ? {} : { dissent: value.dissent }),
      ...(value.audit === undefined ? {} : { audit: value.audit }),
      ...(value.zk === undefined ? {} : { zk: value.zk }),
      gateway: route,
    };
    if (prefersFrame(req.header('accept'))) {
      // The output's bytes as the node sent them (hashed, checked): never decoded to JSON nor re-encoded.
      const frame = encodeInferFrame(JSON.stringify(fields), value.outputBytes ?? encodeTensors(value.output));
      return {
        status: 200,
        headers: withSettlement({ 'content-type': INFER_MEDIA_TYPE, vary: 'Accept', ...routeHeaders(route) }, passage),
        body: frame,
      };
    }
    const { requestId, model, ...rest } = fields;
    return json(
      { requestId, model, output: value.outputJson, ...rest },
      200,
      withSettlement({ vary: 'Accept', ...routeHeaders(route) }, passage),
    );
  }

  /** Sends an OpenAI request to one node and verifies the answer (whole, or chunk by chunk as it streams). */
  async function callNode(
    node: ClientBase,
    signal: AbortSignal,
    endpoint: 'chat.completions' | 'completions',
    body: Record<string, unknown>,
    mode: 'signed' | 'audited',
    onChunk?: (data: string) => void,
  ): Promise<Record<string, unknown>> {
    // The name resolves through ModelRegistry; the node is sent the CID and must answer from it.
    const expected = (await modelOf(node, String(body.model))).id;
    const sent = { ...body, model: expected };
    const response = await request(node, 'POST', pathOf(endpoint), {
      json: sent,
      signal,
      ...(mode === 'audited' ? { headers: { 'x-verity-mode': 'audited' } } : {}),
    });
    let answer: unknown;
    let last: Record<string, unknown> | undefined;
    if (onChunk === undefined) {
      try {
        answer = await response.json();
      } catch (cause) {
        throw new VerityError('RESPONSE_INVALID', 'the node sent invalid JSON', { cause });
      }
      if (!isObject(answer)) throw new VerityError('RESPONSE_INVALID', 'the node sent no completion');
      last = answer;
    } else {
      if (!response.body) throw new VerityError('RESPONSE_INVALID', 'the node sent no stream');
      const chunks: unknown[] = [];
      for await (const data of sseData(response.body)) {
        if (data === '[DONE]') continue;
        let chunk: unknown;
        try {
          chunk = JSON.parse(data);
        } catch (cause) {
          throw new VerityError('RESPONSE_INVALID', 'the node sent a malformed event', { cause });
        }
        if (isObject(chunk) && isObject(chunk.error)) {
          throw new VerityError('INFERENCE_FAILED', String(chunk.error.message ?? 'generation failed'), {
            details: { code: chunk.error.code },
          });
        }
        chunks.push(chunk);
        // The receipt's chunk waits for the verdict; every other passes through now.
        if (isObject(chunk) && chunk.verity !== undefined) last = chunk;
        else onChunk(data);
      }
      answer = chunks;
      if (last === undefined) throw new VerityError('RESPONSE_INVALID', 'the stream ended without a verity receipt');
    }
    const receipt = isObject(last.verity) ? (last.verity.receipt as Receipt) : undefined;
    await withTrust(node, async (trust) => {
      if (receipt !== undefined) await primeVerifyCache(receipt, trust, client.cache);
      const verify = endpoint === 'chat.completions' ? verifyChatCompletion : verifyCompletion;
      const verifyWith = (payment?: PaymentPolicy) =>
        verify(sent, answer, trust, { cache: client.cache, model: expected, mode, ...(payment ? { payment } : {}) });
      try {
        return verifyWith();
      } catch (e) {
        // Paid by a contract wallet: its signature is its own only if it says so on the chain
        // (an honest node's answer to such a payer is no node failure).
        if (!isVerityError(e, 'PAYMENT_SIGNATURE_NEEDS_CHAIN') || !client.chain || receipt === undefined) throw e;
        return verifyWith({ vouched: await askPayers(client.chain, [receipt]) });
      }
    });
    return last;
  }

  async function handleOpenAi(
    req: GatewayRequest,
    endpoint: 'chat.completions' | 'completions',
  ): Promise<GatewayResponse> {
    const body = jsonBody(req);
    if (typeof body.model !== 'string') throw new VerityError('INVALID_ARGUMENT', 'model must be a string');
    const mode = req.header('x-verity-mode') === 'audited' ? 'audited' : 'signed';
    const prefer = req.header('x-verity-prefer-node');
    const passage = passageOf(req);
    const base = { model: body.model, onFailure, ...(prefer === undefined ? {} : { prefer }) };
    if (body.stream !== true) {
      let answered: { value: Record<string, unknown>; route: Route };
      try {
        answered = await routed(client, paidRoute(base, passage), (node, signal) =>
          callNode(via(node, passage), signal, endpoint, body, mode),
        );
      } catch (e) {
        return paymentFailure(e, passage);
      }
      const { value, route } = answered;
      const verity = isObject(value.verity) ? value.verity : {};
      served(requestIdOf(verity), route.node);
      return json(
        { ...value, verity: { ...verity, gateway: route } },
        200,
        withSettlement(routeHeaders(route), passage),
      );
    }
    return stream(body, endpoint, mode, base, passage);
  }

  function stream(
    body: Record<string, unknown>,
    endpoint: 'chat.completions' | 'completions',
    mode: 'signed' | 'audited',
    base: { model: string; prefer?: string; onFailure: typeof onFailure },
    passage: Passage,
  ): Promise<GatewayResponse> {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let cancelled = false;
    const caller = new AbortController();
    const out = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: () => {
        cancelled = true;
        caller.abort();
      },
    });
    const send = (data: string) => {
      if (!cancelled) controller.enqueue(encoder.encode(`data: ${data}\n\n`));
    };
    let passed = false;
    let respond!: (r: GatewayResponse) => void;
    const started = new Promise<GatewayResponse>((r) => {
      respond = r;
    });
    const open = (headers: Record<string, string>) =>
      respond({
        status: 200,
        headers: withSettlement(
          { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers },
          passage,
        ),
        body: out,
      });
    void (async () => {
      try {
        const { value: last, route } = await routed(
          client,
          // A paid stream goes to the node paid only, and never again (see `paidRoute`).
          paidRoute({ ...base, signal: caller.signal, retryable: () => !passed }, passage),
          (node, signal) =>
            callNode(via(node, passage), signal, endpoint, body, mode, (data) => {
              // The first token fixes the node: its headers go out with it.
              if (!passed) {
                passed = true;
                open({ 'x-verity-node': addressOf(node.url), 'x-verity-route': 'streaming' });
              }
              send(data);
            }),
        );
        if (!passed) open(routeHeaders(route));
        const verity = isObject(last.verity) ? last.verity : {};
        served(requestIdOf(verity), route.node);
        send(JSON.stringify({ ...last, verity: { ...verity, gateway: route } }));
        send('[DONE]');
        count(pathOf(endpoint), 'ok');
      } catch (e) {
        if (!passed) {
          let answer: GatewayResponse;
          try {
            answer = paymentFailure(e, passage); // the node's 402 as it sent it
          } catch (e2) {
            answer = errorResponse(e2, true);
          }
          respond(answer); // counted by `fetch`, as any error answer
          return;
        }
        // Tokens were passed: the stream ends with an error event instead of a receipt.
        const refused = isVerityError(e) && isVerificationFailure(e.code);
        const err = refused
          ? new VerityError('ANSWER_UNVERIFIED', 'the answer did not verify; do not trust the text streamed', {
              details: { cause: (e as VerityError).code },
            })
          : isVerityError(e)
            ? e
            : new VerityError('INTERNAL', 'internal error');
        count(pathOf(endpoint), refused ? 'unverified' : 'error');
        const { status: _s, ...details } = err.details;
        send(
          JSON.stringify({
            error: { code: err.code, message: err.message, details, type: 'server_error', param: null },
          }),
        );
        send('[DONE]');
      } finally {
        if (!cancelled) controller.close();
      }
    })();
    return started;
  }

  async function handleModels(): Promise<GatewayResponse> {
    const nodes = (await network?.candidates()) ?? [];
    const healthy = nodes.filter((n) => n.state === 'up' || n.state === 'unknown');
    const lists = await Promise.allSettled(
      healthy.map(async (n) => {
        const r = await request({ ...client, url: n.url, fallbackUrls: [], network: undefined }, 'GET', '/v1/models', {
          signal: AbortSignal.timeout(5_000),
        });
        return ((await r.json()) as { data?: unknown[] }).data ?? [];
      }),
    );
    const byId = new Map<string, unknown>();
    for (const l of lists) {
      if (l.status !== 'fulfilled') continue;
      for (const m of l.value) if (isObject(m) && typeof m.id === 'string' && !byId.has(m.id)) byId.set(m.id, m);
    }
    return json({ object: 'list', data: [...byId.values()] });
  }

  function metrics(): string {
    const lines: string[] = [
      '# HELP verity_gateway_requests_total Requests the gateway answered, by route and outcome.',
      '# TYPE verity_gateway_requests_total counter',
    ];
    for (const [key, n] of requests) {
      const [route, outcome] = key.split('\u0000') as [string, string];
      lines.push(`verity_gateway_requests_total{route="${label(route)}",outcome="${label(outcome)}"} ${n}`);
    }
    const nodes = network?.nodes() ?? [];
    const series: [string, string, string, (n: (typeof nodes)[number]) => number][] = [
      ['verity_gateway_node_served_total', 'counter', 'Verified answers each node served.', (n) => n.served],
      [
        'verity_gateway_node_failovers_total',
        'counter',
        'Calls that failed on each node (unreachable, 5xx, timeout) and went to another.',
        (n) => n.failovers,
      ],
      [
        'verity_gateway_node_verification_failures_total',
        'counter',
        'Answers of each node that did not verify against the registry (refused).',
        (n) => n.verificationFailures,
      ],
      [
        'verity_gateway_node_up',
        'gauge',
        'Whether the node answered its last call or probe (1) or not (0).',
        (n) => (n.state === 'up' ? 1 : 0),
      ],
      ['verity_gateway_node_latency_ms', 'gauge', 'Latency average (EWMA) of the node, ms.', (n) => n.latencyMs ?? 0],
    ];
    for (const [name, type, help, value] of series) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const n of nodes) lines.push(`${name}{node="${label(n.address)}",url="${label(n.url)}"} ${value(n)}`);
    }
    return `${lines.join('\n')}\n`;
  }

  /** `GET /v1/receipts/:id`: from the node that served the request (else any), verified. */
  async function handleReceipt(req: GatewayRequest, requestId: string): Promise<GatewayResponse> {
    const named = req.header('x-verity-prefer-node');
    const prefer = named ?? servedBy.get(requestId);
    const { value, route } = await routed(
      client,
      {
        onFailure,
        passOver: isReceiptNotFound,
        ...(prefer === undefined ? {} : { prefer }),
        ...(named === undefined && prefer !== undefined ? { preferReason: 'served the request' } : {}),
      },
      async (node, signal) => {
        const receipt = await requestJson<unknown>(node, 'GET', `/v1/receipts/${encodeURIComponent(requestId)}`, {
          signal,
        });
        // Checked as an answer is: against the registry's key of the node that signed it.
        await withTrust(node, async (trust) => {
          await primeVerifyCache(receipt, trust, client.cache);
          // A contract wallet's payment signature: its own only if it says so on the chain.
          const result = await verifyWithPayers(client.chain, [receipt], (payment) =>
            verifyReceipt(receipt, trust, { cache: client.cache, payment }),
          );
          if (!result.ok) throw result.error;
          if (result.receipts[0]?.record.requestId !== requestId) {
            throw new VerityError('RESPONSE_INVALID', 'the node sent the receipt of another request');
          }
        });
        return receipt;
      },
    );
    return json(value, 200, routeHeaders(route));
  }

  async function route(req: GatewayRequest, pathname: string): Promise<GatewayResponse> {
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (req.method === 'POST' && pathname === '/v1/infer') return handleInfer(req);
    if (req.method === 'POST' && pathname === '/v1/chat/completions') return handleOpenAi(req, 'chat.completions');
    if (req.method === 'POST' && pathname === '/v1/completions') return handleOpenAi(req, 'completions');
    if (get && pathname === '/v1/network') return json({ nodes: network?.nodes() ?? [] });
    if (get && pathname === '/metrics') {
      return {
        status: 200,
        headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
        body: encoder.encode(metrics()),
      };
    }
    if (get && pathname === '/healthz') {
      const nodes = network?.nodes() ?? [];
      return json({ status: 'ok', nodes: nodes.length, up: nodes.filter((n) => n.state === 'up').length });
    }
    if (get && pathname === '/v1/models') return handleModels();
    if (get && pathname.startsWith('/v1/models/')) {
      const ref = pathParam(pathname.slice('/v1/models/'.length));
      return json(await getModel(client, ref));
    }
    if (get && pathname.startsWith('/v1/receipts/')) {
      return handleReceipt(req, pathParam(pathname.slice('/v1/receipts/'.length)));
    }
    throw new VerityError('NOT_FOUND', `no route ${req.method} ${pathname} on the gateway`);
  }

  async function handle(req: GatewayRequest): Promise<GatewayResponse> {
    // Origin form (`/v1/infer?…`), as servers pass it; an absolute form is parsed.
    const path = req.path.startsWith('/') ? req.path : URL.canParse(req.path) ? new URL(req.path).pathname : '/';
    const q = path.indexOf('?');
    const pathname = q === -1 ? path : path.slice(0, q);
    const openAi = pathname === '/v1/chat/completions' || pathname === '/v1/completions';
    try {
      const response = await route(req, pathname);
      if (req.method === 'POST' && !response.headers['content-type']?.includes('event-stream')) {
        count(pathname, response.status < 400 ? 'ok' : 'error');
      }
      return response;
    } catch (e) {
      if (req.method === 'POST') count(pathname, isVerityError(e, 'NO_NODE_AVAILABLE') ? 'no_node' : 'error');
      if (!isVerityError(e)) log({ event: 'internal_error', message: e instanceof Error ? e.message : String(e) });
      return errorResponse(e, openAi);
    }
  }

  return {
    metrics,
    handle,
    async fetch(req) {
      const url = new URL(req.url);
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : new Uint8Array(await req.arrayBuffer());
      const answer = await handle({
        method: req.method,
        path: `${url.pathname}${url.search}`,
        header: (name) => req.headers.get(name) ?? undefined,
        ...(body === undefined ? {} : { body }),
      });
      return new Response(answer.body as BodyInit, { status: answer.status, headers: answer.headers });
    },
  };
}
