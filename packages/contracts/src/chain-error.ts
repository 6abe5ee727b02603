/**
 * Errors from the chain, as `VerityError`s with stable codes.
 *
 * A contract's custom error (e.g. `StakeTooLow`) becomes `details.revert` with its arguments in
 * `details.args`, so callers branch on `code` and, for chain-specific cases, on `details.revert`;
 * never on viem's message text.
 */
import { type ErrorCode, isVerityError, VerityError } from '@verity/protocol';
import {
  BaseError,
  ContractFunctionRevertedError,
  HttpRequestError,
  SocketClosedError,
  TimeoutError,
  WebSocketRequestError,
} from 'viem';

/**
 * Custom errors with a code of their own or the same meaning as an existing one. Everything else
 * a contract reverts with is `CHAIN_REVERTED` (the transaction asked for something the rules refuse).
 */
const REVERT_CODES: Readonly<Record<string, ErrorCode>> = {
  NameInvalid: 'MODEL_NAME_INVALID',
  VersionInvalid: 'MODEL_NAME_INVALID',
  CidInvalid: 'CID_INVALID',
  VersionExists: 'MODEL_CONFLICT',
  UnknownVersion: 'MODEL_NOT_FOUND',
  NotNameOwner: 'UNAUTHORIZED',
  NotSlasher: 'UNAUTHORIZED',
  NodeNotActive: 'NODE_NOT_ACTIVE',
  NotRegistered: 'NODE_NOT_ACTIVE',
  StakeTooLow: 'STAKE_TOO_LOW',
  TreeSizeNotIncreasing: 'ANCHOR_NOT_INCREASING',
  InconsistentAnchor: 'ANCHOR_INCONSISTENT',
  // Ceremony (contracts/Ceremony.sol): each refusal its own revert name in details.revert.
  CeremonyExists: 'ZK_CEREMONY_CONFLICT',
  UnknownCeremony: 'NOT_FOUND',
  KindInvalid: 'INVALID_ARGUMENT',
  HashInvalid: 'INVALID_ARGUMENT',
  NotContributor: 'UNAUTHORIZED',
  NotOpener: 'UNAUTHORIZED',
  AlreadyContributed: 'ZK_CEREMONY_CONFLICT',
  HeadMismatch: 'ZK_TRANSCRIPT_MISMATCH',
  ContributionsClosed: 'ZK_CEREMONY_CONFLICT',
  NoContributions: 'ZK_CEREMONY_UNFINISHED',
  NotClosed: 'ZK_CEREMONY_UNFINISHED',
  BeaconNotMined: 'ZK_CEREMONY_UNFINISHED',
  BeaconExpired: 'ZK_CEREMONY_CONFLICT',
  AlreadyFinalized: 'ZK_CEREMONY_CONFLICT',
  VerifierCodeMismatch: 'ZK_VERIFIER_CODE_MISMATCH',
  VerificationKeyMalformed: 'ZK_VERIFIER_CODE_MISMATCH',
  AttestationInvalid: 'INVALID_ARGUMENT',
  // Disputes (contracts/Disputes.sol).
  RecordMalformed: 'DISPUTE_RECORD_INVALID',
  NodeNotSlashable: 'DISPUTE_NODE_NOT_SLASHABLE',
  RootNotAnchored: 'DISPUTE_ROOT_NOT_ANCHORED',
  InclusionInvalid: 'DISPUTE_INCLUSION_INVALID',
  InputDigestMismatch: 'DISPUTE_INPUT_MISMATCH',
  ClaimMatchesRecord: 'DISPUTE_CLAIM_INVALID',
  ChallengeWindowClosed: 'DISPUTE_WINDOW_CLOSED',
  BondMismatch: 'DISPUTE_BOND_INVALID',
  RecordUnderDispute: 'DISPUTE_CONFLICT',
  RecordAlreadySlashed: 'DISPUTE_CONFLICT',
  UnknownDispute: 'DISPUTE_NOT_FOUND',
  WrongPhase: 'DISPUTE_WRONG_PHASE',
  DrawTooEarly: 'DISPUTE_WRONG_PHASE',
  PoolMismatch: 'DISPUTE_POOL_MISMATCH',
  NotCommitted: 'DISPUTE_COMMITMENT_MISMATCH',
  CommitmentMismatch: 'DISPUTE_COMMITMENT_MISMATCH',
  NotJuror: 'DISPUTE_NOT_JUROR',
  AlreadyVoted: 'DISPUTE_ALREADY_VOTED',
  VotingClosed: 'DISPUTE_VOTING_CLOSED',
  VotingOpen: 'DISPUTE_VOTING_OPEN',
  NotRegistrySlasher: 'UNAUTHORIZED',
  ParamsInvalid: 'INVALID_ARGUMENT',
  AnchorNotFirst: 'DISPUTE_ANCHOR_NOT_FIRST',
  SeedUnavailable: 'AUDIT_SEED_UNAVAILABLE',
  // zk bindings (ZkVerifierRegistry.bindModel) and settlement by proof (Disputes.settleByProof).
  NotModelPublisher: 'UNAUTHORIZED',
  ManifestDigestMismatch: 'ZK_BINDING_INVALID',
  ZkLayoutMalformed: 'ZK_BINDING_INVALID',
  LayoutMismatch: 'ZK_BINDING_INVALID',
  VerifierUnregistered: 'ZK_VERIFIER_UNREGISTERED',
  BindingExists: 'ZK_BINDING_CONFLICT',
  RecordNotDisputed: 'DISPUTE_RECORD_INVALID',
  NotZkRecord: 'DISPUTE_ZK_NOT_ZK_RECORD',
  ZkModelUnbound: 'DISPUTE_ZK_UNBOUND',
  ModelNotBound: 'DISPUTE_ZK_UNBOUND',
  ZkInputMalformed: 'DISPUTE_ZK_INPUT_MISMATCH',
  ZkInputNotFinite: 'DISPUTE_ZK_INPUT_MISMATCH',
  ZkInputOutOfRange: 'DISPUTE_ZK_INPUT_MISMATCH',
  ZkInputMismatch: 'DISPUTE_ZK_INPUT_MISMATCH',
  ZkSignalsMalformed: 'DISPUTE_ZK_SIGNALS_INVALID',
  ZkProofInvalid: 'DISPUTE_ZK_PROOF_INVALID',
  // Payments (TestStablecoin's EIP-3009 refusals, also as they pass through MeteredSettlement).
  AuthorizationAlreadyUsed: 'PAYMENT_REPLAYED',
  AuthorizationExpired: 'PAYMENT_EXPIRED',
  AuthorizationNotYetValid: 'PAYMENT_EXPIRED',
  InvalidSignature: 'PAYMENT_SIGNATURE_INVALID',
  ERC20InsufficientBalance: 'PAYMENT_INSUFFICIENT_FUNDS',
  CallerNotPayee: 'UNAUTHORIZED',
  NotMinter: 'UNAUTHORIZED',
  AmountAboveMax: 'INVALID_ARGUMENT',
};

