// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// A dollar-like token for local chains and tests, so that paid answers (x402, issue 15) settle on
// chain exactly as they would with USDC: ERC-20 with 6 decimals, EIP-2612 `permit`, and EIP-3009
// transfers by signed authorization with both signature forms USDC v2.2 has ((v, r, s) and
// `bytes signature`). The x402 `exact` facilitator (@x402/evm) calls the (v, r, s) overload for a
// 65-byte signature and the `bytes` overload otherwise (contract wallets, ERC-1271).
//
// Written from the EIP texts (EIP-20, EIP-712, EIP-2612, EIP-3009, ERC-1271, ERC-6093 error names):
// - EIP-3009: an authorization is valid while validAfter < block.timestamp < validBefore; its
//   32-byte nonce is random and chosen by the signer, and can be used (or cancelled) once.
// - EIP-2612: `permit` is valid while block.timestamp ≤ deadline; nonces count up per owner.
// - Signatures: ECDSA with low s and v ∈ {27, 28} (EIP-2 malleability), or, for an authorizer
//   with code, ERC-1271 (in both forms; the (v, r, s) form passes r ‖ s ‖ v on, as USDC v2.2 does).
//
// Only the deployer mints. Nothing else is privileged: no pause, no blocklist, no upgrade.

/// ERC-1271: a contract account says whether a signature is its own.
interface IERC1271 {
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4);
}

