// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The tensors of a zk proof's public signals, on chain (docs/protocol.md §12 "The zk binding")
/// @notice Re-encodes, exactly as protocol `zkInputSignals` / `zkOutputTensors` do off chain, a
/// record's input tensor (canonical `VTN1` bytes, docs/protocol.md §2.3) into the circuit's input
/// signals, and the proof's output signals into the `VTN1` output tensors whose SHA-256 is a zk
/// record's `outputDigest`. It reads the circuit's public layout from a compact **binding layout**
/// (protocol `zkBindingLayout`), all integers big-endian:
///
///   u8 version (1) ‖ u8 fracBits (1..120) ‖ u8 valueBits (2..240) ‖ u32 nOut ‖ u32 nIn ‖
///   u16 inputNameLength ‖ inputName ‖ u8 count (≥ 1) ‖ count × tensor
///   tensor = u16 nameLength ‖ name ‖ u8 kind ‖ u32 offset ‖ u32 size ‖ u32 last ‖ u8 rank ‖ rank × u32 dim
///
/// Tensors are the output tensors of the record, in strictly ascending order of their UTF-8 names
/// (the `VTN1` order). kind 0: a proved output, float64 q / 2^fracBits of signals
/// [offset, offset + size), shape `dims` (size elements); kind 1: an ArgMax head, int64 index of
/// the first maximum of each row of `last` signals in [offset, offset + size), shape `dims`
/// (size / last elements). Public signals are `[...out (nOut), ...in (nIn)]`.
library ZkCodec {
    /// BN254's scalar field: the circuit's field.
    uint256 internal constant P = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint256 private constant HALF = (P - 1) / 2;
    uint8 private constant F32 = 1;
    uint8 private constant F64 = 11;
    uint8 private constant I64 = 7;

    /// The binding layout is malformed at this byte offset.
    error ZkLayoutMalformed(uint256 offset);
    /// The input bytes are not one tensor of the layout's input (name, float32/float64, nIn values).
    error ZkInputMalformed();
    /// An input value is NaN or infinite: it has no fixed-point value.
    error ZkInputNotFinite(uint256 index);
    /// round(x · 2^fracBits) of an input is outside [−2^(valueBits−1), 2^(valueBits−1)).
    error ZkInputOutOfRange(uint256 index);
    /// The proof's input signal at `index` is not the fixed-point encoding of the input's value.
    error ZkInputMismatch(uint256 index);
    /// Not nOut + nIn signals, or a signal ≥ the field's order.
    error ZkSignalsMalformed();

    struct Header {
        uint256 fracBits;
        uint256 valueBits;
        uint256 nOut;
        uint256 nIn;
        /// Offset of the input name in the layout, and its length.
        uint256 nameAt;
        uint256 nameLength;
        /// Offset of the tensor count.
        uint256 tensorsAt;
    }

    /// Checks a binding layout; returns the number of public signals it describes (nOut + nIn).
    function validate(bytes memory io) internal pure returns (uint256 nPublic) {
        Header memory h = header(io);
        uint256 pos = h.tensorsAt;
        uint256 count = _u(io, pos, 1);
        if (count == 0) revert ZkLayoutMalformed(pos);
        pos += 1;
        uint256 previous;
        for (uint256 t = 0; t < count; t++) {
            uint256 nameLength = _u(io, pos, 2);
            if (nameLength == 0 || nameLength > 256) revert ZkLayoutMalformed(pos);
            _need(io, pos + 2, nameLength);
            // Names strictly ascending, bytewise: the `VTN1` order, each name once.
            if (t > 0 && !_less(io, previous, pos)) revert ZkLayoutMalformed(pos);
            previous = pos;
            pos = _checkTensor(io, pos + 2 + nameLength, h.nOut);
        }
        if (pos != io.length) revert ZkLayoutMalformed(pos);
        return h.nOut + h.nIn;
    }

    /// Checks the fields of a tensor after its name (at `pos`); returns the offset after it.
    function _checkTensor(bytes memory io, uint256 pos, uint256 nOut) private pure returns (uint256) {
        uint256 kind = _u(io, pos, 1);
        uint256 offset = _u(io, pos + 1, 4);
        uint256 size = _u(io, pos + 5, 4);
        uint256 last = _u(io, pos + 9, 4);
        uint256 rank = _u(io, pos + 13, 1);
        if (kind > 1 || size == 0 || offset + size > nOut || rank > 16) revert ZkLayoutMalformed(pos);
        uint256 elements = kind == 0 ? size : (last == 0 || size % last != 0 ? 0 : size / last);
        if (elements == 0 || (kind == 0 && last != 0)) revert ZkLayoutMalformed(pos);
        pos += 14;
        uint256 product = 1;
        for (uint256 i = 0; i < rank; i++) {
            product *= _u(io, pos, 4);
            if (product > 65536) revert ZkLayoutMalformed(pos);
            pos += 4;
        }
        if (product != elements) revert ZkLayoutMalformed(pos);
        return pos;
    }

    /// The fixed fields of a layout (its tensors are read by `validate` and `outputDigest`).
    function header(bytes memory io) internal pure returns (Header memory h) {
        if (_u(io, 0, 1) != 1) revert ZkLayoutMalformed(0);
        h.fracBits = _u(io, 1, 1);
        h.valueBits = _u(io, 2, 1);
        h.nOut = _u(io, 3, 4);
        h.nIn = _u(io, 7, 4);
        h.nameLength = _u(io, 11, 2);
        h.nameAt = 13;
        _need(io, 13, h.nameLength);
        h.tensorsAt = 13 + h.nameLength;
        if (h.fracBits == 0 || h.fracBits > 120) revert ZkLayoutMalformed(1);
        if (h.valueBits < 2 || h.valueBits > 240) revert ZkLayoutMalformed(2);
        if (h.nOut == 0 || h.nIn == 0 || h.nOut + h.nIn > 65536) revert ZkLayoutMalformed(3);
        if (h.nameLength == 0 || h.nameLength > 256) revert ZkLayoutMalformed(11);
    }

    /// Every signal < P and exactly nOut + nIn of them.
    function checkSignals(Header memory h, uint256[] calldata signals) internal pure {
        if (signals.length != h.nOut + h.nIn) revert ZkSignalsMalformed();
        for (uint256 i = 0; i < signals.length; i++) {
            if (signals[i] >= P) revert ZkSignalsMalformed();
        }
    }

    /// Checks that the input signals are the fixed-point encoding of the input tensor, exactly as
    /// protocol `zkInputSignals`: one tensor named as the layout's input, float32 or float64, nIn
    /// values (any shape), each round(x · 2^s) half up, in range, as a field element.
    function checkInput(bytes memory io, Header memory h, bytes calldata input, uint256[] calldata signals)
        internal
        pure
    {
        (uint256 pos, bool f64) = _inputData(io, h, input);
        uint256 width = f64 ? 8 : 4;
        for (uint256 i = 0; i < h.nIn; i++) {
            _checkValue(h, _le(input, pos + i * width, width), f64, signals[h.nOut + i], i);
        }
    }

    /// Where the input's values start and whether they are float64, after checking the tensor's
    /// header: "VTN1" ‖ u32le count = 1 ‖ u32le nameLength ‖ name ‖ u8 dtype ‖ u8 rank ‖ rank × u64le dim ‖ data.
    function _inputData(bytes memory io, Header memory h, bytes calldata input)
        private
        pure
        returns (uint256 pos, bool f64)
    {
        if (input.length < 14 || bytes4(input[0:4]) != bytes4("VTN1") || _le(input, 4, 4) != 1) {
            revert ZkInputMalformed();
        }
        if (_le(input, 8, 4) != h.nameLength) revert ZkInputMalformed();
        pos = 12;
        if (input.length < pos + h.nameLength + 2) revert ZkInputMalformed();
        for (uint256 i = 0; i < h.nameLength; i++) {
            if (input[pos + i] != io[h.nameAt + i]) revert ZkInputMalformed();
        }
        pos += h.nameLength;
        uint8 dtype = uint8(input[pos]);
        uint256 rank = uint8(input[pos + 1]);
        pos += 2;
        if (dtype != F32 && dtype != F64) revert ZkInputMalformed();
        f64 = dtype == F64;
        if (input.length < pos + 8 * rank) revert ZkInputMalformed();
        uint256 product = 1;
        for (uint256 i = 0; i < rank; i++) {
            uint256 dim = _le(input, pos, 8);
            if (dim > h.nIn) revert ZkInputMalformed();
            product *= dim;
            if (product > h.nIn) revert ZkInputMalformed();
            pos += 8;
        }
        if (product != h.nIn || input.length != pos + (f64 ? 8 : 4) * h.nIn) revert ZkInputMalformed();
    }

    /// The input signal `index` is the field element of round(x · 2^s), in range.
    function _checkValue(Header memory h, uint256 bits, bool f64, uint256 signal, uint256 index) private pure {
        (bool finite, bool inRange, int256 q) = quantize(bits, f64, h.fracBits);
        if (!finite) revert ZkInputNotFinite(index);
        int256 limit = int256(1 << (h.valueBits - 1));
        if (!inRange || q < -limit || q >= limit) revert ZkInputOutOfRange(index);
        if (signal != (q >= 0 ? uint256(q) : P - uint256(-q))) revert ZkInputMismatch(index);
    }

    /// round(x · 2^s) half up (towards +∞ on a tie) of the IEEE 754 value with these bits: protocol
    /// `zkQuantize`. x · 2^s is exact in binary (a power-of-two scale), so the rounding is of the
    /// exact product. `inRange` is false when |q| ≥ 2^241 (beyond every layout's range).
    function quantize(uint256 bits, bool f64, uint256 s) internal pure returns (bool finite, bool inRange, int256 q) {
        uint256 mantissaBits = f64 ? 52 : 23;
        uint256 expMask = f64 ? 0x7ff : 0xff;
        int256 bias = f64 ? int256(1023) : int256(127);
        bool negative = (bits >> (f64 ? 63 : 31)) & 1 == 1;
        uint256 e = (bits >> mantissaBits) & expMask;
        uint256 m = bits & ((1 << mantissaBits) - 1);
        if (e == expMask) return (false, false, 0);
        // x = m · 2^E with m an integer (subnormals: no hidden bit, exponent of e = 1).
        int256 exponent;
        if (e == 0) {
            exponent = 1 - bias - int256(mantissaBits);
        } else {
            m |= 1 << mantissaBits;
            exponent = int256(e) - bias - int256(mantissaBits);
        }
        if (m == 0) return (true, true, 0);
        int256 t = exponent + int256(s);
        uint256 magnitude;
        if (t >= 0) {
            if (bitLength(m) + uint256(t) > 241) return (true, false, 0);
            magnitude = m << uint256(t);
        } else {
            uint256 k = uint256(-t);
            // m < 2^53 ≤ 2^(k−1): |x · 2^s| < 1/2, which rounds to 0 either way.
            if (k > 54) return (true, true, 0);
            // floor(y + 1/2) for y = m / 2^k ≥ 0; for −y: −ceil(y − 1/2) = −floor((m + 2^(k−1) − 1) / 2^k).
            magnitude = negative ? (m + (1 << (k - 1)) - 1) >> k : (m + (1 << (k - 1))) >> k;
        }
        q = negative ? -int256(magnitude) : int256(magnitude);
        return (true, true, q);
    }

    /// SHA-256 of the `VTN1` encoding of the output tensors the signals stand for: protocol
    /// `zkOutputTensors`, then `encodeTensors`. Expects `checkSignals` to have passed.
    function outputDigest(bytes memory io, Header memory h, uint256[] calldata signals)
        internal
        pure
        returns (bytes32)
    {
        uint256 count = _u(io, h.tensorsAt, 1);
        uint256 total = _encodedLength(io, h.tensorsAt + 1, count);
        // 32 bytes of slack: words are stored whole, each overwriting what follows it.
        bytes memory out = new bytes(total + 32);
        uint256 p;
        assembly ("memory-safe") {
            p := add(out, 0x20)
        }
        p = _put(p, uint256(bytes32("VTN1")), 4);
        p = _put(p, uint256(_swap64(uint64(count))), 4);
        uint256 pos = h.tensorsAt + 1;
        for (uint256 t = 0; t < count; t++) {
            (pos, p) = _writeTensor(io, pos, p, signals, h.fracBits);
        }
        assembly ("memory-safe") {
            mstore(out, total)
        }
        return sha256(out);
    }

    /// Length of the `VTN1` encoding of the layout's `count` tensors listed from `pos`.
    function _encodedLength(bytes memory io, uint256 pos, uint256 count) private pure returns (uint256 total) {
        total = 8;
        for (uint256 t = 0; t < count; t++) {
            uint256 nameLength = _u(io, pos, 2);
            pos += 2 + nameLength;
            uint256 size = _u(io, pos + 5, 4);
            uint256 elements = _u(io, pos, 1) == 0 ? size : size / _u(io, pos + 9, 4);
            uint256 rank = _u(io, pos + 13, 1);
            total += 4 + nameLength + 2 + 8 * rank + 8 * elements;
            pos += 14 + 4 * rank;
        }
    }

    /// Writes the tensor described at `pos` of the layout at memory `p`; returns both cursors moved on.
    function _writeTensor(bytes memory io, uint256 pos, uint256 p, uint256[] calldata signals, uint256 s)
        private
        pure
        returns (uint256, uint256)
    {
        (pos, p) = _writeTensorHeader(io, pos, p);
        uint256 offset = _u(io, pos + 1, 4);
        uint256 size = _u(io, pos + 5, 4);
        if (_u(io, pos, 1) == 0) {
            p = _writeFloats(p, signals[offset:offset + size], s);
        } else {
            p = _writeArgMax(p, signals[offset:offset + size], _u(io, pos + 9, 4));
        }
        return (pos + 14 + 4 * _u(io, pos + 13, 1), p);
    }

    /// Writes name, dtype, rank and dims of the tensor at `pos`; returns the layout's cursor at its
    /// kind byte and the memory cursor at its data.
    function _writeTensorHeader(bytes memory io, uint256 pos, uint256 p) private pure returns (uint256, uint256) {
        uint256 nameLength = _u(io, pos, 2);
        p = _put(p, uint256(_swap64(uint64(nameLength))), 4);
        for (uint256 i = 0; i < nameLength; i++) {
            p = _put(p, uint256(uint8(io[pos + 2 + i])) << 248, 1);
        }
        pos += 2 + nameLength;
        uint256 rank = _u(io, pos + 13, 1);
        p = _put(p, (uint256(_u(io, pos, 1) == 0 ? F64 : I64) << 248) | (rank << 240), 2);
        for (uint256 i = 0; i < rank; i++) {
            p = _put(p, uint256(_swap64(uint64(_u(io, pos + 14 + 4 * i, 4)))), 8);
        }
        return (pos, p);
    }

    /// Float64 q / 2^s of each signal, little-endian.
    function _writeFloats(uint256 p, uint256[] calldata values, uint256 s) private pure returns (uint256) {
        for (uint256 i = 0; i < values.length; i++) {
            p = _put(p, uint256(_swap64(float64(values[i], s))), 8);
        }
        return p;
    }

    /// Int64 index of the first maximum of each row of `last` signals, little-endian.
    function _writeArgMax(uint256 p, uint256[] calldata values, uint256 last) private pure returns (uint256) {
        for (uint256 r = 0; r < values.length / last; r++) {
            p = _put(p, uint256(_swap64(uint64(argMax(values[r * last:(r + 1) * last])))), 8);
        }
        return p;
    }

    /// Index of the first maximum of the signed values of `row`.
    function argMax(uint256[] calldata row) internal pure returns (uint256 best) {
        int256 bestValue = signed(row[0]);
        for (uint256 i = 1; i < row.length; i++) {
            int256 v = signed(row[i]);
            if (v > bestValue) {
                best = i;
                bestValue = v;
            }
        }
    }

    /// The signed integer a field element stands for (above (P − 1) / 2: negative).
    function signed(uint256 signal) internal pure returns (int256) {
        return signal > HALF ? -int256(P - signal) : int256(signal);
    }

    /// The IEEE 754 binary64 bits of q / 2^s for the signed integer of `signal`: JavaScript's
    /// `Number(q) / 2 ** s` — q rounded to 53 bits, ties to even, then scaled (exact: the result
    /// stays a normal number for |q| ≥ 1 and s ≤ 120). 0 is +0.
    function float64(uint256 signal, uint256 s) internal pure returns (uint64) {
        bool negative = signal > HALF;
        uint256 magnitude = negative ? P - signal : signal;
        if (magnitude == 0) return 0;
        uint256 e = bitLength(magnitude) - 1;
        uint256 mantissa;
        if (e <= 52) {
            mantissa = magnitude << (52 - e);
        } else {
            uint256 shift = e - 52;
            mantissa = magnitude >> shift;
            uint256 rest = magnitude & ((1 << shift) - 1);
            uint256 half = 1 << (shift - 1);
            if (rest > half || (rest == half && mantissa & 1 == 1)) {
                mantissa++;
                if (mantissa == 1 << 53) {
                    mantissa >>= 1;
                    e++;
                }
            }
        }
        uint256 biased = e + 1023 - s;
        return uint64((negative ? 1 << 63 : 0) | (biased << 52) | (mantissa & ((1 << 52) - 1)));
    }

    /// Number of bits of x (0 for 0).
    function bitLength(uint256 x) internal pure returns (uint256 n) {
        for (uint256 step = 128; step > 0; step >>= 1) {
            if (x >= (1 << step)) {
                x >>= step;
                n += step;
            }
        }
        if (x > 0) n += 1;
    }

    /// Reverts unless `n` bytes at `pos` are inside the layout.
    function _need(bytes memory b, uint256 pos, uint256 n) private pure {
        if (pos + n > b.length) revert ZkLayoutMalformed(pos);
    }

    /// Big-endian unsigned integer of `n` bytes (1 ≤ n ≤ 4) at `pos`; reverts if past the end.
    function _u(bytes memory b, uint256 pos, uint256 n) private pure returns (uint256 v) {
        _need(b, pos, n);
        assembly ("memory-safe") {
            v := shr(mul(8, sub(32, n)), mload(add(add(b, 0x20), pos)))
        }
    }

    /// Little-endian unsigned integer of `n` bytes (n ≤ 8) of calldata at `pos` (bounds checked by the caller).
    function _le(bytes calldata b, uint256 pos, uint256 n) private pure returns (uint256 v) {
        for (uint256 i = 0; i < n; i++) {
            v |= uint256(uint8(b[pos + i])) << (8 * i);
        }
    }

    /// Whether the name whose u16 length is at `a` sorts strictly before the one at `b`, bytewise.
    function _less(bytes memory io, uint256 a, uint256 b) private pure returns (bool) {
        uint256 aLength = _u(io, a, 2);
        uint256 bLength = _u(io, b, 2);
        uint256 n = aLength < bLength ? aLength : bLength;
        for (uint256 i = 0; i < n; i++) {
            uint8 x = uint8(io[a + 2 + i]);
            uint8 y = uint8(io[b + 2 + i]);
            if (x != y) return x < y;
        }
        return aLength < bLength;
    }

    /// Byte-reverses a u64 (its little-endian bytes, left-aligned in the top 8 bytes of the word).
    function _swap64(uint64 v) private pure returns (bytes32) {
        v = ((v & 0xFF00FF00FF00FF00) >> 8) | ((v & 0x00FF00FF00FF00FF) << 8);
        v = ((v & 0xFFFF0000FFFF0000) >> 16) | ((v & 0x0000FFFF0000FFFF) << 16);
        v = (v >> 32) | (v << 32);
        return bytes32(uint256(v) << 192);
    }

    /// Stores the top `n` bytes of `word` at `p` (the rest of the word is overwritten later).
    function _put(uint256 p, uint256 word, uint256 n) private pure returns (uint256) {
        assembly ("memory-safe") {
            mstore(p, word)
        }
        return p + n;
    }
}
