/**
 * The network as a client sees it (issue 16): the nodes `NodeRegistry` lists as registered, active
 * and staked, the models each serves (`GET /v1/models`), and how each is doing (health, latency).
 * The chain says who the nodes are and which key each signs with; a node's own word only says
 * where it is fast and what it holds, which routing may use but verification never does.
 *
 * Cheap and lazy: nothing runs until the first request asks for a node; the registry is read
 * again every `refreshMs` (one `listNodes` call), each node probed every `probeIntervalMs` (one
 * `GET /v1/models`), a failing one less and less often (exponential backoff); `close()` stops it.
 */
import { isActiveNode, type RegistrySnapshot } from '@verity/protocol';

/** Routing and probing settings (each with a named default). */
export interface NetworkOptions {
  /** How often the registry is read again for nodes that joined or left (default 10 s). */
  readonly refreshMs?: number;
  /** How often a healthy node is probed (default 5 s). */
  readonly probeIntervalMs?: number;
  /**
   * A call's time limit before its node counts as failed and the call goes to the next (default
   * 330 s: beyond a node's own limits, 300 s for a generation, so a slow answer is the node's
   * `INFERENCE_TIMEOUT`, and only a hung node meets this); probes take at most 5 s.
   */
  readonly timeoutMs?: number;
  /** The longest a failing node waits for its next probe (default 60 s). */
  readonly maxBackoffMs?: number;
  /**
   * Price-aware routing (default on): among the healthy nodes that hold the model, those whose
   * latency is within `ms` or `ratio` × the fastest's (whichever allows more) of the fastest are
   * tried cheapest first (the price each lists in `GET /v1/models`; none listed: free), the
   * others after them by latency. `false`: latency alone. Default `{ ratio: 0.5, ms: 10 }`.
   */
  readonly priceTolerance?: false | { readonly ratio?: number; readonly ms?: number };
  /**
   * A node's cost for routing, lower is better (default: its latency average, with the price
   * policy above). Given, it replaces both: e.g. weigh price and latency as you like.
   */
  readonly score?: (node: NetworkNode, model: string | undefined) => number;
}

/**
 * A model's price as a node lists it in `GET /v1/models` (docs/api.md "Payments"), atomic units
 * of the token as decimal strings: `exact`, per request; `metered`, per prompt and generated token.
 */
export interface ModelPrice {
  readonly scheme?: string;
  readonly request?: string;
  readonly inputToken?: string;
  readonly outputToken?: string;
  readonly asset?: string;
}

/** What routing knows about one registered node. */
export interface NetworkNode {
  /** Its account (EIP-55), as the registry lists it. */
  readonly address: string;
  /** Its registered endpoint (base URL). */
  readonly url: string;
  /** `up` (answers), `down` (failed its last call or probe), `refused` (sent an answer that did not verify), `unknown` (not probed yet). */
  state: 'unknown' | 'up' | 'down' | 'refused';
  /** Latency average (EWMA, α = 0.3) of its answers and probes, ms; undefined before the first. */
  latencyMs: number | undefined;
  /** Models it lists (`GET /v1/models`): manifest CIDs and `name@version`. */
  models: Set<string>;
  /** The prices it lists, by manifest CID and by `name@version` (a model without one is free). */
  prices: Map<string, ModelPrice>;
  /** Consecutive failures (the backoff's exponent). */
  failures: number;
  /** When it may be probed (or routed to, when down) again (ms since the epoch). */
  retryAt: number;
  lastError: string | undefined;
  /** Answers it served, calls that failed over away from it, answers of it that did not verify. */
  readonly counts: { served: number; failovers: number; verificationFailures: number };
}

/** A snapshot of a node for `GET /v1/network` (JSON). */
export interface NetworkNodeJson {
  readonly address: string;
  readonly url: string;
  readonly state: NetworkNode['state'];
  readonly latencyMs: number | null;
  readonly models: readonly string[];
  /** The prices it lists, by manifest CID and by `name@version`. */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  readonly failures: number;
  readonly lastError: string | null;
  readonly served: number;
  readonly failovers: number;
  readonly verificationFailures: number;
}

/** The network a client routes across. */
export interface Network {
  /**
   * The nodes to try for `model`, best first: registered and active, not failing (a failing or
   * refused node only after the others, once its backoff has passed), hosting the model first,
   * then by score. Reads the registry on the first call and when it is older than `refreshMs`.
   */
  candidates(model?: string): Promise<NetworkNode[]>;
  /** Records an answer (`latencyMs`), a failure, or an answer that did not verify. */
  report(
    node: NetworkNode,
    outcome: { ok: true; latencyMs: number } | { ok: false; error: string; refused?: boolean },
  ): void;
  /** Every node known, as JSON. */
  nodes(): NetworkNodeJson[];
  /** Stops the probes (the next `candidates` starts them again). */
  close(): void;
  /** The call time limit routed requests use (`timeoutMs`). */
  readonly timeoutMs: number;
}

