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
import type { PaymentService } from './payments/index.js';
import type { LlmRuntime, LoadedLlm } from './runtimes/llm.js';
import type { LoadedModel, Runtime } from './runtimes/runtime.js';
import type { ModelStore, PayloadStore } from './store/index.js';
import type { WitnessService } from './witness/witness-service.js';
import type { ZkService } from './zk-service.js';

/** One ONNX runtime and the models loaded into it. */
export interface OnnxLane {
  readonly runtime: Runtime;
  readonly models: ModelCache;
}

export interface NodeContext {
  readonly config: NodeConfig;
  readonly keys: NodeKeys;
  readonly store: ModelStore;
  readonly log: NodeLog;
  /** The ONNX runtime of the `native` profile, and the ONNX models loaded into it. */
  readonly runtime: Runtime;
  readonly models: ModelCache;
  /** The ONNX runtime of the `portable` profile (onnxruntime-web, WASM), and the models loaded into it. */
  readonly portable: OnnxLane;
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
   * How long an audited payload is kept, s, from the record's timestamp: on a chain with
   * `Disputes`, its `challengeWindow` plus {@link AUDIT_ANCHOR_MARGIN_SECONDS} (the window runs
   * from the record's first anchor, which comes after the record); else `config.audit.windowSeconds`.
   */
  auditWindowSeconds: number;
  /** The node as a witness of other logs (C2SP tlog-witness). */
  readonly witness: WitnessService;
  /** The node's latest checkpoint with the cosignatures its witnesses returned (`witness.submitTo`). */
  witnessed(): string | undefined;
  /** The chain service, when the node runs on a chain (`config.chain`). */
  chain?: ChainService;
  /** Payments (x402), when `config.payments` is set; bound once the chain service runs. */
  payments?: PaymentService;
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

/**
 * Seconds an audited payload is kept past `challengeWindow` after its record's timestamp: the
 * chain counts the window from the record's first anchor, a few seconds later (the anchoring
 * interval and the time to mine). An hour, as the SDK's default tolerance: clients refuse a
 * record anchored later than that after its stated time (`AUDIT_TIMESTAMP_STALE`).
 */
export const AUDIT_ANCHOR_MARGIN_SECONDS = 3600;

/**
 * The ONNX runtime of execution profile `profile` on this node (docs/design.md §2.6), or
 * undefined when it runs no such profile.
 */
export function onnxLane(ctx: NodeContext, profile: string): OnnxLane | undefined {
  if (profile === ctx.runtime.profile) return { runtime: ctx.runtime, models: ctx.models };
  if (profile === ctx.portable.runtime.profile) return ctx.portable;
  return undefined;
}

/**
 * The execution profile a request for `manifest` runs under: `requested` when the manifest lists
 * it (else `PROFILE_NOT_LISTED`) and this node runs it (else `PROFILE_UNSUPPORTED`); without one,
 * the first profile the manifest lists that this node runs (the publisher's order is its preference).
 */
export function chooseProfile(
  ctx: NodeContext,
  manifest: { readonly profiles: readonly string[] },
  requested: string | undefined,
): { readonly profile: string; readonly lane: OnnxLane } {
  if (requested !== undefined) {
    if (!manifest.profiles.includes(requested)) {
      fail('PROFILE_NOT_LISTED', `the model is not published for profile "${requested}"`, {
        profile: requested,
        profiles: manifest.profiles,
      });
    }
    const lane = onnxLane(ctx, requested);
    if (lane === undefined) {
      fail('PROFILE_UNSUPPORTED', `this node does not run profile "${requested}"`, {
        profile: requested,
        supported: servedProfiles(ctx),
      });
    }
    return { profile: requested, lane };
  }
  for (const profile of manifest.profiles) {
    const lane = onnxLane(ctx, profile);
    if (lane !== undefined) return { profile, lane };
  }
  return fail('PROFILE_UNSUPPORTED', 'this node runs none of the profiles the model is published for', {
    profiles: manifest.profiles,
    supported: servedProfiles(ctx),
  });
}

/**
 * The executor key of an ONNX model under a profile: its manifest CID, and the profile (one queue,
 * and one batch, never mixes the runtimes: a request runs on the model of its own profile).
 */
export function onnxExecutorKey(manifestCid: string, profile: string): string {
  return `${manifestCid} ${profile}`;
}

/** The ONNX execution profiles this node runs. */
export function servedProfiles(ctx: NodeContext): string[] {
  return [ctx.runtime.profile, ctx.portable.runtime.profile];
}
