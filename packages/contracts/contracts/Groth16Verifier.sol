// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// A Groth16 verifier over BN254 whose verification key is not compiled in: a deployed verifier's
// runtime code is this contract's runtime code (the "template", `type(Groth16Verifier).runtimeCode`)
// followed by the encoded verification key, which `verifyProof` reads with codecopy. So the code of
// the verifier of a key is a pure function of the key, and `ZkVerifierRegistry` can check that a
// contract is the verifier of exactly one key by its code (packages/zk/README.md, "On chain").
//
// The key's encoding (protocol `zkVkEncoding`), 32-byte big-endian words, 2·n + 17 of them:
//   alpha (G1: x, y) ‖ beta, gamma, delta (G2: x.c1, x.c0, y.c1, y.c0, the EIP-197 order) ‖
//   IC[0..n] (G1: x, y) ‖ n (the number of public signals)
// n is last so that the key is found from the end of the code: the template never needs to know
// its own length.
//
// verifyProof answers false, never reverts, for a proof or signals that do not verify: a signal
// ≥ r, a coordinate ≥ q, a G1 point off the curve (checked here, so no gas is burnt), a G2 point
// off the curve or outside the subgroup (the pairing precompile fails: that call burns the gas it
// was given), a signal count other than n. Only calldata the ABI decoder refuses reverts.

/// @title Verity Groth16 verifier template (docs/design.md §2.6)
contract Groth16Verifier {
    /// BN254 base field modulus.
    uint256 private constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// BN254 scalar field modulus (the circuit's field).
    uint256 private constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// Bounds n so that the key's length never overflows; EIP-170's 24,576-byte code limit is lower.
    uint256 private constant MAX_PUBLIC = 65536;

    /// @notice The number of public signals the key takes (0 when the code holds no well-formed key).
    function nPublic() external pure returns (uint256 n) {
        (n,) = _key();
    }

    /// @notice Whether (a, b, c) is a valid proof for `input` under the key at the end of this code.
    /// @param a proof.A (G1: x, y)
    /// @param b proof.B (G2: [x.c1, x.c0], [y.c1, y.c0])
    /// @param c proof.C (G1: x, y)
    /// @param input the public signals, each < r
    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[] calldata input
    ) external view returns (bool ok) {
        (uint256 n, uint256 vk) = _key();
        if (vk == 0 || input.length != n) return false;
        assembly ("memory-safe") {
            // Scratch from the free memory pointer; nothing else is allocated after this.
            let p := mload(0x40)
            ok := 1
            // G1 point checks: coordinates < q and y² = x³ + 3 (the point at infinity (0, 0) passes).
            function onCurve(x, y) -> valid {
                valid := and(lt(x, Q), lt(y, Q))
                if and(valid, iszero(iszero(or(x, y)))) {
                    valid := eq(mulmod(y, y, Q), addmod(mulmod(x, mulmod(x, x, Q), Q), 3, Q))
                }
            }
            let ax := calldataload(a)
            let ay := calldataload(add(a, 0x20))
            let cx := calldataload(c)
            let cy := calldataload(add(c, 0x20))
            if iszero(and(onCurve(ax, ay), onCurve(cx, cy))) { ok := 0 }

            // vk_x = IC[0] + Σ input[i] · IC[i + 1], accumulated at p (p + 0x40: the term).
            let ic := add(vk, 448) // 14 words: alpha, beta, gamma, delta
            codecopy(p, ic, 0x40)
            for { let i := 0 } and(ok, lt(i, n)) { i := add(i, 1) } {
                let s := calldataload(add(input.offset, mul(i, 0x20)))
                if iszero(lt(s, R)) { ok := 0 }
                // s = 0 adds nothing; s = 1 adds IC[i + 1] itself: no multiplication for either.
                if and(ok, gt(s, 0)) {
                    codecopy(add(p, 0x40), add(ic, mul(add(i, 1), 0x40)), 0x40)
                    if gt(s, 1) {
                        mstore(add(p, 0x80), s)
                        if iszero(staticcall(gas(), 0x07, add(p, 0x40), 0x60, add(p, 0x40), 0x40)) { ok := 0 }
                    }
                    if iszero(staticcall(gas(), 0x06, p, 0x80, p, 0x40)) { ok := 0 }
                }
            }

            if ok {
                // e(−A, B) · e(alpha, beta) · e(vk_x, gamma) · e(C, delta) = 1: four pairs of
                // (G1 64 bytes, G2 128 bytes) from p + 0x40.
                let q := add(p, 0x40)
                mstore(q, ax)
                mstore(add(q, 0x20), mod(sub(Q, ay), Q))
                calldatacopy(add(q, 0x40), b, 0x80)
                codecopy(add(q, 0xc0), vk, 0xc0) // alpha, beta
                mstore(add(q, 0x180), mload(p)) // vk_x
                mstore(add(q, 0x1a0), mload(add(p, 0x20)))
                codecopy(add(q, 0x1c0), add(vk, 0xc0), 0x80) // gamma
                mstore(add(q, 0x240), cx)
                mstore(add(q, 0x260), cy)
                codecopy(add(q, 0x280), add(vk, 0x140), 0x80) // delta
                // Yul evaluates arguments right to left: the call first, then its output.
                let success := staticcall(gas(), 0x08, q, 0x300, q, 0x20)
                ok := and(success, eq(mload(q), 1))
            }
        }
    }

    /// n and the code offset of the key; (0, 0) when the code is too short to hold the key it claims.
    function _key() private pure returns (uint256 n, uint256 vk) {
        assembly ("memory-safe") {
            let size := codesize()
            codecopy(0, sub(size, 0x20), 0x20)
            n := mload(0)
            let length := mul(0x20, add(17, mul(2, n)))
            // The template itself precedes the key: a key as long as the whole code is no key.
            switch and(lt(n, add(MAX_PUBLIC, 1)), lt(length, size))
            case 1 { vk := sub(size, length) }
            default { n := 0 }
        }
    }
}
