// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Rfc9162} from "./lib/Rfc9162.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title Verity log anchors (docs/design.md §2.4, §2.7)
/// @notice An active node posts the tree size and root hash of a checkpoint of its log, with an
/// RFC 9162 §2.1.4 consistency proof from its previous anchor that is checked here. The anchors of
/// a node therefore form one append-only history on chain: a node cannot anchor a fork of its own
/// log, and any checkpoint it signs must be consistent with every anchor (off chain, a
/// checkpoint that is not is evidence of a fork). `anchorAt` gives a verifier the anchored root
/// for a size in one call.
/// @dev Sizes strictly increase per node; each anchor after the first carries the consistency
/// proof from the previous (size, root), the first an empty proof (every tree extends the empty
/// one). History lives in `Anchored` events; every anchored tree is also kept with its block, its
/// time and the size before it (`anchoredTree`), so `Disputes` counts a record's challenge window
/// from the chain's time of the first anchor that covers it, not from the record's own timestamp.
/// Proof length is at most about 2·log2(size) hashes.
contract LogAnchor {
    /// A node's latest anchor, as `latestAnchor` returns it.
    struct Anchor {
        uint64 treeSize;
        uint64 blockNumber;
        uint64 timestamp;
        /// How many anchors the node has made so far, this one included.
        uint64 count;
        bytes32 rootHash;
    }

    /// One anchored tree of a node, kept for every size it anchored (two storage slots).
    struct AnchoredTree {
        bytes32 rootHash;
        /// Block and unix time (the block's) of the anchor: when the chain first saw this tree.
        uint64 blockNumber;
        uint64 timestamp;
        /// The node's anchored size before this one (0 for its first anchor): the leaves with
        /// index in [previousSize, treeSize) were first anchored by this tree.
        uint64 previousSize;
    }

    /// The latest size and the number of anchors of a node (one slot); the rest is in `trees`.
    struct Latest {
        uint64 treeSize;
        uint64 count;
    }

    NodeRegistry public immutable registry;

    mapping(address => Latest) private latest;
    /// node → tree size → the anchored tree, for every anchored size.
    mapping(address => mapping(uint64 => AnchoredTree)) private trees;

    /// @param index 0 for a node's first anchor, then 1, 2, …
    event Anchored(address indexed node, uint64 indexed treeSize, bytes32 rootHash, uint64 index);

    error NodeNotActive(address node);
    error TreeSizeNotIncreasing(uint64 latest, uint64 treeSize);
    error RootInvalid();
    /// The proof does not show that (treeSize, root) extends the node's previous anchor.
    error InconsistentAnchor(uint64 previousSize, uint64 treeSize);

    constructor(NodeRegistry registry_) {
        registry = registry_;
    }

    /// @notice Anchors a checkpoint of the sender's log; only an active node may anchor.
    /// @param consistency RFC 9162 consistency proof from the sender's latest anchor (see
    /// `latestAnchor`) to (treeSize, rootHash); empty for the first anchor.
    function anchor(uint64 treeSize, bytes32 rootHash, bytes32[] calldata consistency) external {
        if (!registry.isActive(msg.sender)) revert NodeNotActive(msg.sender);
        if (rootHash == bytes32(0)) revert RootInvalid();
        Latest memory last = latest[msg.sender];
        uint64 previous = last.treeSize;
        if (treeSize <= previous) revert TreeSizeNotIncreasing(previous, treeSize);
        // From size 0 (no anchor yet) only the empty proof verifies.
        if (!Rfc9162.verifyConsistency(previous, trees[msg.sender][previous].rootHash, treeSize, rootHash, consistency))
        {
            revert InconsistentAnchor(previous, treeSize);
        }
        latest[msg.sender] = Latest(treeSize, last.count + 1);
        trees[msg.sender][treeSize] =
            AnchoredTree(rootHash, uint64(block.number), uint64(block.timestamp), previous);
        emit Anchored(msg.sender, treeSize, rootHash, last.count);
    }

    /// @notice The node's most recent anchor; `treeSize` 0 if it never anchored.
    function latestAnchor(address node) external view returns (Anchor memory a) {
        Latest memory last = latest[node];
        AnchoredTree memory t = trees[node][last.treeSize];
        a = Anchor(last.treeSize, t.blockNumber, t.timestamp, last.count, t.rootHash);
    }

    /// @notice The root anchored by `node` for exactly `treeSize`, or zero if none.
    function anchorAt(address node, uint64 treeSize) external view returns (bytes32) {
        return trees[node][treeSize].rootHash;
    }

    /// @notice The tree `node` anchored for exactly `treeSize`, with the block and time of its
    /// anchor and the size anchored before it; all zero if none.
    function anchoredTree(address node, uint64 treeSize) external view returns (AnchoredTree memory) {
        return trees[node][treeSize];
    }
}
