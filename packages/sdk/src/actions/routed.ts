/**
 * Routing across the network (issue 16): a call runs on the best node for its model and, when
 * that node cannot be reached, fails (5xx, 429), times out, or sends an answer that does not
 * verify, on the next one. The caller's own mistakes (a 4xx other than 429, input that does not
 * fit the model) are the caller's on every node: they are returned at once, never retried.
 */
import { isVerityError, VerityError } from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { hosts, type NetworkNode, priceOf } from '../network.js';

/** Which node served an answer, and why that one (the `verity.gateway` member, `InferResult.route`). */
export interface Route {
  /** The serving node's account (its registry entry verified the answer). */
  readonly node: string;
  readonly url: string;
  /** Why this node: its rank, or the failover that led to it. */
  readonly reason: string;
  /** The nodes tried before it and why each was passed over (a code). */
  readonly tried: readonly { readonly node: string; readonly code: string }[];
}

/**
 * Verification codes: an answer that came back but does not hold. The node is refused for a
 * while and the call goes to another node; the failure is counted against it.
 */
const VERIFICATION_PREFIXES = ['RECEIPT_', 'BUNDLE_', 'NOTE_', 'CHECKPOINT_', 'INCLUSION_', 'CONSISTENCY_', 'ZK_'];
// PAYMENT_NOT_COMMITTED: a paid answer whose record does not commit to the payment made (another node
// may be paid instead, within the caller's budget).
const VERIFICATION_CODES: ReadonlySet<string> = new Set([
  'RESPONSE_INVALID',
  'MODEL_REGISTRY_MISMATCH',
  'PAYMENT_NOT_COMMITTED',
]);

/** Whether `code` says that an answer did not verify. */
export function isVerificationFailure(code: string): boolean {
  return VERIFICATION_CODES.has(code) || VERIFICATION_PREFIXES.some((p) => code.startsWith(p));
}

/**
 * Whether an error is the node's (another node may do better) rather than the caller's: it could
 * not be reached or timed out, answered 5xx or 429, failed its stream, or its answer did not verify.
 */
export function isNodeFailure(e: unknown): boolean {
  if (!isVerityError(e)) return false;
  const status = e.details.status;
  if (typeof status === 'number') return status >= 500 || status === 429 || e.code === 'MODEL_NOT_FOUND';
  return e.code === 'NETWORK_ERROR' || e.code === 'INFERENCE_FAILED' || isVerificationFailure(e.code);
}

/** Options of {@link routed}. */
export interface RoutedOptions {
  /** The model asked for (routing prefers nodes that hold it). */
  readonly model?: string;
  /** Try this node first (an address or URL), then the others. */
  readonly prefer?: string;
  /**
   * Only this node (an address): a call bound to one node (a payment to its account, which no
   * other node could take) goes nowhere else. None such: `NO_NODE_AVAILABLE`.
   */
  readonly only?: string;
  /** Why `prefer` (the route's reason; default: preferred by the caller). */
  readonly preferReason?: string;
  /** The caller's signal: an abort stops the call, never counts against a node. */
  readonly signal?: AbortSignal;
  /**
   * Whether a failure may still go to another node (default: always). A stream that has passed
   * tokens to its caller cannot start again elsewhere.
   */
  readonly retryable?: () => boolean;
  /**
   * Errors that send the call to the next node without holding anything against this one (e.g.
   * `RECEIPT_NOT_FOUND`: a receipt lives on the node that served its request). When every node
   * passed the call over, the last such error is thrown (the caller's answer, e.g. a 404).
   */
  readonly passOver?: (e: unknown) => boolean;
  /** Told of each node that failed (`refused`: its answer did not verify), e.g. to log it. */
  readonly onFailure?: (failure: { node: string; url: string; code: string; refused: boolean; error: unknown }) => void;
}

/**
 * Runs `run` with a client bound to one node at a time (its `url`, no fallbacks), best first, until
 * one succeeds; reports each outcome to the network (latency, failover, refusal). Throws the
 * caller's error at once, or `NO_NODE_AVAILABLE` (503) with every node's failure in `details`
 * when none served.
 *
 * @example
 * ```ts
 * const { value, route } = await routed(client, { model: 'iris@1.0.0' }, (node) => infer(node, params));
 * ```
 */
