// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Groth16Verifier} from "./Groth16Verifier.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {ZkCodec} from "./lib/ZkCodec.sol";

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
//
// A model's zk **binding** (docs/protocol.md §12 "The zk binding") is what lets a contract read a
// proof as a statement about a record: manifestDigest → (vkKey, binding layout). Only the
// publisher of a `ModelRegistry` version whose manifest CID has this digest may set it, once;
// it never changes, and it names a registered verifier whose number of public signals is the
// layout's. `provenOutput` then takes a record's input tensor bytes and a proof, checks that the
// input signals are that input's fixed-point encoding and that the proof verifies, and returns the
// output digest the proof establishes (lib/ZkCodec.sol). `Disputes` settles zk disputes with it.

/// @title Verity zk verifier registry (docs/design.md §2.6, §2.7)
contract ZkVerifierRegistry {
    uint256 private constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// Same bound as the template's; EIP-170 keeps real keys far below it.
    uint256 public constant MAX_PUBLIC = 65536;

    /// vkKey → verifier.
    mapping(bytes32 => address) private verifiers;
    /// auditor → manifestDigest → vkKey.
    mapping(address => mapping(bytes32 => bytes32)) private attestations;

    /// A model's zk binding (set once by its publisher, never changed).
    struct Binding {
        bytes32 vkKey;
        address publisher;
        /// Block timestamp (seconds) of the binding; 0 when unbound.
        uint64 boundAt;
        /// The circuit's public layout and fixed-point parameters (lib/ZkCodec.sol).
        bytes io;
    }

    /// The registry whose publishers bind their models.
    ModelRegistry public immutable models;
    /// manifestDigest → binding.
    mapping(bytes32 => Binding) private bindings;

    event VerifierRegistered(bytes32 indexed vkKey, address indexed verifier, address indexed registrant);
    event AuditAttested(address indexed auditor, bytes32 indexed manifestDigest, bytes32 indexed vkKey);
    event ModelBound(
        bytes32 indexed manifestDigest,
        bytes32 indexed vkKey,
        address indexed publisher,
        string name,
        string version,
        bytes io
    );

    /// The code at `verifier` is not the template followed by a key (or there is no code).
    error VerifierCodeMismatch(address verifier);
    /// The code is the template followed by something that is not a well-formed key.
    error VerificationKeyMalformed(address verifier);
    error AttestationInvalid();
    /// The auditor already attested another key for this manifest.
    error AttestationConflict(bytes32 manifestDigest, bytes32 vkKey);
    /// The sender is not the publisher of the `ModelRegistry` version.
    error NotModelPublisher(address publisher);
    /// The version's manifest CID is not the CIDv1 (json, sha2-256) of this digest.
    error ManifestDigestMismatch(string manifestCid);
    /// The model is bound already (a binding never changes).
    error BindingExists(bytes32 manifestDigest);
    /// No verifier is registered for the key.
    error VerifierUnregistered(bytes32 vkKey);
    /// The key's verifier takes another number of public signals than the layout describes.
    error LayoutMismatch(uint256 nPublic, uint256 layoutSignals);
    /// No binding for this manifest digest.
    error ModelNotBound(bytes32 manifestDigest);
    /// The Groth16 proof does not verify under the bound key.
    error ZkProofInvalid();

    constructor(ModelRegistry models_) {
        models = models_;
    }

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

    /// @notice Binds the model published as the version `version` of `name` (manifest digest `manifestDigest`) to the
    /// verification key `vkKey` and the circuit's public layout, once and for good. Only that
    /// version's publisher may; the key's verifier must be registered, with as many public signals
    /// as the layout describes.
    function bindModel(
        string calldata name,
        string calldata version,
        bytes32 manifestDigest,
        bytes32 vkKey,
        bytes calldata io
    ) external {
        _checkPublisher(name, version, manifestDigest);
        Binding storage b = bindings[manifestDigest];
        if (b.boundAt != 0) revert BindingExists(manifestDigest);
        _checkLayout(vkKey, io);
        b.vkKey = vkKey;
        b.publisher = msg.sender;
        b.boundAt = uint64(block.timestamp);
        b.io = io;
        emit ModelBound(manifestDigest, vkKey, msg.sender, name, version, io);
    }

    /// The sender published the version `version` of `name`, whose manifest CID has this digest.
    function _checkPublisher(string calldata name, string calldata version, bytes32 manifestDigest) private view {
        ModelRegistry.Version memory v = models.resolve(name, version);
        if (v.publisher != msg.sender) revert NotModelPublisher(v.publisher);
        if (keccak256(bytes(v.manifestCid)) != keccak256(manifestCidText(manifestDigest))) {
            revert ManifestDigestMismatch(v.manifestCid);
        }
    }

    /// The key has a verifier, and the layout is well formed with as many signals as it takes.
    function _checkLayout(bytes32 vkKey, bytes calldata io) private view {
        address verifier = verifiers[vkKey];
        if (verifier == address(0)) revert VerifierUnregistered(vkKey);
        uint256 signals = ZkCodec.validate(io);
        uint256 nPublic = Groth16Verifier(verifier).nPublic();
        if (nPublic != signals) revert LayoutMismatch(nPublic, signals);
    }

    /// @notice A model's binding; `boundAt` 0 when unbound.
    function bindingOf(bytes32 manifestDigest) external view returns (Binding memory) {
        return bindings[manifestDigest];
    }

    /// @notice The output digest that a proof establishes for a bound model and an input: reverts
    /// unless the signals are well formed (`ZkSignalsMalformed`), the input signals are the
    /// fixed-point encoding of `input` (canonical `VTN1` bytes; `ZkInput*`) and the proof verifies
    /// under the bound key (`ZkProofInvalid`). Returns SHA-256 of the `VTN1` output tensors the
    /// output signals stand for: what a `zk` record of this input must log as `outputDigest`.
    function provenOutput(
        bytes32 manifestDigest,
        bytes calldata input,
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[] calldata signals
    ) external view returns (bytes32) {
        Binding storage binding = bindings[manifestDigest];
        if (binding.boundAt == 0) revert ModelNotBound(manifestDigest);
        bytes memory io = binding.io;
        ZkCodec.Header memory h = ZkCodec.header(io);
        ZkCodec.checkSignals(h, signals);
        ZkCodec.checkInput(io, h, input, signals);
        if (!Groth16Verifier(verifiers[binding.vkKey]).verifyProof(a, b, c, signals)) revert ZkProofInvalid();
        return ZkCodec.outputDigest(io, h, signals);
    }

    /// @notice The text of the manifest CID with this digest: CIDv1, codec json (0x0200), sha2-256,
    /// in base32 lower case without padding (`b` prefix): protocol `manifestCid`'s form.
    function manifestCidText(bytes32 digest) public pure returns (bytes memory text) {
        bytes memory raw = abi.encodePacked(hex"0180041220", digest);
        bytes memory alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        text = new bytes(61);
        text[0] = "b";
        for (uint256 i = 0; i < 60; i++) {
            uint256 bit = 5 * i;
            uint256 idx = bit / 8;
            uint256 window = (uint256(uint8(raw[idx])) << 8) | (idx + 1 < raw.length ? uint256(uint8(raw[idx + 1])) : 0);
            text[1 + i] = alphabet[(window >> (11 - (bit % 8))) & 31];
        }
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
