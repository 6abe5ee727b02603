/**
 * Monitoring for split views (docs/protocol.md "Witnesses"): for every node in `NodeRegistry`,
 * gather the tree heads it shows (its own `GET /checkpoint`), the heads witnesses cosigned for it
 * (`GET <witness>/<sha256(origin)>/checkpoint`, C2SP tlog-witness: the witnesses named and every
 * other registered node, each a witness of the registered logs) and its latest anchor in
 * `LogAnchor`; verify each signed head under the node's registered log key; and compare every new
 * head with the heads seen before ({@link compareHeads}): one size with two roots, or a
 * consistency proof (asked of the node) that fails, is a split view, reported with both heads as
 * evidence. `verity monitor` runs {@link monitorRound} in a loop.
 */
import { getLatestAnchor } from '@verity/contracts';
import {
  compareHeads,
  fail,
  fromBase64,
  fromHex,
  isVerityError,
  type ObservedHead,
  openCheckpoint,
  parseVerifierKey,
  type SplitViewEvidence,
  sha256,
  toBase64,
  toHex,
  utf8,
  VerityError,
} from '@verity/protocol';
import { type ChainOptions, chainOf } from '../client.js';
import { chainRegistrySnapshot } from './registry.js';

/** What to monitor: the chain (registry and anchors) and the witnesses to ask. */
export interface MonitorOptions {
  readonly chain: ChainOptions;
  /** Witness base URLs (monitoring prefixes), asked for every node's log. */
  readonly witnesses?: readonly string[];
  /**
   * Also ask every other registered node, as a witness, for each node's log (every Verity node
   * witnesses the registered logs; default true).
   */
  readonly registeredWitnesses?: boolean;
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
}

/** What a monitor remembers between rounds: per origin, the distinct heads it verified. */
export interface MonitorState {
  readonly heads: Map<string, ObservedHead[]>;
  /** Evidence already reported (so a split view is reported once). */
  readonly reported: Set<string>;
}

/** One line of monitor output. */
export type MonitorEvent =
  | {
      readonly event: 'head';
      readonly node: string;
      readonly origin: string;
      readonly size: number;
      readonly rootHash: string;
      readonly source: string;
    }
  | { readonly event: 'split-view'; readonly node: string; readonly evidence: SplitViewEvidence }
  | {
      readonly event: 'error';
      readonly node?: string;
      readonly source: string;
      readonly code: string;
      readonly message: string;
    };

/** Heads kept per origin (the largest ones). */
const KEEP = 32;

/**
 * A fresh monitor state.
 *
 * @example
 * ```ts
 * const state = createMonitorState();
 * for (;;) for (const e of await monitorRound(options, state)) console.log(JSON.stringify(e));
 * ```
 */
export function createMonitorState(): MonitorState {
  return { heads: new Map(), reported: new Set() };
}

/** The JSON form of a {@link MonitorState} (for `verity monitor --state FILE`). */
export interface MonitorStateJson {
  readonly heads: Record<
    string,
    readonly { readonly size: number; readonly rootHash: string; readonly note: string; readonly source: string }[]
  >;
  readonly reported: readonly string[];
}

/**
 * A monitor state as JSON: the heads it verified (root hashes base64) and the evidence it reported.
 *
 * @example
 * ```ts
 * await writeFile(file, JSON.stringify(monitorStateToJson(state)));
 * ```
 */
export function monitorStateToJson(state: MonitorState): MonitorStateJson {
  const heads: Record<string, MonitorStateJson['heads'][string]> = {};
  for (const [origin, list] of state.heads) {
    heads[origin] = list.map((h) => ({
      size: h.checkpoint.size,
      rootHash: toBase64(h.checkpoint.rootHash),
      note: h.note,
      source: h.source,
    }));
  }
  return { heads, reported: [...state.reported] };
}

/**
 * A monitor state from its JSON form (as {@link monitorStateToJson} wrote it). Throws
 * `INVALID_ARGUMENT` for anything else.
 *
 * @example
 * ```ts
 * const state = monitorStateFromJson(JSON.parse(await readFile(file, 'utf8')));
 * ```
 */
export function monitorStateFromJson(json: unknown): MonitorState {
  const bad = (): never => fail('INVALID_ARGUMENT', 'not a monitor state file');
  if (typeof json !== 'object' || json === null) bad();
  const { heads, reported } = json as { heads?: unknown; reported?: unknown };
  if (typeof heads !== 'object' || heads === null || !Array.isArray(reported)) bad();
  const state = createMonitorState();
  for (const r of reported as unknown[]) if (typeof r === 'string') state.reported.add(r);
  for (const [origin, list] of Object.entries(heads as Record<string, unknown>)) {
    if (!Array.isArray(list)) bad();
    state.heads.set(
      origin,
      (list as { size?: unknown; rootHash?: unknown; note?: unknown; source?: unknown }[]).map((h) => {
        if (!Number.isSafeInteger(h.size) || typeof h.rootHash !== 'string' || typeof h.note !== 'string') bad();
        return {
          checkpoint: { origin, size: h.size as number, rootHash: fromBase64(h.rootHash as string), extensions: [] },
          note: h.note as string,
          source: String(h.source),
        };
      }),
    );
  }
  return state;
}

