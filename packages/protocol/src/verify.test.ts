import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import { addressFromPrivateKey } from './eth.js';
import { createMemoryLog } from './memory-log.js';
import { createEd25519Signer, generateNoteKey } from './note.js';
import { BUNDLE_MEDIA_TYPE, bundleFromJson, parseBundle, parseReceipt } from './receipt.js';
import type { RegistryNode, RegistrySnapshot } from './registry.js';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';
import { createVerifyCache, verifyBundle, verifyReceipt } from './verify.js';

const { trust, fixtures } = buildReceiptFixtures();
const valid = fixtures.find((f) => f.name === 'valid-receipt')?.bundle as { receipts: unknown[] };
const receipt = valid.receipts[0] as { checkpoint: string; leafIndex: number };

describe('verifyReceipt', () => {
  it('accepts the receipt and reports what it established', () => {
    const r = verifyReceipt(receipt, trust);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.receipts[0]?.leafIndex).toBe(2);
      expect(r.receipts[0]?.checkpoint.size).toBe(5);
    }
  });
  it('checks the digests the caller holds', () => {
    const r = verifyReceipt(receipt, trust, { inputDigest: '00'.repeat(32) });
    expect(r.ok ? 'ok' : r.code).toBe('RECEIPT_INPUT_DIGEST_MISMATCH');
  });
  it('caches only verified checkpoints, keyed by key and text', () => {
    const cache = createVerifyCache(2);
    expect(verifyReceipt(receipt, trust, { cache }).ok).toBe(true);
    expect(cache.checkpoints.size).toBe(1);
    const forged = { ...receipt, checkpoint: receipt.checkpoint.replace('\n5\n', '\n6\n') };
    const r = verifyReceipt(forged, trust, { cache });
    expect(r.ok ? 'ok' : r.code).toBe('NOTE_SIGNATURE_INVALID');
    expect(cache.checkpoints.size).toBe(1);
    // A verified entry does not let another key's trust through.
    const other = verifyReceipt(
      receipt,
      { nodes: [{ ...(trust.nodes[0] as (typeof trust.nodes)[0]), logKey: trust.nodes[1]?.logKey as string }] },
      { cache },
    );
    expect(other.ok).toBe(false);
  });
});

describe('trust rooted in the registry (Trust.registry)', () => {
  const pinned = trust.nodes[0] as { address: string; logKey: string };
  const entry = (over: Partial<RegistryNode> = {}): RegistryNode => ({
    address: pinned.address,
    logKey: pinned.logKey,
    stake: 10n,
    status: 'registered',
    capabilities: 0n,
    endpoint: 'http://node.example',
    ...over,
  });
  const snapshot = (nodes: RegistryNode[]): RegistrySnapshot => ({
    chainId: 31337,
    nodeRegistry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    block: { number: 7, hash: `0x${'ab'.repeat(32)}` },
    minStake: 5n,
    nodes,
  });
  const codeOf = (registry: RegistrySnapshot, nodes = [] as typeof trust.nodes) => {
    const r = verifyReceipt(receipt, { nodes, registry });
    return r.ok ? 'ok' : r.code;
  };
  it('a registered, staked node verifies with no key pinned by hand', () => {
    expect(codeOf(snapshot([entry()]))).toBe('ok');
  });
  it('refuses a node the registry does not list, even if the bundle carries its key', () => {
    expect(codeOf(snapshot([]))).toBe('RECEIPT_NODE_UNREGISTERED');
    const bundle = { ...valid, nodes: [pinned] };
    const r = verifyBundle(bundle, { nodes: [], registry: snapshot([]) });
    expect(r.ok ? 'ok' : r.code).toBe('RECEIPT_NODE_UNREGISTERED');
  });
  it('refuses an unbonding or exited node, and one staked below the minimum', () => {
    expect(codeOf(snapshot([entry({ status: 'unbonding' })]))).toBe('RECEIPT_NODE_INACTIVE');
    expect(codeOf(snapshot([entry({ status: 'exited' })]))).toBe('RECEIPT_NODE_INACTIVE');
    expect(codeOf(snapshot([entry({ stake: 4n })]))).toBe('RECEIPT_NODE_UNSTAKED');
  });
  it('the registry key is the one that counts: another key registered for the address fails', () => {
    const other = trust.nodes[1] as { logKey: string };
    expect(codeOf(snapshot([entry({ logKey: other.logKey })]))).not.toBe('ok');
  });
  it('a key pinned by hand still verifies a node the registry does not list', () => {
    expect(codeOf(snapshot([]), [pinned])).toBe('ok');
  });
});

