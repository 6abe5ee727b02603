/**
 * What the HTTP routes see of a running node: its configuration, identity and services, built by
 * `startNode` in the order of docs/architecture.md §8.
 */
import { fail } from '@verity/protocol';
import type { ChainService } from './chain/chain-service.js';
import type { NodeConfig } from './config.js';
import type { ExecutableModel, Executor, Task } from './executor.js';
import type { NodeKeys } from './keys.js';
import type { NodeLog } from './log/index.js';
import type { Metrics } from './metrics.js';
import type { ModelCache } from './model-cache.js';
import type { LlmRuntime, LoadedLlm } from './runtimes/llm.js';
import type { LoadedModel, Runtime } from './runtimes/runtime.js';
import type { ModelStore, PayloadStore } from './store/index.js';
import type { WitnessService } from './witness/witness-service.js';
import type { ZkService } from './zk-service.js';

export interface NodeContext {
  readonly config: NodeConfig;
  readonly keys: NodeKeys;
  readonly store: ModelStore;
  readonly log: NodeLog;
  /** The ONNX runtime, and the ONNX models loaded into it. */
  readonly runtime: Runtime;
  readonly models: ModelCache;
  /** The LLM runtime (GGUF), and the language models loaded into it. */
  readonly llm: LlmRuntime;
  readonly llms: ModelCache<LoadedLlm>;
  /** One executor for every model: queues, limits and backpressure are shared. */
  readonly executor: Executor<LoadedModel | LoadedLlm>;
  readonly metrics: Metrics;
  /** Mode `zk`: circuits, keys and proofs. */
  readonly zk: ZkService;
  /**
   * zk work (proofs, ceremony contributions) runs here, in one lane (`ZK_LANE`) of
   * `config.zk.concurrency` (default 1: snarkjs already uses every core for one proof), with the
   * same bounds, timeouts and 429/503 answers as model runs but queues of its own, so a proof
   * never holds up ONNX requests.
   */
  readonly zkExecutor: Executor<ExecutableModel<Task, unknown>>;
  /** Mode `audited`: the payloads kept for the challenge window. */
  readonly payloads: PayloadStore;
  /**
   * The challenge window, s: the deployment's `Disputes.challengeWindow` on a chain that has one
   * (read at start), else `config.audit.windowSeconds`.
   */
  auditWindowSeconds: number;
  /** The node as a witness of other logs (C2SP tlog-witness). */
  readonly witness: WitnessService;
  /** The node's latest checkpoint with the cosignatures its witnesses returned (`witness.submitTo`). */
  witnessed(): string | undefined;
  /** The chain service, when the node runs on a chain (`config.chain`). */
  chain?: ChainService;
  /** True once shutdown began: new requests get 503 SHUTTING_DOWN. */
  closing: boolean;
  shuttingDown(): never;
  rateLimited(): never;
}

/** The error helpers of a context (kept here so routes throw the same way everywhere). */
export const contextErrors = {
  shuttingDown(): never {
    return fail('SHUTTING_DOWN', 'the node is shutting down');
  },
  rateLimited(): never {
    return fail('RATE_LIMITED', 'too many requests from this client; slow down');
  },
};
