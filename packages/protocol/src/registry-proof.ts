/**
 * Offline registry trust: `NodeRegistry` at block B proven by EIP-1186 storage proofs
 * (`eth_getProof`) against B's state root, carried in a bundle as `registryProof`
 * (docs/protocol.md §13, docs/design.md §2.6a).
 *
 * A verifier that pins one block — its number and hash, or a header it trusts — turns the proof
 * into a {@link RegistrySnapshot} without any network access, in Node or a browser:
 *
 * 1. the carried block header hashes (Keccak-256 of its RLP) to the pinned hash, and its number
 *    is the pinned number; its `stateRoot` is the root everything else hangs from;
 * 2. the account proof of the `NodeRegistry` address is checked against `stateRoot` (Yellow Paper
 *    §4.1, the world-state trie keyed by keccak(address)); the account's `storageRoot` follows;
 * 3. each storage slot the snapshot needs is checked against `storageRoot` (the storage trie keyed
 *    by keccak(slot)); a slot absent from the trie is proven zero by an exclusion proof.
 *
 * Which slots are needed follows from the contract's storage layout (Solidity's layout rules):
 * `accounts` (slot 2) gives its length and elements, every element's `nodes` entry (mapping at
 * slot 0) gives five struct slots, and long strings give their data slots. Every element of
 * `accounts` must be proven, so the snapshot holds every registered and unbonding node: a bundle
 * cannot hide a node from a verifier that recomputes a quorum ranking.
 *
 * The Merkle-Patricia checks are `@ethereumjs/mpt`'s (`verifyMerkleProof`); RLP is
 * `@ethereumjs/rlp`. Both run in browsers. The trie library is loaded on first use (it costs
 * ~200 ms to load cold), so importing this package stays light for verifiers that never pin a block.
 */
import { RLP } from '@ethereumjs/rlp';
import { concatBytes, fromHex, toBase64, toHex } from './bytes.js';
import { fail, VerityError } from './errors.js';
import { keccak256, parseAddress } from './eth.js';
import { ALG_ED25519, noteKeyId } from './note.js';
import type { RegistryNode, RegistrySnapshot } from './registry.js';

/** A storage slot of the registry and its EIP-1186 proof. */
export interface StorageProofEvidence {
  /** The slot, 32 bytes, `0x`-prefixed lower-case hex (the trie key is its Keccak-256). */
  readonly key: string;
  /** RLP-encoded trie nodes from the storage root down, `0x`-prefixed hex. */
  readonly proof: readonly string[];
}

/**
 * `NodeRegistry` at one block, with the proofs that tie it to the block's state root (the
 * bundle's `registryProof` member). Values are not carried: each is read from its proof.
 */
export interface RegistryProofEvidence {
  /** EIP-155 chain id the proof was read from (as the deployment says; the pin is what binds it). */
  readonly chainId: number;
  /** The `NodeRegistry` address (EIP-55). */
  readonly nodeRegistry: string;
  /** The block header, RLP-encoded, `0x`-prefixed hex: Keccak-256 of these bytes is the block hash. */
  readonly header: string;
  /** EIP-1186 account proof of `nodeRegistry` against the header's `stateRoot`. */
  readonly accountProof: readonly string[];
  /** One proof per needed slot, in the order the verifier reads them (docs/protocol.md §13.2). */
  readonly storageProof: readonly StorageProofEvidence[];
}

/** The block a verifier trusts: its number and hash, or its full header (RLP hex). */
export type PinnedBlock = { readonly number: number; readonly hash: string } | { readonly header: string };

/** What the verifier knows about the deployment (its deployment file). */
export interface RegistryDeployment {
  readonly chainId: number;
  /** The `NodeRegistry` address. */
  readonly nodeRegistry: string;
  /** The registry's minimum stake (immutable, so not in storage: taken from the deployment). */
  readonly minStake: bigint;
}

/** Storage layout of `NodeRegistry` (packages/contracts/contracts/NodeRegistry.sol); never reordered. */
export const NODE_REGISTRY_SLOTS = { nodes: 0n, logKeyOwner: 1n, accounts: 2n } as const;