export async function routed<T>(
  client: ClientBase,
  options: RoutedOptions,
  run: (node: ClientBase, signal: AbortSignal) => Promise<T>,
): Promise<{ value: T; route: Route }> {
  const network = client.network;
  if (network === undefined) throw new VerityError('CONFIG_INVALID', 'this client has no network to route across');
  let candidates = await network.candidates(options.model);
  if (options.only !== undefined) {
    const only = options.only.toLowerCase();
    candidates = candidates.filter((n) => n.address.toLowerCase() === only);
  }
  if (options.prefer !== undefined) {
    const p = options.prefer.toLowerCase().replace(/\/+$/, '');
    const first = candidates.filter((n) => n.address.toLowerCase() === p || n.url.toLowerCase() === p);
    candidates = [...first, ...candidates.filter((n) => !first.includes(n))];
  }
  const model = options.model;
  // Whether price took part in the order (some node lists one for the model): the reason says so.
  const priced = model !== undefined && candidates.some((n) => priceOf(n, model) !== 0n);
  const tried: { node: string; code: string }[] = [];
  let lastError: unknown;
  let failures = 0;
  let passedOver = false;
  for (const [i, node] of candidates.entries()) {
    // One controller and one timer per call (AbortSignal.timeout and .any cost more per call
    // than the gateway's routing itself); the timer never keeps a process alive.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new VerityError('NETWORK_ERROR', 'the call timed out')),
      network.timeoutMs,
    );
    (timer as { unref?: () => void }).unref?.();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const signal = controller.signal;
    const started = performance.now();
    try {
      const value = await run({ ...client, url: node.url, fallbackUrls: [], network: undefined }, signal);
      network.report(node, { ok: true, latencyMs: performance.now() - started });
      const reason = reasonOf(node, i, tried, options, passedOver, priced);
      return { value, route: { node: node.address, url: node.url, reason, tried } };
    } catch (e) {
      if (options.signal?.aborted) throw e;
      const code = isVerityError(e) ? e.code : 'TIMEOUT';
      lastError = e;
      if (options.passOver?.(e) === true && !signal.aborted) {
        tried.push({ node: node.address, code });
        passedOver = true;
        continue;
      }
      passedOver = false;
      const failed = isNodeFailure(e) || signal.aborted;
      if (!failed) throw e;
      failures += 1;
      const refused = isVerityError(e) && isVerificationFailure(e.code);
      network.report(node, { ok: false, error: code, refused });
      options.onFailure?.({ node: node.address, url: node.url, code, refused, error: e });
      tried.push({ node: node.address, code });
      if (options.retryable !== undefined && !options.retryable()) throw e;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
  // Every node passed the call over (none failed): theirs is the answer.
  if (failures === 0 && lastError !== undefined) throw lastError;
  throw new VerityError(
    'NO_NODE_AVAILABLE',
    candidates.length === 0 ? 'no registered, active node to route to' : 'no node served a verified answer',
    { details: { status: 503, tried }, ...(lastError === undefined ? {} : { cause: lastError }) },
  );
}

function reasonOf(
  node: NetworkNode,
  index: number,
  tried: Route['tried'],
  options: RoutedOptions,
  passedOver: boolean,
  priced: boolean,
): string {
  const latency = node.latencyMs === undefined ? 'not measured yet' : `${Math.round(node.latencyMs)} ms`;
  if (index > 0 && tried.length > 0) {
    const last = tried.at(-1) as Route['tried'][number];
    const what = passedOver ? `next: ${last.node} does not hold it` : `failover: ${last.node} failed`;
    return `${what} (${last.code}); next best (latency ${latency})`;
  }
  if (options.prefer !== undefined) return `${options.preferReason ?? 'preferred by the caller'} (latency ${latency})`;
  const holds = options.model !== undefined && hosts(node, options.model) ? `, holds ${options.model}` : '';
  if (priced && options.model !== undefined) {
    const price = priceOf(node, options.model);
    return `cheapest within the latency tolerance (price ${price ?? 'unreadable'}, latency ${latency})${holds}`;
  }
  return `lowest latency (${latency})${holds}`;
}