/// @title Verity test stablecoin (vUSD): ERC-20 + EIP-2612 + EIP-3009
contract TestStablecoin {
    string public constant name = "Verity Test USD";
    string public constant symbol = "vUSD";
    uint8 public constant decimals = 6;
    /// EIP-712 domain version (as USDC's `version()`; the x402 exact facilitator reads it).
    string public constant version = "1";

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// ERC-1271's "valid" answer: bytes4(keccak256("isValidSignature(bytes32,bytes)")).
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;
    /// secp256k1n / 2: a larger s is the malleable twin of a valid signature (EIP-2).
    uint256 private constant S_MAX = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// The deployer: the only account that mints.
    address public immutable minter;
    // The domain separator is cached for the chain of deployment and recomputed on any other
    // (a fork), so a signature for one chain never moves funds on the other.
    uint256 private immutable cachedChainId;
    bytes32 private immutable cachedDomainSeparator;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    /// EIP-2612: the next permit nonce of each owner.
    mapping(address => uint256) public nonces;
    /// EIP-3009: authorizer → nonce → used or cancelled.
    mapping(address => mapping(bytes32 => bool)) public authorizationState;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    error NotMinter(address caller);
    error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
    error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    error ERC20InvalidReceiver(address receiver);
    error PermitExpired(uint256 deadline);
    /// The signature is malformed or not the authorizer's (owner's, for a permit).
    error InvalidSignature();
    error AuthorizationNotYetValid(uint256 validAfter);
    error AuthorizationExpired(uint256 validBefore);
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);
    /// `receiveWithAuthorization` called by someone other than the payee.
    error CallerNotPayee(address caller, address payee);

    constructor() {
        minter = msg.sender;
        cachedChainId = block.chainid;
        cachedDomainSeparator = _computeDomainSeparator();
    }

    // ---- ERC-20 ----

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        // The maximum allowance is "unlimited" and never decreases (as most tokens do).
        if (allowed != type(uint256).max) {
            if (allowed < value) revert ERC20InsufficientAllowance(msg.sender, allowed, value);
            unchecked {
                allowance[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice Creates `value` units for `to`; the deployer only.
    function mint(address to, uint256 value) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        if (to == address(0)) revert ERC20InvalidReceiver(to);
        totalSupply += value;
        // Cannot overflow: no balance exceeds the total supply, which did not overflow.
        unchecked {
            balanceOf[to] += value;
        }
        emit Transfer(address(0), to, value);
    }

    // ---- EIP-712 / EIP-2612 ----

    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator();
    }

    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        if (block.timestamp > deadline) revert PermitExpired(deadline);
        bytes32 digest = _typedDigest(keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonces[owner]++, deadline)));
        _checkSignature(owner, digest, v, r, s);
        _approve(owner, spender, value);
    }

    // ---- EIP-3009 ----

    /// @notice Moves `value` from `from` to `to` on `from`'s signed TransferWithAuthorization.
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
    ) external {
        bytes32 digest =
            _authorizationDigest(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _checkSignature(from, digest, v, r, s);
        _useAuthorization(from, to, value, nonce);
    }

    /// @notice As the (v, r, s) form; `signature` is 65 bytes r ‖ s ‖ v, or a contract wallet's (ERC-1271).
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        bytes32 digest =
            _authorizationDigest(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _checkSignature(from, digest, signature);
        _useAuthorization(from, to, value, nonce);
    }

    /// @notice As `transferWithAuthorization`, but only the payee `to` may submit it, so nobody
    /// can front-run the payee's own call (e.g. a settlement contract's) with the bare transfer.
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
    ) external {
        if (msg.sender != to) revert CallerNotPayee(msg.sender, to);
        bytes32 digest =
            _authorizationDigest(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _checkSignature(from, digest, v, r, s);
        _useAuthorization(from, to, value, nonce);
    }

    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (msg.sender != to) revert CallerNotPayee(msg.sender, to);
        bytes32 digest =
            _authorizationDigest(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _checkSignature(from, digest, signature);
        _useAuthorization(from, to, value, nonce);
    }

    /// @notice Burns an unused nonce of `authorizer` on its signed CancelAuthorization.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        bytes32 digest = _cancelDigest(authorizer, nonce);
        _checkSignature(authorizer, digest, v, r, s);
        _cancel(authorizer, nonce);
    }

    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external {
        bytes32 digest = _cancelDigest(authorizer, nonce);
        _checkSignature(authorizer, digest, signature);
        _cancel(authorizer, nonce);
    }

    // ---- internals ----

    function _transfer(address from, address to, uint256 value) private {
        if (to == address(0)) revert ERC20InvalidReceiver(to);
        uint256 balance = balanceOf[from];
        if (balance < value) revert ERC20InsufficientBalance(from, balance, value);
        unchecked {
            balanceOf[from] = balance - value;
            balanceOf[to] += value;
        }
        emit Transfer(from, to, value);
    }

    function _approve(address owner, address spender, uint256 value) private {
        allowance[owner][spender] = value;
        emit Approval(owner, spender, value);
    }

    function _computeDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256(bytes(version)), block.chainid, address(this))
        );
    }

    function _domainSeparator() private view returns (bytes32) {
        return block.chainid == cachedChainId ? cachedDomainSeparator : _computeDomainSeparator();
    }

    /// EIP-712: keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(message)).
    function _typedDigest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    /// Checks the time window and the nonce of an authorization; returns what its signer signed.
    function _authorizationDigest(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private view returns (bytes32) {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore);
        if (authorizationState[from][nonce]) revert AuthorizationAlreadyUsed(from, nonce);
        return _typedDigest(keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce)));
    }

    function _useAuthorization(address from, address to, uint256 value, bytes32 nonce) private {
        authorizationState[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _cancelDigest(address authorizer, bytes32 nonce) private view returns (bytes32) {
        if (authorizationState[authorizer][nonce]) revert AuthorizationAlreadyUsed(authorizer, nonce);
        return _typedDigest(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
    }

    function _cancel(address authorizer, bytes32 nonce) private {
        authorizationState[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    /// `signer` signed `digest`: an ECDSA signature that recovers to it, or, for an account with
    /// code, its ERC-1271 `isValidSignature`. ECDSA is tried first (as OpenZeppelin's
    /// SignatureChecker does) so that an EOA with EIP-7702 code still signs with its key.
    function _checkSignature(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s) private view {
        if (_recovers(signer, digest, v, r, s)) return;
        if (signer.code.length > 0 && _erc1271Valid(signer, digest, abi.encodePacked(r, s, v))) return;
        revert InvalidSignature();
    }

    /// As the (v, r, s) form; an ECDSA signature is 65 bytes r ‖ s ‖ v, a contract's any length.
    function _checkSignature(address signer, bytes32 digest, bytes calldata signature) private view {
        if (
            signature.length == 65
                && _recovers(signer, digest, uint8(signature[64]), bytes32(signature[0:32]), bytes32(signature[32:64]))
        ) return;
        if (signer.code.length > 0 && _erc1271Valid(signer, digest, signature)) return;
        revert InvalidSignature();
    }

    /// ECDSA with low s and v ∈ {27, 28}; the zero address never signs.
    function _recovers(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s) private pure returns (bool) {
        if (uint256(s) > S_MAX || (v != 27 && v != 28)) return false;
        address recovered = ecrecover(digest, v, r, s);
        return recovered != address(0) && recovered == signer;
    }

    /// ERC-1271; a contract that reverts or answers anything but the magic value has not signed.
    function _erc1271Valid(address signer, bytes32 digest, bytes memory signature) private view returns (bool) {
        (bool ok, bytes memory answer) = signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (digest, signature)));
        return ok && answer.length == 32 && bytes4(answer) == ERC1271_MAGIC;
    }
}
