/**
 * Node configuration: one loader, named defaults, validated once. Sources, lowest to highest
 * precedence: defaults, a JSON config file, `VERITY_*` environment variables, explicit overrides
 * (CLI flags).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CODEC_JSON, fail, isCid, parseCid, VerityError } from '@verity/protocol';

/** Bounds on every input the node accepts. */
export interface NodeLimits {
  /** Largest JSON request body, bytes. */
  readonly bodyBytes: number;
  /** Largest model upload, bytes. */
  readonly modelBytes: number;
  /** Most tensor elements in one request (all tensors together). */
  readonly maxElements: number;
  /** Longest string element, UTF-8 bytes. */
  readonly maxStringBytes: number;
  /** Sustained requests per second per client address (token bucket), and its burst. */
  readonly requestsPerSecond: number;
  readonly burst: number;
  /** Time allowed to receive request headers, and a whole request, ms (slow clients are cut off). */
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** Mode `audited` (docs/api.md "Mode audited"). */
export interface AuditSettings {
  /** The challenge window: payloads are kept, and served, this long after their record's timestamp, s. */
  readonly windowSeconds: number;
}

/** Disputes (docs/protocol.md §15.8): the juror service of a node on a chain with `Disputes`. */
export interface DisputeSettings {
  /** Serve as a juror when drawn: re-execute, commit, reveal; also draw and resolve (default true). */
  readonly juror: boolean;
  /** How often the juror service reads the chain, ms. */
  readonly intervalMs: number;
}

/** Executor settings: queues, concurrency, batching, timeouts. */
export interface ExecutorSettings {
  /** Requests waiting per model beyond which new ones get 429 QUEUE_FULL. */
  readonly maxQueue: number;
  /** Requests waiting across all models beyond which new ones get 503 OVERLOADED. */
  readonly maxPending: number;
  /** Runs in flight per model. */
  readonly concurrency: number;
  /** Most requests combined into one batched run. */
  readonly maxBatch: number;
  /** Longest time a request may wait and run before it fails with INFERENCE_TIMEOUT, ms. */
  readonly timeoutMs: number;
}

/** Settings of the LLM runtime (GGUF models through node-llama-cpp). */
export interface LlmSettings {
  /** `auto`: CUDA (or Vulkan, Metal) where the machine has it, else CPU; `cpu`: always CPU. */
  readonly gpu: 'auto' | 'cpu';
  /** Generations at once per model (llama.cpp context sequences). */
  readonly sequences: number;
  /** Tokens of context per sequence (at most the model's training context). */
  readonly contextSize: number;
  /** CPU threads for evaluation (0 = node-llama-cpp's default). */
  readonly threads: number;
  /** Longest time a generation may wait and run, ms. */
  readonly timeoutMs: number;
  /** Streamed tokens are gathered for up to this long before a write (0: one write per token), ms. */
  readonly streamFlushMs: number;
  /** Most messages, and most characters of all message text together, in one request. */
  readonly maxMessages: number;
  readonly maxPromptChars: number;
}

/** The chain a node registers on and anchors to (docs/design.md §2.7); absent: a standalone node. */
export interface ChainSettings {
  /** JSON-RPC URL of the EVM chain. */
  readonly rpcUrl: string;
  /** The deployment file (contract addresses, chain id) that `verity up` or an operator wrote. */
  readonly deploymentFile: string;
  /** Stake to hold in the registry, in wei (decimal string). */
  readonly stakeWei: string;
  /** Anchor the latest checkpoint this often when the log grew, ms (0: never). */
  readonly anchorIntervalMs: number;
  /** The URL peers reach this node at; default: the address it listens on. */
  readonly endpoint?: string;
}

/**
 * What the node lets the network make it do (docs/design.md §6): which peers it calls, which models it
 * copies from them, and how much it keeps.
 */
export interface PeerSettings {
  /**
   * Local mode (`verity up`): peers on loopback, private, link-local and other non-public
   * addresses may be called. Off (the default), a registered endpoint that is, or resolves to,
   * such an address is refused with `ENDPOINT_REFUSED` before any packet leaves
   * (`peers/url-policy.ts`).
   */
  readonly localNetwork: boolean;
  /**
   * Manifest CIDs this node may fetch from peers although no publisher registered them in
   * ModelRegistry (`*`: any). By default only a CID that the registry maps its manifest's
   * `name@version` to is fetched (`MODEL_NOT_REGISTERED` otherwise).
   */
  readonly fetchCids: readonly string[];
  /** Most models copied from peers that the node keeps (`REPLICA_QUOTA_EXCEEDED` beyond). */
  readonly maxReplicas: number;
  /** Most bytes of model files copied from peers that the node keeps (`REPLICA_QUOTA_EXCEEDED` beyond). */
  readonly maxReplicaBytes: number;
}

/** Mode `zk` (docs/design.md §2.6): where circuits' keys and powers of tau live. */
export interface ZkSettings {
  /** Keys per circuit (`<cacheDir>/keys/<r1csHash>.{zkey,json}`); default `<dataDir>/zk`. */
  readonly cacheDir?: string;
  /** Where local-dev powers of tau are generated and cached (shared between circuits); default `cacheDir`. */
  readonly ptauDir?: string;
  /** A prepared (phase 2) powers of tau from a public ceremony: keys the node makes from it alone are still `local-dev` (one party's phase 2), with `zk.phase1` naming the file. */
  readonly ptauPath?: string;
  /**
   * With `ptauPath` set to a `verity ceremony`'s final (prepared) file: that phase-1 ceremony's id
   * on the node's chain (its deployment's Ceremony contract). The file is checked against the
   * on-chain record (every contribution, the beacon) before it is used, and manifests name the
   * ceremony (`zk.phase1` kind `ceremony`) instead of the file's SHA-256.
   */
  readonly phase1Ceremony?: string;
  /**
   * Proofs (and ceremony contributions) in flight at once. snarkjs spreads one proof over every
   * core with its worker threads, so 1 (the default) is usually fastest as well as smallest.
   */
  readonly concurrency: number;
  /** zk jobs waiting beyond which new ones get 429 QUEUE_FULL (the executor's answer). */
  readonly maxQueue: number;
  /** Longest time a zk job may wait and run before it fails with INFERENCE_TIMEOUT, ms. */
  readonly timeoutMs: number;
  /**
   * Most memory one proof may need, estimated from the proving key's size and the circuit's FFT
   * domain (`zkProvingBytes`): a circuit above it is refused at push, and its keys are never
   * loaded (`ZK_KEY_TOO_LARGE`). Default 2 GiB.
   */
  readonly maxProvingBytes: number;
  /**
   * At push on a chain: how many other registered nodes (drawn stake-weighted from a block hash)
   * contribute to a zk model's phase-2 ceremony besides this node (0: never run one; keys stay
   * local-dev). Default 3. Needs a phase 1 that is not local-dev (`ptauPath`).
   */
  readonly phase2Contributors: number;
}

/** A model's price (docs/api.md "Payments"): per request (ONNX, zk), or per token (language models). */
export type ModelPrice = { readonly request: string } | { readonly inputToken: string; readonly outputToken: string };

/**
 * Payments (x402, docs/api.md "Payments"): the EIP-3009 token the node is paid in and its prices.
 * Needs a chain: the node settles on it from its own account (it is its own facilitator) and is
 * paid at its registered address.
 */
export interface PaymentSettings {
  /** The token's address; default the deployment file's `payments.token`. */
  readonly token?: string;
  /** The MeteredSettlement contract (language models); default the deployment file's `payments.meteredSettlement`. */
  readonly meteredSettlement?: string;
  /**
   * Prices in the token's atomic units (decimal strings), by `name@version` or manifest CID; a
   * model not listed is free.
   */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  /** How long a payment stays valid after a 402, s (x402 `maxTimeoutSeconds`); default 300. */
  readonly maxTimeoutSeconds: number;
}

/** Everything a node needs to start. */
export interface NodeConfig {
  /** Where keys, models and the log live. */
  readonly dataDir: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Log origin (and log key name); default `verity.local/log/<account>`. */
  readonly origin?: string;
  readonly limits: NodeLimits;
  readonly executor: ExecutorSettings;
  /** fsync the log on every commit (turn off only for throwaway test nodes). */
  readonly fsync: boolean;
  /** Intra-op threads of the ONNX runtime (0 = runtime default). */
  readonly threads: number;
  readonly llm: LlmSettings;
  readonly chain?: ChainSettings;
  readonly zk: ZkSettings;
  readonly peers: PeerSettings;
  /** Mode `audited`: how long the node keeps a request's payload for auditors and challengers. */
  readonly audit: AuditSettings;
  /** Disputes: serve as a juror on a chain whose deployment has `Disputes`. */
  readonly disputes: DisputeSettings;
  readonly witness: WitnessSettings;
  /** The explorer web app the node serves at `/` (packages/explorer). */
  readonly explorer: ExplorerSettings;
  /** Payments for answers (x402); absent: every model is free. */
  readonly payments?: PaymentSettings;
  /** Log level for the JSON logs on stderr: fatal, error, warn, info, debug, trace or silent. */
  readonly logLevel: string;
}

/**
 * The node as a witness of other logs and as a log asking witnesses (C2SP tlog-witness,
 * docs/protocol.md "Witnesses").
 */
export interface WitnessSettings {
  /**
   * Log verifier keys (`origin+keyid+key`) this node witnesses beside the registered nodes' logs
   * (read from the chain registry when the node runs on a chain).
   */
  readonly logs: readonly string[];
  /** Witnesses this node submits its checkpoints to: base URL and witness verifier key (type 0x04). */
  readonly submitTo: readonly { readonly url: string; readonly key: string }[];
  /**
   * Also ask every other registered node (on a chain) as a witness, at its registered endpoint
   * under the outbound URL policy, with the witness key it reports at `GET /v1/witness`
   * (`verity up` turns this on: its nodes cosign each other's checkpoints).
   */
  readonly peers: boolean;
  /** How often the node submits a grown checkpoint to its witnesses (ms). */
  readonly intervalMs: number;
}

/** The explorer (packages/explorer): its built files, and what its pages are told about the chain. */
export interface ExplorerSettings {
  /** The built explorer (`npm run build` writes `packages/explorer/dist/site`); default that folder. */
  readonly dir?: string;
  /**
   * The JSON-RPC URL the explorer's pages read the chain with, in the visitor's browser (so a
   * public one, never a URL with a provider's key in it). Default none: the pages then ask the
   * visitor for one. `verity up` sets it to its local chain.
   */
  readonly rpcUrl?: string;
}

/** Named defaults. */
export const DEFAULT_CONFIG: NodeConfig = {
  dataDir: join(homedir(), '.verity'),
  host: '127.0.0.1',
  port: 8700,
  limits: {
    bodyBytes: 8 * 1024 * 1024,
    modelBytes: 64 * 1024 * 1024 * 1024, // GGUF language models are often several GiB
    maxElements: 4 * 1024 * 1024,
    maxStringBytes: 64 * 1024,
    requestsPerSecond: 2000,
    burst: 4000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 120_000,
  },
  executor: { maxQueue: 256, maxPending: 2048, concurrency: 2, maxBatch: 64, timeoutMs: 30_000 },
  fsync: true,
  threads: 0,
  llm: {
    gpu: 'auto',
    sequences: 2,
    contextSize: 4096,
    threads: 0,
    timeoutMs: 300_000,
    streamFlushMs: 10,
    maxMessages: 1024,
    maxPromptChars: 1_000_000,
  },
  zk: {
    concurrency: 1,
    maxQueue: 16,
    timeoutMs: 120_000,
    maxProvingBytes: 2 * 1024 * 1024 * 1024,
    phase2Contributors: 3,
  },
  peers: {
    localNetwork: false,
    fetchCids: [],
    maxReplicas: 64,
    maxReplicaBytes: 64 * 1024 * 1024 * 1024,
  },
  audit: { windowSeconds: 86_400 },
  disputes: { juror: true, intervalMs: 5_000 },
  witness: { logs: [], submitTo: [], peers: false, intervalMs: 5_000 },
  explorer: {},
  logLevel: 'info',
};

type DeepPartial<T> = {
  -readonly [K in keyof T]?: NonNullable<T[K]> extends object ? DeepPartial<NonNullable<T[K]>> : T[K];
};
/** A partial configuration, as read from a file, the environment or flags. */
export type ConfigInput = DeepPartial<NodeConfig>;

/**
 * Prices as one line (`VERITY_PRICES`, `verity node start --price`): comma-separated `MODEL=AMOUNT`
 * (per request, x402 `exact`) or `MODEL=INPUT/OUTPUT` (per prompt and per generated token,
 * `metered`), MODEL a `name@version` or a manifest CID, amounts in the token's atomic units; e.g.
 * `iris@1.0.0=1000,tiny-chat@1.0.0=10/100`. The amounts are checked with the rest of the config.
 *
 * @example
 * ```ts
 * parsePrices('iris@1.0.0=1000'); // { 'iris@1.0.0': { request: '1000' } }
 * ```
 */
export function parsePrices(text: string): Record<string, ModelPrice> {
  const prices: Record<string, ModelPrice> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.lastIndexOf('=');
    const model = item.slice(0, eq).trim();
    const amount = item.slice(eq + 1).trim();
    const perToken = amount.split('/');
    if (eq <= 0 || amount === '' || perToken.length > 2 || perToken.some((a) => a.trim() === '')) {
      fail('CONFIG_INVALID', `price "${item}" must be MODEL=AMOUNT or MODEL=INPUT/OUTPUT`, { path: 'payments.prices' });
    }
    prices[model] =
      perToken.length === 2
        ? { inputToken: (perToken[0] as string).trim(), outputToken: (perToken[1] as string).trim() }
        : { request: amount };
  }
  return prices;
}

