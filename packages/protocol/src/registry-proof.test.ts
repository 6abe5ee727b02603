import { RLP } from '@ethereumjs/rlp';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from './bytes.js';
import { type ErrorCode, isVerityError } from './errors.js';
import { keccak256 } from './eth.js';
import { encodeVerifierKey } from './note.js';
import { BUNDLE_MEDIA_TYPE, parseBundle } from './receipt.js';
import type { RegistrySnapshot } from './registry.js';
import {
  type PinnedBlock,
  parseRegistryProof,
  type RegistryDeployment,
  type RegistryProofEvidence,
  registryLogKey,
  registryProofBlock,
  registrySnapshotFromProof,
} from './registry-proof.js';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';

// NodeRegistry at one block of a real anvil, as anvil's eth_getProof and eth_getBlockByNumber
// printed it, with the snapshot listNodes read over RPC at that block (written by
// packages/contracts/src/registry-proof.test.ts). No anvil here: this also runs in a browser.
interface Fixture {
  pinned: { number: number; hash: string };
  deployment: { chainId: number; nodeRegistry: string; minStake: string };
  registryProof: RegistryProofEvidence;
  snapshot: {
    chainId: number;
    nodeRegistry: string;
    block: { number: number; hash: string };
    minStake: string;
    nodes: { address: string; logKey: string; stake: string; status: string; capabilities: string; endpoint: string }[];
  };
}
const files = import.meta.glob<{ default: Fixture }>('../fixtures/registry-proof/anvil.json', { eager: true });
const fixture = Object.values(files)[0]?.default as Fixture;
const evidence = fixture.registryProof;
const pinned: PinnedBlock = fixture.pinned;
const deployment: RegistryDeployment = {
  chainId: fixture.deployment.chainId,
  nodeRegistry: fixture.deployment.nodeRegistry,
  minStake: BigInt(fixture.deployment.minStake),
};
const expected: RegistrySnapshot = {
  ...fixture.snapshot,
  minStake: BigInt(fixture.snapshot.minStake),
  nodes: fixture.snapshot.nodes.map((n) => ({
    ...n,
    stake: BigInt(n.stake),
    capabilities: BigInt(n.capabilities),
    status: n.status as 'registered' | 'unbonding',
  })),
};

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return e.code;
  }
}

const hex = (b: Uint8Array) => `0x${toHex(b)}`;
const word = (n: bigint) => fromHex(n.toString(16).padStart(64, '0'));
const big = (b: Uint8Array) => BigInt(hex(b));
/** Slot keys computed here from Solidity's storage layout rules, independently of the code under test. */
const slotKey = (n: bigint) => hex(word(n % (1n << 256n)));
const arrayData = big(keccak256(word(2n)));
const nodeBase = (address: string) => big(keccak256(concatBytes(new Uint8Array(12), fromHex(address), word(0n))));

/** Flips one bit of byte `at` (negative: from the end) of a hex string. */
function flip(h: string, at: number): string {
  const b = fromHex(h);
  const i = at < 0 ? b.length + at : at;
  b[i] = (b[i] as number) ^ 1;
  return hex(b);
}

/** The evidence as plain, editable JSON. */
interface Editable {
  chainId: number;
  nodeRegistry: string;
  header: string;
  accountProof: string[];
  storageProof: { key: string; proof: string[] }[];
}

/** A copy of the evidence with `edit` applied to a deep clone. */
function tampered(edit: (e: Editable) => void): unknown {
  const copy = structuredClone(evidence) as Editable;
  edit(copy);
  return copy;
}

function proofOf(e: { storageProof: { key: string; proof: string[] }[] }, slot: bigint) {
  const p = e.storageProof.find((s) => s.key === slotKey(slot));
  if (p === undefined) throw new Error(`no proof for slot ${slot}`);
  return p;
}

/** Re-encodes the leaf (last node) of a proof with its value changed by `edit`. */
function editLeafValue(proof: string[], edit: (value: Uint8Array) => Uint8Array): void {
  const leaf = RLP.decode(fromHex(proof[proof.length - 1] as string)) as Uint8Array[];
  const value = RLP.decode(leaf[1] as Uint8Array) as Uint8Array;
  proof[proof.length - 1] = hex(RLP.encode([leaf[0] as Uint8Array, RLP.encode(edit(value))]));
}

