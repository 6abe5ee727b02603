// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Resolves `name@version` to the CID of the model's manifest. The first account to publish a name
// owns it; only the owner publishes further versions, deprecates them or hands the name on.
//
// A published version is immutable: its manifest CID never changes, so a record that names
// `iris@1.2.0` today names the same bytes forever. Deprecation is a flag, not a removal. Names
// follow the manifest rule `[a-z0-9][a-z0-9._-]{0,63}` (packages/protocol manifest.ts) and
// versions use the semver alphabet, so `name@version` always splits at its one `@`.

/// @title Verity model registry (docs/design.md §2.1, §2.7)
contract ModelRegistry {
    struct Version {
        string manifestCid;
        address publisher;
        uint64 publishedAt;
        bool deprecated;
    }

    uint256 public constant MAX_NAME_LENGTH = 64;
    uint256 public constant MAX_VERSION_LENGTH = 64;
    /// A CIDv1 of a sha2-256 digest is 59 characters in base32; leave room for other bases.
    uint256 public constant MAX_CID_LENGTH = 128;

    /// keccak256(name) → owner.
    mapping(bytes32 => address) private owners;
    // keccak256(name ‖ "@" ‖ version) → version.
    mapping(bytes32 => Version) private versionsByRef;
    /// keccak256(name) → versions in publishing order.
    mapping(bytes32 => string[]) private versionLists;

    event ModelPublished(
        bytes32 indexed nameHash, string name, string version, string manifestCid, address indexed publisher
    );
    event ModelDeprecated(bytes32 indexed nameHash, string name, string version, string reason);
    event NameTransferred(bytes32 indexed nameHash, string name, address indexed from, address indexed to);

    error NameInvalid(string name);
    error VersionInvalid(string version);
    error CidInvalid(string manifestCid);
    error NotNameOwner(string name, address owner);
    error VersionExists(string name, string version);
    error UnknownVersion(string name, string version);
    error AlreadyDeprecated(string name, string version);
    error NewOwnerInvalid();

    /// @notice Publishes a version of `name`; the first publisher of `name` becomes its owner.
    function publish(string calldata name, string calldata version, string calldata manifestCid) external {
        _checkName(name);
        _checkVersion(version);
        uint256 cidLength = bytes(manifestCid).length;
        if (cidLength == 0 || cidLength > MAX_CID_LENGTH) revert CidInvalid(manifestCid);
        bytes32 nameHash = keccak256(bytes(name));
        address owner = owners[nameHash];
        if (owner == address(0)) owners[nameHash] = msg.sender;
        else if (owner != msg.sender) revert NotNameOwner(name, owner);
        Version storage v = versionsByRef[_ref(name, version)];
        if (v.publisher != address(0)) revert VersionExists(name, version);
        v.manifestCid = manifestCid;
        v.publisher = msg.sender;
        v.publishedAt = uint64(block.number);
        versionLists[nameHash].push(version);
        emit ModelPublished(nameHash, name, version, manifestCid, msg.sender);
    }

    /// @notice Marks a version as not to be used any more; it still resolves, for old records.
    function deprecate(string calldata name, string calldata version, string calldata reason) external {
        _onlyOwner(name);
        Version storage v = versionsByRef[_ref(name, version)];
        if (v.publisher == address(0)) revert UnknownVersion(name, version);
        if (v.deprecated) revert AlreadyDeprecated(name, version);
        v.deprecated = true;
        emit ModelDeprecated(keccak256(bytes(name)), name, version, reason);
    }

    /// @notice Hands a name to another publisher (e.g. a key rotation); existing versions stay.
    function transferName(string calldata name, address to) external {
        _onlyOwner(name);
        if (to == address(0)) revert NewOwnerInvalid();
        bytes32 nameHash = keccak256(bytes(name));
        owners[nameHash] = to;
        emit NameTransferred(nameHash, name, msg.sender, to);
    }

    /// @notice The published `version` of `name`; reverts `UnknownVersion` if none.
    function resolve(string calldata name, string calldata version) external view returns (Version memory v) {
        v = versionsByRef[_ref(name, version)];
        if (v.publisher == address(0)) revert UnknownVersion(name, version);
    }

    function ownerOf(string calldata name) external view returns (address) {
        return owners[keccak256(bytes(name))];
    }

    /// @notice Every version of `name`, oldest first (deprecated ones included).
    function versionsOf(string calldata name) external view returns (string[] memory) {
        return versionLists[keccak256(bytes(name))];
    }

    function _onlyOwner(string calldata name) private view {
        address owner = owners[keccak256(bytes(name))];
        if (owner != msg.sender) revert NotNameOwner(name, owner);
    }

    function _ref(string calldata name, string calldata version) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(name, "@", version));
    }

    function _checkName(string calldata name) private pure {
        bytes calldata b = bytes(name);
        if (b.length == 0 || b.length > MAX_NAME_LENGTH) revert NameInvalid(name);
        for (uint256 i = 0; i < b.length; i++) {
            bytes1 c = b[i];
            bool ok = (c >= "a" && c <= "z") || (c >= "0" && c <= "9")
                || (i > 0 && (c == "." || c == "_" || c == "-"));
            if (!ok) revert NameInvalid(name);
        }
    }

    /// The semver alphabet only; full semver grammar is checked off chain with the manifest.
    function _checkVersion(string calldata version) private pure {
        bytes calldata b = bytes(version);
        if (b.length == 0 || b.length > MAX_VERSION_LENGTH) revert VersionInvalid(version);
        for (uint256 i = 0; i < b.length; i++) {
            bytes1 c = b[i];
            bool ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "."
                || c == "-" || c == "+";
            if (!ok) revert VersionInvalid(version);
        }
    }
}