async function getText(url: string, timeoutMs: number): Promise<string | undefined> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (r.status === 404) return undefined;
  if (!r.ok) throw new VerityError('ENDPOINT_REFUSED', `${url} answered ${r.status}`);
  return r.text();
}

const same = (a: ObservedHead, b: ObservedHead) =>
  a.checkpoint.size === b.checkpoint.size && toBase64(a.checkpoint.rootHash) === toBase64(b.checkpoint.rootHash);

/**
 * One monitoring round over every registered node; returns the events (new heads, split views,
 * sources that failed).
 *
 * @example
 * ```ts
 * const events = await monitorRound({ chain: { rpcUrl, deployment }, witnesses: [w] }, state);
 * if (events.some((e) => e.event === 'split-view')) process.exitCode = 1;
 * ```
 */
export async function monitorRound(options: MonitorOptions, state: MonitorState): Promise<MonitorEvent[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const chain = chainOf(options.chain);
  const snapshot = await chainRegistrySnapshot(options.chain);
  const events: MonitorEvent[] = [];
  for (const n of snapshot.nodes) {
    let origin: string;
    let verifier: ReturnType<typeof parseVerifierKey>;
    try {
      verifier = parseVerifierKey(n.logKey);
      origin = verifier.name;
    } catch (e) {
      events.push({
        event: 'error',
        node: n.address,
        source: 'registry',
        code: codeOf(e),
        message: 'unusable log key',
      });
      continue;
    }
    const base = n.endpoint.replace(/\/+$/, '');
    const found: ObservedHead[] = [];
    const signed = async (source: string, url: string) => {
      try {
        const note = await getText(url, timeoutMs);
        if (note === undefined) return;
        const { checkpoint } = openCheckpoint(note, [verifier], origin);
        found.push({ checkpoint, note, source });
      } catch (e) {
        events.push({ event: 'error', node: n.address, source, code: codeOf(e), message: messageOf(e) });
      }
    };
    await signed(`node ${base}`, `${base}/checkpoint`);
    const hash = toHex(sha256(utf8(origin)));
    const registered =
      options.registeredWitnesses === false
        ? []
        : snapshot.nodes.filter((o) => o.address !== n.address).map((o) => o.endpoint);
    const witnesses = [...new Set([...(options.witnesses ?? []), ...registered].map((w) => w.replace(/\/+$/, '')))];
    for (const w of witnesses) await signed(`witness ${w}`, `${w}/${hash}/checkpoint`);
    try {
      const a = await getLatestAnchor(chain.publicClient, {
        logAnchor: chain.deployment.contracts.logAnchor,
        node: n.address as `0x${string}`,
      });
      if (a !== undefined) {
        const source = `anchor ${chain.deployment.contracts.logAnchor}`;
        found.push({
          checkpoint: { origin, size: Number(a.treeSize), rootHash: fromHex(a.rootHash.slice(2)), extensions: [] },
          note: `LogAnchor ${chain.deployment.contracts.logAnchor} latestAnchor(${n.address}) = (${a.treeSize}, ${a.rootHash}) at block ${a.blockNumber}`,
          source,
        });
      }
    } catch (e) {
      events.push({ event: 'error', node: n.address, source: 'anchor', code: codeOf(e), message: messageOf(e) });
    }
    const known = state.heads.get(origin) ?? [];
    for (const head of found) {
      if (known.some((k) => same(k, head))) continue;
      for (const other of known) {
        let proof: Uint8Array[] = [];
        if (other.checkpoint.size !== head.checkpoint.size) {
          // The log's own proof between the two sizes; a node that cannot give one is not proven to lie.
          const [from, to] = [other.checkpoint.size, head.checkpoint.size].sort((x, y) => x - y) as [number, number];
          if (from === 0) continue;
          try {
            const text = await getText(`${base}/v1/log/proof?from=${from}&to=${to}`, timeoutMs);
            proof = ((JSON.parse(text ?? '{}') as { proof?: string[] }).proof ?? []).map(fromHex);
          } catch (e) {
            events.push({
              event: 'error',
              node: n.address,
              source: `node ${base}`,
              code: codeOf(e),
              message: messageOf(e),
            });
            continue;
          }
        }
        const evidence = compareHeads(other, head, proof);
        if (evidence === undefined) continue;
        const id = `${origin}\n${evidence.first.rootHash}\n${evidence.second.rootHash}`;
        if (state.reported.has(id)) continue;
        state.reported.add(id);
        events.push({ event: 'split-view', node: n.address, evidence });
      }
      known.push(head);
      events.push({
        event: 'head',
        node: n.address,
        origin,
        size: head.checkpoint.size,
        rootHash: toBase64(head.checkpoint.rootHash),
        source: head.source,
      });
    }
    known.sort((x, y) => y.checkpoint.size - x.checkpoint.size);
    state.heads.set(origin, known.slice(0, KEEP));
  }
  return events;
}

function codeOf(e: unknown): string {
  return isVerityError(e) ? e.code : 'ENDPOINT_REFUSED';
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
