// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Rfc9162} from "../lib/Rfc9162.sol";

/// @title Test harness: `lib/Rfc9162.sol` exposed for tests (src/rfc9162.test.ts); never deployed
/// by `deploy.ts`.
contract Rfc9162Harness {
    function leafHash(bytes memory data) external pure returns (bytes32) {
        return Rfc9162.leafHash(data);
    }

    function verifyInclusion(bytes32 leaf, uint256 index, uint256 size, bytes32[] memory proof, bytes32 root)
        external
        view
        returns (bool)
    {
        return Rfc9162.verifyInclusion(leaf, index, size, proof, root);
    }

    function verifyConsistency(uint256 size1, bytes32 root1, uint256 size2, bytes32 root2, bytes32[] memory proof)
        external
        view
        returns (bool)
    {
        return Rfc9162.verifyConsistency(size1, root1, size2, root2, proof);
    }
}