/** JSON-safe copies of revert arguments (bigints become decimal strings). */
function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  return value;
}

/**
 * The `VerityError` for anything a viem call threw. A `VerityError` passes through unchanged.
 *
 * @example
 * ```ts
 * try { await registerNode(clients, params) } catch (e) { throw chainError(e, 'register') }
 * ```
 */
export function chainError(error: unknown, action: string): VerityError {
  if (isVerityError(error)) return error;
  if (error instanceof BaseError) {
    const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      const name = reverted.data?.errorName ?? 'Reverted';
      const args = (reverted.data?.args ?? []).map(jsonSafe);
      const code = REVERT_CODES[name] ?? 'CHAIN_REVERTED';
      return new VerityError(code, `${action}: the contract refused (${name})`, {
        details: { action, revert: name, args, ...(reverted.reason === undefined ? {} : { reason: reverted.reason }) },
        cause: error,
      });
    }
    const network = error.walk(
      (e) =>
        e instanceof HttpRequestError ||
        e instanceof WebSocketRequestError ||
        e instanceof SocketClosedError ||
        e instanceof TimeoutError,
    );
    if (network !== null) {
      return new VerityError('CHAIN_UNAVAILABLE', `${action}: the chain's RPC endpoint did not answer`, {
        details: { action },
        cause: error,
      });
    }
    return new VerityError('INTERNAL', `${action}: ${error.shortMessage}`, { details: { action }, cause: error });
  }
  return new VerityError('INTERNAL', `${action}: ${String(error)}`, { details: { action }, cause: error });
}
