/**
 * `@verity/sdk`: a client for Verity nodes that verifies every answer before returning it.
 * Works in Node and in browsers (fetch, WebCrypto-free pure verification). Trust is gathered by
 * actions of its own and verification is a pure call on it (docs/architecture.md §9).
 *
 * @example
 * ```ts
 * import { createClient } from '@verity/sdk';
 * const verity = createClient({ url: 'http://127.0.0.1:8700', chain: { rpcUrl, deployment } });
 * const { output, receipt } = await verity.infer({ model: 'iris@1.0.0', input: { x: [[5.1, 3.5, 1.4, 0.2]] } });
 * // No URL: the client finds the registered nodes itself and routes each call (answer.route says where).
 * const network = createClient({ chain: { rpcUrl, deployment } });
 * ```
 *
 * @packageDocumentation
 */

import { isVerityError } from '@verity/protocol';
import { type AuditStatus, type AuditStatusOptions, auditStatus } from './actions/audit-status.js';
import { type ChatParams, chat } from './actions/chat.js';
import { type ChatQuorumParams, type ChatQuorumResult, chatQuorum } from './actions/chat-quorum.js';
import { type InferParams, type InferResult, infer } from './actions/infer.js';
import { getModel, listModels, type ModelInfo, type PushModelParams, pushModel } from './actions/models.js';
import { gatherTrust, getNodeInfo, type NodeInfo } from './actions/node-info.js';
import { getReceipt, verify } from './actions/receipts.js';
import { type Route, routed } from './actions/routed.js';
import { type ClientBase, type ClientOptions, createClientBase } from './client.js';

export { type AnchorSource, anchorTrust, linkToAnchors, withAnchors } from './actions/anchors.js';
export {
  type AuditDispute,
  type AuditStatus,
  type AuditStatusOptions,
  type AuditStatusSource,
  auditStatus,
  DEFAULT_ANCHOR_TOLERANCE_SECONDS,
} from './actions/audit-status.js';
export {
  type ChatParams,
  chat,
  chatCompletionFromChunks,
  messageOf,
  type VerifiedLlmAnswer,
  type VerifyLlmOptions,
  type VerityField,
  verifyChatCompletion,
  verifyCompletion,
} from './actions/chat.js';
export { type ChatQuorumParams, type ChatQuorumResult, chatQuorum } from './actions/chat-quorum.js';
export { type InferParams, type InferResult, infer } from './actions/infer.js';
export { getModel, listModels, type ModelInfo, type PushModelParams, pushModel } from './actions/models.js';
export {
  createMonitorState,
  type MonitorEvent,
  type MonitorOptions,
  type MonitorState,
  type MonitorStateJson,
  monitorRound,
  monitorStateFromJson,
  monitorStateToJson,
} from './actions/monitor.js';
export { bundleNodes, gatherTrust, getNodeInfo, type NodeInfo } from './actions/node-info.js';
export { getReceipt, verify } from './actions/receipts.js';
export {
  assertDeploymentChain,
  bundleRegistryBlock,
  chainRegistrySnapshot,
  type RegistryOptions,
  registrySnapshot,
  trustFromRegistry,
} from './actions/registry.js';
export {
  type OfflineTrustOptions,
  type RegistryProofSource,
  trustFromRegistryProof,
  verifyBundleOffline,
  withRegistryProof,
} from './actions/registry-proof.js';
export { isNodeFailure, isVerificationFailure, type Route, type RoutedOptions, routed } from './actions/routed.js';
export {
  releaseZk,
  type VerifyZkOptions,
  verifyZkBundle,
  type ZkTrustBasis,
  type ZkTrustOptions,
  type ZkVerifyResult,
} from './actions/zk.js';
export { type VerifyZkOnChainParams, verifyZkProofOnChain } from './actions/zk-onchain.js';
export { type ChainOptions, type ClientBase, type ClientChain, type ClientOptions, chainOf } from './client.js';
export {
  createGateway,
  type Gateway,
  type GatewayOptions,
  type GatewayRequest,
  type GatewayResponse,
} from './gateway.js';
export {
  byPriceWithinLatency,
  createNetwork,
  type ModelPrice,
  type Network,
  type NetworkNode,
  type NetworkNodeJson,
  type NetworkOptions,
  priceOf,
} from './network.js';
export {
  localDataDir,
  localDeploymentFile,
  type NamedNetworkChain,
  NETWORK_NAMES,
  type NetworkName,
  type NetworkNameOptions,
  networkChain,
} from './networks.js';
export {
  type AssetPin,
  answerPayment,
  askPayers,
  chainPaymentPolicy,
  checkPaymentCommitment,
  checkPaymentSettled,
  createPayer,
  MeteredEvmScheme,
  type Payer,
  type PaymentMade,
  type PaymentOptions,
  payingFetch,
  paymentOf,
  type RefundOn,
  type SettlementChain,
  settledPayment,
  type VerifiedPayment,
  verifyWithPayers,
  type WireAuthorization,
} from './payment.js';