/** Bounds that keep a hostile proof from costing unbounded work. */
export const REGISTRY_PROOF_LIMITS = {
  /** Registered and unbonding nodes a proof may cover. */
  maxNodes: 256,
  /** Trie nodes in one proof (a path has at most 64 nibbles; real tries are ~10 deep). */
  maxProofNodes: 64,
  /** Bytes of one trie node (a full branch node is 532). */
  maxNodeBytes: 1024,
  /** Bytes of the block header. */
  maxHeaderBytes: 8192,
  /** Storage proofs: accounts length + per node (5 struct slots + data of two long strings). */
  maxStorageProofs: 1 + 256 * (1 + 5 + 4 + 8),
  /** Bytes of all trie nodes together. */
  maxTotalBytes: 8 * 1024 * 1024,
} as const;

/** The contract's limits on strings (`MAX_ORIGIN_LENGTH`, `MAX_ENDPOINT_LENGTH`). */
const MAX_ORIGIN = 128;
const MAX_ENDPOINT = 256;
/** The contract's `Status` enum, in order (`None` is never in `accounts`). */
const STATUSES = [undefined, 'registered', 'unbonding', 'exited'] as const;
/** Keccak-256 of the empty string: the code hash of an account without code. */
const EMPTY_CODE_HASH = '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470';
/** Root of the empty trie, keccak256(rlp('')): a contract that never wrote storage. */
const EMPTY_TRIE_ROOT = '56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421';
/** Header field positions (Yellow Paper §4.3). */
const HEADER_STATE_ROOT = 3;
const HEADER_NUMBER = 8;
/** Fields of a pre-London header; later forks append fields. */
const HEADER_MIN_FIELDS = 15;
const HEADER_MAX_FIELDS = 32;

const HEX_BYTES = /^0x(?:[0-9a-f]{2})+$/;
const SLOT = /^0x[0-9a-f]{64}$/;
const HASH = /^0x[0-9a-fA-F]{64}$/;
const MOD = 1n << 256n;

/** An EIP-1186 proof check: the value at `key` (hashed) in the trie with `root`; null when proven absent. */
type ProofCheck = (key: Uint8Array, proof: Uint8Array[], root: Uint8Array) => Promise<Uint8Array | null>;

/** `@ethereumjs/mpt`'s proof check, loaded once per verification. */
async function loadProofCheck(): Promise<ProofCheck> {
  const { verifyMerkleProof } = await import('@ethereumjs/mpt');
  return (key, proof, root) => verifyMerkleProof(key, proof, { root, useKeyHashing: true });
}

function malformed(message: string, field: string): never {
  return fail('REGISTRY_PROOF_MALFORMED', message, { field });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(v: Record<string, unknown>, allowed: readonly string[], at: string): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) malformed(`${at}: unknown field "${k}"`, `${at}.${k}`);
}

function hexBytes(v: unknown, max: number, field: string): string {
  if (typeof v !== 'string' || v.length > 2 + 2 * max || !HEX_BYTES.test(v)) {
    malformed(`${field} must be 0x-prefixed lower-case hex of 1..${max} bytes`, field);
  }
  return v;
}

function proofNodes(v: unknown, field: string, total: { bytes: number }): string[] {
  if (!Array.isArray(v) || v.length > REGISTRY_PROOF_LIMITS.maxProofNodes) {
    malformed(`${field} must be an array of at most ${REGISTRY_PROOF_LIMITS.maxProofNodes} trie nodes`, field);
  }
  return v.map((n, i) => {
    const node = hexBytes(n, REGISTRY_PROOF_LIMITS.maxNodeBytes, `${field}[${i}]`);
    total.bytes += (node.length - 2) / 2;
    if (total.bytes > REGISTRY_PROOF_LIMITS.maxTotalBytes) {
      malformed(`proofs exceed ${REGISTRY_PROOF_LIMITS.maxTotalBytes} bytes`, field);
    }
    return node;
  });
}

/**
 * Validates an untrusted value (parsed JSON) as {@link RegistryProofEvidence}: shapes and bounds
 * only, nothing is verified. Throws `REGISTRY_PROOF_MALFORMED`.
 *
 * @example
 * ```ts
 * const evidence = parseRegistryProof(JSON.parse(text).registryProof);
 * ```
 */
