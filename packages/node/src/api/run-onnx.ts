/**
 * An ONNX request run on this node (modes `signed`, `audited`, and `quorum` as a member): the
 * executor → runtime → log steps of docs/architecture.md §2. The model is loaded by manifest CID,
 * run on the executor's queue of its profile, and the answer's record logged by `logAnswer`.
 */
import { hash } from 'node:crypto';
import {
  encodeTensors,
  type PaymentCommitment,
  paramsDigest,
  type RuntimeInfo,
  type TensorMap,
} from '@verity/protocol';
import { type NodeContext, type OnnxLane, onnxExecutorKey, onnxLane, servedProfiles } from '../context.js';
import type { StoredModel } from '../store/index.js';
import { type LoggedAnswer, logAnswer } from './answer-record.js';

/** The paramsDigest of every ONNX record (no parameters): a constant. */
export const NO_PARAMS_DIGEST = paramsDigest({});

/**
 * `toHex(tensorsDigest(map))` (docs/design.md §2.2): SHA-256 of the protocol's canonical encoding, on
 * `node:crypto` and hex-encoded by it (the portable SHA-256 and hex loop cost ~3× as much).
 */
export function tensorsDigestHex(map: TensorMap): string {
  return hash('sha256', encodeTensors(map), 'hex');
}

/**
 * The digest of a request's input: of the bytes received, for a binary request (its tensors are
 * canonical by construction, docs/protocol.md §2.6), else of the tensors' canonical encoding.
 */
export function inputDigestHex(inputs: TensorMap, receivedBytes: Uint8Array | undefined): string {
  return receivedBytes ? hash('sha256', receivedBytes, 'hex') : tensorsDigestHex(inputs);
}

/** One ONNX run to answer. */
export interface OnnxRun {
  readonly stored: StoredModel;
  readonly inputs: TensorMap;
  readonly mode: 'signed' | 'quorum' | 'audited';
  readonly requestId: string;
  readonly clientNonce: string | undefined;
  readonly profile: string;
  /** A binary request's tensor bytes as received. */
  readonly receivedBytes?: Uint8Array | undefined;
  /** A paid request's payment commitment (payments/http.ts `commitmentOf`). */
  readonly payment?: PaymentCommitment | undefined;
}

/** A run's answer: the logged record and receipt, and the output (with its canonical bytes). */
export interface OnnxAnswer extends LoggedAnswer {
  readonly output: TensorMap;
  readonly outputBytes: Uint8Array;
}

/** Runs ONNX requests of `ctx`; `runtime(profile)` is what that profile's records name. */
export interface OnnxRunner {
  runtime(profile: string): RuntimeInfo;
  run(r: OnnxRun): Promise<OnnxAnswer>;
}

/**
 * The ONNX runner of a node.
 *
 * @example
 * ```ts
 * const onnx = onnxRunner(ctx);
 * const { receipt, output } = await onnx.run({ stored, inputs, mode: 'signed', requestId, clientNonce, profile });
 * ```
 */
export function onnxRunner(ctx: NodeContext): OnnxRunner {
  // What each ONNX profile's records carry as `runtime`, made once.
  const runtimes = new Map(
    servedProfiles(ctx).map((profile) => {
      const r = (onnxLane(ctx, profile) as OnnxLane).runtime;
      return [profile, Object.freeze({ id: r.id, version: r.version, profile: r.profile })] as const;
    }),
  );
  const runtime = (profile: string) => runtimes.get(profile) as RuntimeInfo;
  return {
    runtime,
    async run({ stored, inputs, mode, requestId, clientNonce, profile, receivedBytes, payment }) {
      const lane = onnxLane(ctx, profile) as OnnxLane;
      const model = await lane.models.get(stored.manifestCid, stored.artifactPath);
      const started = performance.now();
      const output = await ctx.executor.run(onnxExecutorKey(stored.manifestCid, profile), model, inputs);
      ctx.metrics.inferenceSeconds.observe({ model: stored.manifest.name }, (performance.now() - started) / 1000);
      const audited = mode === 'audited';
      // A binary request's tensors as received are canonical (docs/protocol.md §2.6): digested as they are.
      const inputBytes = receivedBytes ?? (audited ? encodeTensors(inputs) : undefined);
      const outputBytes = encodeTensors(output);
      const logged = await logAnswer(
        ctx,
        {
          kind: 'onnx',
          mode,
          model: stored.manifestCid,
          runtime: runtime(profile),
          inputDigest: inputDigestHex(inputs, inputBytes),
          outputDigest: hash('sha256', outputBytes, 'hex'),
          paramsDigest: NO_PARAMS_DIGEST,
          requestId,
          clientNonce,
          ...(payment === undefined ? {} : { payment }),
        },
        inputBytes === undefined ? undefined : { input: inputBytes, output: outputBytes },
      );
      return { ...logged, output, outputBytes };
    },
  };
}
