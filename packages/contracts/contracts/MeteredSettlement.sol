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
// Batches (`settleMany`): a node settles the payments that arrived while its previous settlement
// was being mined in one transaction, `exact` ones (TransferWithAuthorization, which anyone may
// submit) and metered ones (paid to the caller, as `settle`). Each item stands alone: one that the
// token refuses (a moved balance, a cancelled nonce) is skipped with an `ExactFailed` or
// `MeteredFailed` event naming its index and the token's revert data, and the others settle.
// Each item runs with at most ITEM_GAS, and only when that much is left: a batch short of gas
// reverts as a whole (so a gas estimate covers every item) rather than skip an item for it, and
// a contract wallet whose isValidSignature burns gas costs the submitter at most ITEM_GAS.
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

/// The two forms of EIP-3009's transferWithAuthorization (USDC v2.2 has both).
interface IEIP3009Transfer {
    function transferWithAuthorization(
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

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
}

/// @title Verity metered settlement: charge ≤ an authorized maximum, refund the rest; batches
contract MeteredSettlement {
    /// An `exact` payment: the payer's TransferWithAuthorization, submitted as it was signed.
    struct Exact {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
        bytes signature;
    }

    /// A metered payment, as the arguments of `settle` (the payee is the caller of `settleMany`).
    struct Metered {
        address from;
        uint256 maxValue;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 salt;
        bytes signature;
        uint256 amount;
    }

    /// Item `index` of `settleMany`'s `exact` did not settle; `reason` is the token's revert data.
    event ExactFailed(uint256 index, bytes reason);
    /// Item `index` of `settleMany`'s `metered` did not settle (nothing moved for it).
    event MeteredFailed(uint256 index, bytes reason);

    event MeteredSettled(
        address indexed token,
        address indexed from,
        address indexed payee,
        bytes32 nonce,
        uint256 maxValue,
        uint256 amount
    );

    /// The most gas one item of `settleMany` may use (a contract wallet's ERC-1271 check included).
    uint256 public constant ITEM_GAS = 500_000;

    error AmountAboveMax(uint256 amount, uint256 maxValue);
    /// `settleMany` ran short of gas before an item: the transaction needs a higher gas limit.
    error BatchOutOfGas(uint256 gasLeft);
    /// `settleFor` is this contract's own entry (a batch item's boundary), not a public one.
    error OnlySelf(address caller);
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
        return _settle(msg.sender, token, from, maxValue, validAfter, validBefore, salt, signature, amount);
    }

    /// @notice Settles many payments to the caller in one transaction: each `exact` authorization
    /// as signed (its `to` receives the value), each `metered` one as `settle` would. An item the
    /// token refuses is skipped (an `ExactFailed` / `MeteredFailed` event) and the rest settle.
    /// @return exactOk whether each `exact` item settled
    /// @return meteredOk whether each `metered` item settled
    function settleMany(address token, Exact[] calldata exact, Metered[] calldata metered)
        external
        returns (bool[] memory exactOk, bool[] memory meteredOk)
    {
        exactOk = new bool[](exact.length);
        for (uint256 i; i < exact.length; ++i) {
            Exact calldata e = exact[i];
            _needItemGas();
            if (e.signature.length == 65) {
                try IEIP3009Transfer(token).transferWithAuthorization{gas: ITEM_GAS}(
                    e.from,
                    e.to,
                    e.value,
                    e.validAfter,
                    e.validBefore,
                    e.nonce,
                    uint8(e.signature[64]),
                    bytes32(e.signature[0:32]),
                    bytes32(e.signature[32:64])
                ) {
                    exactOk[i] = true;
                } catch (bytes memory reason) {
                    emit ExactFailed(i, reason);
                }
            } else {
                try IEIP3009Transfer(token).transferWithAuthorization{gas: ITEM_GAS}(
                    e.from, e.to, e.value, e.validAfter, e.validBefore, e.nonce, e.signature
                ) {
                    exactOk[i] = true;
                } catch (bytes memory reason) {
                    emit ExactFailed(i, reason);
                }
            }
        }
        meteredOk = new bool[](metered.length);
        for (uint256 i; i < metered.length; ++i) {
            // An external call to itself, so that a refused item undoes its own transfers only.
            _needItemGas();
            try this.settleFor{gas: ITEM_GAS}(msg.sender, token, metered[i]) {
                meteredOk[i] = true;
            } catch (bytes memory reason) {
                emit MeteredFailed(i, reason);
            }
        }
    }

    /// @notice One metered item of `settleMany`, paid to `payee`; callable by this contract only.
    function settleFor(address payee, address token, Metered calldata m) external returns (bytes32) {
        if (msg.sender != address(this)) revert OnlySelf(msg.sender);
        return _settle(payee, token, m.from, m.maxValue, m.validAfter, m.validBefore, m.salt, m.signature, m.amount);
    }

    function _settle(
        address payee,
        address token,
        address from,
        uint256 maxValue,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 salt,
        bytes calldata signature,
        uint256 amount
    ) private returns (bytes32 nonce) {
        if (amount > maxValue) revert AmountAboveMax(amount, maxValue);
        nonce = nonceFor(payee, salt);
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
        if (amount > 0) _send(token, payee, amount);
        if (maxValue > amount) _send(token, from, maxValue - amount);
        emit MeteredSettled(token, from, payee, nonce, maxValue, amount);
    }

    /// Every item gets its ITEM_GAS in full (EIP-150 passes on at most 63/64 of what is left).
    function _needItemGas() private view {
        if (gasleft() < ITEM_GAS + ITEM_GAS / 63 + 20_000) revert BatchOutOfGas(gasleft());
    }

    /// ERC-20 transfer that accepts tokens returning nothing as well as `true`.
    function _send(address token, address to, uint256 value) private {
        (bool ok, bytes memory answer) = token.call(abi.encodeWithSignature("transfer(address,uint256)", to, value));
        if (!ok || (answer.length != 0 && (answer.length != 32 || abi.decode(answer, (uint256)) != 1))) {
            revert TokenTransferFailed(token, to, value);
        }
    }
}
