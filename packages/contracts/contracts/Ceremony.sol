// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Verity setup ceremonies (docs/design.md §2.6)
/// @notice The public transcript of a multi-party Groth16 setup: phase 1 (powers of tau) or
/// phase 2 (one circuit's keys). Each contributor records, from its own account, the hash of its
/// contribution on top of the current head; the opener closes the ceremony, which fixes a
/// future block whose hash is the beacon of the last step; anyone then finalizes with that block
/// hash and the hash of the final file. The final file plus this record is the whole transcript
/// (`verifyTranscript` in the zk package checks one against the other; the hashes are defined in
/// packages/zk/README.md). Nothing here checks the files: the chain only fixes who contributed
/// what, in which order, and the beacon nobody could know while contributing.
contract Ceremony {
    /// One step: `hash` recorded by `contributor` in block `blockNumber`.
    struct Contribution {
        address contributor;
        uint64 blockNumber;
        bytes32 hash;
    }

    /// A ceremony. `beaconBlock` is 0 until closed; `beacon` and `finalHash` are 0 until finalized.
    struct Record {
        address opener;
        uint8 kind;
        /// True when `open` listed the contributors (only they may contribute).
        bool restricted;
        uint64 beaconBlock;
        bytes32 subject;
        bytes32 initialHash;
        bytes32 head;
        bytes32 beacon;
        bytes32 finalHash;
    }

    mapping(bytes32 => Record) private records;
    mapping(bytes32 => Contribution[]) private steps;
    /// id → account → listed by `open` (only read when the ceremony is restricted).
    mapping(bytes32 => mapping(address => bool)) private listed;
    /// id → account → has contributed (each account at most once per ceremony).
    mapping(bytes32 => mapping(address => bool)) private done;

    event CeremonyOpened(
        bytes32 indexed id, address indexed opener, uint8 kind, bytes32 subject, bytes32 initialHash, address[] contributors
    );
    event Contributed(bytes32 indexed id, address indexed contributor, uint256 index, bytes32 prevHash, bytes32 hash);
    event CeremonyClosed(bytes32 indexed id, uint64 beaconBlock);
    event CeremonyFinalized(bytes32 indexed id, bytes32 beacon, bytes32 finalHash);

    error CeremonyExists(bytes32 id);
    error UnknownCeremony(bytes32 id);
    error KindInvalid(uint8 kind);
    error HashInvalid();
    error NotContributor(address account);
    error AlreadyContributed(address account);
    error HeadMismatch(bytes32 head, bytes32 prevHash);
    error ContributionsClosed(bytes32 id);
    error NoContributions(bytes32 id);
    error NotOpener(address account);
    error NotClosed(bytes32 id);
    error BeaconNotMined(uint64 beaconBlock, uint256 blockNumber);
    error BeaconExpired(uint64 beaconBlock, uint256 blockNumber);
    error AlreadyFinalized(bytes32 id);

    /// @notice Opens ceremony `id` (never used before) of `kind` 1 (phase 1) or 2 (phase 2).
    /// @param subject phase 2: SHA-256 of the circuit's R1CS; phase 1: the power, as a number.
    /// @param initialHash what the first contribution builds on (see packages/zk/README.md).
    /// @param contributors empty: anyone may contribute; else only these accounts.
    function open(bytes32 id, uint8 kind, bytes32 subject, bytes32 initialHash, address[] calldata contributors)
        external
    {
        if (records[id].opener != address(0)) revert CeremonyExists(id);
        if (kind != 1 && kind != 2) revert KindInvalid(kind);
        if (initialHash == bytes32(0)) revert HashInvalid();
        records[id] = Record({
            opener: msg.sender,
            kind: kind,
            restricted: contributors.length > 0,
            beaconBlock: 0,
            subject: subject,
            initialHash: initialHash,
            head: initialHash,
            beacon: bytes32(0),
            finalHash: bytes32(0)
        });
        for (uint256 i = 0; i < contributors.length; i++) {
            listed[id][contributors[i]] = true;
        }
        emit CeremonyOpened(id, msg.sender, kind, subject, initialHash, contributors);
    }

    /// @notice Records the sender's contribution `newHash`, made on top of `prevHash` (the head).
    function contribute(bytes32 id, bytes32 prevHash, bytes32 newHash) external {
        Record storage r = existing(id);
        if (r.beaconBlock != 0) revert ContributionsClosed(id);
        if (r.restricted && !listed[id][msg.sender]) revert NotContributor(msg.sender);
        if (done[id][msg.sender]) revert AlreadyContributed(msg.sender);
        if (prevHash != r.head) revert HeadMismatch(r.head, prevHash);
        if (newHash == bytes32(0)) revert HashInvalid();
        done[id][msg.sender] = true;
        r.head = newHash;
        steps[id].push(Contribution(msg.sender, uint64(block.number), newHash));
        emit Contributed(id, msg.sender, steps[id].length - 1, prevHash, newHash);
    }

    /// @notice Ends the contributions (opener only); the hash of the next block is the beacon.
    function close(bytes32 id) external {
        Record storage r = existing(id);
        if (msg.sender != r.opener) revert NotOpener(msg.sender);
        if (r.beaconBlock != 0) revert ContributionsClosed(id);
        if (steps[id].length == 0) revert NoContributions(id);
        // The block after this one: its hash is unknown to everyone who contributed.
        uint64 beaconBlock = uint64(block.number + 1);
        r.beaconBlock = beaconBlock;
        emit CeremonyClosed(id, beaconBlock);
    }

    /// @notice Stores the beacon (hash of the beacon block) and the hash of the final file, once.
    /// Anyone may call it once the beacon block is mined, within 256 blocks (EVM `blockhash`).
    function finalize(bytes32 id, bytes32 finalHash) external {
        Record storage r = existing(id);
        uint64 beaconBlock = r.beaconBlock;
        if (beaconBlock == 0) revert NotClosed(id);
        if (r.finalHash != bytes32(0)) revert AlreadyFinalized(id);
        if (block.number <= beaconBlock) revert BeaconNotMined(beaconBlock, block.number);
        bytes32 beacon = blockhash(beaconBlock);
        if (beacon == bytes32(0)) revert BeaconExpired(beaconBlock, block.number);
        if (finalHash == bytes32(0)) revert HashInvalid();
        r.beacon = beacon;
        r.finalHash = finalHash;
        emit CeremonyFinalized(id, beacon, finalHash);
    }

    /// @notice The ceremony `id` (opener 0 if it was never opened).
    function ceremony(bytes32 id) external view returns (Record memory) {
        return records[id];
    }

    /// @notice Its contributions, in order.
    function contributions(bytes32 id) external view returns (Contribution[] memory) {
        return steps[id];
    }

    /// @notice True if `account` may still contribute to `id` (open, listed or unrestricted, not yet).
    function mayContribute(bytes32 id, address account) external view returns (bool) {
        Record storage r = records[id];
        return r.opener != address(0) && r.beaconBlock == 0 && (!r.restricted || listed[id][account])
            && !done[id][account];
    }

    function existing(bytes32 id) private view returns (Record storage r) {
        r = records[id];
        if (r.opener == address(0)) revert UnknownCeremony(id);
    }
}
