/**
 * `@verity/contracts`: Verity's contracts (docs/design.md §2.7) — `NodeRegistry`, `ModelRegistry`,
 * `LogAnchor`, `Ceremony`, `ZkVerifierRegistry`, `Disputes`, and for paid answers `TestStablecoin`
 * and `MeteredSettlement` — as typed ABIs and bytecode for viem, deployment, and one small action
 * per call a node or client makes (`(client, params)`, as viem's actions). Browser-safe; a local anvil and
 * deployment files are in `@verity/contracts/node`.
 *
 * @packageDocumentation
 */
export {
  CAPABILITY_BITS,
  type Capability,
  capabilityBits,
  decodeCapabilities,
  encodeCapabilities,
} from './capabilities.js';
export {
  type CeremonyChainOptions,
  type CeremonyContribution,
  type CeremonyKind,
  type CeremonyRecord,
  ceremonyChain,
  closeCeremony,
  contributeToCeremony,
  finalizeCeremony,
  mayContributeToCeremony,
  type OpenCeremonyParams,
  openCeremony,
  readBeaconHash,
  readCeremony,
} from './ceremony.js';
export { chainError } from './chain-error.js';
export type { ChainClients, ReadOptions } from './clients.js';
export {
  type ContractAddresses,
  DEPLOYMENT_VERSION,
  type Deployment,
  type DeployOptions,
  type DeployParams,
  deployContracts,
  deploymentFromJson,
  deploymentToJson,
  verifyDeployment,
} from './deploy.js';
export {
  type ChallengeParams,
  challengeRecord,
  commitVote,
  DEFAULT_DISPUTE_PARAMS,
  DISPUTE_OUTCOMES,
  DISPUTE_PHASES,
  type DisputeOutcome,
  type DisputeParams,
  type DisputePhase,
  type DisputeResolution,
  type DisputeState,
  drawDisputeJury,
  getDispute,
  getDisputeCredit,
  getDisputeRules,
  getJuryPool,
  isAuditSampled,
  resolveDispute,
  revealVote,
  type VoteParams,
  voteCommitment,
  withdrawDisputeCredit,
} from './disputes.js';
export { ceremonyAbi, ceremonyBytecode } from './generated/ceremony.js';
export { disputesAbi, disputesBytecode } from './generated/disputes.js';
export { logAnchorAbi, logAnchorBytecode } from './generated/log-anchor.js';
export { meteredSettlementAbi, meteredSettlementBytecode } from './generated/metered-settlement.js';
export { modelRegistryAbi, modelRegistryBytecode } from './generated/model-registry.js';
export { nodeRegistryAbi, nodeRegistryBytecode } from './generated/node-registry.js';
export { testStablecoinAbi, testStablecoinBytecode } from './generated/test-stablecoin.js';
export { zkVerifierRegistryAbi, zkVerifierRegistryBytecode } from './generated/zk-verifier-registry.js';
export {
  type Anchor,
  type AnchorCheckpointParams,
  type AnchorEvent,
  type AnchoredTree,
  anchorCheckpoint,
  getAnchoredRoot,
  getAnchoredTree,
  getAnchorHistory,
  getFirstAnchor,
  getLatestAnchor,
} from './log-anchor.js';
export {
  deprecateModel,
  getModelOwner,
  listModelVersions,
  type ModelVersion,
  type PublishModelParams,
  publishModel,
  resolveModel,
  transferModelName,
} from './model-registry.js';
export {
  addStake,
  getNode,
  getRegistryRules,
  listNodes,
  NODE_STATUSES,
  type NodeAnnouncement,
  type NodeEntry,
  type NodeStatus,
  type RegisterNodeParams,
  type RegistryRules,
  readRegistrySnapshot,
  registerNode,
  registryNode,
  requestUnbond,
  type SlashNodeParams,
  type SyncNodeParams,
  type SyncNodeResult,
  slashNode,
  syncNodeRegistration,
  type UpdateNodeParams,
  updateNode,
  withdrawStake,
} from './node-registry.js';
export {
  type AuthorizationKind,
  type AuthorizationOutcome,
  authorizationOutcome,
  authorizationUsed,
  type BatchSettlement,
  deployPaymentContracts,
  erc1271Valid,
  getTokenDomain,
  meteredNonce,
  mintTestTokens,
  type PaymentContracts,
  randomBytes32,
  SETTLEMENT_LOOKBACK_BLOCKS,
  type SettlementItem,
  settleExact,
  settleMany,
  settleMetered,
  signTransferAuthorization,
  simulateSettlement,
  type TokenDomain,
  type TransferAuthorization,
  tokenBalance,
  transferAuthorizationDigest,
} from './payments.js';
export {
  encodeBlockHeader,
  type GetRegistryProofParams,
  getRegistryProof,
  type RpcBlock,
} from './registry-proof.js';
export {
  type ProofSettlement,
  type SettleByProofParams,
  settleDisputeByProof,
  type ZkProofCall,
} from './zk-disputes.js';
export {
  attestZkAudit,
  type BindZkModelParams,
  bindZkModel,
  deployZkVerifier,
  getZkBinding,
  readZkAttestation,
  registerZkVerifier,
  ZK_VERIFIER_TEMPLATE,
  zkVerifierAbi,
  zkVerifierCode,
  zkVerifierCreationCode,
  zkVerifierOf,
} from './zk-verifiers.js';
