// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ZkCodec} from "../lib/ZkCodec.sol";

/// @title Test harness: `lib/ZkCodec.sol` exposed for tests (src/zk-codec.test.ts); never deployed
/// by `deploy.ts`.
contract ZkCodecHarness {
    function validate(bytes memory io) external pure returns (uint256) {
        return ZkCodec.validate(io);
    }

    function quantize(uint256 bits, bool f64, uint256 s) external pure returns (bool, bool, int256) {
        return ZkCodec.quantize(bits, f64, s);
    }

    function float64(uint256 signal, uint256 s) external pure returns (uint64) {
        return ZkCodec.float64(signal, s);
    }

    /// Reverts unless the input signals are the fixed-point encoding of `input`.
    function checkInput(bytes memory io, bytes calldata input, uint256[] calldata signals) external pure {
        ZkCodec.Header memory h = ZkCodec.header(io);
        ZkCodec.checkSignals(h, signals);
        ZkCodec.checkInput(io, h, input, signals);
    }

    function outputDigest(bytes memory io, uint256[] calldata signals) external pure returns (bytes32) {
        ZkCodec.Header memory h = ZkCodec.header(io);
        ZkCodec.checkSignals(h, signals);
        return ZkCodec.outputDigest(io, h, signals);
    }
}
