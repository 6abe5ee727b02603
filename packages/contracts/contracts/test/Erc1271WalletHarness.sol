// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title A contract wallet for tests (ERC-1271): it has signed a hash when the first 65 bytes of
/// the signature are its owner's ECDSA signature of that hash; anything after them is ignored, so a
/// test can give it signatures of other lengths than 65 (what the `bytes` forms of EIP-3009 carry).
contract Erc1271WalletHarness {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length < 65) return 0xffffffff;
        address signer = ecrecover(hash, uint8(signature[64]), bytes32(signature[0:32]), bytes32(signature[32:64]));
        return signer != address(0) && signer == owner ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}