describe('registry proofs: a real anvil proof, offline', () => {
  it('verifies and yields the registry listNodes read over RPC, every node', async () => {
    expect(expected.nodes).toHaveLength(3);
    expect(await registrySnapshotFromProof(evidence, pinned, deployment)).toEqual(expected);
  });

  it('a trusted header can be the pin', async () => {
    expect(await registrySnapshotFromProof(evidence, { header: evidence.header }, deployment)).toEqual(expected);
  });

  it('the header names the block to pin (a hint, not trust)', () => {
    expect(registryProofBlock(evidence)).toEqual(fixture.pinned);
  });

  it('proves exactly the slots of the layout: accounts, then five struct slots and long-string data per node', () => {
    const keys: string[] = [slotKey(2n)];
    fixture.snapshot.nodes.forEach((n, i) => {
      keys.push(slotKey(arrayData + BigInt(i)));
      const base = nodeBase(n.address);
      for (let j = 0n; j < 5n; j++) keys.push(slotKey(base + j));
      const origin = n.logKey.slice(0, n.logKey.indexOf('+'));
      for (const [s, text] of [
        [3n, origin],
        [4n, n.endpoint],
      ] as const) {
        if (text.length > 31) {
          const data = big(keccak256(word(base + s)));
          for (let k = 0; k * 32 < text.length; k++) keys.push(slotKey(data + BigInt(k)));
        }
      }
    });
    expect(new Set(evidence.storageProof.map((p) => p.key))).toEqual(new Set(keys));
  });

  it('keys are the C2SP keys of (origin, logKey)', () => {
    const key = fromHex('21'.repeat(32));
    expect(registryLogKey('verity.test/node-1', key)).toBe(encodeVerifierKey('verity.test/node-1', key));
    // An origin the note format refuses still gets an entry (no receipt can match it).
    expect(registryLogKey('has space', key)).toMatch(/^has space\+[0-9a-f]{8}\+AS/);
  });

  it('travels in a bundle as registryProof', () => {
    const { fixtures } = buildReceiptFixtures();
    const ok = fixtures.find((f) => f.expect === 'ok');
    const bundle = { ...(ok?.bundle as object), registryProof: evidence };
    expect(parseBundle(bundle).registryProof).toEqual(evidence);
    const bad = { ...(ok?.bundle as object), mediaType: BUNDLE_MEDIA_TYPE, registryProof: { ...evidence, extra: 1 } };
    expect(() => parseBundle(bad)).toThrow(expect.objectContaining({ code: 'REGISTRY_PROOF_MALFORMED' }));
  });
});

