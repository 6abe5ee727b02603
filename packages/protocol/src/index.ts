/**
 * `@verity/protocol`: Verity's exact formats and their verification, pure and browser-safe
 * (no Node built-ins, no `Buffer`). The byte-level specification is docs/protocol.md; its place
 * among the packages, docs/architecture.md §1.
 *
 * - tensors: JSON forms, validation against signatures, canonical encoding and digest
 * - content IDs: CIDv1, UnixFS file CIDs as `ipfs add` computes them, RFC 8785 JSON, manifests
 * - records, the RFC 6962 Merkle log, C2SP signed notes and checkpoints
 * - receipts, bundles and `verifyBundle(bundle, trust)`
 *
 * @packageDocumentation
 */

export { AUDIT_SAMPLE_DOMAIN, auditSampled } from './audit-sample.js';
export { concatBytes, equalBytes, fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from './bytes.js';
export { canonicalize, canonicalJsonBytes, type JsonValue } from './canonical-json.js';
export {
  CAR_CONTENT_TYPE,
  CAR_CONTENT_TYPE_DUPS,
  type CarBlock,
  carHeader,
  carSectionPrefix,
  dagPbLinks,
  isDagPb,
  readCar,
} from './car.js';
export {
  type Checkpoint,
  formatCheckpoint,
  type OpenedCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from './checkpoint.js';
export {
  blockMatchesCid,
  type Cid,
  type CidCodec,
  CODEC_DAG_PB,
  CODEC_JSON,
  CODEC_RAW,
  cidForBytes,
  cidFromBytes,
  cidToBytes,
  createUnixfsHasher,
  decodeVarint,
  encodeVarint,
  formatCid,
  isCid,
  parseCid,
  UNIXFS_CHUNK_SIZE,
  UNIXFS_MAX_LINKS,
  type UnixfsBlock,
  type UnixfsCidOptions,
  type UnixfsDigest,
  type UnixfsHasher,
  type UnixfsHasherOptions,
  type UnixfsSource,
  unixfsCidOf,
} from './cid.js';
export {
  ALG_COSIGNATURE_V1,
  addCosignatures,
  COSIGNATURE_V1_HEADER,
  type Cosigner,
  cosignatureMessage,
  cosignatureTimestamp,
  createCosignatureVerifier,
  createCosigner,
  parseWitnessKey,
  parseWitnessPolicy,
  type VerifiedCosignature,
  verifyWitnessPolicy,
  type WitnessKey,
  type WitnessPolicy,
} from './cosignature.js';
export {
  type AsyncSignatureCheck,
  createPlatformEd25519Check,
  type Ed25519Platform,
  webCryptoEd25519,
} from './ed25519-platform.js';
export { ERROR_CODES, type ErrorCode, fail, isVerityError, VerityError, type VerityErrorOptions } from './errors.js';
export {
  addressFromPrivateKey,
  addressFromPublicKey,
  isAddress,
  keccak256,
  parseAddress,
  personalMessageHash,
  personalSign,
  recoverPersonalSigner,
  recoverSigner,
  toChecksumAddress,
} from './eth.js';
export { createSha256, type Sha256Stream, sha256, sha256Async } from './hash.js';
export {
  DEFAULT_MAX_INFER_HEADER_BYTES,
  type DecodeInferFrameOptions,
  decodeInferFrame,
  encodeInferFrame,
  INFER_FRAME_MAGIC,
  INFER_MEDIA_TYPE,
  type InferFrame,
} from './infer-frame.js';
export { drawJury, JURY_SEED_DOMAIN, type JuryCandidate, juryPool, jurySeed } from './jury.js';
export {
  assertParamsHonourRequest,
  LLM_ENDPOINTS,
  LLM_PARAM_NAMES,
  type LlmAssistantMessage,
  type LlmChatInput,
  type LlmChatOutput,
  type LlmCompletionInput,
  type LlmCompletionOutput,
  type LlmEndpoint,
  type LlmInput,
  type LlmMessage,
  type LlmOutput,
  type LlmParams,
  type LlmToolCall,
  llmChatInput,
  llmCompletionInput,
  llmInputDigest,
  llmOutputDigest,
  llmParamsDigest,
  parseLlmInput,
  parseLlmOutput,
  parseLlmParams,
} from './llm.js';
export {
  MANIFEST_LIMITS,
  MANIFEST_SCHEMA,
  type Manifest,
  type ManifestArtifact,
  type ManifestFormat,
  manifestBytes,
  manifestCid,
  parseManifest,
  type SignedManifest,
  signManifest,
  verifySignedManifest,
} from './manifest.js';
export { createMemoryLog, type MemoryLog } from './memory-log.js';
export {
  consistencyProofFromReader,
  createMemoryTree,
  EMPTY_ROOT,
  HASH_SIZE,
  hashChildren,
  hashLeaf,
  inclusionProofFromReader,
  type MemoryTree,
  type MerkleHashReader,
  rootFromInclusionProof,
  rootFromReader,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
export { compareVersions, isModelName, isModelVersion, type ModelRef, parseModelRef } from './model-ref.js';
export {
  createEd25519Signer,
  createEd25519Verifier,
  decodeVerifierKey,
  encodeSignerKey,
  encodeVerifierKey,
  generateNoteKey,
  type Note,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  noteKeyId,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierPublicKey,
} from './note.js';
export {
  type AuthorizationKind,
  authorizationDigest,
  authorizationKind,
  authorizationSigner,
  chainIdOfNetwork,
  checkRecordPayment,
  decodePaymentHeader,
  encodePaymentHeader,
  isAtomicAmount,
  MAX_PAYMENT_HEADER,
  meteredNonce,
  PAYMENT_HEADERS,
  PAYMENT_SCHEMES,
  type PaidReceipt,
  type PaymentAuthorizationPayload,
  type PaymentCommitment,
  type PaymentExtra,
  type PaymentPayload,
  type PaymentPolicy,
  type PaymentRequired,
  type PaymentRequirements,
  type PaymentResource,
  type PaymentScheme,
  parseAuthorization,
  parsePaymentCommitment,
  parsePaymentPayload,
  parsePaymentRequired,
  parsePaymentRequirements,
  parseReceiptPayment,
  parseSettleResponse,
  paymentDigest,
  paymentDomain,
  quorumCharges,
  type ReceiptPayment,
  receiptPaymentOf,
  type SettleResponse,
  type TokenDomain,
  type TransferAuthorization,
  X402_VERSION,
} from './payment.js';
export {
  ONNX_PROFILES,
  type OnnxProfile,
  PORTABLE_RUNTIME,
  type PortableOrtEnv,
  type PortableSessionOptions,
  portableSessionOptions,
} from './portable.js';
export {
  QUORUM_CAPABILITY,
  QUORUM_MAX_K,
  QUORUM_MAX_SKIPS,
  QUORUM_NONCE,
  QUORUM_SEED_DOMAIN,
  quorumCandidates,
  quorumSeed,
  rankByStake,
  rankQuorum,
} from './quorum.js';
export {
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  bundleFromJson,
  type ConsistencyEvidence,
  type NodeEntry,
  parseBundle,
  parseReceipt,
  type QuorumAsked,
  type QuorumEvidence,
  type Receipt,
} from './receipt.js';
export {
  decodeRecord,
  encodeRecord,
  type InferenceRecord,
  paramsDigest,
  parseRecord,
  RECORD_KINDS,
  RECORD_MODES,
  RECORD_VERSION,
  type RecordKind,
  type RecordMode,
  type RuntimeInfo,
  recordLeafHash,
} from './record.js';
export { isActiveNode, type RegistryNode, type RegistrySnapshot } from './registry.js';
export {
  NODE_REGISTRY_SLOTS,
  type PinnedBlock,
  parseRegistryProof,
  REGISTRY_PROOF_LIMITS,
  type RegistryDeployment,
  type RegistryProofEvidence,
  type RegistryStorageReader,
  readNodeRegistryStorage,
  registryLogKey,
  registryProofBlock,
  registrySlotKey,
  registrySnapshotFromProof,
  type StorageProofEvidence,
  type StorageRead,
} from './registry-proof.js';
export { compareHeads, type ObservedHead, type SplitViewEvidence } from './split-view.js';
export {
  createTensor,
  DTYPE_CODES,
  DTYPES,
  type DType,
  isDType,
  type Tensor,
  type TensorData,
  type TensorMap,
  type TensorOf,
} from './tensor.js';
export { decodeTensors, encodeTensors, tensorsDigest } from './tensor-encoding.js';
export {
  type TensorJson,
  type TensorJsonBase64,
  type TensorJsonFull,
  type TensorsToJsonOptions,
  tensorFromJson,
  tensorsFromJson,
  tensorsToExactJson,
  tensorsToJson,
  tensorToJson,
} from './tensor-json.js';
export {
  DEFAULT_TENSOR_LIMITS,
  type TensorLimits,
  type TensorSignature,
  validateTensors,
} from './tensor-signature.js';
export {
  createVerifyCache,
  primeVerifyCache,
  type Trust,
  type TrustedAnchor,
  type TrustedNode,
  type VerifiedContent,
  type VerifiedReceipt,
  type VerifyCache,
  type VerifyCacheOptions,
  type VerifyOptions,
  type VerifyResult,
  verifyBundle,
  verifyReceipt,
} from './verify.js';
export { type BundleChecks, type CheckId, type CheckRow, verifyBundleChecks } from './verify-checks.js';
export {
  ADD_CHECKPOINT_MAX_PROOF,
  type AddCheckpointRequest,
  checkAddCheckpoint,
  formatAddCheckpoint,
  parseAddCheckpoint,
  peekCheckpoint,
  TLOG_SIZE_CONTENT_TYPE,
  type WitnessedHead,
} from './witness.js';
export {
  checkZkSignals,
  decodeZkSignal,
  encodeZkSignal,
  isSignedZkManifest,
  isZkBundle,
  isZkFieldElement,
  parseZkAudit,
  parseZkEvidence,
  ZK_FIELD_PRIME,
  ZK_METADATA,
  ZK_RUNTIME,
  ZK_SETUPS,
  type ZkAudit,
  type ZkEvidence,
  type ZkFacts,
  type ZkGroth16Proof,
  type ZkIo,
  type ZkPhase1,
  type ZkPhase2,
  type ZkSetup,
  zkAuditMismatch,
  zkFacts,
  zkInputSignals,
  zkMetadata,
  zkOutputTensors,
  zkQuantize,
  zkVkDigest,
} from './zk.js';
export {
  checkZkBinding,
  ZK_BINDING_LAYOUT_VERSION,
  type ZkBinding,
  zkBindingLayout,
  zkBindingMismatch,
} from './zk-binding.js';
export { ZK_BASE_FIELD, ZK_MAX_PUBLIC, zkManifestDigest, zkVkEncoding, zkVkKey } from './zk-verifier.js';