export function parseRegistryProof(value: unknown, at = 'registryProof'): RegistryProofEvidence {
  if (!isObject(value)) malformed(`${at} must be an object`, at);
  onlyKeys(value, ['chainId', 'nodeRegistry', 'header', 'accountProof', 'storageProof'], at);
  const { chainId } = value;
  if (typeof chainId !== 'number' || !Number.isSafeInteger(chainId) || chainId <= 0) {
    malformed(`${at}.chainId must be a positive integer`, `${at}.chainId`);
  }
  if (typeof value.nodeRegistry !== 'string') malformed(`${at}.nodeRegistry must be an address`, `${at}.nodeRegistry`);
  let nodeRegistry: string;
  try {
    nodeRegistry = parseAddress(value.nodeRegistry);
  } catch (cause) {
    throw new VerityError('REGISTRY_PROOF_MALFORMED', `${at}.nodeRegistry is not an address`, {
      cause,
      details: { field: `${at}.nodeRegistry` },
    });
  }
  const header = hexBytes(value.header, REGISTRY_PROOF_LIMITS.maxHeaderBytes, `${at}.header`);
  const total = { bytes: 0 };
  const accountProof = proofNodes(value.accountProof, `${at}.accountProof`, total);
  const sp = value.storageProof;
  if (!Array.isArray(sp) || sp.length === 0 || sp.length > REGISTRY_PROOF_LIMITS.maxStorageProofs) {
    malformed(
      `${at}.storageProof must be an array of 1..${REGISTRY_PROOF_LIMITS.maxStorageProofs}`,
      `${at}.storageProof`,
    );
  }
  const seen = new Set<string>();
  const storageProof = sp.map((p, i): StorageProofEvidence => {
    const f = `${at}.storageProof[${i}]`;
    if (!isObject(p)) malformed(`${f} must be an object`, f);
    onlyKeys(p, ['key', 'proof'], f);
    if (typeof p.key !== 'string' || !SLOT.test(p.key)) malformed(`${f}.key must be a 32-byte 0x hex slot`, `${f}.key`);
    if (seen.has(p.key)) malformed(`${f}.key repeats a slot`, `${f}.key`);
    seen.add(p.key);
    return { key: p.key, proof: proofNodes(p.proof, `${f}.proof`, total) };
  });
  return { chainId, nodeRegistry, header, accountProof, storageProof };
}