const ENV: Record<string, (v: string) => ConfigInput> = {
  VERITY_DATA_DIR: (v) => ({ dataDir: v }),
  VERITY_HOST: (v) => ({ host: v }),
  VERITY_PORT: (v) => ({ port: Number(v) }),
  VERITY_ORIGIN: (v) => ({ origin: v }),
  VERITY_LOG_LEVEL: (v) => ({ logLevel: v }),
  VERITY_FSYNC: (v) => ({ fsync: v !== '0' && v !== 'false' }),
  VERITY_THREADS: (v) => ({ threads: Number(v) }),
  VERITY_RPC_URL: (v) => ({ chain: { rpcUrl: v } }),
  VERITY_DEPLOYMENT: (v) => ({ chain: { deploymentFile: v } }),
  VERITY_STAKE_WEI: (v) => ({ chain: { stakeWei: v } }),
  VERITY_ANCHOR_INTERVAL_MS: (v) => ({ chain: { anchorIntervalMs: Number(v) } }),
  VERITY_LLM_GPU: (v) => ({ llm: { gpu: v as 'auto' | 'cpu' } }),
  VERITY_LLM_SEQUENCES: (v) => ({ llm: { sequences: Number(v) } }),
  VERITY_LLM_CONTEXT: (v) => ({ llm: { contextSize: Number(v) } }),
  VERITY_ZK_CACHE_DIR: (v) => ({ zk: { cacheDir: v } }),
  VERITY_ZK_PTAU_DIR: (v) => ({ zk: { ptauDir: v } }),
  VERITY_ZK_PTAU_PATH: (v) => ({ zk: { ptauPath: v } }),
  VERITY_ZK_PHASE1_CEREMONY: (v) => ({ zk: { phase1Ceremony: v } }),
  VERITY_ZK_MAX_PROVING_BYTES: (v) => ({ zk: { maxProvingBytes: Number(v) } }),
  VERITY_AUDIT_WINDOW_SECONDS: (v) => ({ audit: { windowSeconds: Number(v) } }),
  VERITY_DISPUTES_JUROR: (v) => ({ disputes: { juror: v !== '0' && v !== 'false' } }),
  VERITY_DISPUTES_INTERVAL_MS: (v) => ({ disputes: { intervalMs: Number(v) } }),
  VERITY_LOCAL_NETWORK: (v) => ({ peers: { localNetwork: v !== '0' && v !== 'false' } }),
  VERITY_FETCH_CIDS: (v) => ({ peers: { fetchCids: v.split(',').map((c) => c.trim()) } }),
  VERITY_MAX_REPLICAS: (v) => ({ peers: { maxReplicas: Number(v) } }),
  VERITY_MAX_REPLICA_BYTES: (v) => ({ peers: { maxReplicaBytes: Number(v) } }),
  VERITY_WITNESS_LOGS: (v) => ({ witness: { logs: v.split(',').map((k) => k.trim()) } }),
  VERITY_WITNESS_PEERS: (v) => ({ witness: { peers: v !== '0' && v !== 'false' } }),
  VERITY_EXPLORER_DIR: (v) => ({ explorer: { dir: v } }),
  VERITY_EXPLORER_RPC_URL: (v) => ({ explorer: { rpcUrl: v } }),
  VERITY_PRICES: (v) => ({ payments: { prices: parsePrices(v) } }),
  VERITY_PAYMENT_TOKEN: (v) => ({ payments: { token: v } }),
  VERITY_METERED_SETTLEMENT: (v) => ({ payments: { meteredSettlement: v } }),
};

