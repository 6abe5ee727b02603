/**
 * The auditor (docs/protocol.md §15.8): checks a sample of every registered node's `audited`
 * records that are still within the challenge window, and challenges the ones that lie (the
 * audit flow: docs/architecture.md §6).
 *
 * For each node it reads the `Anchored` events, the records its log holds up to its latest anchor
 * (tlog-tiles entry bundles), and keeps the audited ones whose window is open (it runs from the
 * chain's time of the first anchor that covers the record). A record is sampled when
 * `auditSampled` (`@verity/protocol`) says so at the rate `Disputes` fixes (`auditRatePpm`), from
 * the hash of the block after that first anchor: a hash the node cannot know when it logs (nor
 * when it anchors), so it cannot guess which of its records will be checked. A sampled record's
 * payload is fetched (`GET /v1/payloads/:requestId`) and checked against the record's digests,
 * its input re-executed locally, and a different output challenged (`challengeRecord`, with the
 * inclusion proof at that first anchor's size) from the auditor's account. A payload the node
 * does not serve within the window is reported (a challenge needs the input bytes, so nothing
 * more can be done on chain).
 */
import {
  type AnchoredTree,
  type ChainClients,
  challengeRecord,
  type Deployment,
  getAnchoredTree,
  getAnchorHistory,
  getDisputeRules,
  listNodes,
} from '@verity/contracts';
import {
  auditSampled,
  createMemoryTree,
  decodeRecord,
  fail,
  fromBase64,
  hashLeaf,
  type InferenceRecord,
  isVerityError,
  sha256,
  toHex,
} from '@verity/protocol';
import type { Address, Hex, PublicClient } from 'viem';
import { DEFAULT_CONFIG } from '../config.js';
import { entriesPath, TILE_WIDTH } from '../log/tile-path.js';
import { fetchModel } from '../peers/fetch-model.js';
import { peerFetch, type UrlPolicy } from '../peers/url-policy.js';
import type { LlmRuntime, LoadedLlm } from '../runtimes/llm.js';
import type { LoadedModel, Runtime } from '../runtimes/runtime.js';
import type { ModelStore } from '../store/index.js';
import { type Reexecution, reexecuteLlm, reexecuteOnnx } from './reexecute.js';

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
  /** The rate the sample was drawn at (parts per million), and the one `Disputes` fixes. */
  readonly ratePpm: number;
  readonly chainRatePpm: number;
  /** Audited records in their window, per node, and how many of them were sampled. */
  readonly nodes: readonly {
    readonly node: Address;
    readonly audited: number;
    readonly sampled: number;
    readonly pending: number;
  }[];
  readonly findings: readonly AuditFinding[];
}

/**
 * Re-executes `record` on `input` (the model fetched from the node at `endpoint`): the output
 * digest, or why there is none (`reexecute.ts`).
 */
export type Reexecute = (record: InferenceRecord, input: Uint8Array, endpoint: string) => Promise<Reexecution>;

export interface AuditOptions {
  readonly publicClient: PublicClient;
  readonly deployment: Deployment;
  /** The auditor's account, to challenge; without it lies are only reported. */
  readonly clients?: ChainClients;
  /**
   * Sampling rate, parts per million: by default the rate `Disputes` fixes (`auditRatePpm`); a
   * higher one checks more (its sample contains the chain's), a lower one is refused
   * (`INVALID_ARGUMENT`): the chain's rate is what clients count on.
   */
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
  const { challengeWindow, challengeBond, auditRatePpm } = await getDisputeRules(publicClient, { disputes });
  const ratePpm = options.ratePpm ?? auditRatePpm;
  if (!Number.isSafeInteger(ratePpm) || ratePpm < auditRatePpm || ratePpm > 1_000_000) {
    fail('INVALID_ARGUMENT', `the audit rate is ${auditRatePpm} to 1000000 ppm: Disputes fixes ${auditRatePpm}`, {
      ratePpm,
      chainRatePpm: auditRatePpm,
    });
  }
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
    // The anchored trees, each read once: the first covering a record starts its window.
    const trees = new Map<bigint, Promise<AnchoredTree | undefined>>();
    const tree = (treeSize: bigint) => {
      let t = trees.get(treeSize);
      if (t === undefined) {
        t = getAnchoredTree(publicClient, { logAnchor: deployment.contracts.logAnchor, node, treeSize });
        trees.set(treeSize, t);
      }
      return t;
    };
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
    const served = createMemoryTree(entries.map((e) => hashLeaf(e)));
    if (`0x${toHex(served.root())}` !== latest.rootHash.toLowerCase()) {
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
      // The first anchor covering the record exists: the latest covers every entry read.
      const first = await tree((anchors.find((a) => a.treeSize > BigInt(leafIndex)) ?? latest).treeSize);
      if (first === undefined) continue;
      // Its window runs from the chain's time of that anchor (the record's timestamp is the node's word).
      if (first.timestamp + BigInt(challengeWindow) < head.timestamp) continue;
      stat.audited++;
      if (first.blockNumber + 1n > head.number) {
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
          treeSize: first.treeSize,
          disputes,
          challengeBond,
        }),
      );
    }
  }
  return { ratePpm, chainRatePpm: auditRatePpm, nodes: summary, findings };
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
  let computed: Hex;
  try {
    const verdict = await options.reexecute(record, input, endpoint);
    if ('abstain' in verdict) return { ...base, kind: 'not-reexecuted', error: verdict.abstain };
    computed = verdict.outputDigest;
  } catch (e) {
    return { ...base, kind: 'not-reexecuted', error: message(e) };
  }
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

