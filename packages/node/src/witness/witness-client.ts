/**
 * The node as a log asking witnesses (C2SP tlog-witness, client side): every `intervalMs`, when
 * its log grew, it submits its latest checkpoint to each configured witness with a consistency
 * proof from the size that witness last cosigned, and keeps the cosignatures returned, verified
 * under the witness's configured key, on its latest checkpoint (`witnessed()`, served at
 * `GET /v1/log/witnessed`). Off the request path: a timer, one round at a time, each call
 * bounded by a timeout; a witness that fails is asked again next round.
 */
import {
  addCosignatures,
  formatAddCheckpoint,
  fromHex,
  isVerityError,
  peekCheckpoint,
  TLOG_SIZE_CONTENT_TYPE,
  VerityError,
  verifyWitnessPolicy,
} from '@verity/protocol';
import type { NodeLog } from '../log/index.js';

export interface WitnessClientOptions {
  readonly log: NodeLog;
  readonly witnesses: readonly { readonly url: string; readonly key: string }[];
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
    const r = await fetch(`${url.replace(/\/$/, '')}/add-checkpoint`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: r.status, text: await r.text(), type: r.headers.get('content-type') ?? '' };
  }

  async function ask(note: string, size: number, w: { url: string; key: string }): Promise<string> {
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
    const results = await Promise.allSettled(options.witnesses.map((w) => ask(note, size, w)));
    let out = note;
    results.forEach((r, i) => {
      const url = (options.witnesses[i] as { url: string }).url;
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