/** A client: its options bound to every action. */
export interface Client {
  readonly base: ClientBase;
  /** Runs a model and verifies the answer; without a `url`, on the best node (`route` says which and why). */
  infer(params: InferParams): Promise<InferResult & { route?: Route }>;
  /** A streamed, verified chat completion (see {@link chat}); routed as `infer` without a `url`. */
  chat(params: ChatParams): Promise<Awaited<ReturnType<typeof chat>> & { route?: Route }>;
  /** A chat answer from a quorum of language-model nodes, verified (see {@link chatQuorum}). */
  chatQuorum(params: ChatQuorumParams): Promise<ChatQuorumResult>;
  models(): Promise<ModelInfo[]>;
  model(ref: string): Promise<ModelInfo>;
  pushModel(params: PushModelParams): Promise<ModelInfo>;
  /**
   * The receipt of an earlier request (not verified here: see `verify`). Without a `url`, it is
   * asked of `node` first (an address or URL: the `route.node` that served the request), then of
   * the other nodes; `RECEIPT_NOT_FOUND` only when none holds it.
   */
  getReceipt(requestId: string, options?: { node?: string }): Promise<Awaited<ReturnType<typeof getReceipt>>>;
  verify(...args: Parameters<typeof verify> extends [ClientBase, ...infer R] ? R : never): ReturnType<typeof verify>;
  node(): Promise<NodeInfo>;
  trust(): ReturnType<typeof gatherTrust>;
  /**
   * Where an audited answer stands on the client's chain: pending, final, disputed or refuted
   * (see {@link auditStatus}; the client's node gives the inclusion proof).
   */
  auditStatus(receipt: Parameters<typeof auditStatus>[1], options?: AuditStatusOptions): Promise<AuditStatus>;
  /** Stops the network's probes (a client without a `url`); a no-op otherwise. */
  close(): void;
}

/**
 * Creates a client for a node, or (given only a chain) for the whole network: the registered,
 * active nodes, found in `NodeRegistry`, each call routed to the best one for its model and
 * failed over to the next, every answer verified against the registry before it is returned.
 *
 * @example
 * ```ts
 * const verity = createClient({ url: 'http://127.0.0.1:8700', apiKey });
 * await verity.pushModel({ name: 'iris', data: bytes });
 * const network = createClient({ chain: { rpcUrl, deployment } });
 * const { output, route } = await network.infer({ model: 'iris@1.0.0', input: { x: [[5.1, 3.5, 1.4, 0.2]] } });
 * network.close();
 * ```
 */
export function createClient(options: ClientOptions): Client {
  const base = createClientBase(options);
  const network = base.network;
  return {
    base,
    infer: async (params) => {
      if (network === undefined) return infer(base, params);
      const { value, route } = await routed(base, { model: params.model, ...signalOf(params) }, (node, signal) =>
        infer(node, { ...params, signal }),
      );
      return { ...value, route };
    },
    chat: async (params) => {
      if (network === undefined) return chat(base, params);
      // A stream that has passed text to the caller (`onText`) cannot start again on another node.
      let passed = false;
      const onText = params.onText;
      const { value, route } = await routed(
        base,
        { model: String(params.request.model), ...signalOf(params), retryable: () => !passed },
        (node, signal) =>
          chat(node, {
            ...params,
            signal,
            ...(onText === undefined
              ? {}
              : {
                  onText: (t: string) => {
                    passed = true;
                    onText(t);
                  },
                }),
          }),
      );
      return { ...value, route };
    },
    chatQuorum: (params) => chatQuorum(base, params),
    models: () => listModels(base),
    model: (ref) => getModel(base, ref),
    pushModel: (params) => pushModel(base, params),
    getReceipt: async (requestId, options = {}) => {
      if (network === undefined) return getReceipt(base, requestId);
      // A receipt lives on the node that served its request: that one first, then the others.
      const { value } = await routed(
        base,
        {
          passOver: (e) => isVerityError(e, 'RECEIPT_NOT_FOUND'),
          ...(options.node === undefined ? {} : { prefer: options.node }),
        },
        (node, signal) => getReceipt(node, requestId, { signal }),
      );
      return value;
    },
    verify: (bundle, opts) => verify(base, bundle, opts),
    node: () => getNodeInfo(base),
    trust: () => gatherTrust(base),
    auditStatus: (receipt, opts) => auditStatus(base, receipt, opts),
    close: () => network?.close(),
  };
}

function signalOf(params: { readonly signal?: AbortSignal }): { signal?: AbortSignal } {
  return params.signal === undefined ? {} : { signal: params.signal };
}
