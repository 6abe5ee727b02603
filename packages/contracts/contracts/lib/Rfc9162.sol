// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Merkle tree proofs of RFC 9162 §2.1 (Certificate Transparency 2.0), on chain
/// @notice The same tree as `packages/protocol/src/merkle.ts` and Go's golang.org/x/mod/sumdb/tlog:
/// SHA-256 leaf hashes SHA-256(0x00 ‖ data) and interior hashes SHA-256(0x01 ‖ left ‖ right).
/// @dev Verifiers return false for every proof they cannot evaluate (index or size out of range,
/// too short, too long) instead of reverting, so a caller reverts with an error of its own.
/// Each interior hash is one call to the SHA-256 precompile (address 0x02) on 65 bytes written past
/// the free memory pointer (Solidity's temporary area), so a proof allocates no memory.
library Rfc9162 {
    /// SHA-256(0x00 ‖ data) (RFC 9162 §2.1.1).
    function leafHash(bytes memory data) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), data));
    }

    /// SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1).
    function nodeHash(bytes32 left, bytes32 right) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            if iszero(staticcall(gas(), 0x02, p, 65, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// RFC 9162 §2.1.3.2 inclusion of leaf `index` in a tree of `size` leaves with `root`.
    /// @param leaf the leaf hash (already `leafHash`ed), not the leaf data.
    /// @param proof the audit path, leaf side first.
    function verifyInclusion(bytes32 leaf, uint256 index, uint256 size, bytes32[] memory proof, bytes32 root)
        internal
        view
        returns (bool)
    {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            if (sn == 0) return false; // proof too long
            bytes32 p = proof[i];
            if ((fn & 1) == 1 || fn == sn) {
                r = nodeHash(p, r);
                if ((fn & 1) == 0) {
                    while ((fn & 1) == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = nodeHash(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root; // sn != 0: proof too short
    }

    /// RFC 9162 §2.1.4.2 consistency of (size1, root1) → (size2, root2).
    /// @dev Equal sizes need an empty proof and equal roots; every tree extends the empty tree
    /// (size1 0) with an empty proof, as in `merkle.ts`.
    function verifyConsistency(uint256 size1, bytes32 root1, uint256 size2, bytes32 root2, bytes32[] memory proof)
        internal
        view
        returns (bool)
    {
        if (size2 < size1) return false;
        if (size1 == size2) return proof.length == 0 && root1 == root2;
        if (size1 == 0) return proof.length == 0;
        if (proof.length == 0) return false;
        // Step 1: if size1 is a power of two, the path starts with root1 (not sent in the proof).
        bool prepend = (size1 & (size1 - 1)) == 0;
        uint256 pathLength = prepend ? proof.length + 1 : proof.length;
        uint256 fn = size1 - 1;
        uint256 sn = size2 - 1;
        while ((fn & 1) == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        bytes32 fr = prepend ? root1 : proof[0];
        bytes32 sr = fr;
        for (uint256 i = 1; i < pathLength; i++) {
            if (sn == 0) return false; // proof too long
            bytes32 c = prepend ? proof[i - 1] : proof[i];
            if ((fn & 1) == 1 || fn == sn) {
                fr = nodeHash(c, fr);
                sr = nodeHash(c, sr);
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = nodeHash(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == root1 && sr == root2; // sn != 0: proof too short
    }
}
