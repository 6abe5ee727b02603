/**
 * The auditor (docs/protocol.md §15.8): checks a sample of every registered node's `audited`
 * records that are still within the challenge window, and challenges the ones that lie (the
 * audit flow: docs/architecture.md §6).
 *
 * For each node it reads the `Anchored` events, the records its log holds up to its latest anchor
 * (tlog-tiles entry bundles), and keeps the audited ones whose window is open. A record is sampled
 * when `SHA-256("verity/audit/v1" ‖ blockhash(B + 1) ‖ node ‖ uint64 leafIndex)`, read as a
 * fraction of 2^64 from its first 8 bytes, is below the rate, B being the block of the node's first
 * anchor that covers the record: a hash the node cannot know when it logs (nor when it anchors),
 * so it cannot guess which of its records will be checked. A sampled record's payload is fetched
 * (`GET /v1/payloads/:requestId`) and checked against the record's digests, its input re-executed
 * locally, and a different output challenged (`challengeRecord`, with the inclusion proof at the
 * latest anchored size) from the auditor's account. A payload the node does not serve within the
 * window is reported (a challenge needs the input bytes, so nothing more can be done on chain).
 */
import {
  type ChainClients,
  challengeRecord,
  type Deployment,
  getAnchorHistory,
  getDisputeRules,
  listNodes,
} from '@verity/contracts';
import {
  createMemoryTree,
  decodeRecord,
  decodeTensors,
  encodeTensors,
  fromBase64,
  fromHex,
  hashLeaf,
  type InferenceRecord,
  isVerityError,
  sha256,
  toHex,
} from '@verity/protocol';
import type { Address, Hex, PublicClient } from 'viem';
import { entriesPath, TILE_WIDTH } from '../log/tile-path.js';
import { fetchModel } from '../peers/fetch-model.js';
import { peerFetch, type UrlPolicy } from '../peers/url-policy.js';
import type { Runtime } from '../runtimes/runtime.js';
import type { ModelStore } from '../store/index.js';

/** Default sampling rate of `verity audit`, parts per million: 1 % of audited records. */
export const DEFAULT_AUDIT_RATE_PPM = 10_000;
/** Domain of the audit sample (docs/protocol.md §15.8). */
export const AUDIT_SAMPLE_DOMAIN = 'verity/audit/v1';

/**
 * Whether the record at `leafIndex` of `node`'s log is sampled at `ratePpm` (parts per million),
 * given the hash of the block after the node's first anchor covering it.
 */
export function auditSampled(blockHash: Hex, node: Address, leafIndex: number, ratePpm: number): boolean {
  const index = new Uint8Array(8);
  new DataView(index.buffer).setBigUint64(0, BigInt(leafIndex));
  const domain = new TextEncoder().encode(AUDIT_SAMPLE_DOMAIN);
  const h = sha256(
    new Uint8Array([...domain, ...fromHex(blockHash.slice(2)), ...fromHex(node.slice(2).toLowerCase()), ...index]),
  );
  const x = new DataView(h.buffer, h.byteOffset, 8).getBigUint64(0);
  return x * 1_000_000n < BigInt(ratePpm) << 64n;
}

/** What the auditor found about one sampled record (or about a node). */
export interface AuditFinding {
  readonly node: Address;
  readonly leafIndex?: number;
  readonly requestId?: string;
  /**
   * `ok`: re-executed, same output. `challenged`: another output, challenged (`disputeId`).
   * `lied`: another output, not challenged (no account, or `error` says why). `payload-missing`:
   * the node does not serve the payload of an audited record within its window.
   * `payload-mismatch`: the payload does not hash to the record's digests. `not-reexecuted`:
   * not an ONNX record, or re-execution failed (`error`). `unreachable`: the node's log could not
   * be read. `log-mismatch`: the entries the node serves are not the tree it anchored (records hidden).
   */
  readonly kind:
    | 'ok'
    | 'challenged'
    | 'lied'
    | 'payload-missing'
    | 'payload-mismatch'
    | 'not-reexecuted'
    | 'unreachable'
    | 'log-mismatch';
  readonly disputeId?: bigint;
  readonly recordOutput?: string;
  readonly computedOutput?: string;
  readonly error?: string;
}

export interface AuditReport {
  /** Audited records in their window, per node, and how many of them were sampled. */
  readonly nodes: readonly {
    readonly node: Address;
    readonly audited: number;
    readonly sampled: number;
    readonly pending: number;
  }[];
  readonly findings: readonly AuditFinding[];
}

