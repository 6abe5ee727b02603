/**
 * `@verity/node`: the Verity daemon — model store, runtimes, executor, signed log and HTTP API
 * (docs/architecture.md §2–§8).
 *
 * @packageDocumentation
 */
export { type ConfigInput, DEFAULT_CONFIG, loadConfig, type NodeConfig, parsePrices } from './config.js';
export {
  type AuditFinding,
  type AuditOptions,
  type AuditReport,
  auditNodes,
  localReexecutor,
  type Reexecute,
} from './disputes/auditor.js';
export { createExecutor, type Executor } from './executor.js';
export { createFastSigner } from './fast-crypto.js';
export { keystorePath, type NodeKeys, openKeystore } from './keys.js';
export { entriesPath, type NodeLog, type OpenLogOptions, openLog, parseTilePath, tilePath } from './log/index.js';
export { createRuntimes, type StartNodeOptions, startNode, type VerityNode } from './node.js';
export { fetchModel } from './peers/fetch-model.js';
export { readBounded } from './peers/fetch-zkey.js';
export { runBatched } from './runtimes/batch.js';
export { createOnnxRuntime } from './runtimes/onnx.js';
export { createPortableRuntime } from './runtimes/portable.js';
export type { LoadedModel, Runtime } from './runtimes/runtime.js';
export { openModelStore } from './store/index.js';
export { readTrustedCeremony } from './zk-ceremony.js';
export { createZkService, type ZkService, type ZkServiceDeps } from './zk-service.js';