// Each tampered field of the evidence or the pin, with the code that must refuse it.
const node0 = fixture.snapshot.nodes[0]?.address as string;
const node2 = fixture.snapshot.nodes[2]?.address as string;
const cases: {
  name: string;
  evidence?: unknown;
  pin?: PinnedBlock;
  deployment?: RegistryDeployment;
  code: ErrorCode;
}[] = [
  {
    name: 'a header byte (timestamp region)',
    evidence: tampered((e) => (e.header = flip(e.header, -40))),
    code: 'REGISTRY_HEADER_MISMATCH',
  },
  {
    name: 'the pinned block hash',
    pin: { number: pinned.number, hash: flip(pinned.hash, 0) },
    code: 'REGISTRY_HEADER_MISMATCH',
  },
  {
    name: 'the pinned block number',
    pin: { number: pinned.number + 1, hash: pinned.hash },
    code: 'REGISTRY_BLOCK_MISMATCH',
  },
  {
    // The header's stateRoot starts after parentHash (33), ommersHash (33), coinbase (21) and a 3-byte list prefix.
    name: 'the state root in the header',
    evidence: tampered((e) => (e.header = flip(e.header, 3 + 33 + 33 + 21 + 1))),
    code: 'REGISTRY_HEADER_MISMATCH',
  },
  {
    name: 'the state root, in a header the verifier was fooled into pinning',
    evidence: tampered((e) => (e.header = flip(e.header, 3 + 33 + 33 + 21 + 1))),
    pin: { header: flip(evidence.header, 3 + 33 + 33 + 21 + 1) },
    code: 'REGISTRY_ACCOUNT_PROOF_INVALID',
  },
  {
    name: 'an account proof node (root)',
    evidence: tampered((e) => (e.accountProof[0] = flip(e.accountProof[0] as string, 40))),
    code: 'REGISTRY_ACCOUNT_PROOF_INVALID',
  },
  {
    name: 'an account proof node dropped',
    evidence: tampered((e) => e.accountProof.splice(1, 1)),
    code: 'REGISTRY_ACCOUNT_PROOF_INVALID',
  },
  {
    // The account leaf ends with storageRoot (33 bytes) then codeHash (33 bytes).
    name: 'the storage root in the account leaf',
    evidence: tampered((e) => {
      const last = e.accountProof.length - 1;
      e.accountProof[last] = flip(e.accountProof[last] as string, -40);
    }),
    code: 'REGISTRY_ACCOUNT_PROOF_INVALID',
  },
  {
    name: 'a storage proof node (root of the storage trie)',
    evidence: tampered((e) => (proofOf(e, 2n).proof[0] = flip(proofOf(e, 2n).proof[0] as string, 10))),
    code: 'REGISTRY_STORAGE_PROOF_INVALID',
  },
  {
    name: "a storage value: node 0's stake raised",
    evidence: tampered((e) =>
      editLeafValue(proofOf(e, nodeBase(node0) + 1n).proof, (v) => concatBytes(new Uint8Array([1]), v)),
    ),
    code: 'REGISTRY_STORAGE_PROOF_INVALID',
  },
  {
    name: 'accounts.length shortened to 2 (a node hidden)',
    evidence: tampered((e) => editLeafValue(proofOf(e, 2n).proof, () => new Uint8Array([2]))),
    code: 'REGISTRY_STORAGE_PROOF_INVALID',
  },
  {
    name: "one slot's proof under another slot's key",
    evidence: tampered((e) => (proofOf(e, nodeBase(node0) + 1n).proof = [...proofOf(e, nodeBase(node2) + 1n).proof])),
    code: 'REGISTRY_STORAGE_PROOF_INVALID',
  },
  {
    name: 'a node omitted (its accounts element and entry left out)',
    evidence: tampered((e) => {
      const drop = new Set([slotKey(arrayData + 2n), ...[0n, 1n, 2n, 3n, 4n].map((j) => slotKey(nodeBase(node2) + j))]);
      e.storageProof = e.storageProof.filter((s) => !drop.has(s.key));
    }),
    code: 'REGISTRY_STORAGE_SLOT_MISSING',
  },
  {
    name: 'a long string data word left out',
    evidence: tampered((e) => {
      const data = slotKey(big(keccak256(word(nodeBase(node2) + 4n))) + 7n);
      e.storageProof = e.storageProof.filter((s) => s.key !== data);
    }),
    code: 'REGISTRY_STORAGE_SLOT_MISSING',
  },
  {
    name: 'a slot the snapshot does not read',
    evidence: tampered((e) => e.storageProof.push({ key: slotKey(1n), proof: [...proofOf(e, 2n).proof] })),
    code: 'REGISTRY_PROOF_MALFORMED',
  },
  {
    name: 'another nodeRegistry in the deployment',
    deployment: { ...deployment, nodeRegistry: `0x${'11'.repeat(20)}` },
    code: 'REGISTRY_DEPLOYMENT_MISMATCH',
  },
  {
    name: 'another nodeRegistry in the evidence',
    evidence: tampered((e) => (e.nodeRegistry = `0x${'11'.repeat(20)}`)),
    code: 'REGISTRY_DEPLOYMENT_MISMATCH',
  },
  {
    name: 'another chainId in the evidence',
    evidence: tampered((e) => (e.chainId = 1)),
    code: 'REGISTRY_DEPLOYMENT_MISMATCH',
  },
  {
    name: 'another chainId in the deployment',
    deployment: { ...deployment, chainId: 1 },
    code: 'REGISTRY_DEPLOYMENT_MISMATCH',
  },
  {
    name: 'upper-case hex in a proof node',
    evidence: tampered((e) => (e.accountProof[0] = (e.accountProof[0] as string).toUpperCase().replace('0X', '0x'))),
    code: 'REGISTRY_PROOF_MALFORMED',
  },
  {
    name: 'an unknown member',
    evidence: tampered((e) => ((e as unknown as Record<string, unknown>).value = '0x01')),
    code: 'REGISTRY_PROOF_MALFORMED',
  },
  {
    name: 'a repeated slot',
    evidence: tampered((e) =>
      e.storageProof.push(structuredClone(e.storageProof[0] as Editable['storageProof'][number])),
    ),
    code: 'REGISTRY_PROOF_MALFORMED',
  },
  {
    name: 'an oversized trie node',
    evidence: tampered((e) => (e.accountProof[0] = `0x${'ab'.repeat(1025)}`)),
    code: 'REGISTRY_PROOF_MALFORMED',
  },
  {
    name: 'too many trie nodes',
    evidence: tampered((e) => (e.accountProof = Array(65).fill('0x80'))),
    code: 'REGISTRY_PROOF_MALFORMED',
  },
];

describe('registry proofs: each tampered field refused with its code', () => {
  for (const c of cases) {
    it(`${c.name}: ${c.code}`, async () => {
      expect(
        await codeOf(registrySnapshotFromProof(c.evidence ?? evidence, c.pin ?? pinned, c.deployment ?? deployment)),
      ).toBe(c.code);
    });
  }

  it('garbage is REGISTRY_PROOF_MALFORMED, never another error', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        try {
          parseRegistryProof(v);
        } catch (e) {
          return isVerityError(e) && e.code === 'REGISTRY_PROOF_MALFORMED';
        }
        return false;
      }),
      { numRuns: 200 },
    );
  });
});
