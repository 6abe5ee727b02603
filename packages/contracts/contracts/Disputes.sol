// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {LogAnchor} from "./LogAnchor.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {ZkVerifierRegistry} from "./ZkVerifierRegistry.sol";
import {Rfc9162} from "./lib/Rfc9162.sol";

/// @title Verity disputes: the only slasher (docs/design.md §2.6, §2.7; docs/protocol.md §15)
/// @notice Anyone challenges an inference record that a node logged and anchored, with a bond.
/// A jury of active nodes, drawn stake-weighted from the hash of the block after the challenge,
/// re-executes the record off chain and votes the output digest it computed, first as a hidden
/// commitment, then revealed. The majority of the jury decides; the loser pays.
/// @dev The registry names this contract its slasher (deploy.ts predicts the CREATE address), and
/// the constructor refuses a registry that does not: nothing else can ever slash. Payments are
/// credited and pulled with `withdraw`, so no juror or challenger can block a resolution.
/// The jury pool (eligible nodes and their stakes) is fixed by the challenge, before the seed
/// exists: nobody can register, top up or unbond after seeing the seed to steer the draw. The
/// pool is emitted (`JuryPool`) and only its hash stored; `draw` takes it back as calldata.
contract Disputes {
    /// Where a dispute stands.
    enum Phase {
        None,
        /// Challenged; waits for `draw` once block `drawBlock` is mined.
        AwaitingDraw,
        /// Jurors commit until `commitDeadline` and reveal until `revealDeadline`.
        Voting,
        Resolved
    }

    /// How a dispute ended.
    enum Outcome {
        None,
        /// The jury's majority computed another output than the record's: the node is slashed.
        NodeLied,
        /// The jury's majority computed the record's output: the challenger loses its bond.
        ChallengeFailed,
        /// No output has a majority of the jury (or no jury could be drawn): the bond is refunded.
        Undecided
    }

    /// Rules fixed at deployment (one struct: the constructor stays below the stack limit).
    struct Params {
        /// Wei a challenger posts with `challenge`, exactly.
        uint256 challengeBond;
        /// Wei of its stake a drawn juror loses when it votes with the minority or not at all.
        uint256 jurorDeposit;
        /// Wei of stake a node that lied loses (capped at its stake).
        uint256 slashAmount;
        /// Parts per 10 000 of the slashed stake paid to the challenger.
        uint16 challengerShareBps;
        /// Parts per 10 000 of the slashed stake (or of a failed challenger's bond) shared by the
        /// majority jurors; the rest of a slash is burned, the rest of a bond goes to the node.
        uint16 jurorShareBps;
        /// Seconds during which a record can be challenged, from the chain's time of the first
        /// anchor that covers it (`LogAnchor.anchoredTree`), not from the record's own timestamp.
        uint64 challengeWindow;
        /// Seconds jurors have to commit their votes, from the draw.
        uint64 commitPeriod;
        /// Seconds jurors have to reveal, after the commit deadline.
        uint64 revealPeriod;
        /// Jurors drawn per dispute (odd, 1 to MAX_JURY); fewer if fewer nodes are eligible.
        uint8 jurySize;
        /// Parts per million of audited records that auditors sample (1 to 1 000 000; `isSampled`).
        uint32 auditRatePpm;
    }

    struct Juror {
        address account;
        bool committed;
        /// A juror that committed but did not reveal counts as silent.
        bool revealed;
        /// keccak256(abi.encode(id, juror, outputDigest, salt)).
        bytes32 commitment;
        bytes32 vote;
    }

    struct Dispute {
        address node;
        address challenger;
        Phase phase;
        Outcome outcome;
        /// Block whose hash seeds the jury draw.
        uint64 drawBlock;
        /// Unix time after which commitments are refused (0 before the draw).
        uint64 commitDeadline;
        /// Unix time after which reveals are refused and `resolve` is allowed.
        uint64 revealDeadline;
        /// Unix time (the block's) of the record's first anchor: its window and, for a `zk` record,
        /// the latest time its model's binding counts from (`settleByProof`).
        uint64 anchoredAt;
        uint256 bond;
        /// keccak256(abi.encode(pool, stakes)) of the jury pool fixed by the challenge.
        bytes32 poolHash;
        /// RFC 9162 leaf hash of the record: one open dispute per record.
        bytes32 leaf;
        bytes32 inputDigest;
        bytes32 recordOutput;
        bytes32 claimedOutput;
        Juror[] jurors;
    }

    /// A jury larger than this costs too much gas to draw and resolve.
    uint8 public constant MAX_JURY = 15;
    /// Where burned wei goes (no key is known for it; address(0) is the coinbase on some dev chains).
    address public constant BURN = 0x000000000000000000000000000000000000dEaD;
    /// Domain of the jury seed (docs/protocol.md §15.3).
    bytes public constant JURY_SEED_DOMAIN = "verity/jury/v1";
    /// Domain of the audit sample (docs/protocol.md §15.8).
    bytes public constant AUDIT_SAMPLE_DOMAIN = "verity/audit/v1";
    /// Fixed part of an inference record (docs/protocol.md §5.2) plus six length bytes.
    uint256 private constant RECORD_MIN_LENGTH = 137;

    NodeRegistry public immutable registry;
    LogAnchor public immutable anchors;
    uint256 public immutable challengeBond;
    uint256 public immutable jurorDeposit;
    uint256 public immutable slashAmount;
    uint16 public immutable challengerShareBps;
    uint16 public immutable jurorShareBps;
    uint64 public immutable challengeWindow;
    uint64 public immutable commitPeriod;
    uint64 public immutable revealPeriod;
    uint8 public immutable jurySize;
    uint32 public immutable auditRatePpm;
    /// Zk bindings and verifiers: a `zk` record's dispute is settled by a proof (`settleByProof`).
    ZkVerifierRegistry public immutable zkVerifiers;

    /// Number of disputes opened; ids start at 1.
    uint256 public disputeCount;
    mapping(uint256 => Dispute) private disputes;
    /// Record leaf → the open dispute over it (0 if none).
    mapping(bytes32 => uint256) public openDispute;
    /// Record leaf → true once its node was slashed for it (a record is slashed at most once).
    mapping(bytes32 => bool) public slashedRecord;
    /// Wei each account may `withdraw`.
    mapping(address => uint256) public claimable;

    event Challenged(
        uint256 indexed id,
        address indexed node,
        address indexed challenger,
        bytes32 leaf,
        bytes32 recordOutput,
        bytes32 claimedOutput,
        uint256 bond,
        uint64 drawBlock,
        bytes record,
        bytes input
    );
    /// The nodes a jury may be drawn from, in address order, with their stakes (fixed by the challenge).
    event JuryPool(uint256 indexed id, address[] pool, uint256[] stakes);
    /// The hash of `drawBlock` was no longer available (256 blocks passed): a later block seeds it.
    event DrawDeferred(uint256 indexed id, uint64 drawBlock);
    event JuryDrawn(uint256 indexed id, bytes32 seed, address[] jurors, uint64 commitDeadline, uint64 revealDeadline);
    event VoteCommitted(uint256 indexed id, address indexed juror, bytes32 commitment);
    event VoteRevealed(uint256 indexed id, address indexed juror, bytes32 outputDigest);
    event JurorPenalized(uint256 indexed id, address indexed juror, uint256 amount);
    event Resolved(
        uint256 indexed id,
        Outcome outcome,
        bytes32 majorityOutput,
        uint256 slashed,
        uint256 challengerPaid,
        uint256 jurorsPaid,
        uint256 burned
    );
    event Withdrawn(address indexed account, uint256 amount);
    /// A Groth16 proof settled the dispute (then `Resolved`): `provenOutput` is the output digest it establishes.
    event SettledByProof(uint256 indexed id, address indexed prover, bytes32 vkKey, bytes32 provenOutput);

    error ParamsInvalid();
    /// The registry's slasher is not this contract.
    error NotRegistrySlasher(address slasher);
    error RecordMalformed();
    error NodeNotSlashable(address node);
    error RootNotAnchored(address node, uint64 treeSize);
    /// `treeSize` is not the node's first anchored tree that covers `leafIndex`: the leaves from
    /// `previousSize` on were first anchored by it.
    error AnchorNotFirst(uint64 leafIndex, uint64 treeSize, uint64 previousSize);
    /// The hash of the block after the anchor is not known here (not mined yet, or 256 blocks ago).
    error SeedUnavailable(uint64 blockNumber);
    error InclusionInvalid();
    error InputDigestMismatch(bytes32 expected, bytes32 actual);
    error ClaimMatchesRecord();
    error ChallengeWindowClosed(uint256 closedAt);
    error BondMismatch(uint256 sent, uint256 bond);
    error RecordUnderDispute(uint256 id);
    error RecordAlreadySlashed(bytes32 leaf);
    error UnknownDispute(uint256 id);
    error WrongPhase(uint256 id, Phase phase);
    error DrawTooEarly(uint64 drawBlock);
    error PoolMismatch(uint256 id);
    error NotJuror(uint256 id, address account);
    error AlreadyVoted(uint256 id, address juror);
    /// A commitment after the commit deadline, or a reveal after the reveal deadline.
    error VotingClosed(uint64 deadline);
    /// A reveal before the commit phase ended, or `resolve` before the reveal phase ended.
    error VotingOpen(uint64 deadline);
    error NotCommitted(uint256 id, address juror);
    error CommitmentMismatch(uint256 id, address juror);
    error NothingToWithdraw(address account);
    error UnexpectedPayment(address from);
    error TransferFailed(address to, uint256 amount);
    /// `settleByProof` with other record bytes than the disputed record's.
    error RecordNotDisputed(uint256 id);
    /// Only `zk` records (kind 2) are settled by a proof: their output is the circuit's.
    error NotZkRecord(uint8 kind);
    /// The record's model has no zk binding, or was bound after the record's first anchor.
    error ZkModelUnbound(bytes32 manifestDigest, uint64 boundAt);

    constructor(NodeRegistry registry_, LogAnchor anchors_, Params memory p, ZkVerifierRegistry zkVerifiers_) {
        if (
            p.jurySize == 0 || p.jurySize > MAX_JURY || p.jurySize % 2 == 0
                || uint256(p.challengerShareBps) + p.jurorShareBps > 10_000 || p.commitPeriod == 0
                || p.revealPeriod == 0 || p.challengeWindow == 0 || p.auditRatePpm == 0 || p.auditRatePpm > 1_000_000
                || address(anchors_.registry()) != address(registry_)
            // A node that lies and unbonds at once must still be slashable when the jury decides.
            || uint256(p.challengeWindow) + p.commitPeriod + p.revealPeriod >= registry_.unbondingDelay()
        ) revert ParamsInvalid();
        if (registry_.slasher() != address(this)) revert NotRegistrySlasher(registry_.slasher());
        registry = registry_;
        anchors = anchors_;
        challengeBond = p.challengeBond;
        jurorDeposit = p.jurorDeposit;
        slashAmount = p.slashAmount;
        challengerShareBps = p.challengerShareBps;
        jurorShareBps = p.jurorShareBps;
        challengeWindow = p.challengeWindow;
        commitPeriod = p.commitPeriod;
        revealPeriod = p.revealPeriod;
        jurySize = p.jurySize;
        auditRatePpm = p.auditRatePpm;
        zkVerifiers = zkVerifiers_;
    }

    /// Only the registry pays this contract (the stake it slashes).
    receive() external payable {
        if (msg.sender != address(registry)) revert UnexpectedPayment(msg.sender);
    }

    /// @notice Challenges a record: `msg.value` must be `challengeBond`.
    /// @param record the record's canonical bytes (docs/protocol.md §5.2)
    /// @param leafIndex the record's index in its node's log
    /// @param treeSize the size of the node's first anchor that covers `leafIndex` (its window
    /// runs from that anchor's time)
    /// @param proof RFC 9162 inclusion proof of the record's leaf in that anchored tree
    /// @param input the canonical input bytes; SHA-256 must equal the record's `inputDigest`
    /// @param claimedOutput the output digest the challenger says is right (not the record's)
    /// @return id the dispute's id
    function challenge(
        bytes calldata record,
        uint64 leafIndex,
        uint64 treeSize,
        bytes32[] calldata proof,
        bytes calldata input,
        bytes32 claimedOutput
    ) external payable returns (uint256 id) {
        if (msg.value != challengeBond) revert BondMismatch(msg.value, challengeBond);
        Dispute storage d;
        {
            (address node, bytes32 leaf, uint64 anchoredAt) =
                _checkChallenge(record, leafIndex, treeSize, proof, input, claimedOutput);
            id = ++disputeCount;
            openDispute[leaf] = id;
            d = disputes[id];
            d.node = node;
            d.anchoredAt = anchoredAt;
            d.leaf = leaf;
        }
        d.challenger = msg.sender;
        d.phase = Phase.AwaitingDraw;
        d.drawBlock = uint64(block.number + 1);
        d.bond = msg.value;
        d.inputDigest = bytes32(record[35:67]);
        d.recordOutput = bytes32(record[67:99]);
        d.claimedOutput = claimedOutput;
        _emitChallenged(id, d, record, input);
        (address[] memory pool, uint256[] memory stakes) = _pool(d.node, msg.sender);
        d.poolHash = keccak256(abi.encode(pool, stakes));
        emit JuryPool(id, pool, stakes);
    }

    /// @notice Draws the jury once block `drawBlock` is mined (anyone may call), from the pool of
    /// the `JuryPool` event. If the block's hash is gone (256 blocks later), a later block seeds it.
    function draw(uint256 id, address[] calldata pool, uint256[] calldata stakes) external {
        Dispute storage d = _dispute(id, Phase.AwaitingDraw);
        if (block.number <= d.drawBlock) revert DrawTooEarly(d.drawBlock);
        if (keccak256(abi.encode(pool, stakes)) != d.poolHash) revert PoolMismatch(id);
        bytes32 blockHash = blockhash(d.drawBlock);
        if (blockHash == bytes32(0)) {
            d.drawBlock = uint64(block.number + 1);
            emit DrawDeferred(id, d.drawBlock);
            return;
        }
        bytes32 seed = sha256(abi.encodePacked(JURY_SEED_DOMAIN, blockHash, id));
        address[] memory jury = _drawJury(seed, pool, stakes);
        for (uint256 i = 0; i < jury.length; i++) {
            d.jurors.push(Juror(jury[i], false, false, bytes32(0), bytes32(0)));
        }
        d.phase = Phase.Voting;
        d.commitDeadline = uint64(block.timestamp) + commitPeriod;
        d.revealDeadline = d.commitDeadline + revealPeriod;
        emit JuryDrawn(id, seed, jury, d.commitDeadline, d.revealDeadline);
    }

    /// @notice A drawn juror commits its vote: `keccak256(abi.encode(id, juror, outputDigest, salt))`
    /// where outputDigest is what it computed by re-executing the record. Hidden until revealed, so
    /// no juror can copy another's vote.
    function commitVote(uint256 id, bytes32 commitment) external {
        Dispute storage d = _dispute(id, Phase.Voting);
        if (block.timestamp > d.commitDeadline) revert VotingClosed(d.commitDeadline);
        Juror storage j = _juror(d, id);
        if (j.committed) revert AlreadyVoted(id, msg.sender);
        j.committed = true;
        j.commitment = commitment;
        emit VoteCommitted(id, msg.sender, commitment);
    }

    /// @notice Reveals a committed vote, once the commit phase is over (its deadline passed or every
    /// juror committed) and before the reveal deadline.
    function revealVote(uint256 id, bytes32 outputDigest, bytes32 salt) external {
        Dispute storage d = _dispute(id, Phase.Voting);
        if (block.timestamp > d.revealDeadline) revert VotingClosed(d.revealDeadline);
        if (block.timestamp <= d.commitDeadline) {
            for (uint256 i = 0; i < d.jurors.length; i++) {
                if (!d.jurors[i].committed) revert VotingOpen(d.commitDeadline);
            }
        }
        Juror storage j = _juror(d, id);
        if (!j.committed) revert NotCommitted(id, msg.sender);
        if (j.revealed) revert AlreadyVoted(id, msg.sender);
        if (keccak256(abi.encode(id, msg.sender, outputDigest, salt)) != j.commitment) {
            revert CommitmentMismatch(id, msg.sender);
        }
        j.revealed = true;
        j.vote = outputDigest;
        emit VoteRevealed(id, msg.sender, outputDigest);
    }

    /// @notice Settles a dispute once every juror revealed or the reveal deadline passed (anyone may call).
    function resolve(uint256 id) external {
        Dispute storage d = _dispute(id, Phase.Voting);
        uint256 n = d.jurors.length;
        if (block.timestamp <= d.revealDeadline) {
            for (uint256 i = 0; i < n; i++) {
                if (!d.jurors[i].revealed) revert VotingOpen(d.revealDeadline);
            }
        }
        (bool decided, bytes32 majority) = _majority(d.jurors);
        d.phase = Phase.Resolved;
        openDispute[d.leaf] = 0;
        // Penalties of silent and minority jurors (everyone silent if undecided).
        uint256 penalties = _penalize(id, d.jurors, decided, majority);
        uint256 slashed;
        uint256 challengerPaid;
        uint256 jurorPot;
        uint256 burned;
        if (!decided) {
            d.outcome = Outcome.Undecided;
            challengerPaid = d.bond;
            claimable[d.challenger] += d.bond;
            burned = penalties;
        } else if (majority != d.recordOutput) {
            d.outcome = Outcome.NodeLied;
            slashedRecord[d.leaf] = true;
            slashed = _slash(d.node, slashAmount, "verity/dispute: output");
            uint256 reward = (slashed * challengerShareBps) / 10_000;
            challengerPaid = d.bond + reward;
            claimable[d.challenger] += challengerPaid;
            jurorPot = (slashed * jurorShareBps) / 10_000 + penalties;
            burned = slashed - reward - (slashed * jurorShareBps) / 10_000;
        } else {
            d.outcome = Outcome.ChallengeFailed;
            uint256 jurorsShare = (d.bond * jurorShareBps) / 10_000;
            claimable[d.node] += d.bond - jurorsShare;
            jurorPot = jurorsShare + penalties;
        }
        uint256 jurorsPaid;
        if (jurorPot > 0) {
            uint256 winners;
            for (uint256 i = 0; i < n; i++) {
                if (d.jurors[i].revealed && d.jurors[i].vote == majority) winners++;
            }
            uint256 each = jurorPot / winners;
            for (uint256 i = 0; i < n; i++) {
                if (d.jurors[i].revealed && d.jurors[i].vote == majority) claimable[d.jurors[i].account] += each;
            }
            jurorsPaid = each * winners;
            // The remainder of an uneven split is burned.
            burned += jurorPot - jurorsPaid;
        }
        emit Resolved(id, d.outcome, majority, slashed, challengerPaid, jurorsPaid, burned);
        _send(BURN, burned);
    }

    /// @notice Settles an open dispute over a `zk` record at once with a Groth16 proof (anyone may
    /// send it: the node, the challenger, a third party). `record` and `input` are the disputed
    /// record's bytes and the challenge's input bytes; the record's model must have been bound
    /// (`ZkVerifierRegistry.bindModel`) no later than the record's first anchor. The proof's input
    /// signals must encode `input` and the proof must verify under the bound key; the output
    /// digest it establishes decides: ≠ the record's, the node lied and is slashed; = the record's,
    /// the challenge failed. Amounts as a jury's verdict, the jurors' share burned (no juror
    /// decided); jurors drawn already are released without penalty (docs/protocol.md §15.5).
    function settleByProof(
        uint256 id,
        bytes calldata record,
        bytes calldata input,
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[] calldata signals
    ) external {
        Dispute storage d = disputes[id];
        if (d.phase == Phase.None) revert UnknownDispute(id);
        if (d.phase == Phase.Resolved) revert WrongPhase(id, d.phase);
        if (Rfc9162.leafHash(record) != d.leaf) revert RecordNotDisputed(id);
        bytes32 actual = sha256(input);
        if (actual != d.inputDigest) revert InputDigestMismatch(d.inputDigest, actual);
        if (uint8(record[5]) != 2) revert NotZkRecord(uint8(record[5]));
        bytes32 model = _recordModel(record);
        ZkVerifierRegistry.Binding memory binding = zkVerifiers.bindingOf(model);
        // Bound after the record's first anchor: the record was made under no binding. (Not the
        // record's timestamp: that is the node's word, and a backdated one would escape the proof.)
        if (binding.boundAt == 0 || binding.boundAt > d.anchoredAt) {
            revert ZkModelUnbound(model, binding.boundAt);
        }
        bytes32 proven = zkVerifiers.provenOutput(model, input, a, b, c, signals);
        _resolveByProof(id, d, proven, binding.vkKey);
    }

    /// @notice Pays out what the sender has been credited.
    function withdraw() external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        claimable[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// A dispute's fixed facts and where it stands.
    struct DisputeView {
        address node;
        address challenger;
        Phase phase;
        Outcome outcome;
        uint64 drawBlock;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint256 bond;
        bytes32 leaf;
        bytes32 inputDigest;
        bytes32 recordOutput;
        bytes32 claimedOutput;
    }

    /// @notice A dispute, without its jury (see `jurorsOf`).
    function getDispute(uint256 id) external view returns (DisputeView memory v) {
        Dispute storage d = disputes[id];
        v.node = d.node;
        v.challenger = d.challenger;
        v.phase = d.phase;
        v.outcome = d.outcome;
        v.drawBlock = d.drawBlock;
        v.commitDeadline = d.commitDeadline;
        v.revealDeadline = d.revealDeadline;
        v.bond = d.bond;
        v.leaf = d.leaf;
        v.inputDigest = d.inputDigest;
        v.recordOutput = d.recordOutput;
        v.claimedOutput = d.claimedOutput;
    }

    /// @notice The drawn jurors of a dispute, in draw order, with their votes.
    function jurorsOf(uint256 id) external view returns (Juror[] memory) {
        return disputes[id].jurors;
    }

    /// Every check of `challenge` but the bond; returns the record's node, leaf hash and the time of
    /// its first anchor.
    function _checkChallenge(
        bytes calldata record,
        uint64 leafIndex,
        uint64 treeSize,
        bytes32[] calldata proof,
        bytes calldata input,
        bytes32 claimedOutput
    ) private view returns (address node, bytes32 leaf, uint64 anchoredAt) {
        if (record.length < RECORD_MIN_LENGTH || bytes4(record[0:4]) != bytes4("VREC") || record[4] != 0x01) {
            revert RecordMalformed();
        }
        node = address(bytes20(record[15:35]));
        {
            NodeRegistry.Status status = registry.getNode(node).status;
            if (status != NodeRegistry.Status.Registered && status != NodeRegistry.Status.Unbonding) {
                revert NodeNotSlashable(node);
            }
        }
        {
            LogAnchor.AnchoredTree memory tree = _firstAnchor(node, leafIndex, treeSize);
            // The window runs from the chain's time of the record's first anchor: the record's own
            // timestamp is the node's word, and a backdated one would shorten it.
            anchoredAt = tree.timestamp;
            uint256 closesAt = uint256(anchoredAt) + challengeWindow;
            if (block.timestamp > closesAt) revert ChallengeWindowClosed(closesAt);
            leaf = Rfc9162.leafHash(record);
            if (!Rfc9162.verifyInclusion(leaf, leafIndex, treeSize, proof, tree.rootHash)) revert InclusionInvalid();
        }
        if (slashedRecord[leaf]) revert RecordAlreadySlashed(leaf);
        if (openDispute[leaf] != 0) revert RecordUnderDispute(openDispute[leaf]);
        bytes32 inputDigest = bytes32(record[35:67]);
        bytes32 actual = sha256(input);
        if (actual != inputDigest) revert InputDigestMismatch(inputDigest, actual);
        if (claimedOutput == bytes32(record[67:99])) revert ClaimMatchesRecord();
    }

    function _emitChallenged(uint256 id, Dispute storage d, bytes calldata record, bytes calldata input) private {
        emit Challenged(
            id, d.node, d.challenger, d.leaf, d.recordOutput, d.claimedOutput, d.bond, d.drawBlock, record, input
        );
    }

    /// The manifest digest of a record's `model` (docs/protocol.md §5.2: after `requestId`, the binary
    /// CID `01 80 04 12 20 ‖ digest`).
    function _recordModel(bytes calldata record) private pure returns (bytes32) {
        uint256 pos = RECORD_MIN_LENGTH - 6 + 1 + uint8(record[RECORD_MIN_LENGTH - 6]);
        if (record.length < pos + 38 || uint8(record[pos]) != 37 || bytes5(record[pos + 1:pos + 6]) != bytes5(hex"0180041220"))
        {
            revert RecordMalformed();
        }
        return bytes32(record[pos + 6:pos + 38]);
    }

    /// Resolution by a proof that established `proven` as the record's true output digest.
    function _resolveByProof(uint256 id, Dispute storage d, bytes32 proven, bytes32 vkKey) private {
        d.phase = Phase.Resolved;
        openDispute[d.leaf] = 0;
        uint256 slashed;
        uint256 challengerPaid;
        uint256 burned;
        if (proven != d.recordOutput) {
            d.outcome = Outcome.NodeLied;
            slashedRecord[d.leaf] = true;
            slashed = _slash(d.node, slashAmount, "verity/dispute: zk proof");
            uint256 reward = (slashed * challengerShareBps) / 10_000;
            challengerPaid = d.bond + reward;
            claimable[d.challenger] += challengerPaid;
            burned = slashed - reward;
        } else {
            d.outcome = Outcome.ChallengeFailed;
            uint256 jurorsShare = (d.bond * jurorShareBps) / 10_000;
            claimable[d.node] += d.bond - jurorsShare;
            burned = jurorsShare;
        }
        emit SettledByProof(id, msg.sender, vkKey, proven);
        emit Resolved(id, d.outcome, proven, slashed, challengerPaid, 0, burned);
        _send(BURN, burned);
    }

    function _dispute(uint256 id, Phase phase) private view returns (Dispute storage d) {
        d = disputes[id];
        if (d.phase == Phase.None) revert UnknownDispute(id);
        if (d.phase != phase) revert WrongPhase(id, d.phase);
    }

    function _juror(Dispute storage d, uint256 id) private view returns (Juror storage) {
        for (uint256 i = 0; i < d.jurors.length; i++) {
            if (d.jurors[i].account == msg.sender) return d.jurors[i];
        }
        revert NotJuror(id, msg.sender);
    }

    /// The tree `node` anchored at `treeSize`, which must be its first anchor covering `leafIndex`.
    function _firstAnchor(address node, uint64 leafIndex, uint64 treeSize)
        private
        view
        returns (LogAnchor.AnchoredTree memory tree)
    {
        tree = anchors.anchoredTree(node, treeSize);
        if (tree.rootHash == bytes32(0)) revert RootNotAnchored(node, treeSize);
        if (leafIndex < tree.previousSize) revert AnchorNotFirst(leafIndex, treeSize, tree.previousSize);
    }

    /// @notice Whether the record at `leafIndex` of `node`'s log is in the audit sample
    /// (docs/protocol.md §15.8): SHA-256(AUDIT_SAMPLE_DOMAIN ‖ blockhash(B + 1) ‖ node ‖
    /// uint64 leafIndex), its first 8 bytes read as a fraction of 2^64, below `auditRatePpm`
    /// per million, B being the block of the node's first anchor covering the record, whose size
    /// `treeSize` is. Reverts `SeedUnavailable` while block B + 1 is not mined or once its hash is
    /// older than 256 blocks (the rule is the same off chain, with the block's hash from any node).
    function isSampled(address node, uint64 leafIndex, uint64 treeSize) external view returns (bool) {
        LogAnchor.AnchoredTree memory tree = _firstAnchor(node, leafIndex, treeSize);
        if (leafIndex >= treeSize) revert AnchorNotFirst(leafIndex, treeSize, tree.previousSize);
        bytes32 seed = blockhash(tree.blockNumber + 1);
        if (seed == bytes32(0)) revert SeedUnavailable(tree.blockNumber + 1);
        bytes32 h = sha256(abi.encodePacked(AUDIT_SAMPLE_DOMAIN, seed, node, leafIndex));
        return uint256(uint64(bytes8(h))) * 1_000_000 < uint256(auditRatePpm) << 64;
    }

    /// The output digest that more than half of the drawn jurors voted, if any.
    function _majority(Juror[] storage jurors) private view returns (bool decided, bytes32 majority) {
        uint256 n = jurors.length;
        for (uint256 i = 0; i < n; i++) {
            if (!jurors[i].revealed) continue;
            uint256 count;
            for (uint256 k = 0; k < n; k++) {
                if (jurors[k].revealed && jurors[k].vote == jurors[i].vote) count++;
            }
            if (2 * count > n) return (true, jurors[i].vote);
        }
        return (false, bytes32(0));
    }

    /// Slashes `jurorDeposit` from each juror that did not vote the majority; returns the total.
    function _penalize(uint256 id, Juror[] storage jurors, bool decided, bytes32 majority)
        private
        returns (uint256 total)
    {
        for (uint256 i = 0; i < jurors.length; i++) {
            Juror storage j = jurors[i];
            bool penalized = decided ? !(j.revealed && j.vote == majority) : !j.revealed;
            if (!penalized || jurorDeposit == 0) continue;
            uint256 taken = _slash(j.account, jurorDeposit, "verity/dispute: juror");
            if (taken > 0) emit JurorPenalized(id, j.account, taken);
            total += taken;
        }
    }

    /// Slashes up to `amount` and returns what arrived; a node with nothing left yields 0.
    function _slash(address account, uint256 amount, string memory reason) private returns (uint256 taken) {
        uint256 before = address(this).balance;
        try registry.slash(account, amount, reason) {
            taken = address(this).balance - before;
        } catch {
            taken = 0;
        }
    }

    /// The jury pool: nodes active now, staked above zero, other than the accused node and the
    /// challenger, in ascending address order, with their stakes (docs/protocol.md §15.3).
    function _pool(address node, address challenger)
        private
        view
        returns (address[] memory pool, uint256[] memory stakes)
    {
        // Active nodes with their stakes only: no origin or endpoint strings to copy.
        (address[] memory accounts, uint256[] memory active) = registry.activeStakes();
        uint256 n = accounts.length;
        // One word per candidate: its address in the high 160 bits, its place in `accounts` in the
        // low 96, so sorting the words sorts by address (addresses are distinct).
        uint256[] memory keys = new uint256[](n);
        uint256 count;
        for (uint256 i = 0; i < n; i++) {
            address a = accounts[i];
            if (a == node || a == challenger) continue;
            keys[count++] = (uint256(uint160(a)) << 96) | i;
        }
        _sortAscending(keys, count);
        pool = new address[](count);
        stakes = new uint256[](count);
        for (uint256 i = 0; i < count; i++) {
            uint256 key = keys[i];
            pool[i] = address(uint160(key >> 96));
            stakes[i] = active[key & type(uint96).max];
        }
    }

    /// Sorts the first `count` words of `keys` in ascending order, in place (insertion sort in
    /// assembly: a Solidity loop with bounds checks costs about 640 gas per move, this about 60).
    function _sortAscending(uint256[] memory keys, uint256 count) private pure {
        assembly ("memory-safe") {
            let base := add(keys, 0x20)
            for { let i := 1 } lt(i, count) { i := add(i, 1) } {
                let key := mload(add(base, shl(5, i)))
                let j := i
                for {} gt(j, 0) { j := sub(j, 1) } {
                    let previous := mload(add(base, shl(5, sub(j, 1))))
                    if iszero(gt(previous, key)) { break }
                    mstore(add(base, shl(5, j)), previous)
                }
                mstore(add(base, shl(5, j)), key)
            }
        }
    }

    /// Stake-weighted sampling without replacement of `jurySize` places (docs/protocol.md §11.2
    /// with the jury seed, §15.3).
    function _drawJury(bytes32 seed, address[] calldata pool_, uint256[] calldata stakes_)
        private
        view
        returns (address[] memory jury)
    {
        address[] memory pool = pool_;
        uint256[] memory stakes = stakes_;
        uint256 count = pool.length;
        uint256 total;
        for (uint256 i = 0; i < count; i++) {
            total += stakes[i];
        }
        uint256 seats = count < jurySize ? count : jurySize;
        jury = new address[](seats);
        for (uint256 i = 0; i < seats; i++) {
            uint256 x = uint256(sha256(abi.encodePacked(seed, uint32(i)))) % total;
            uint256 sum;
            uint256 j;
            for (; j < count; j++) {
                sum += stakes[j];
                if (sum > x) break;
            }
            jury[i] = pool[j];
            total -= stakes[j];
            // Remove place j, keeping the order.
            for (uint256 k = j + 1; k < count; k++) {
                pool[k - 1] = pool[k];
                stakes[k - 1] = stakes[k];
            }
            count--;
        }
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