const DEFAULTS = {
  refreshMs: 10_000,
  probeIntervalMs: 5_000,
  timeoutMs: 60_000,
  probeTimeoutMs: 5_000,
  maxBackoffMs: 60_000,
};
const ALPHA = 0.3;
/** A node that sent an answer that did not verify sits out this long before it is tried again. */
const REFUSED_MS = 60_000;

/** Whether a node's model list names `model` (a CID, `name@version`, or a bare name). */
export function hosts(node: Pick<NetworkNode, 'models'>, model: string): boolean {
  if (node.models.has(model)) return true;
  for (const m of node.models) if (m.startsWith(`${model}@`)) return true;
  return false;
}

/**
 * What `node` charges for `model`, as one number to compare (atomic units): `exact`, the price
 * of a request; `metered`, the price of a prompt token plus a generated token. `0n`: free (no
 * price listed); `undefined`: a price that is not a decimal amount (such a node is ranked last
 * among the fast ones).
 */
export function priceOf(node: Pick<NetworkNode, 'prices'>, model: string): bigint | undefined {
  let price = node.prices.get(model);
  if (price === undefined) {
    for (const [ref, p] of node.prices) if (ref.startsWith(`${model}@`)) price = p;
  }
  if (price === undefined) return 0n;
  const amount = (v: string | undefined) => (v !== undefined && /^\d{1,78}$/.test(v) ? BigInt(v) : undefined);
  if (price.request !== undefined) return amount(price.request);
  const input = amount(price.inputToken);
  const output = amount(price.outputToken);
  return input === undefined || output === undefined ? undefined : input + output;
}

/** The price policy's defaults (see `NetworkOptions.priceTolerance`). */
const PRICE_TOLERANCE = { ratio: 0.5, ms: 10 };

/**
 * Orders nodes of one tier (each healthy and holding `model`) for the price policy: those within
 * the latency tolerance of the fastest, cheapest first (then by latency), then the rest by latency.
 *
 * @example
 * ```ts
 * const order = byPriceWithinLatency(nodes, 'tiny-chat@1.0.0', { ratio: 0.5, ms: 10 });
 * ```
 */
export function byPriceWithinLatency<N extends Pick<NetworkNode, 'prices' | 'latencyMs'>>(
  nodes: readonly N[],
  model: string,
  tolerance: { readonly ratio?: number; readonly ms?: number } = PRICE_TOLERANCE,
): N[] {
  const latency = (n: N) => n.latencyMs ?? Number.MAX_SAFE_INTEGER / 2;
  const best = Math.min(...nodes.map(latency));
  const slack = Math.max(tolerance.ms ?? PRICE_TOLERANCE.ms, (tolerance.ratio ?? PRICE_TOLERANCE.ratio) * best);
  const near = (n: N) => n.latencyMs !== undefined && latency(n) <= best + slack;
  const MAX = 2n ** 256n;
  const price = (n: N) => priceOf(n, model) ?? MAX;
  return [...nodes].sort((a, b) => {
    const na = near(a);
    const nb = near(b);
    if (na !== nb) return na ? -1 : 1;
    if (na) {
      const pa = price(a);
      const pb = price(b);
      if (pa !== pb) return pa < pb ? -1 : 1;
    }
    return latency(a) - latency(b);
  });
}

/**
 * A network read from a registry. `snapshot` reads `NodeRegistry` at the latest block; `fetch`
 * is used for the probes.
 *
 * @example
 * ```ts
 * const network = createNetwork(() => registrySnapshot({ rpcUrl, nodeRegistry }), fetch);
 * const [best] = await network.candidates('iris@1.0.0');
 * ```
 */