/** A 256-bit word as a 32-byte big-endian slot key. */
function word(n: bigint): Uint8Array {
  return fromHex((n % MOD).toString(16).padStart(64, '0'));
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${toHex(bytes)}`);
}

/** The first storage slot of a dynamic array's elements, or of a long string's data: keccak(p). */
function dataSlot(slot: bigint): bigint {
  return toBigInt(keccak256(word(slot)));
}

/** The slot of `mapping(address => …)` at `slot` for `key`: keccak(pad32(key) ‖ pad32(slot)). */
function mappingSlot(key: string, slot: bigint): bigint {
  return toBigInt(keccak256(concatBytes(new Uint8Array(12), fromHex(key), word(slot))));
}

/** An RLP byte string from a decoded structure, or a failure with `code`. */
function rlpBytes(v: unknown, message: string): Uint8Array {
  if (!(v instanceof Uint8Array)) return fail('REGISTRY_PROOF_MALFORMED', message);
  return v;
}

/** Number and hash of a header given as RLP hex (decoded strictly). */
function decodeHeader(header: string): { number: bigint; hash: string; stateRoot: Uint8Array } {
  const bytes = fromHex(header);
  let fields: unknown;
  try {
    fields = RLP.decode(bytes);
  } catch (cause) {
    throw new VerityError('REGISTRY_PROOF_MALFORMED', 'the block header is not RLP', { cause });
  }
  if (!Array.isArray(fields) || fields.length < HEADER_MIN_FIELDS || fields.length > HEADER_MAX_FIELDS) {
    fail('REGISTRY_PROOF_MALFORMED', 'the block header is not an RLP list of header fields');
  }
  const stateRoot = rlpBytes(fields[HEADER_STATE_ROOT], 'the header stateRoot is not a byte string');
  const number = rlpBytes(fields[HEADER_NUMBER], 'the header number is not a byte string');
  if (stateRoot.length !== 32) fail('REGISTRY_PROOF_MALFORMED', 'the header stateRoot is not 32 bytes');
  if (number.length > 8 || (number.length > 0 && number[0] === 0)) {
    fail('REGISTRY_PROOF_MALFORMED', 'the header number is not a canonical integer');
  }
  return { number: toBigInt(number), hash: `0x${toHex(keccak256(bytes))}`, stateRoot };
}

/**
 * The block a proof claims to be at, read from its header (untrusted: a hint of which block to
 * pin, e.g. for a CLI message). Throws `REGISTRY_PROOF_MALFORMED`.
 *
 * @example
 * ```ts
 * const { number, hash } = registryProofBlock(bundle.registryProof); // then look it up in a trusted source
 * ```
 */
export function registryProofBlock(evidence: RegistryProofEvidence): { number: number; hash: string } {
  const h = decodeHeader(evidence.header);
  return { number: Number(h.number), hash: h.hash };
}

/**
 * The C2SP verifier key of a registry entry: `origin+keyid+base64(0x01 ‖ logKey)`, as
 * `encodeVerifierKey` makes it, but built even when the origin is not a valid key name (the
 * contract does not check names): such an entry stays in the snapshot, so rankings over it are
 * the same however the registry was read, and no receipt can match its key.
 *
 * @example
 * ```ts
 * registryLogKey('verity.example/node-1', logKeyBytes) // 'verity.example/node-1+1a2b3c4d+AV…'
 * ```
 */
export function registryLogKey(origin: string, logKey: Uint8Array): string {
  if (logKey.length !== 32) fail('INVALID_ARGUMENT', 'a registry log key is 32 bytes');
  const id = noteKeyId(origin, logKey).toString(16).padStart(8, '0');
  return `${origin}+${id}+${toBase64(concatBytes(new Uint8Array([ALG_ED25519]), logKey))}`;
}

// Solidity strings are bytes; the registry's readers decode them leniently (as viem does), so
// both ways of reading the chain agree on every entry.
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** A slot to read, and what it holds (named in errors). */
export interface StorageRead {
  readonly slot: bigint;
  readonly what: string;
}

/**
 * Storage of the registry contract at one block, one 32-byte word per slot. The verifier reads
 * it from proofs; a gatherer reads it over JSON-RPC and records which slots it touched, so both
 * walk the same layout ({@link readNodeRegistryStorage}) and the proof holds exactly the slots
 * the verifier reads. Slots come in batches whose members do not depend on each other (a
 * gatherer may read a batch concurrently: four round trips for any registry).
 */
export interface RegistryStorageReader {
  /** The words at `reads[i].slot` (0 ≤ slot < 2²⁵⁶), 32 bytes big-endian each, in order. */
  read(reads: readonly StorageRead[]): Promise<Uint8Array[]>;
}

/** The 32-byte slot key of a slot number, `0x` hex (the form `storageProof[].key` takes). */
export function registrySlotKey(slot: bigint): string {
  return `0x${toHex(word(slot))}`;
}

/** Proven storage of one contract: reads slots, each against its own proof. */
class ProvenStorage implements RegistryStorageReader {
  private readonly proofs = new Map<string, readonly string[]>();
  private readonly used = new Set<string>();

  constructor(
    private readonly check: ProofCheck,
    private readonly root: Uint8Array,
    evidence: readonly StorageProofEvidence[],
  ) {
    for (const p of evidence) this.proofs.set(p.key, p.proof);
  }

  /** Each proof checked in turn, so the first failing slot in order is the one reported. */
  async read(reads: readonly StorageRead[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const r of reads) out.push(await this.readOne(r.slot, r.what));
    return out;
  }

  private async readOne(slot: bigint, what: string): Promise<Uint8Array> {
    const key = word(slot);
    const hex = `0x${toHex(key)}`;
    const proof = this.proofs.get(hex);
    if (proof === undefined) {
      return fail('REGISTRY_STORAGE_SLOT_MISSING', `no storage proof for ${what}`, { slot: hex, what });
    }
    this.used.add(hex);
    // An empty storage trie holds only zeros; its proof is no node (geth) or the empty node (anvil).
    if (toHex(this.root) === EMPTY_TRIE_ROOT) {
      if (proof.length > 1 || (proof.length === 1 && proof[0] !== '0x80')) {
        fail('REGISTRY_STORAGE_PROOF_INVALID', `the storage proof of ${what} is not a proof in the empty trie`, {
          slot: hex,
          what,
        });
      }
      return new Uint8Array(32);
    }
    let value: Uint8Array | null;
    try {
      value = await this.check(
        key,
        proof.map((n) => fromHex(n)),
        this.root,
      );
    } catch (cause) {
      throw new VerityError(
        'REGISTRY_STORAGE_PROOF_INVALID',
        `the storage proof of ${what} does not match the storage root`,
        {
          cause,
          details: { slot: hex, what },
        },
      );
    }
    // Absent from the trie: proven zero. Present: RLP of the value without leading zeros.
    if (value === null) return new Uint8Array(32);
    let decoded: unknown;
    try {
      decoded = RLP.decode(value);
    } catch (cause) {
      throw new VerityError('REGISTRY_STORAGE_PROOF_INVALID', `the proven value of ${what} is not RLP`, {
        cause,
        details: { slot: hex, what },
      });
    }
    if (!(decoded instanceof Uint8Array) || decoded.length > 32) {
      fail('REGISTRY_STORAGE_PROOF_INVALID', `the proven value of ${what} is not a storage word`, { slot: hex, what });
    }
    const out = new Uint8Array(32);
    out.set(decoded, 32 - decoded.length);
    return out;
  }

  /** Slots that were proven but never read: a canonical proof carries none. */
  unused(): string[] {
    return [...this.proofs.keys()].filter((k) => !this.used.has(k));
  }
}

/**
 * The head word of a Solidity `string` at `slot`: short (lowest bit 0: length·2 in the last byte,
 * bytes inline) or long (length·2 + 1; the bytes in ⌈length/32⌉ words from keccak(slot)).
 */
function stringHead(
  head: Uint8Array,
  slot: bigint,
  max: number,
  what: string,
): { readonly inline: Uint8Array } | { readonly length: number; readonly data: StorageRead[] } {
  const last = head[31] as number;
  if ((last & 1) === 0) {
    const length = last >> 1;
    if (length > 31) fail('REGISTRY_ENTRY_INVALID', `${what} has an impossible short-string length`, { what });
    return { inline: head.slice(0, length) };
  }
  const length = (toBigInt(head) - 1n) >> 1n;
  if (length < 32n || length > BigInt(max)) {
    fail('REGISTRY_ENTRY_INVALID', `${what} has length ${length}, outside the contract's 32..${max}`, { what });
  }
  const base = dataSlot(slot);
  const data: StorageRead[] = [];
  for (let i = 0; i * 32 < Number(length); i++) data.push({ slot: base + BigInt(i), what: `${what} data word ${i}` });
  return { length: Number(length), data };
}

