/**
 * The node as a log asking witnesses (C2SP tlog-witness, client side): every `intervalMs`, when
 * its log grew, it submits its latest checkpoint to each configured witness with a consistency
 * proof from the size that witness last cosigned, and keeps the cosignatures returned, verified
 * under the witness's configured key, on its latest checkpoint (`witnessed()`, served at
 * `GET /v1/log/witnessed`). Off the request path: a timer, one round at a time, each call
 * bounded by a timeout; a witness that fails is asked again next round (docs/architecture.md §5).
 */
import {
  addCosignatures,
  formatAddCheckpoint,
  fromHex,
  isVerityError,
  parseWitnessKey,
  peekCheckpoint,
  TLOG_SIZE_CONTENT_TYPE,
  VerityError,
  verifyWitnessPolicy,
} from '@verity/protocol';
import type { NodeContext } from '../context.js';
import type { NodeLog } from '../log/index.js';
import { peerFetch } from '../peers/url-policy.js';

/** A witness to ask: base URL and its verifier key (type 0x04). */
export interface WitnessTarget {
  readonly url: string;
  readonly key: string;
}

export interface WitnessClientOptions {
  readonly log: NodeLog;
  /** The witnesses to ask, read again every round (the registry's may change). */
  readonly witnesses: () => Promise<readonly WitnessTarget[]>;
  /** How to call a witness (the node passes its URL policy's fetch). */
  readonly fetch: (
    url: string,
    init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal },
  ) => Promise<Response>;
  readonly intervalMs: number;
  /** Per-call timeout (default 10 s). */
  readonly timeoutMs?: number;
  readonly onError?: (e: VerityError, witness: string) => void;
}

export interface WitnessClient {
  /** The latest checkpoint with the cosignatures gathered for it, or `undefined` before any. */
  witnessed(): string | undefined;
  /** Runs one round now (waits for one in progress first). */
  submitNow(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts submitting checkpoints to witnesses.
 *
 * @example
 * ```ts
 * const client = startWitnessClient({ log, witnesses: [{ url, key }], intervalMs: 5000 });
 * ```
 */
export function startWitnessClient(options: WitnessClientOptions): WitnessClient {
  const { log } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  /** The size each witness last cosigned, as far as this node knows (0 until told). */
  const known = new Map<string, number>();
  let witnessed: string | undefined;
  let round: Promise<void> = Promise.resolve();

  async function post(url: string, body: string): Promise<{ status: number; text: string; type: string }> {
    const r = await options.fetch(`${url.replace(/\/$/, '')}/add-checkpoint`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: r.status, text: await r.text(), type: r.headers.get('content-type') ?? '' };
  }

  async function ask(note: string, size: number, w: WitnessTarget): Promise<string> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const old = known.get(w.url) ?? 0;
      if (old > size) fail(w.url, `the witness has cosigned size ${old}, above this log's ${size}`);
      const proof = old === 0 || old === size ? [] : log.consistencyProof(old, size).map(fromHex);
      const r = await post(w.url, formatAddCheckpoint({ oldSize: old, proof, checkpoint: note }));
      if (r.status === 409 && r.type.startsWith(TLOG_SIZE_CONTENT_TYPE) && /^(0|[1-9][0-9]*)\n$/.test(r.text)) {
        known.set(w.url, Number(r.text.trim()));
        continue;
      }
      if (r.status !== 200) fail(w.url, `the witness answered ${r.status}`, r.text.slice(0, 200));
      // Keep only lines that verify under the witness key this node was configured with.
      const cosigned = addCosignatures(note, r.text);
      verifyWitnessPolicy(cosigned, { keys: [w.key], threshold: 1 });
      known.set(w.url, size);
      return r.text;
    }
    return fail(w.url, 'the witness keeps changing its latest size');
  }

  function fail(url: string, message: string, body?: string): never {
    throw new VerityError('ENDPOINT_REFUSED', message, { details: { witness: url, ...(body ? { body } : {}) } });
  }

  async function submit(): Promise<void> {
    const note = log.checkpoint();
    const { size } = peekCheckpoint(note);
    if (witnessed !== undefined && peekCheckpoint(witnessed).size === size) return;
    let witnesses: readonly WitnessTarget[];
    try {
      witnesses = await options.witnesses();
    } catch (e) {
      const error = isVerityError(e) ? e : new VerityError('INTERNAL', 'cannot list the witnesses', { cause: e });
      options.onError?.(error, 'registry');
      return;
    }
    const results = await Promise.allSettled(witnesses.map((w) => ask(note, size, w)));
    let out = note;
    results.forEach((r, i) => {
      const url = (witnesses[i] as WitnessTarget).url;
      if (r.status === 'fulfilled') out = addCosignatures(out, r.value);
      else {
        const e = isVerityError(r.reason)
          ? r.reason
          : new VerityError('ENDPOINT_REFUSED', 'the witness could not be reached', { cause: r.reason });
        options.onError?.(e, url);
      }
    });
    if (out !== note) witnessed = out;
  }

  const submitNow = () => {
    round = round.then(submit, submit).catch(() => {});
    return round;
  };
  const timer = setInterval(() => void submitNow(), options.intervalMs);
  timer.unref();
  return {
    witnessed: () => witnessed,
    submitNow,
    async stop() {
      clearInterval(timer);
      await round;
    },
  };
}

/**
 * The other registered nodes as witnesses (`witness.peers`): each at its registered endpoint, with
 * the witness key it reports at `GET /v1/witness` (asked once per endpoint, under the URL
 * policy). The key is not vouched for by the chain: it only decides which lines this node keeps;
 * a verifier's witness policy names the keys it trusts.
 *
 * @example
 * ```ts
 * const list = createRegisteredWitnesses(context);
 * const witnesses = await list();
 * ```
 */
export function createRegisteredWitnesses(ctx: NodeContext): () => Promise<WitnessTarget[]> {
  const keys = new Map<string, string>();
  return async () => {
    if (ctx.chain === undefined) return [];
    const { nodes } = await ctx.chain.peers();
    const self = ctx.keys.address.toLowerCase();
    const out: WitnessTarget[] = [];
    for (const n of nodes) {
      if (n.account.toLowerCase() === self) continue;
      const url = n.endpoint.replace(/\/+$/, '');
      let key = keys.get(url);
      if (key === undefined) {
        try {
          const r = await peerFetch(`${url}/v1/witness`, { signal: AbortSignal.timeout(5_000) }, ctx.config.peers);
          const reported = ((await r.json()) as { verifierKey?: unknown }).verifierKey;
          key = parseWitnessKey(String(reported)).verifierKey;
        } catch {
          continue; // not reachable or no witness yet: asked again next round
        }
        if (keys.size >= 256) keys.clear();
        keys.set(url, key);
      }
      out.push({ url, key });
    }
    return out;
  };
}