export function createNetwork(
  snapshot: () => Promise<RegistrySnapshot>,
  fetchFn: typeof fetch,
  options: NetworkOptions = {},
): Network {
  const refreshMs = options.refreshMs ?? DEFAULTS.refreshMs;
  const probeIntervalMs = options.probeIntervalMs ?? DEFAULTS.probeIntervalMs;
  const maxBackoffMs = options.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const probeTimeoutMs = Math.min(timeoutMs, DEFAULTS.probeTimeoutMs);
  const byAddress = new Map<string, NetworkNode>();
  let readAt = 0;
  let reading: Promise<void> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const probing = new Set<NetworkNode>();

  const backoff = (failures: number) => Math.min(maxBackoffMs, 500 * 2 ** Math.min(failures, 16));

  function observe(node: NetworkNode, ms: number): void {
    node.latencyMs = node.latencyMs === undefined ? ms : node.latencyMs * (1 - ALPHA) + ms * ALPHA;
  }

  async function probe(node: NetworkNode): Promise<void> {
    if (probing.has(node)) return;
    probing.add(node);
    const started = performance.now();
    try {
      const response = await fetchFn(`${node.url}/v1/models`, { signal: AbortSignal.timeout(probeTimeoutMs) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = (await response.json()) as { data?: { id?: unknown; ref?: unknown; price?: unknown }[] };
      const models = new Set<string>();
      const prices = new Map<string, ModelPrice>();
      for (const m of body.data ?? []) {
        const price = typeof m.price === 'object' && m.price !== null ? (m.price as ModelPrice) : undefined;
        for (const key of [m.id, m.ref]) {
          if (typeof key !== 'string') continue;
          models.add(key);
          if (price !== undefined) prices.set(key, price);
        }
      }
      node.models = models;
      node.prices = prices;
      observe(node, performance.now() - started);
      // A refused node stays refused until its time is up; a probe does not clear a lie.
      if (node.state !== 'refused' || Date.now() >= node.retryAt) {
        node.state = 'up';
        node.failures = 0;
        node.lastError = undefined;
      }
      if (node.state === 'up') node.retryAt = Date.now() + probeIntervalMs;
    } catch (e) {
      fail(node, e instanceof Error ? e.message : String(e), false);
    } finally {
      probing.delete(node);
    }
  }

  function fail(node: NetworkNode, error: string, refused: boolean): void {
    node.failures += 1;
    node.lastError = error;
    if (refused) {
      node.state = 'refused';
      node.retryAt = Date.now() + Math.max(REFUSED_MS, backoff(node.failures));
    } else if (node.state !== 'refused') {
      node.state = 'down';
      node.retryAt = Date.now() + backoff(node.failures);
    }
  }

  async function read(): Promise<void> {
    const registry = await snapshot();
    const seen = new Set<string>();
    for (const entry of registry.nodes) {
      if (!isActiveNode(registry, entry) || !/^https?:\/\//.test(entry.endpoint)) continue;
      const key = entry.address.toLowerCase();
      seen.add(key);
      const url = entry.endpoint.replace(/\/+$/, '');
      const known = byAddress.get(key);
      if (known && known.url === url) continue;
      byAddress.set(key, {
        address: entry.address,
        url,
        state: 'unknown',
        latencyMs: undefined,
        models: new Set(),
        prices: new Map(),
        failures: 0,
        retryAt: 0,
        lastError: undefined,
        counts: known?.counts ?? { served: 0, failovers: 0, verificationFailures: 0 },
      });
    }
    // A node that left the registry (unbonding, exited, slashed below the minimum) is no longer routed to.
    for (const key of [...byAddress.keys()]) if (!seen.has(key)) byAddress.delete(key);
    readAt = Date.now();
    // The first sight of a node: probe it now, so that routing knows what it holds.
    await Promise.all([...byAddress.values()].filter((n) => n.state === 'unknown').map(probe));
  }

  function refresh(force: boolean): Promise<void> {
    if (!force && Date.now() - readAt < refreshMs) return Promise.resolve();
    reading ??= read().finally(() => {
      reading = undefined;
    });
    return reading;
  }

  function tick(): void {
    void refresh(false).catch(() => undefined);
    const now = Date.now();
    for (const node of byAddress.values()) if (now >= node.retryAt) void probe(node);
  }

  function start(): void {
    if (timer !== undefined) return;
    timer = setInterval(tick, Math.max(250, Math.min(probeIntervalMs, refreshMs) / 2));
    // Probes never keep a process alive on their own.
    (timer as { unref?: () => void }).unref?.();
  }

  const score = options.score ?? ((n: NetworkNode) => n.latencyMs ?? Number.MAX_SAFE_INTEGER / 2);
  // Price counts only under the default score (a score of one's own weighs it as it likes).
  const tolerance = options.score === undefined ? (options.priceTolerance ?? PRICE_TOLERANCE) : false;

  return {
    timeoutMs,
    async candidates(model) {
      start();
      if (byAddress.size === 0) await refresh(true);
      else void refresh(false).catch(() => undefined);
      const now = Date.now();
      const all = [...byAddress.values()];
      const rank = (n: NetworkNode) => {
        // 0: healthy (or not yet known) and holding the model; 1: healthy; 2: failing, backoff over; 3: failing.
        const healthy = n.state === 'up' || n.state === 'unknown';
        const tier = healthy ? (model !== undefined && hosts(n, model) ? 0 : 1) : now >= n.retryAt ? 2 : 3;
        return tier;
      };
      const sorted = all.sort((a, b) => rank(a) - rank(b) || score(a, model) - score(b, model));
      if (tolerance === false || model === undefined) return sorted;
      const holders = sorted.filter((n) => rank(n) === 0);
      return [...byPriceWithinLatency(holders, model, tolerance), ...sorted.slice(holders.length)];
    },
    report(node, outcome) {
      if (outcome.ok) {
        observe(node, outcome.latencyMs);
        node.counts.served += 1;
        node.state = 'up';
        node.failures = 0;
        node.lastError = undefined;
        return;
      }
      if (outcome.refused) node.counts.verificationFailures += 1;
      else node.counts.failovers += 1;
      fail(node, outcome.error, outcome.refused === true);
    },
    nodes() {
      return [...byAddress.values()].map((n) => ({
        address: n.address,
        url: n.url,
        state: n.state,
        latencyMs: n.latencyMs === undefined ? null : Math.round(n.latencyMs * 10) / 10,
        models: [...n.models].sort(),
        prices: Object.fromEntries(n.prices),
        failures: n.failures,
        lastError: n.lastError ?? null,
        served: n.counts.served,
        failovers: n.counts.failovers,
        verificationFailures: n.counts.verificationFailures,
      }));
    },
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
