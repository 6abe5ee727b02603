/**
 * Mode `zk` run on this node: the circuit proves the inference on the zk lane of the executor
 * (docs/architecture.md §7); its output (decoded from the public signals) is the answer, and the
 * record's outputDigest is over it, so proof and logged output go together.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getZkBinding } from '@verity/contracts';
import {
  fail,
  type PaymentCommitment,
  type TensorMap,
  ZK_RUNTIME,
  type ZkBinding,
  zkBindingMismatch,
} from '@verity/protocol';
import type { NodeContext } from '../context.js';
import type { StoredModel } from '../store/index.js';
import { runZkTask } from '../zk-lane.js';
import type { ZkInference } from '../zk-service.js';
import { type LoggedAnswer, logAnswer } from './answer-record.js';
import { NO_PARAMS_DIGEST, tensorsDigestHex } from './run-onnx.js';

/** The version of snarkjs that proves (the `zk` records' runtime version). */
let snarkjsVersionText: string | undefined;
function snarkjsVersion(): string {
  if (snarkjsVersionText === undefined) {
    const require = createRequire(import.meta.url);
    // snarkjs exports no ./package.json: walk up from its entry point to it.
    let dir = dirname(require.resolve('snarkjs'));
    for (let i = 0; i < 4 && snarkjsVersionText === undefined; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'snarkjs' && typeof pkg.version === 'string') snarkjsVersionText = pkg.version;
      } catch {
        // not here
      }
    }
    snarkjsVersionText ??= 'unknown';
  }
  return snarkjsVersionText;
}

/** A zk answer: the logged record and receipt, and the proof with its output. */
export interface ZkAnswer extends LoggedAnswer {
  readonly zk: ZkInference;
}

/** Runs mode `zk` requests of a node. */
export type ZkRunner = (
  stored: StoredModel,
  inputs: TensorMap,
  requestId: string,
  clientNonce: string | undefined,
  payment?: PaymentCommitment,
) => Promise<ZkAnswer>;

/**
 * The zk runner of a node.
 *
 * @example
 * ```ts
 * const { receipt, zk } = await zkRunner(ctx)(stored, inputs, requestId, clientNonce);
 * ```
 */
export function zkRunner(ctx: NodeContext): ZkRunner {
  /** Bindings read from the chain (immutable once set, so kept; an unbound model is read again). */
  const bindings = new Map<string, ZkBinding>();
  /**
   * On a chain with `Disputes`, a dispute over a zk record is settled by a proof read through the
   * model's binding (docs/protocol.md §12 "The zk binding"): answer only when the binding is
   * exactly this manifest's facts and this node's key (`ZK_BINDING_MISMATCH` otherwise). An unbound
   * model is served: no proof can settle a dispute over its records, which go to the jury.
   */
  const checkBinding = async (stored: StoredModel, vk: unknown) => {
    const chain = ctx.chain;
    if (chain?.deployment.contracts.disputes === undefined) return;
    let binding = bindings.get(stored.manifestCid);
    if (binding === undefined) {
      const zkVerifiers = chain.deployment.contracts.zkVerifiers;
      binding = await getZkBinding(chain.publicClient, { zkVerifiers, manifestCid: stored.manifestCid });
      if (binding === undefined) return;
      bindings.set(stored.manifestCid, binding);
    }
    const mismatches = zkBindingMismatch(binding, stored.manifest, vk);
    if (mismatches.length > 0) {
      fail(
        'ZK_BINDING_MISMATCH',
        `the model's zk binding on chain differs from its manifest: ${mismatches.join(', ')}`,
        {
          mismatches,
        },
      );
    }
  };

  return async (stored, inputs, requestId, clientNonce, payment) => {
    const started = performance.now();
    // Through the zk lane of the executor: one proof at a time, a bounded queue (429 QUEUE_FULL),
    // a timeout (504 INFERENCE_TIMEOUT).
    const zk = await runZkTask(ctx, async () => {
      const proving = performance.now();
      const out = await ctx.zk.prove(stored.manifestCid, stored.manifest, stored.artifactPath, inputs);
      ctx.metrics.zkProveSeconds.observe((performance.now() - proving) / 1000);
      ctx.metrics.zkProofs.inc();
      ctx.metrics.zkRssAfterProveBytes.set(process.memoryUsage.rss());
      return out;
    });
    ctx.metrics.inferenceSeconds.observe({ model: stored.manifest.name }, (performance.now() - started) / 1000);
    await checkBinding(stored, zk.vk);
    const logged = await logAnswer(ctx, {
      kind: 'zk',
      mode: 'zk',
      model: stored.manifestCid,
      runtime: { id: ZK_RUNTIME.id, version: snarkjsVersion(), profile: ZK_RUNTIME.profile },
      inputDigest: tensorsDigestHex(inputs),
      outputDigest: tensorsDigestHex(zk.output),
      paramsDigest: NO_PARAMS_DIGEST,
      requestId,
      clientNonce,
      ...(payment === undefined ? {} : { payment }),
    });
    return { ...logged, zk };
  };
}