describe('trust', () => {
  it('a node removed from a reused trust object is no longer trusted', () => {
    const mutable = { nodes: [...trust.nodes] };
    expect(verifyReceipt(receipt, mutable).ok).toBe(true);
    mutable.nodes.splice(0, 1);
    const r = verifyReceipt(receipt, mutable);
    expect(r.ok ? 'ok' : r.code).toBe('RECEIPT_NODE_UNKNOWN');
  });
  it('a lone receipt is anchored only by an anchor of its own size', () => {
    const node = (trust.nodes[0] as { address: string }).address;
    const withAnchor = (size: number, rootHash: string) => ({ ...trust, anchors: [{ node, size, rootHash }] });
    const cp = verifyReceipt(receipt, trust);
    if (!cp.ok) throw new Error('fixture receipt must verify');
    const root = toHex((cp.receipts[0] as { checkpoint: { rootHash: Uint8Array } }).checkpoint.rootHash);
    const opts = { requireAnchor: true };
    const codeFor = (t: Parameters<typeof verifyReceipt>[1]) => {
      const r = verifyReceipt(receipt, t, opts);
      return r.ok ? 'ok' : r.code;
    };
    expect(codeFor(withAnchor(5, root))).toBe('ok');
    expect(codeFor(withAnchor(5, '07'.repeat(32)))).toBe('BUNDLE_ANCHOR_MISMATCH');
    expect(codeFor(withAnchor(7, root))).toBe('BUNDLE_ANCHOR_MISMATCH'); // no proof to link size 5 to 7
    expect(codeFor(withAnchor(0, root))).toBe('BUNDLE_ANCHOR_MISMATCH'); // an empty tree anchors nothing
    expect(codeFor(withAnchor(5, 'abc'))).toBe('INVALID_ARGUMENT');
  });
});

describe('untrusted input', () => {
  it('verifyBundle never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        const r = verifyBundle(v, trust);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(isVerityError(r.error)).toBe(true);
      }),
    );
  });
  it('mutating any JSON value of a valid bundle yields ok or a typed failure, never an exception', () => {
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...path, i]);
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
      else paths.push(path);
    };
    walk(valid, []);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
        const copy = JSON.parse(JSON.stringify(valid));
        let at = copy;
        for (const p of path.slice(0, -1)) at = at[p];
        at[path[path.length - 1] as string] = value;
        const r = verifyBundle(copy, trust);
        if (!r.ok) expect(isVerityError(r.error)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
  it('parsers only raise typed errors', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        for (const fn of [() => bundleFromJson(s), () => parseBundle(s), () => parseReceipt(s)]) {
          try {
            fn();
          } catch (e) {
            expect(isVerityError(e)).toBe(true);
          }
        }
      }),
    );
  });
});

describe('no downgrade of zk answers (verifyBundle)', () => {
  // A log of one node whose records are of kind or mode zk, bundled without the zk member.
  const origin = 'zk.verity.test/log';
  const seed = new Uint8Array(32).fill(9);
  const node = addressFromPrivateKey(`0x${'44'.repeat(32)}`);
  const zkTrust = { nodes: [{ address: node, logKey: generateNoteKey(origin, seed).verifierKey }] };
  const bundleOf = (kind: 'zk' | 'onnx', mode: 'zk' | 'signed') => {
    const log = createMemoryLog(createEd25519Signer(origin, seed));
    const base = fixtures.find((f) => f.name === 'valid-receipt')?.bundle as { receipts: { record: object }[] };
    const record = { ...(base.receipts[0]?.record as object), kind, mode, node } as never;
    return { mediaType: BUNDLE_MEDIA_TYPE, receipts: [log.receipt(log.append(record))] };
  };

  it('refuses a record of kind zk or mode zk without the zk member (ZK_EVIDENCE_MISSING)', () => {
    for (const [kind, mode] of [
      ['zk', 'zk'],
      ['onnx', 'zk'],
      ['zk', 'signed'],
    ] as const) {
      const r = verifyBundle(bundleOf(kind, mode), zkTrust);
      expect(r.ok ? 'ok' : r.code, `${kind}/${mode}`).toBe('ZK_EVIDENCE_MISSING');
    }
    expect(verifyBundle(bundleOf('onnx', 'signed'), zkTrust).ok).toBe(true);
  });
});