/** Re-executes `record` on `input`: the output digest (hex, `0x`), or `undefined` if it cannot. */
export type Reexecute = (record: InferenceRecord, input: Uint8Array, endpoint: string) => Promise<Hex | undefined>;

export interface AuditOptions {
  readonly publicClient: PublicClient;
  readonly deployment: Deployment;
  /** The auditor's account, to challenge; without it lies are only reported. */
  readonly clients?: ChainClients;
  /** Sampling rate, parts per million (default {@link DEFAULT_AUDIT_RATE_PPM}). */
  readonly ratePpm?: number;
  readonly reexecute: Reexecute;
  /** Outbound URL policy for the nodes' endpoints. */
  readonly policy: UrlPolicy;
  /** Skip these nodes (e.g. the auditor's own). */
  readonly exclude?: readonly Address[];
}

/** Entries of the log at `endpoint` from 0 to `size` (exclusive), as raw record bytes. */
async function readEntries(endpoint: string, size: number, policy: UrlPolicy): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let tile = 0; tile * TILE_WIDTH < size; tile++) {
    const width = Math.min(TILE_WIDTH, size - tile * TILE_WIDTH);
    const url = `${endpoint}/${entriesPath(tile, width === TILE_WIDTH ? undefined : width)}`;
    const res = await peerFetch(url, {}, policy);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    let p = 0;
    for (let i = 0; i < width; i++) {
      if (p + 2 > bytes.length) throw new Error(`${url}: truncated entry bundle`);
      const n = (bytes[p] as number) * 256 + (bytes[p + 1] as number);
      out.push(bytes.subarray(p + 2, p + 2 + n));
      p += 2 + n;
    }
  }
  return out;
}

const hex0x = (s: string): Hex => (s.startsWith('0x') ? (s as Hex) : `0x${s}`);
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Audits every registered node once (docs/protocol.md §15.8).
 *
 * @example
 * ```ts
 * const report = await auditNodes({ publicClient, deployment, clients, reexecute, policy: { localNetwork: false } });
 * ```
 */
export async function auditNodes(options: AuditOptions): Promise<AuditReport> {
  const { publicClient, deployment } = options;
  const disputes = deployment.contracts.disputes;
  if (disputes === undefined) throw new Error('the deployment has no Disputes contract');
  const ratePpm = options.ratePpm ?? DEFAULT_AUDIT_RATE_PPM;
  const { challengeWindow, challengeBond } = await getDisputeRules(publicClient, { disputes });
  const head = await publicClient.getBlock({ blockTag: 'latest' });
  const exclude = new Set((options.exclude ?? []).map((a) => a.toLowerCase()));
  const nodes = (await listNodes(publicClient, { nodeRegistry: deployment.contracts.nodeRegistry })).filter(
    (n) => !exclude.has(n.account.toLowerCase()) && n.endpoint !== '',
  );
  const findings: AuditFinding[] = [];
  const summary: { node: Address; audited: number; sampled: number; pending: number }[] = [];
  for (const entry of nodes) {
    const node = entry.account;
    const endpoint = entry.endpoint.replace(/\/+$/, '');
    const anchors = await getAnchorHistory(publicClient, {
      logAnchor: deployment.contracts.logAnchor,
      node,
      fromBlock: deployment.block,
    });
    const stat = { node, audited: 0, sampled: 0, pending: 0 };
    summary.push(stat);
    const latest = anchors.at(-1);
    if (latest === undefined) continue;
    let entries: Uint8Array[];
    try {
      entries = await readEntries(endpoint, Number(latest.treeSize), options.policy);
    } catch (e) {
      findings.push({ node, kind: 'unreachable', error: message(e) });
      continue;
    }
    // The entries must be the anchored tree's: a node must not hide audited records from auditors.
    const tree = createMemoryTree(entries.map((e) => hashLeaf(e)));
    if (`0x${toHex(tree.root())}` !== latest.rootHash.toLowerCase()) {
      findings.push({ node, kind: 'log-mismatch', error: `entries 0..${latest.treeSize} are not the anchored tree` });
      continue;
    }
    for (const [leafIndex, bytes] of entries.entries()) {
      let record: InferenceRecord;
      try {
        record = decodeRecord(bytes);
      } catch {
        continue; // not a record: nothing a challenge could take
      }
      if (record.mode !== 'audited' || record.node.toLowerCase() !== node.toLowerCase()) continue;
      if (BigInt(Math.floor(record.timestamp / 1000) + challengeWindow) < head.timestamp) continue;
      stat.audited++;
      const first = anchors.find((a) => a.treeSize > BigInt(leafIndex));
      if (first === undefined || first.blockNumber + 1n > head.number) {
        stat.pending++; // its seed block is not mined yet: sampled on a later run
        continue;
      }
      const seed = await publicClient.getBlock({ blockNumber: first.blockNumber + 1n });
      if (seed.hash === null || !auditSampled(seed.hash, node, leafIndex, ratePpm)) continue;
      stat.sampled++;
      findings.push(
        await auditRecord(options, {
          node,
          endpoint,
          leafIndex,
          record,
          bytes,
          treeSize: latest.treeSize,
          disputes,
          challengeBond,
        }),
      );
    }
  }
  return { nodes: summary, findings };
}

