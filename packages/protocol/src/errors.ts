/**
 * One error type for all of Verity, with stable codes.
 *
 * Callers, tests and the HTTP layer compare `code`, never `message` text, and never `instanceof`
 * across package boundaries (two copies of this package may be loaded): use {@link isVerityError}.
 *
 * @packageDocumentation
 */

/** Every stable error code, grouped by the format it belongs to. Codes are never renamed. */
export const ERROR_CODES = [
  // generic input handling
  'INVALID_ARGUMENT',
  'JSON_INVALID',
  'ENCODING_INVALID',
  // tensors (docs/protocol.md §2)
  'TENSOR_INVALID',
  'TENSOR_DTYPE_UNKNOWN',
  'TENSOR_DTYPE_MISMATCH',
  'TENSOR_SHAPE_MISMATCH',
  'TENSOR_DATA_INVALID',
  'TENSOR_MISSING',
  'TENSOR_UNEXPECTED',
  'TENSOR_TOO_LARGE',
  'TENSOR_ENCODING_INVALID',
  // content IDs, canonical JSON and manifests (§3, §4)
  'CID_INVALID',
  'CANONICAL_JSON_INVALID',
  'MANIFEST_INVALID',
  'MANIFEST_SIGNATURE_INVALID',
  // inference record (§5)
  'RECORD_INVALID',
  'RECORD_ENCODING_INVALID',
  // Merkle log (§6)
  'MERKLE_INDEX_OUT_OF_RANGE',
  'MERKLE_PROOF_MALFORMED',
  'INCLUSION_PROOF_INVALID',
  'CONSISTENCY_PROOF_INVALID',
  // signed notes and checkpoints (§7)
  'NOTE_MALFORMED',
  'NOTE_KEY_INVALID',
  'NOTE_SIGNATURE_INVALID',
  'NOTE_UNKNOWN_KEY',
  'CHECKPOINT_MALFORMED',
  'CHECKPOINT_ORIGIN_MISMATCH',
  // receipts and bundles (§8)
  'RECEIPT_MALFORMED',
  'RECEIPT_LEAF_INDEX_OUT_OF_RANGE',
  'RECEIPT_INCLUSION_INVALID',
  'RECEIPT_NODE_UNKNOWN',
  'RECEIPT_NODE_MISMATCH',
  'RECEIPT_INPUT_DIGEST_MISMATCH',
  'RECEIPT_OUTPUT_DIGEST_MISMATCH',
  'BUNDLE_MALFORMED',
  'BUNDLE_VERSION_UNSUPPORTED',
  'BUNDLE_EMPTY',
  'BUNDLE_RECEIPTS_INCONSISTENT',
  'BUNDLE_CONSISTENCY_INVALID',
  'BUNDLE_ANCHOR_MISMATCH',
  'RECEIPT_PARAMS_MISMATCH',
  // LLM requests (docs/protocol.md §10)
  'LLM_INPUT_INVALID',
  'CONTEXT_LENGTH_EXCEEDED',
  'JSON_SCHEMA_INVALID',
  // the node and its HTTP API (docs/api.md)
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'UNAUTHORIZED',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'NOT_ACCEPTABLE',
  'REQUEST_TIMEOUT',
  'RATE_LIMITED',
  'QUEUE_FULL',
  'OVERLOADED',
  'SHUTTING_DOWN',
  'INTERNAL',
  'NETWORK_ERROR',
  'RESPONSE_INVALID',
  'MODEL_NOT_FOUND',
  'MODEL_INVALID',
  'MODEL_TOO_LARGE',
  'MODEL_CONFLICT',
  'MODEL_NAME_INVALID',
  'UPLOAD_SIZE_MISMATCH',
  'BLOCK_NOT_FOUND',
  'RECEIPT_NOT_FOUND',
  'INFERENCE_FAILED',
  'INFERENCE_TIMEOUT',
  'QUORUM_DISAGREEMENT',
  'QUORUM_UNAVAILABLE',
  'LOG_CORRUPT',
  'CONFIG_INVALID',
  'KEYSTORE_INVALID',
  // the chain (packages/contracts)
  'CHAIN_REVERTED',
  'CHAIN_UNAVAILABLE',
  'STAKE_TOO_LOW',
  'NODE_NOT_ACTIVE',
  'ANCHOR_NOT_INCREASING',
  // mode zk (docs/design.md §2.6, packages/zk)
  'ZK_MODEL_UNSUPPORTED',
  'ZK_PROOF_INVALID',
  'ZK_PUBLIC_INPUT_MISMATCH',
  'ZK_SETUP_UNTRUSTED',
  'ZK_VK_MISMATCH',
  // node security (issue 10: names through the registry, outbound URL policy, request ids)
  'MODEL_NOT_REGISTERED',
  'REPLICA_QUOTA_EXCEEDED',
  'ENDPOINT_REFUSED',
  'REQUEST_ID_INVALID',
  'REQUEST_ID_TAKEN',
  // quorum and registry-rooted trust (docs/protocol.md §9, §11)
  'RECEIPT_NODE_UNREGISTERED',
  'RECEIPT_NODE_INACTIVE',
  'RECEIPT_NODE_UNSTAKED',
  'RECEIPT_NODE_EXITED',
  'RECEIPT_NODE_KEY_INVALID',
  'BUNDLE_LOG_KEY_REUSED',
  'BUNDLE_ORIGIN_REUSED',
  'QUORUM_SELECTION_MISSING',
  'QUORUM_BLOCK_MISMATCH',
  'QUORUM_SEED_MISMATCH',
  'QUORUM_MODE_INVALID',
  'QUORUM_TOO_FEW',
  'QUORUM_DEPTH_EXCEEDED',
  'QUORUM_SELECTION_INVALID',
  'QUORUM_SKIPPED_MISMATCH',
  'QUORUM_DISSENT_INVALID',
  'QUORUM_BLOCK_UNKNOWN',
  'QUORUM_BLOCK_STALE',
  // structured outputs (docs/api.md): a JSON schema the grammar cannot enforce exactly
  'JSON_SCHEMA_UNSUPPORTED',
  // offline registry proofs: EIP-1186 proofs of NodeRegistry in a bundle (docs/protocol.md §13)
  'REGISTRY_PROOF_MALFORMED',
  'REGISTRY_PROOF_MISSING',
  'REGISTRY_DEPLOYMENT_MISMATCH',
  'REGISTRY_HEADER_MISMATCH',
  'REGISTRY_BLOCK_MISMATCH',
  'REGISTRY_ACCOUNT_PROOF_INVALID',
  'REGISTRY_STORAGE_PROOF_INVALID',
  'REGISTRY_STORAGE_SLOT_MISSING',
  'REGISTRY_ENTRY_INVALID',
  // trust from the chain in the SDK and CLI (issue 10.1): a client with no root of trust; a node's
  // manifest for a name that is not what ModelRegistry maps the name to
  'TRUST_UNCONFIGURED',
  'MODEL_REGISTRY_MISMATCH',
  // zk trust (verify): a zk record without its zk evidence (no downgrade to a signed answer); a
  // verification key no audit the verifier accepts vouches for; a zk manifest without its
  // publisher's signature
  'ZK_EVIDENCE_MISSING',
  'ZK_VK_UNAUDITED',
  'ZK_MANIFEST_UNSIGNED',
  // zk trust (ceremony): a ceremony's file does not verify, differs from its on-chain record, has
  // no beacon yet; or the ceremony's state refuses a step (id taken, already contributed, closed,
  // already finalized, beacon block too old) — docs/design.md §2.6, packages/zk/README.md
  'ZK_CEREMONY_INVALID',
  'ZK_TRANSCRIPT_MISMATCH',
  'ZK_CEREMONY_UNFINISHED',
  'ZK_CEREMONY_CONFLICT',
  // zk trust (onchain): a verifier contract whose code is not the one generated from the key;
  // no verifier registered for a key
  'ZK_VERIFIER_CODE_MISMATCH',
  'ZK_VERIFIER_UNREGISTERED',
  // zk trust (node): a proving key above the node's memory bound; a replica's zkey or circuit
  // that is not what the signed manifest commits to; a contribution the node will not make
  'ZK_KEY_TOO_LARGE',
  'ZK_CIRCUIT_MISMATCH',
  'ZK_CONTRIBUTION_REFUSED',
  // anchor: a log anchor whose consistency proof from the node's previous anchor does not verify
  // on chain (LogAnchor `InconsistentAnchor`, docs/protocol.md)
  'ANCHOR_INCONSISTENT',
  // audited: no kept payload for this request id (not audited, unknown, or its window closed)
  'PAYLOAD_NOT_FOUND',
  // witnesses (C2SP tlog-witness / tlog-cosignature, docs/protocol.md "Witnesses"): a cosignature
  // line that is no timestamped Ed25519 signature, or whose signature does not verify; a witness
  // policy that is malformed, or not met by the checkpoint's cosignatures; add-checkpoint refusals
  // (400 malformed / old size above the checkpoint's, 404 unknown log, 403 unsigned / bad log
  // signature, 409 old size not the latest cosigned, 422 not consistent); a split view seen by
  // `verity monitor` (two signed heads that cannot both be the log's)
  'COSIGNATURE_MALFORMED',
  'COSIGNATURE_INVALID',
  'WITNESS_POLICY_INVALID',
  'WITNESS_QUORUM_UNMET',
  'WITNESS_REQUEST_MALFORMED',
  'WITNESS_UNKNOWN_LOG',
  'WITNESS_LOG_UNSIGNED',
  'WITNESS_LOG_SIGNATURE_INVALID',
  'WITNESS_OLD_SIZE_INVALID',
  'WITNESS_OLD_SIZE_CONFLICT',
  'WITNESS_CONSISTENCY_INVALID',
  'SPLIT_VIEW',
  // disputes (contracts/Disputes.sol): each refusal of a challenge, a vote or a resolution
  'DISPUTE_RECORD_INVALID',
  'DISPUTE_NODE_NOT_SLASHABLE',
  'DISPUTE_ROOT_NOT_ANCHORED',
  'DISPUTE_INCLUSION_INVALID',
  'DISPUTE_INPUT_MISMATCH',
  'DISPUTE_CLAIM_INVALID',
  'DISPUTE_WINDOW_CLOSED',
  'DISPUTE_BOND_INVALID',
  'DISPUTE_CONFLICT',
  'DISPUTE_NOT_FOUND',
  'DISPUTE_WRONG_PHASE',
  'DISPUTE_POOL_MISMATCH',
  'DISPUTE_COMMITMENT_MISMATCH',
  'DISPUTE_NOT_JUROR',
  'DISPUTE_ALREADY_VOTED',
  'DISPUTE_VOTING_CLOSED',
  'DISPUTE_VOTING_OPEN',
  // audit status (sdk auditStatus, docs/protocol.md §16): a record whose stated time is earlier
  // than its first covering anchor allows (backdated, or anchored too late to be challenged in
  // its window); a first covering anchor whose root does not include the record
  'AUDIT_TIMESTAMP_STALE',
  'AUDIT_ANCHOR_INVALID',
  // audit rate / anchor times (docs/protocol.md §15.2, §15.8, §16): a challenge proven against
  // another anchor than the first that covers the record (its window runs from that one); the
  // seed block of the on-chain audit sample not mined yet or older than 256 blocks; an audited
  // record its node did not anchor within the tolerance (nobody can challenge it)
  'DISPUTE_ANCHOR_NOT_FIRST',
  'AUDIT_SEED_UNAVAILABLE',
  'AUDIT_NOT_ANCHORED',
  // zk disputes (docs/protocol.md §12 "The zk binding", §15.7): a model's binding on chain
  // (ZkVerifierRegistry.bindModel) and the settlement of a zk record's dispute by a proof
  // (Disputes.settleByProof)
  'ZK_BINDING_INVALID',
  'ZK_BINDING_CONFLICT',
  'ZK_BINDING_MISMATCH',
  'DISPUTE_ZK_NOT_ZK_RECORD',
  'DISPUTE_ZK_UNBOUND',
  'DISPUTE_ZK_INPUT_MISMATCH',
  'DISPUTE_ZK_SIGNALS_INVALID',
  'DISPUTE_ZK_PROOF_INVALID',
  // portable profile (docs/api.md, POST /v1/infer; docs/protocol.md §11.3): a request for an
  // execution profile the model's manifest does not list / that this node does not run; a quorum
  // whose members ran different runtimes (id, version, profile), which may give different bits
  'PROFILE_NOT_LISTED',
  'PROFILE_UNSUPPORTED',
  'QUORUM_RUNTIME_MISMATCH',
  // binary tensors (docs/protocol.md §2.6): a body sent as a binary inference frame that is not
  // one (magic, truncated, header not a JSON object); a frame header above the bound
  'INFER_FRAME_INVALID',
  'INFER_HEADER_TOO_LARGE',
  // gateway (issue 16): no registered node could serve a verified answer (every one unreachable,
  // failing, or refused); a streamed answer whose receipt did not verify after its tokens were passed
  'NO_NODE_AVAILABLE',
  'ANSWER_UNVERIFIED',
  // gw (issue 16): a network name whose chain is not on this machine (`network: 'local'` with no
  // `verity up` deployment file in the data directory)
  'NETWORK_NOT_FOUND',
  // payments (issue 15, docs/api.md "Payments", docs/protocol.md §17): a paid route without a
  // payment, a malformed one, one for less than the price, outside its validity window, already
  // used (on chain, or for another request), for another chain, token or payee, from an account
  // without the funds, not signed by its payer; a settlement that failed on chain; on the client,
  // a price above the caller's budget; in a receipt, a payment that does not match its record
  'PAYMENT_REQUIRED',
  'PAYMENT_INVALID',
  'PAYMENT_UNDERPAID',
  'PAYMENT_EXPIRED',
  'PAYMENT_REPLAYED',
  'PAYMENT_WRONG_NETWORK',
  'PAYMENT_INSUFFICIENT_FUNDS',
  'PAYMENT_SIGNATURE_INVALID',
  'PAYMENT_SETTLEMENT_FAILED',
  'PAYMENT_OVER_BUDGET',
  'RECEIPT_PAYMENT_MISMATCH',
  // payments, client side (payclient): a paid answer whose record does not commit to the
  // payment this client made (another authorization digest, another amount)
  'PAYMENT_NOT_COMMITTED',
  // paid quorum (issue 15): a paid quorum asked of a node outside its first k ranked nodes, whose
  // record could not commit to the caller's payment
  'QUORUM_PAID_COORDINATOR',
  // paysdk (issue 15, client-side payment safety): a 402 that names a token, chain or metered
  // settlement contract the payer did not pin (or a payer that pinned no token): nothing signed; a node's settlement that
  // claims to charge more than was authorized; with a chain, a paid receipt whose authorization
  // was never used on its token (committed to, not settled)
  'PAYMENT_ASSET_NOT_PINNED',
  'PAYMENT_OVERCHARGED',
  'PAYMENT_NOT_SETTLED',
  // paidllm (issue 15): a quorum bundle whose coordinator charged its caller more than its own
  // authorized share plus what its members charged (it kept members' unspent maxima)
  'QUORUM_CHARGE_EXCESS',
  // wallet (issue 15, contract-wallet payers in receipts): a receipt's payment signature does not
  // recover to its payer, so only the payer's code on the chain (ERC-1271 isValidSignature) can
  // vouch for it; a verifier with the chain asks it (a "no" is PAYMENT_SIGNATURE_INVALID)
  'PAYMENT_SIGNATURE_NEEDS_CHAIN',
] as const;

/** A stable error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Options for {@link VerityError}. */
export interface VerityErrorOptions {
  /** Structured, JSON-serialisable facts about the failure (field path, expected, actual…). */
  details?: Record<string, unknown>;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * The one error type of Verity.
 *
 * @example
 * ```ts
 * try { decodeRecord(bytes) } catch (e) { if (isVerityError(e) && e.code === 'RECORD_ENCODING_INVALID') … }
 * ```
 */
export class VerityError extends Error {
  override readonly name = 'VerityError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: VerityErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** The stable JSON form used in every HTTP error body: `{ code, message, details }`. */
  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * True for a {@link VerityError} from any copy of this package (compares `name` and `code`).
 *
 * @example
 * ```ts
 * if (isVerityError(err, 'NOTE_SIGNATURE_INVALID')) console.log('bad signature');
 * ```
 */
export function isVerityError(value: unknown, code?: ErrorCode): value is VerityError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { name?: unknown; code?: unknown };
  if (v.name !== 'VerityError' || typeof v.code !== 'string') return false;
  return code === undefined || v.code === code;
}

/** Throws a {@link VerityError}; handy in expressions. */
export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new VerityError(code, message, details === undefined ? {} : { details });
}
