// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Verity node registry (docs/design.md §2.7)
/// @notice Binds an Ethereum account to the Ed25519 key that signs its log's checkpoints
/// (docs/design.md §2.4), the endpoint where it serves, what it can do, and a stake that a dispute can slash.
/// @dev One account is one log, forever: the log key and origin are fixed at the first
/// registration and kept after an exit, so anchors (LogAnchor) and receipts that name the account
/// always mean the same log. A new log key needs a new account. There is no owner: the rules
/// (minimum stake, unbonding delay, slasher) are fixed at deployment.
contract NodeRegistry {
    /// @notice Where an account stands. `Exited` keeps the log key so the account can come back
    /// with the same log, and so no one else can claim that key.
    enum Status {
        None,
        Registered,
        Unbonding,
        Exited
    }

    /// @notice One node. Field order packs the first three slots.
    struct Node {
        /// Ed25519 public key of the log (C2SP signed-note key), never zero once registered.
        bytes32 logKey;
        /// Stake in wei; a node with less than `minStake` is registered but not active.
        uint128 stake;
        /// Bitmask of verification modes and runtimes (see `capabilities.ts`); opaque here.
        uint64 capabilities;
        /// Unix time from which `withdraw` is allowed; 0 unless unbonding.
        uint64 withdrawableAt;
        /// Block of the latest `register`.
        uint64 registeredAt;
        /// Position in `accounts` (valid while Registered or Unbonding).
        uint32 index;
        Status status;
        /// Log origin, the first line of every checkpoint and the name of the note key.
        string origin;
        /// Base URL of the node's HTTP API.
        string endpoint;
    }

    /// Limits that keep entries cheap to read for every client that lists the registry.
    uint256 public constant MAX_ORIGIN_LENGTH = 128;
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;

    uint256 public immutable minStake;
    /// Seconds between `requestUnbond` and `withdraw`: the window in which a dispute over the
    /// node's recent results can still slash it.
    uint64 public immutable unbondingDelay;
    /// The only account allowed to slash (the Disputes contract; any account in tests).
    address public immutable slasher;

    mapping(address => Node) private nodes;
    /// Log key → the account that first registered it; a key names one accountable account.
    mapping(bytes32 => address) public logKeyOwner;
    /// Registered and unbonding accounts (stake still at risk), in no particular order.
    address[] private accounts;
    /// keccak256(origin) → the account that first registered it. Appended after `accounts`
    /// (storage slot 3; EIP-1186 proofs depend on the layout). An origin names one log: two
    /// accounts under one origin would let one operator look like several (docs/protocol.md §11).
    mapping(bytes32 => address) public originOwner;

    event NodeRegistered(
        address indexed account,
        bytes32 indexed logKey,
        string origin,
        string endpoint,
        uint64 capabilities,
        uint256 stake
    );
    event NodeUpdated(address indexed account, string endpoint, uint64 capabilities);
    event StakeAdded(address indexed account, uint256 amount, uint256 stake);
    event UnbondRequested(address indexed account, uint64 withdrawableAt);
    event Withdrawn(address indexed account, uint256 amount);
    event Slashed(address indexed account, uint256 amount, uint256 stake, string reason);

    error StakeTooLow(uint256 stake, uint256 minStake);
    error AlreadyRegistered(address account);
    error NotRegistered(address account);
    error LogKeyInvalid();
    error LogKeyTaken(bytes32 logKey, address owner);
    error OriginTaken(bytes32 originHash, address owner);
    /// A returning account must keep its log (see the contract comment).
    error LogMismatch(bytes32 logKey, string origin);
    error OriginInvalid();
    error EndpointInvalid();
    error NotUnbonding(address account);
    error UnbondingNotOver(uint64 withdrawableAt);
    error NotSlasher(address caller);
    error NothingToSlash(address account);
    error TransferFailed(address to, uint256 amount);

    constructor(uint256 minStake_, uint64 unbondingDelay_, address slasher_) {
        minStake = minStake_;
        unbondingDelay = unbondingDelay_;
        slasher = slasher_;
    }

    /// @notice Registers `msg.sender` with `msg.value` as stake (at least `minStake`). The log key
    /// and the origin must be new (no other account holds either).
    function register(bytes32 logKey, string calldata origin, string calldata endpoint, uint64 capabilities)
        external
        payable
    {
        Node storage n = nodes[msg.sender];
        if (n.status == Status.Registered || n.status == Status.Unbonding) revert AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert StakeTooLow(msg.value, minStake);
        if (logKey == bytes32(0)) revert LogKeyInvalid();
        if (bytes(origin).length == 0 || bytes(origin).length > MAX_ORIGIN_LENGTH) revert OriginInvalid();
        _checkEndpoint(endpoint);
        if (n.status == Status.Exited) {
            if (n.logKey != logKey || keccak256(bytes(n.origin)) != keccak256(bytes(origin))) {
                revert LogMismatch(n.logKey, n.origin);
            }
        } else {
            address owner = logKeyOwner[logKey];
            if (owner != address(0)) revert LogKeyTaken(logKey, owner);
            bytes32 originHash = keccak256(bytes(origin));
            address originHolder = originOwner[originHash];
            if (originHolder != address(0)) revert OriginTaken(originHash, originHolder);
            logKeyOwner[logKey] = msg.sender;
            originOwner[originHash] = msg.sender;
            n.logKey = logKey;
            n.origin = origin;
        }
        n.stake = uint128(msg.value);
        n.capabilities = capabilities;
        n.withdrawableAt = 0;
        n.registeredAt = uint64(block.number);
        n.index = uint32(accounts.length);
        n.status = Status.Registered;
        n.endpoint = endpoint;
        accounts.push(msg.sender);
        emit NodeRegistered(msg.sender, logKey, origin, endpoint, capabilities, msg.value);
    }

    /// @notice Changes what a node announces; the log key and origin never change.
    function update(string calldata endpoint, uint64 capabilities) external {
        Node storage n = _registered(msg.sender);
        _checkEndpoint(endpoint);
        n.endpoint = endpoint;
        n.capabilities = capabilities;
        emit NodeUpdated(msg.sender, endpoint, capabilities);
    }

    /// @notice Tops up the stake, e.g. back above `minStake` after a slash.
    function addStake() external payable {
        Node storage n = _registered(msg.sender);
        uint256 stake = n.stake + msg.value;
        n.stake = uint128(stake);
        emit StakeAdded(msg.sender, msg.value, stake);
    }

    /// @notice Stops serving: the node is inactive at once, and its stake stays slashable for
    /// `unbondingDelay` seconds.
    function requestUnbond() external {
        Node storage n = _registered(msg.sender);
        uint64 withdrawableAt = uint64(block.timestamp) + unbondingDelay;
        n.status = Status.Unbonding;
        n.withdrawableAt = withdrawableAt;
        emit UnbondRequested(msg.sender, withdrawableAt);
    }

    /// @notice Pays back what is left of the stake once the unbonding delay is over.
    function withdraw() external {
        Node storage n = nodes[msg.sender];
        if (n.status != Status.Unbonding) revert NotUnbonding(msg.sender);
        if (block.timestamp < n.withdrawableAt) revert UnbondingNotOver(n.withdrawableAt);
        uint256 amount = n.stake;
        _removeAccount(n.index);
        n.stake = 0;
        n.withdrawableAt = 0;
        n.status = Status.Exited;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Takes up to `amount` of a node's stake and sends it to the slasher, which decides
    /// how to reward a challenger. Allowed while the node is registered or unbonding.
    function slash(address account, uint256 amount, string calldata reason) external {
        if (msg.sender != slasher) revert NotSlasher(msg.sender);
        Node storage n = nodes[account];
        if (n.status != Status.Registered && n.status != Status.Unbonding) revert NothingToSlash(account);
        uint256 taken = amount < n.stake ? amount : n.stake;
        if (taken == 0) revert NothingToSlash(account);
        uint256 stake = n.stake - taken;
        n.stake = uint128(stake);
        emit Slashed(account, taken, stake, reason);
        _send(msg.sender, taken);
    }

    /// @notice Registered, not unbonding, and staked at least `minStake`: may anchor and serve.
    function isActive(address account) public view returns (bool) {
        Node storage n = nodes[account];
        return n.status == Status.Registered && n.stake >= minStake;
    }

    function getNode(address account) external view returns (Node memory) {
        return nodes[account];
    }

    function nodeCount() external view returns (uint256) {
        return accounts.length;
    }

    /// @notice A page of registered and unbonding nodes, so a client reads the registry (at a
    /// block of its choice) in a few calls without a multicall contract.
    function listNodes(uint256 offset, uint256 limit)
        external
        view
        returns (address[] memory page, Node[] memory entries)
    {
        uint256 end = offset + limit;
        if (end > accounts.length) end = accounts.length;
        uint256 count = offset < end ? end - offset : 0;
        page = new address[](count);
        entries = new Node[](count);
        for (uint256 i = 0; i < count; i++) {
            address a = accounts[offset + i];
            page[i] = a;
            entries[i] = nodes[a];
        }
    }

    /// @notice Every active node (registered, not unbonding, staked at least `minStake` and above
    /// zero) with its stake, in the order of `listNodes`: the compact list a contract reads
    /// (`Disputes` fixes its jury pool from it) without the origin and endpoint strings.
    function activeStakes() external view returns (address[] memory active, uint256[] memory stakes) {
        uint256 n = accounts.length;
        active = new address[](n);
        stakes = new uint256[](n);
        uint256 count;
        for (uint256 i = 0; i < n; i++) {
            address a = accounts[i];
            Node storage node = nodes[a];
            uint256 stake = node.stake;
            if (node.status != Status.Registered || stake < minStake || stake == 0) continue;
            active[count] = a;
            stakes[count] = stake;
            count++;
        }
        assembly ("memory-safe") {
            mstore(active, count)
            mstore(stakes, count)
        }
    }

    function _registered(address account) private view returns (Node storage n) {
        n = nodes[account];
        if (n.status != Status.Registered) revert NotRegistered(account);
    }

    function _checkEndpoint(string calldata endpoint) private pure {
        if (bytes(endpoint).length == 0 || bytes(endpoint).length > MAX_ENDPOINT_LENGTH) revert EndpointInvalid();
    }

    /// Swap-and-pop keeps the list dense so `listNodes` pages never hold holes.
    function _removeAccount(uint32 index) private {
        address last = accounts[accounts.length - 1];
        accounts[index] = last;
        nodes[last].index = index;
        accounts.pop();
    }

    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
