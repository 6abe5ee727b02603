/**
 * A node made to lie, through test code only (issue 10, item 8: no fault switch in the shipped
 * node). It is the real node (`startNode`: real HTTP, log, chain registration) started with
 * wrapped runtimes whose models change every answer before the node digests, logs and signs it:
 * ONNX outputs nudged, language-model text altered. A Byzantine node whose lies are logged under
 * its own key, as a quorum must catch them.
 *
 * Use it in-process from any test (vitest runs this TypeScript directly):
 *
 * ```ts
 * import { startLyingNode } from '../../node/src/test-support/lying-node.js';
 * const liar = await startLyingNode(loadConfig({ env: { VERITY_RPC_URL: rpcUrl, VERITY_DEPLOYMENT: file }, overrides }));
 * // … liar.url answers with wrong outputs, correctly signed …
 * await liar.stop();
 * ```
 *
 * As a process of its own (a node of a `verity up` network restarted as a liar): `lying-node-main.ts`.
 */
import type { TensorMap } from '@verity/protocol';
import type { NodeConfig } from '../config.js';
import { createRuntimes, startNode, type VerityNode } from '../node.js';
import type { LlmResult, LlmRuntime } from '../runtimes/llm.js';
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

/** How a lying LLM runtime changes a generation (the default: {@link appendText}). */
export type LlmLie = (result: LlmResult) => LlmResult;

/** Appends a few words to the generated text (streamed text stays what the model said). */
export function appendText(result: LlmResult): LlmResult {
  return { ...result, text: `${result.text} (and the moon is cheese)` };
}

/**
 * `inner` with every generation's result passed through `lie`; id, version and profile read
 * through (the profile is known only once `ready()` resolved).
 *
 * @example
 * ```ts
 * const llm = createLyingLlmRuntime(createLlmRuntime({ gpu: false, sequences: 1, contextSize: 512, threads: 0 }));
 * ```
 */
export function createLyingLlmRuntime(inner: LlmRuntime, lie: LlmLie = appendText): LlmRuntime {
  return {
    get id() {
      return inner.id;
    },
    get version() {
      return inner.version;
    },
    get profile() {
      return inner.profile;
    },
    ready: () => inner.ready(),
    settledProfile: () => inner.settledProfile(),
    describe: (path) => inner.describe(path),
    async load(bytesOrPath) {
      const model = await inner.load(bytesOrPath);
      return {
        kind: model.kind,
        batchable: model.batchable,
        concurrency: model.concurrency,
        contextSize: model.contextSize,
        run: async (job) => lie(await model.run(job)),
        sequencesLeft: () => model.sequencesLeft(),
        close: () => model.close(),
      };
    },
  };
}

/** What {@link startLyingNode} makes lie: ONNX outputs, LLM generations, or both (the default). */
export interface LyingNodeOptions {
  readonly lie?: Lie | false;
  readonly llmLie?: LlmLie | false;
}

/**
 * Starts a real node with `config` whose answers are wrong (through `lie` and `llmLie`; `false`
 * keeps that runtime honest) and signed.
 *
 * @example
 * ```ts
 * const liar = await startLyingNode(loadConfig({ overrides: { dataDir, port: 0 } }));
 * ```
 */
export function startLyingNode(config: NodeConfig, options: LyingNodeOptions = {}): Promise<VerityNode> {
  const { lie = nudgeFloats, llmLie = appendText } = options;
  const { runtime, llm } = createRuntimes(config);
  return startNode(config, {
    runtime: lie === false ? runtime : createLyingRuntime(runtime, lie),
    llm: llmLie === false ? llm : createLyingLlmRuntime(llm, llmLie),
  });
}

/**
 * Makes `node` backdate every record it logs from now on by `ms` (the record's `timestamp`, which
 * the challenge window runs from, is the node's word): a node that wants its answers to look past
 * their window at once. The record is changed before the log signs it, so it is logged, anchored
 * and answered backdated. Returns a function that stops it.
 *
 * @example
 * ```ts
 * const stop = backdateRecords(liar, 2 * 3600_000);
 * ```
 */
export function backdateRecords(node: VerityNode, ms: number): () => void {
  const log = node.context.log as { append: VerityNode['context']['log']['append'] };
  const honest = log.append;
  log.append = (record) => honest.call(node.context.log, { ...record, timestamp: record.timestamp - ms });
  return () => {
    log.append = honest;
  };
}

/**
 * Makes `node` log, sign and return a record whose output digest is not that of the output it
 * sends (the last hex digit flipped): a node that serves one answer and signs another, which
 * any client that checks the answer against its receipt refuses (`RECEIPT_OUTPUT_DIGEST_MISMATCH`).
 * Returns a function that stops it.
 *
 * @example
 * ```ts
 * const stop = misrecordOutputs(liar);
 * ```
 */
export function misrecordOutputs(node: VerityNode): () => void {
  const log = node.context.log as { append: VerityNode['context']['log']['append'] };
  const honest = log.append;
  log.append = (record) => {
    const d = record.outputDigest;
    const flipped = `${d.slice(0, -1)}${d.endsWith('0') ? '1' : '0'}`;
    return honest.call(node.context.log, { ...record, outputDigest: flipped });
  };
  return () => {
    log.append = honest;
  };
}
