// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Groth16Verifier} from "./Groth16Verifier.sol";

// Maps a verification key to the one contract that verifies proofs under it, so that a client
// looks a verifier up by the key it trusts instead of taking an address from a node.
//
// A verifier is `Groth16Verifier`'s runtime code (the template) followed by the encoded key
// (see Groth16Verifier.sol). `register` reads the candidate's code and accepts it only if its code
// hash is keccak256(template ‖ key) for a well-formed key: the prefix is exactly the template
// this registry was compiled with, and the tail is a key of the length its last word (n) says,
// every coordinate < q, every G1 point on the curve. The key's id, vkKey, is SHA-256 of the
// encoded key (computed here with the 0x02 precompile; protocol `zkVkKey` computes the same off
// chain). Anyone may deploy and register a verifier; nobody can register other code for a key.
// The first verifier registered for a key stays; registering another contract with the same code
// (a second deployment) changes nothing.
//
// Auditors record what they checked: `attest(manifestDigest, vkKey)` says "the model whose
// manifest has this digest has a circuit whose verification key is vkKey, and I checked its
// transcript" (packages/zk/README.md). manifestDigest is the SHA-256 digest inside the manifest
// CID's multihash (protocol `zkManifestDigest`). An attestation is permanent.

/// @title Verity zk verifier registry (docs/design.md §2.6, §2.7)
contract ZkVerifierRegistry {
    uint256 private constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// Same bound as the template's; EIP-170 keeps real keys far below it.
    uint256 public constant MAX_PUBLIC = 65536;

    /// vkKey → verifier.
    mapping(bytes32 => address) private verifiers;
    /// auditor → manifestDigest → vkKey.
    mapping(address => mapping(bytes32 => bytes32)) private attestations;

    event VerifierRegistered(bytes32 indexed vkKey, address indexed verifier, address indexed registrant);
    event AuditAttested(address indexed auditor, bytes32 indexed manifestDigest, bytes32 indexed vkKey);

    /// The code at `verifier` is not the template followed by a key (or there is no code).
    error VerifierCodeMismatch(address verifier);
    /// The code is the template followed by something that is not a well-formed key.
    error VerificationKeyMalformed(address verifier);
    error AttestationInvalid();
    /// The auditor already attested another key for this manifest.
    error AttestationConflict(bytes32 manifestDigest, bytes32 vkKey);

    /// @notice The runtime code every verifier starts with.
    function template() external pure returns (bytes memory) {
        return type(Groth16Verifier).runtimeCode;
    }

    /// @notice Registers `verifier` as the verifier of the key at the end of its code.
    /// @return vkKey SHA-256 of the encoded key
    function register(address verifier) external returns (bytes32 vkKey) {
        bytes memory code = type(Groth16Verifier).runtimeCode;
        uint256 size = verifier.code.length;
        if (size <= code.length + 0x20) revert VerifierCodeMismatch(verifier);
        uint256 length = size - code.length;
        bytes memory key = new bytes(length);
        assembly ("memory-safe") {
            extcodecopy(verifier, add(key, 0x20), mload(code), length)
        }
        // The whole code: template ‖ key, compared by hash with what the account holds.
        if (verifier.codehash != keccak256(bytes.concat(code, key))) revert VerifierCodeMismatch(verifier);
        if (!_wellFormed(key)) revert VerificationKeyMalformed(verifier);
        vkKey = sha256(key);
        if (verifiers[vkKey] == address(0)) {
            verifiers[vkKey] = verifier;
            emit VerifierRegistered(vkKey, verifier, msg.sender);
        }
    }

    /// @notice The verifier registered for a key; address(0) if none.
    function verifierOf(bytes32 vkKey) external view returns (address) {
        return verifiers[vkKey];
    }

    /// @notice Records that msg.sender audited the model with this manifest digest and found key vkKey.
    function attest(bytes32 manifestDigest, bytes32 vkKey) external {
        if (manifestDigest == bytes32(0) || vkKey == bytes32(0)) revert AttestationInvalid();
        bytes32 existing = attestations[msg.sender][manifestDigest];
        if (existing == vkKey) return;
        if (existing != bytes32(0)) revert AttestationConflict(manifestDigest, existing);
        attestations[msg.sender][manifestDigest] = vkKey;
        emit AuditAttested(msg.sender, manifestDigest, vkKey);
    }

    /// @notice The key an auditor attested for a manifest digest; zero if none.
    function attestation(address auditor, bytes32 manifestDigest) external view returns (bytes32) {
        return attestations[auditor][manifestDigest];
    }

    /// 2n + 17 words with n last (n ≤ MAX_PUBLIC), coordinates < q, alpha and IC on the curve.
    function _wellFormed(bytes memory key) private pure returns (bool valid) {
        uint256 words = key.length / 0x20;
        if (key.length % 0x20 != 0) return false;
        uint256 n;
        assembly ("memory-safe") {
            n := mload(add(key, mul(words, 0x20)))
        }
        if (n > MAX_PUBLIC || words != 2 * n + 17) return false;
        valid = true;
        assembly ("memory-safe") {
            let base := add(key, 0x20)
            for { let i := 0 } lt(i, sub(words, 1)) { i := add(i, 1) } {
                if iszero(lt(mload(add(base, mul(i, 0x20))), Q)) { valid := 0 }
            }
            // G1 points: alpha (word 0) and IC[0..n] (from word 14).
            function onCurve(x, y) -> ok {
                ok := eq(mulmod(y, y, Q), addmod(mulmod(x, mulmod(x, x, Q), Q), 3, Q))
            }
            if iszero(onCurve(mload(base), mload(add(base, 0x20)))) { valid := 0 }
            for { let i := 0 } lt(i, add(n, 1)) { i := add(i, 1) } {
                let pt := add(base, mul(add(14, mul(2, i)), 0x20))
                if iszero(onCurve(mload(pt), mload(add(pt, 0x20)))) { valid := 0 }
            }
        }
    }
}
