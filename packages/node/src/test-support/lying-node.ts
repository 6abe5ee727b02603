/**
 * A node made to lie, through test code only (issue 10, item 8: no fault switch in the shipped
 * node). It is the real node (`startNode`: real HTTP, log, chain registration) started with a
 * wrapped ONNX runtime whose models perturb every output before the node digests, logs and signs
 * it: a Byzantine node whose lies are logged under its own key, as a quorum must catch them.
 *
 * Use it in-process from any test (vitest runs this TypeScript directly):
 *
 * ```ts
 * import { startLyingNode } from '../../node/src/test-support/lying-node.js';
 * const liar = await startLyingNode(loadConfig({ env: { VERITY_RPC_URL: rpcUrl, VERITY_DEPLOYMENT: file }, overrides }));
 * // … liar.url answers with wrong outputs, correctly signed …
 * await liar.stop();
 * ```
 */
import type { TensorMap } from '@verity/protocol';
import type { NodeConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { createOnnxRuntime } from '../runtimes/onnx.js';
import type { LoadedModel, Runtime } from '../runtimes/runtime.js';

/** How a lying runtime changes an output (the default: {@link nudgeFloats}). */
export type Lie = (output: TensorMap) => TensorMap;

/** Adds 0.125 to every float element: a plausible wrong answer whose digest differs. */
export function nudgeFloats(output: TensorMap): TensorMap {
  const out: Record<string, TensorMap[string]> = {};
  for (const [name, t] of Object.entries(output)) {
    if (t.data instanceof Float32Array || t.data instanceof Float64Array) {
      const data = t.data.slice();
      for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) + 0.125;
      out[name] = { ...t, data } as TensorMap[string];
    } else {
      out[name] = t;
    }
  }
  return out;
}

/**
 * `inner` with every loaded model's outputs passed through `lie`. Same id, version and profile,
 * so the lying node's records look like an honest node's.
 *
 * @example
 * ```ts
 * const runtime = createLyingRuntime(createOnnxRuntime());
 * ```
 */
export function createLyingRuntime(inner: Runtime, lie: Lie = nudgeFloats): Runtime {
  return {
    id: inner.id,
    version: inner.version,
    profile: inner.profile,
    async load(bytesOrPath) {
      const model = await inner.load(bytesOrPath);
      const lying: LoadedModel = {
        inputs: model.inputs,
        outputs: model.outputs,
        batchable: model.batchable,
        run: async (inputs) => lie(await model.run(inputs)),
        close: () => model.close(),
      };
      return lying;
    },
  };
}

/**
 * Starts a real node with `config` whose ONNX answers are wrong (through `lie`) and signed.
 *
 * @example
 * ```ts
 * const liar = await startLyingNode(loadConfig({ overrides: { dataDir, port: 0 } }));
 * ```
 */
export function startLyingNode(config: NodeConfig, lie: Lie = nudgeFloats): Promise<VerityNode> {
  const inner = createOnnxRuntime(config.threads > 0 ? { intraOpThreads: config.threads } : {});
  return startNode(config, { runtime: createLyingRuntime(inner, lie) });
}
