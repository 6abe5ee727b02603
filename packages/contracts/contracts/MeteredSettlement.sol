// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Settles a metered payment (issue 15, the `metered` x402 scheme for language models): the payer
// authorizes a MAXIMUM up front, the payee charges what the answer actually cost, and the rest goes
// back to the payer, in one transaction.
//
// The payer signs an EIP-3009 ReceiveWithAuthorization of `maxValue` from itself to this contract,
// with nonce = keccak256(abi.encode(payee, salt)). Only this contract can submit a
// ReceiveWithAuthorization whose `to` is this contract (the token checks msg.sender == to), and
// `settle` recomputes the nonce from msg.sender, so only the payee the payer had in mind can turn
// the authorization into money: anyone else derives another nonce, for which the signature is not
// valid. The authorization's own nonce state on the token makes each one settle at most once.
//
// Why not x402's `upto` scheme: it needs Permit2 and its proxy at canonical CREATE2 addresses,
// which a fresh local chain does not have. This contract holds no funds between transactions.

/// The two forms of EIP-3009's receiveWithAuthorization (USDC v2.2 has both).
interface IEIP3009Receive {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
}

/// @title Verity metered settlement: charge ≤ an authorized maximum, refund the rest
contract MeteredSettlement {
    event MeteredSettled(
        address indexed token,
        address indexed from,
        address indexed payee,
        bytes32 nonce,
        uint256 maxValue,
        uint256 amount
    );

    error AmountAboveMax(uint256 amount, uint256 maxValue);
    /// The token refused or failed a transfer out of this contract.
    error TokenTransferFailed(address token, address to, uint256 value);

    /// @notice The EIP-3009 nonce a payer signs to let `payee` (and only it) settle with `salt`.
    function nonceFor(address payee, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(payee, salt));
    }

    /// @notice Pulls `maxValue` from `from` on its ReceiveWithAuthorization to this contract, pays
    /// `amount` of it to the caller (the payee) and returns `maxValue - amount` to `from`.
    /// @param signature 65 bytes r ‖ s ‖ v for an ordinary account (sent on as (v, r, s), which
    /// every EIP-3009 token has), anything else for a contract wallet (sent on as `bytes`).
    function settle(
        address token,
        address from,
        uint256 maxValue,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 salt,
        bytes calldata signature,
        uint256 amount
    ) external returns (bytes32 nonce) {
        if (amount > maxValue) revert AmountAboveMax(amount, maxValue);
        nonce = nonceFor(msg.sender, salt);
        if (signature.length == 65) {
            IEIP3009Receive(token).receiveWithAuthorization(
                from,
                address(this),
                maxValue,
                validAfter,
                validBefore,
                nonce,
                uint8(signature[64]),
                bytes32(signature[0:32]),
                bytes32(signature[32:64])
            );
        } else {
            IEIP3009Receive(token).receiveWithAuthorization(
                from, address(this), maxValue, validAfter, validBefore, nonce, signature
            );
        }
        if (amount > 0) _send(token, msg.sender, amount);
        if (maxValue > amount) _send(token, from, maxValue - amount);
        emit MeteredSettled(token, from, msg.sender, nonce, maxValue, amount);
    }

    /// ERC-20 transfer that accepts tokens returning nothing as well as `true`.
    function _send(address token, address to, uint256 value) private {
        (bool ok, bytes memory answer) = token.call(abi.encodeWithSignature("transfer(address,uint256)", to, value));
        if (!ok || (answer.length != 0 && (answer.length != 32 || abi.decode(answer, (uint256)) != 1))) {
            revert TokenTransferFailed(token, to, value);
        }
    }
}