/** Reads a packed field: `bits` bits at bit `offset` from the right of a big-endian word. */
function field(w: Uint8Array, offset: number, bits: number): bigint {
  return (toBigInt(w) >> BigInt(offset)) & ((1n << BigInt(bits)) - 1n);
}

/**
 * Verifies a registry proof against a pinned block and the trusted deployment, and returns the
 * registry at that block as verification receives it (`Trust.registry`). Pure and offline.
 *
 * Each failure has its code: `REGISTRY_PROOF_MALFORMED` (shape), `REGISTRY_DEPLOYMENT_MISMATCH`
 * (another chain or contract, or no contract at the address), `REGISTRY_HEADER_MISMATCH` (header
 * does not hash to the pin), `REGISTRY_BLOCK_MISMATCH` (header of another number),
 * `REGISTRY_ACCOUNT_PROOF_INVALID`, `REGISTRY_STORAGE_PROOF_INVALID`,
 * `REGISTRY_STORAGE_SLOT_MISSING` (a needed slot has no proof, e.g. an omitted node),
 * `REGISTRY_ENTRY_INVALID` (a proven value the contract cannot hold).
 *
 * @example
 * ```ts
 * const registry = await registrySnapshotFromProof(bundle.registryProof, { number: 120, hash: '0x…' }, { chainId: 31337, nodeRegistry, minStake });
 * verifyBundle(bundle, { nodes: [], registry });
 * ```
 */
