// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title A hostile contract wallet for tests (ERC-1271): its isValidSignature burns every unit of
/// gas it is given, so that a test can show what one such payer costs a batch of settlements.
contract GasBurningWalletHarness {
    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        uint256 spins;
        while (gasleft() > 0) {
            spins++;
        }
        return spins == 0 ? bytes4(0) : bytes4(0x1626ba7e);
    }
}