async function auditRecord(
  options: AuditOptions,
  a: {
    node: Address;
    endpoint: string;
    leafIndex: number;
    record: InferenceRecord;
    /** The record's bytes as the log holds them (what the challenge proves included). */
    bytes: Uint8Array;
    treeSize: bigint;
    disputes: Address;
    challengeBond: bigint;
  },
): Promise<AuditFinding> {
  const { node, endpoint, leafIndex, record } = a;
  const base = { node, leafIndex, requestId: record.requestId, recordOutput: record.outputDigest } as const;
  let input: Uint8Array;
  try {
    const res = await peerFetch(`${endpoint}/v1/payloads/${record.requestId}`, {}, options.policy);
    if (res.status === 404) return { ...base, kind: 'payload-missing' };
    if (!res.ok) return { ...base, kind: 'payload-missing', error: `HTTP ${res.status}` };
    const payload = (await res.json()) as { input?: unknown; output?: unknown };
    if (typeof payload.input !== 'string' || typeof payload.output !== 'string') {
      return { ...base, kind: 'payload-mismatch', error: 'no input or output bytes' };
    }
    input = fromBase64(payload.input);
    if (toHex(sha256(input)) !== record.inputDigest.replace(/^0x/, '')) {
      return { ...base, kind: 'payload-mismatch', error: 'input does not hash to the record inputDigest' };
    }
    if (toHex(sha256(fromBase64(payload.output))) !== record.outputDigest.replace(/^0x/, '')) {
      return { ...base, kind: 'payload-mismatch', error: 'output does not hash to the record outputDigest' };
    }
  } catch (e) {
    return { ...base, kind: 'payload-missing', error: message(e) };
  }
  let computed: Hex | undefined;
  try {
    computed = await options.reexecute(record, input, endpoint);
  } catch (e) {
    return { ...base, kind: 'not-reexecuted', error: message(e) };
  }
  if (computed === undefined) return { ...base, kind: 'not-reexecuted', error: `kind ${record.kind}` };
  if (computed.toLowerCase() === hex0x(record.outputDigest).toLowerCase()) {
    return { ...base, kind: 'ok', computedOutput: computed };
  }
  if (options.clients === undefined) return { ...base, kind: 'lied', computedOutput: computed };
  try {
    const res = await peerFetch(`${endpoint}/v1/log/proof?index=${leafIndex}&size=${a.treeSize}`, {}, options.policy);
    const { proof } = (await res.json()) as { proof: string[] };
    const { id } = await challengeRecord(options.clients, {
      disputes: a.disputes,
      record: a.bytes,
      leafIndex,
      treeSize: a.treeSize,
      proof: proof.map(hex0x),
      input,
      claimedOutput: computed,
      bond: a.challengeBond,
    });
    return { ...base, kind: 'challenged', computedOutput: computed, disputeId: id };
  } catch (e) {
    return {
      ...base,
      kind: 'lied',
      computedOutput: computed,
      error: isVerityError(e) ? `${e.code}: ${e.message}` : message(e),
    };
  }
}

/**
 * A {@link Reexecute} on a local ONNX runtime: the record's model is fetched by manifest CID from
 * the audited node (the CID and the publisher's signature are checked, so a node cannot hand over
 * another model) into `store`, loaded once, and run.
 */
export function localReexecutor(
  runtime: Runtime,
  store: ModelStore,
  policy: UrlPolicy,
  maxModelBytes = 1 << 30,
): Reexecute {
  const loaded = new Map<string, ReturnType<Runtime['load']>>();
  return async (record, input, endpoint) => {
    if (record.kind !== 'onnx') return undefined;
    const stored = await fetchModel(endpoint, record.model, store, { maxSize: maxModelBytes, policy });
    let model = loaded.get(stored.manifestCid);
    if (model === undefined) {
      model = runtime.load(stored.artifactPath);
      loaded.set(stored.manifestCid, model);
    }
    const output = await (await model).run(decodeTensors(input));
    return `0x${toHex(sha256(encodeTensors(output)))}`;
  };
}