export async function registrySnapshotFromProof(
  evidence: unknown,
  pinned: PinnedBlock,
  deployment: RegistryDeployment,
): Promise<RegistrySnapshot> {
  const proof = parseRegistryProof(evidence);
  // 1. The deployment: the proof must speak of the contract and chain the verifier trusts.
  const nodeRegistry = parseAddress(deployment.nodeRegistry);
  if (proof.chainId !== deployment.chainId || proof.nodeRegistry !== nodeRegistry) {
    fail('REGISTRY_DEPLOYMENT_MISMATCH', 'the registry proof is for another chain or contract', {
      proof: { chainId: proof.chainId, nodeRegistry: proof.nodeRegistry },
      deployment: { chainId: deployment.chainId, nodeRegistry },
    });
  }
  // 2. The header: Keccak-256 of its RLP is the block hash the verifier pinned.
  const pin = pinnedBlock(pinned);
  const header = fromHex(proof.header);
  const hash = `0x${toHex(keccak256(header))}`;
  if (hash !== pin.hash) {
    fail('REGISTRY_HEADER_MISMATCH', 'the block header does not hash to the pinned block hash', {
      pinned: pin.hash,
      header: hash,
    });
  }
  const h = decodeHeader(proof.header);
  if (h.number !== BigInt(pin.number)) {
    fail('REGISTRY_BLOCK_MISMATCH', `the header is block ${h.number}, not the pinned ${pin.number}`, {
      pinned: pin.number,
      header: Number(h.number),
    });
  }
  // 3. The account: proven against the state root; its storage root anchors every slot.
  const check = await loadProofCheck();
  const storageRoot = await accountStorageRoot(check, proof, h.stateRoot);
  // 4. The slots, in the order the layout dictates.
  const storage = new ProvenStorage(check, storageRoot, proof.storageProof);
  const nodes = await readNodeRegistryStorage(storage);
  const unused = storage.unused();
  if (unused.length > 0) {
    fail('REGISTRY_PROOF_MALFORMED', 'the registry proof carries slots the snapshot does not read', { slots: unused });
  }
  return {
    chainId: proof.chainId,
    nodeRegistry,
    block: { number: pin.number, hash: pin.hash },
    minStake: deployment.minStake,
    nodes,
  };
}

function pinnedBlock(pinned: PinnedBlock): { number: number; hash: string } {
  if ('header' in pinned) {
    const h = decodeHeader(hexBytes(pinned.header, REGISTRY_PROOF_LIMITS.maxHeaderBytes, 'pinned.header'));
    return { number: Number(h.number), hash: h.hash };
  }
  if (!Number.isSafeInteger(pinned.number) || pinned.number < 0 || !HASH.test(pinned.hash)) {
    fail('INVALID_ARGUMENT', 'a pinned block is { number, hash } with a 32-byte 0x hash, or { header }');
  }
  return { number: pinned.number, hash: pinned.hash.toLowerCase() };
}

async function accountStorageRoot(
  check: ProofCheck,
  proof: RegistryProofEvidence,
  stateRoot: Uint8Array,
): Promise<Uint8Array> {
  let account: Uint8Array | null;
  try {
    account = await check(
      fromHex(proof.nodeRegistry),
      proof.accountProof.map((n) => fromHex(n)),
      stateRoot,
    );
  } catch (cause) {
    throw new VerityError('REGISTRY_ACCOUNT_PROOF_INVALID', 'the account proof does not match the state root', {
      cause,
      details: { nodeRegistry: proof.nodeRegistry },
    });
  }
  if (account === null) {
    return fail('REGISTRY_DEPLOYMENT_MISMATCH', 'no account at the registry address at this block', {
      nodeRegistry: proof.nodeRegistry,
    });
  }
  // The account leaf: RLP [nonce, balance, storageRoot, codeHash] (Yellow Paper §4.1).
  let fields: unknown;
  try {
    fields = RLP.decode(account);
  } catch (cause) {
    throw new VerityError('REGISTRY_ACCOUNT_PROOF_INVALID', 'the proven account is not RLP', { cause });
  }
  if (!Array.isArray(fields) || fields.length !== 4) {
    fail('REGISTRY_ACCOUNT_PROOF_INVALID', 'the proven account is not [nonce, balance, storageRoot, codeHash]');
  }
  const [, , storageRoot, codeHash] = fields as unknown[];
  if (!(storageRoot instanceof Uint8Array) || storageRoot.length !== 32 || !(codeHash instanceof Uint8Array)) {
    return fail('REGISTRY_ACCOUNT_PROOF_INVALID', 'the proven account has no 32-byte storage root');
  }
  if (`0x${toHex(codeHash)}` === EMPTY_CODE_HASH) {
    fail('REGISTRY_DEPLOYMENT_MISMATCH', 'the registry address holds no code at this block', {
      nodeRegistry: proof.nodeRegistry,
    });
  }
  return storageRoot;
}