/** Options of {@link localReexecutor}. */
export interface LocalReexecutorOptions {
  /** The largest model fetched, bytes (default 1 GiB). */
  readonly maxModelBytes?: number;
  /** A local LLM runtime for `llm` records (without it they are `not-reexecuted`). */
  readonly llm?: LlmRuntime;
  /** Limits on a chat input's messages, as a node's `llm` settings (default the node's defaults). */
  readonly llmLimits?: { readonly maxMessages: number; readonly maxPromptChars: number };
}

/**
 * A {@link Reexecute} on local runtimes: the record's model is fetched by manifest CID from the
 * audited node (the CID and the publisher's signature are checked, so a node cannot hand over
 * another model) into `store`, loaded once, and run: `onnx` records on the runtime of the record's
 * execution profile (one runtime, or one per profile: native and portable; a record of a profile
 * none of them runs is not re-executed, as another profile may honestly give other bits), `llm`
 * records on `options.llm` under the profile rule of `reexecute.ts`.
 */
export function localReexecutor(
  runtimes: Runtime | readonly Runtime[],
  store: ModelStore,
  policy: UrlPolicy,
  options: LocalReexecutorOptions = {},
): Reexecute {
  const byProfile = new Map((Array.isArray(runtimes) ? runtimes : [runtimes]).map((r: Runtime) => [r.profile, r]));
  const loaded = new Map<string, Promise<LoadedModel | LoadedLlm>>();
  const load = (key: string, path: string, on: Runtime<LoadedModel | LoadedLlm>) => {
    let model = loaded.get(key);
    if (model === undefined) {
      model = on.load(path);
      model.catch(() => loaded.delete(key));
      loaded.set(key, model);
    }
    return model;
  };
  const { llm } = options;
  return async (record, input, endpoint) => {
    if (record.kind !== 'onnx' && record.kind !== 'llm')
      return { abstain: `${record.kind} records are not re-executed` };
    if (record.kind === 'llm' && llm === undefined) return { abstain: 'no LLM runtime here' };
    const runtime = byProfile.get(record.runtime.profile);
    if (record.kind === 'onnx' && runtime === undefined) {
      return { abstain: `profile ${record.runtime.profile} is not run here` };
    }
    const stored = await fetchModel(endpoint, record.model, store, {
      maxSize: options.maxModelBytes ?? 1 << 30,
      policy,
    });
    if (record.kind === 'onnx') {
      const model = (await load(
        `${record.runtime.profile} ${stored.manifestCid}`,
        stored.artifactPath,
        runtime as Runtime,
      )) as LoadedModel;
      return reexecuteOnnx(input, (inputs) => model.run(inputs));
    }
    const lm = llm as LlmRuntime;
    if (stored.manifest.format !== 'gguf')
      return { abstain: 'an llm record naming a model that is not a language model' };
    const model = (await load(`llm ${stored.manifestCid}`, stored.artifactPath, lm)) as LoadedLlm;
    return reexecuteLlm(record, input, {
      runtime: () => ({ id: lm.id, version: lm.version, profile: lm.profile }),
      limits: options.llmLimits ?? DEFAULT_CONFIG.llm,
      run: (job) => model.run(job),
    });
  };
}