function merge<T>(base: T, over: DeepPartial<T> | undefined): T {
  if (over === undefined) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    // Arrays are values: a list given replaces the list below it.
    const nested = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = nested(v) && nested(b) ? merge(b, v as never) : v;
  }
  return out as T;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function check(config: NodeConfig): NodeConfig {
  const int = (path: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      fail('CONFIG_INVALID', `${path} must be an integer in ${min}..${max}`, { path, value: v });
    }
  };
  if (typeof config.dataDir !== 'string' || config.dataDir === '') fail('CONFIG_INVALID', 'dataDir must be a path');
  if (typeof config.host !== 'string' || config.host === '') fail('CONFIG_INVALID', 'host must be a host name');
  int('port', config.port, 0, 65535);
  for (const [k, v] of Object.entries(config.limits)) int(`limits.${k}`, v, 1);
  for (const [k, v] of Object.entries(config.executor)) int(`executor.${k}`, v, 1);
  int('threads', config.threads, 0, 256);
  if (config.llm.gpu !== 'auto' && config.llm.gpu !== 'cpu') fail('CONFIG_INVALID', 'llm.gpu must be auto or cpu');
  int('llm.sequences', config.llm.sequences, 1, 256);
  int('llm.contextSize', config.llm.contextSize, 64, 1 << 22);
  int('llm.threads', config.llm.threads, 0, 256);
  int('llm.timeoutMs', config.llm.timeoutMs, 1);
  int('llm.maxMessages', config.llm.maxMessages, 1);
  int('llm.streamFlushMs', config.llm.streamFlushMs, 0, 1000);
  if (config.chain !== undefined) {
    // Defaults for what a partial chain section leaves out: 1 ETH of stake, an anchor every 10 s.
    const c: Partial<ChainSettings> = Object.assign(
      { stakeWei: '1000000000000000000', anchorIntervalMs: 10_000 },
      config.chain as Partial<ChainSettings>,
    );
    config = { ...config, chain: c as ChainSettings };
    if (typeof c.rpcUrl !== 'string' || !/^https?:\/\//.test(c.rpcUrl)) {
      fail('CONFIG_INVALID', 'chain.rpcUrl must be an http(s) URL', { path: 'chain.rpcUrl' });
    }
    if (typeof c.deploymentFile !== 'string' || c.deploymentFile === '') {
      fail('CONFIG_INVALID', 'chain.deploymentFile must be a path', { path: 'chain.deploymentFile' });
    }
    if (typeof c.stakeWei !== 'string' || !/^(0|[1-9][0-9]{0,77})$/.test(c.stakeWei)) {
      fail('CONFIG_INVALID', 'chain.stakeWei must be a decimal number of wei', { path: 'chain.stakeWei' });
    }
    int('chain.anchorIntervalMs', c.anchorIntervalMs, 0);
    if (c.endpoint !== undefined && (typeof c.endpoint !== 'string' || !/^https?:\/\//.test(c.endpoint))) {
      fail('CONFIG_INVALID', 'chain.endpoint must be an http(s) URL', { path: 'chain.endpoint' });
    }
  }
  int('llm.maxPromptChars', config.llm.maxPromptChars, 1);
  if (typeof config.zk !== 'object' || config.zk === null) fail('CONFIG_INVALID', 'zk must be an object');
  for (const k of ['cacheDir', 'ptauDir', 'ptauPath'] as const) {
    const v = config.zk[k];
    if (v !== undefined && (typeof v !== 'string' || v === '')) fail('CONFIG_INVALID', `zk.${k} must be a path`);
  }
  const ceremonyId = config.zk.phase1Ceremony;
  if (ceremonyId !== undefined && (typeof ceremonyId !== 'string' || !/^0x[0-9a-f]{64}$/.test(ceremonyId))) {
    fail('CONFIG_INVALID', 'zk.phase1Ceremony must be a ceremony id (0x and 64 lower-case hex digits)');
  }
  if (ceremonyId !== undefined && config.zk.ptauPath === undefined) {
    fail('CONFIG_INVALID', 'zk.phase1Ceremony names the ceremony of the file zk.ptauPath: give both');
  }
  int('zk.concurrency', config.zk.concurrency, 1, 64);
  int('zk.maxQueue', config.zk.maxQueue, 1);
  int('zk.timeoutMs', config.zk.timeoutMs, 1);
  int('zk.maxProvingBytes', config.zk.maxProvingBytes, 1);
  int('zk.phase2Contributors', config.zk.phase2Contributors, 0, 16);
  const peers = config.peers as Partial<PeerSettings> | undefined;
  if (typeof peers !== 'object' || peers === null) return fail('CONFIG_INVALID', 'peers must be an object');
  if (typeof peers.localNetwork !== 'boolean') fail('CONFIG_INVALID', 'peers.localNetwork must be a boolean');
  if (
    !Array.isArray(peers.fetchCids) ||
    !peers.fetchCids.every((c) => c === '*' || (typeof c === 'string' && isCid(c) && parseCid(c).codec === CODEC_JSON))
  ) {
    fail('CONFIG_INVALID', 'peers.fetchCids must list manifest CIDs (or "*")', { path: 'peers.fetchCids' });
  }
  int('peers.maxReplicas', peers.maxReplicas, 0);
  int('peers.maxReplicaBytes', peers.maxReplicaBytes, 0);
  int('audit.windowSeconds', config.audit?.windowSeconds, 1, 366 * 86_400);
  if (typeof config.disputes?.juror !== 'boolean') fail('CONFIG_INVALID', 'disputes.juror must be a boolean');
  int('disputes.intervalMs', config.disputes.intervalMs, 1);
  const w = config.witness as Partial<WitnessSettings> | undefined;
  if (typeof w !== 'object' || w === null) return fail('CONFIG_INVALID', 'witness must be an object');
  if (!Array.isArray(w.logs) || !w.logs.every((k) => typeof k === 'string')) {
    fail('CONFIG_INVALID', 'witness.logs must list log verifier keys', { path: 'witness.logs' });
  }
  if (
    !Array.isArray(w.submitTo) ||
    !w.submitTo.every((x) => typeof x?.url === 'string' && /^https?:\/\//.test(x.url) && typeof x.key === 'string')
  ) {
    fail('CONFIG_INVALID', 'witness.submitTo must list { url, key } witnesses', { path: 'witness.submitTo' });
  }
  if (typeof w.peers !== 'boolean')
    fail('CONFIG_INVALID', 'witness.peers must be a boolean', { path: 'witness.peers' });
  int('witness.intervalMs', w.intervalMs, 1);
  const x = config.explorer as Partial<ExplorerSettings> | undefined;
  if (typeof x !== 'object' || x === null) return fail('CONFIG_INVALID', 'explorer must be an object');
  if (x.dir !== undefined && (typeof x.dir !== 'string' || x.dir === '')) {
    fail('CONFIG_INVALID', 'explorer.dir must be a path', { path: 'explorer.dir' });
  }
  if (x.rpcUrl !== undefined && (typeof x.rpcUrl !== 'string' || !/^https?:\/\//.test(x.rpcUrl))) {
    fail('CONFIG_INVALID', 'explorer.rpcUrl must be an http(s) URL', { path: 'explorer.rpcUrl' });
  }
  if (config.payments !== undefined) config = { ...config, payments: checkPayments(config) };
  if (typeof config.fsync !== 'boolean') fail('CONFIG_INVALID', 'fsync must be a boolean');
  if (!LEVELS.has(config.logLevel)) fail('CONFIG_INVALID', `logLevel must be one of ${[...LEVELS].join(', ')}`);
  return { ...config, dataDir: resolve(config.dataDir) };
}

const ATOMIC = /^(0|[1-9][0-9]{0,77})$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

function checkPayments(config: NodeConfig): PaymentSettings {
  const p = Object.assign({ prices: {}, maxTimeoutSeconds: 300 }, config.payments) as Partial<PaymentSettings>;
  const bad = (path: string, message: string): never =>
    fail('CONFIG_INVALID', `payments.${path} ${message}`, { path: `payments.${path}` });
  if (config.chain === undefined) bad('', 'needs a chain (the node settles payments on it)');
  for (const k of ['token', 'meteredSettlement'] as const) {
    const v = p[k];
    if (v !== undefined && (typeof v !== 'string' || !ADDRESS.test(v))) bad(k, 'must be an address');
  }
  const t = p.maxTimeoutSeconds;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 10 || t > 86_400)
    bad('maxTimeoutSeconds', 'must be 10..86400');
  if (typeof p.prices !== 'object' || p.prices === null || Array.isArray(p.prices)) bad('prices', 'must be an object');
  const prices = p.prices as Record<string, unknown>;
  for (const [model, price] of Object.entries(prices)) {
    const at = `prices.${model}`;
    const ok = (v: unknown) => typeof v === 'string' && ATOMIC.test(v) && BigInt(v) < 1n << 256n;
    if (!/^[^@\s]+@[^@\s]+$/.test(model) && !(isCid(model) && parseCid(model).codec === CODEC_JSON)) {
      bad(at, 'must be keyed by name@version or a manifest CID');
    }
    if (typeof price !== 'object' || price === null) bad(at, 'must be { request } or { inputToken, outputToken }');
    const keys = Object.keys(price as object)
      .sort()
      .join(',');
    const v = price as Record<string, unknown>;
    if (
      keys === 'request'
        ? !ok(v.request)
        : keys === 'inputToken,outputToken'
          ? !ok(v.inputToken) || !ok(v.outputToken)
          : true
    ) {
      bad(at, 'must be { request } or { inputToken, outputToken }, in atomic units as decimal strings');
    }
  }
  return p as PaymentSettings;
}

/**
 * Builds the configuration from defaults, an optional JSON file, the environment and overrides.
 * Throws `CONFIG_INVALID` naming the offending setting.
 */
export function loadConfig(
  options: { file?: string; env?: Record<string, string | undefined>; overrides?: ConfigInput } = {},
): NodeConfig {
  let config = DEFAULT_CONFIG;
  if (options.file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(options.file, 'utf8'));
    } catch (cause) {
      throw new VerityError('CONFIG_INVALID', `cannot read config file ${options.file}`, { cause });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      fail('CONFIG_INVALID', 'config file must hold a JSON object');
    }
    config = merge(config, parsed as ConfigInput);
  }
  for (const [name, apply] of Object.entries(ENV)) {
    const v = options.env?.[name];
    if (v !== undefined && v !== '') config = merge(config, apply(v));
  }
  return check(merge(config, options.overrides));
}