/**
 * Every registered and unbonding entry of `NodeRegistry`, read from `storage` in four batches
 * (docs/protocol.md §13.2): `accounts.length` (slot 2); the elements at keccak(pad32(2)) + i;
 * the five slots of each element's `nodes` entry; the data words of its long strings. The one
 * definition of which slots hold the registry, shared by the verifier (reading proofs) and the
 * gatherer (reading over RPC).
 *
 * @example
 * ```ts
 * const nodes = await readNodeRegistryStorage({ read: (reads) => Promise.all(reads.map((r) => storageAt(r.slot))) });
 * ```
 */
export async function readNodeRegistryStorage(storage: RegistryStorageReader): Promise<RegistryNode[]> {
  const [length] = await storage.read([{ slot: NODE_REGISTRY_SLOTS.accounts, what: 'accounts.length' }]);
  const count = toBigInt(length as Uint8Array);
  if (count > BigInt(REGISTRY_PROOF_LIMITS.maxNodes)) {
    fail(
      'REGISTRY_ENTRY_INVALID',
      `the registry holds ${count} nodes, over the ${REGISTRY_PROOF_LIMITS.maxNodes} a proof may cover`,
      { count: count.toString() },
    );
  }
  const n = Number(count);
  const elements = dataSlot(NODE_REGISTRY_SLOTS.accounts);
  const indices = Array.from({ length: n }, (_, i) => i);
  const words = await storage.read(indices.map((i) => ({ slot: elements + BigInt(i), what: `accounts[${i}]` })));
  const addresses = words.map((w) => parseAddress(`0x${toHex(w.subarray(12))}`));
  // nodes[a] starts at keccak(pad32(a) ‖ pad32(0)): +0 logKey, +1 stake | capabilities |
  // withdrawableAt, +2 registeredAt | index | status, +3 origin, +4 endpoint.
  const bases = addresses.map((a) => mappingSlot(a, NODE_REGISTRY_SLOTS.nodes));
  const fields = ['logKey', 'stake', 'status', 'origin', 'endpoint'];
  const struct = await storage.read(
    bases.flatMap((base, i) => fields.map((f, j) => ({ slot: base + BigInt(j), what: `nodes[${addresses[i]}].${f}` }))),
  );
  const entries = addresses.map((address, i) => {
    const [logKey, packed1, packed2, originHead, endpointHead] = struct.slice(5 * i, 5 * i + 5) as Uint8Array[];
    const base = bases[i] as bigint;
    const status = STATUSES[Number(field(packed2 as Uint8Array, 96, 8))];
    if (status === undefined || status === 'exited') {
      fail('REGISTRY_ENTRY_INVALID', `accounts[${i}] has no registered or unbonding entry`, { address });
    }
    if (field(packed2 as Uint8Array, 64, 32) !== BigInt(i)) {
      fail('REGISTRY_ENTRY_INVALID', `accounts[${i}] records another index`, { address });
    }
    return {
      address,
      logKey: logKey as Uint8Array,
      status,
      stake: field(packed1 as Uint8Array, 0, 128),
      capabilities: field(packed1 as Uint8Array, 128, 64),
      origin: stringHead(originHead as Uint8Array, base + 3n, MAX_ORIGIN, `nodes[${address}].origin`),
      endpoint: stringHead(endpointHead as Uint8Array, base + 4n, MAX_ENDPOINT, `nodes[${address}].endpoint`),
    };
  });
  const dataReads = entries.flatMap((e) => [e.origin, e.endpoint].flatMap((h) => ('data' in h ? h.data : [])));
  const data = await storage.read(dataReads);
  let next = 0;
  const text = (h: ReturnType<typeof stringHead>): string => {
    if ('inline' in h) return lenientUtf8.decode(h.inline);
    const bytes = new Uint8Array(h.data.length * 32);
    for (let j = 0; j < h.data.length; j++) bytes.set(data[next++] as Uint8Array, j * 32);
    return lenientUtf8.decode(bytes.subarray(0, h.length));
  };
  return entries.map((e) => {
    // Data words come in the order they were asked for: each node's origin, then its endpoint.
    const origin = text(e.origin);
    const endpoint = text(e.endpoint);
    return {
      address: e.address,
      logKey: registryLogKey(origin, e.logKey),
      stake: e.stake,
      status: e.status,
      capabilities: e.capabilities,
      endpoint,
    };
  });
}
