import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { addressFromPrivateKey } from './eth.js';
import { createMemoryLog } from './memory-log.js';
import { createEd25519Signer, generateNoteKey } from './note.js';
import { authorizationDigest, type PaymentPolicy, paymentDomain, type ReceiptPayment } from './payment.js';
import { QUORUM_MAX_SKIPS, quorumSeed, rankQuorum } from './quorum.js';
import { BUNDLE_MEDIA_TYPE, type Receipt } from './receipt.js';
import { type InferenceRecord, paramsDigest } from './record.js';
import type { RegistryNode, RegistrySnapshot } from './registry.js';
import { type Trust, verifyBundle } from './verify.js';

// Quorum bundles against the registry (docs/protocol.md §9.2 steps 6a and 8a, §11): a valid one,
// then each forgery a coordinator or a bundle's author can try, with the code that refuses it.

const ETHER = 10n ** 18n;
const NONCE = '0f'.repeat(16);
const BLOCK = { number: 120, hash: `0x${'5a'.repeat(32)}` };
const MODEL = 'bagaaierafygq54vt4qtqdkwwssnyp2kmdcsgweit65y77eohobt3udwwrrfq';
const OUTPUT = 'aa'.repeat(32);
const LIE = 'bb'.repeat(32);

interface Member {
  readonly address: string;
  readonly logKey: string;
  readonly log: ReturnType<typeof createMemoryLog>;
}

function member(i: number, seed = i): Member {
  const address = addressFromPrivateKey(`0x${i.toString(16).padStart(2, '0').repeat(32)}`);
  const origin = `quorum.verity.test/log/${seed}`;
  const key = new Uint8Array(32).fill(seed);
  return {
    address,
    logKey: generateNoteKey(origin, key).verifierKey,
    log: createMemoryLog(createEd25519Signer(origin, key)),
  };
}

const members = Array.from({ length: 7 }, (_, i) => member(i + 1));
const entry = (m: Member, stake = 2n * ETHER, more: Partial<RegistryNode> = {}): RegistryNode => ({
  address: m.address,
  logKey: m.logKey,
  stake,
  status: 'registered',
  capabilities: 0b11n,
  endpoint: 'http://127.0.0.1:1',
  ...more,
});
const snapshot: RegistrySnapshot = {
  chainId: 31337,
  nodeRegistry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  block: BLOCK,
  minStake: ETHER,
  nodes: members.map((m) => entry(m)),
};
const trust: Trust = { nodes: [], registry: snapshot };
const ranking = rankQuorum(snapshot, quorumSeed(BLOCK.hash, NONCE));
const byAddress = new Map(members.map((m) => [m.address, m]));
const ranked = (i: number) => byAddress.get((ranking[i] as RegistryNode).address) as Member;

function receiptOf(m: Member, more: Partial<InferenceRecord> = {}): Receipt {
  const record: InferenceRecord = {
    version: 1,
    kind: 'onnx',
    mode: 'quorum',
    model: MODEL,
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest: '11'.repeat(32),
    outputDigest: OUTPUT,
    paramsDigest: paramsDigest({}),
    requestId: 'req-quorum',
    clientNonce: NONCE,
    timestamp: 1_793_491_200_000,
    node: m.address,
    ...more,
  };
  return m.log.receipt(m.log.append(record));
}

type Outcome = 'agreed' | 'dissent' | 'skipped';
/** A quorum bundle from ranked places: each place's outcome; a dissenter answers LIE. */
function quorumBundle(outcomes: readonly Outcome[], k = 3) {
  const asked = outcomes.map((outcome, i) => ({
    address: ranked(i).address,
    outcome,
    ...(outcome === 'skipped' ? { code: 'NETWORK_ERROR' } : {}),
  }));
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipts: outcomes.flatMap((o, i) => (o === 'agreed' ? [receiptOf(ranked(i))] : [])),
    quorum: {
      k,
      block: BLOCK,
      nonce: NONCE,
      asked,
      dissent: outcomes.flatMap((o, i) => (o === 'dissent' ? [receiptOf(ranked(i), { outputDigest: LIE })] : [])),
    },
  };
}

type Bundle = ReturnType<typeof quorumBundle>;
const codeOf = (bundle: unknown, t: Trust = trust) => {
  const r = verifyBundle(bundle, t);
  return r.ok ? 'ok' : r.code;
};
const clone = (b: Bundle): Bundle => JSON.parse(JSON.stringify(b));

describe('a quorum bundle under registry trust', () => {
  it('verifies the ranking head, and keeps a dissenting receipt as evidence', () => {
    const b = quorumBundle(['agreed', 'skipped', 'dissent', 'agreed', 'agreed']);
    const r = verifyBundle(b, trust);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.receipts.map((v) => v.record.node)).toEqual([ranked(0), ranked(3), ranked(4)].map((m) => m.address));
    expect(r.quorum?.selection).toBe('checked');
    expect(r.quorum?.dissent.map((v) => [v.record.node, v.record.outputDigest])).toEqual([[ranked(2).address, LIE]]);
    expect(codeOf(quorumBundle(['agreed', 'agreed', 'agreed']))).toBe('ok');
  });

  it('compares like with like: receipts or a dissent of another runtime, version or profile (QUORUM_RUNTIME_MISMATCH)', () => {
    const portable = { id: 'onnxruntime-web', version: '1.30.0', profile: 'portable' };
    // All members on the portable profile: a quorum like any other.
    const all = quorumBundle(['agreed', 'agreed', 'agreed']);
    all.receipts = all.receipts.map((_, i) => receiptOf(ranked(i), { runtime: portable }));
    expect(codeOf(all)).toBe('ok');
    for (const runtime of [
      { ...portable, profile: 'native' },
      { ...portable, version: '1.31.1' },
      { ...portable, id: 'onnxruntime-node' },
    ]) {
      // One agreeing receipt made under another runtime: its agreement shows nothing.
      const mixed = clone(all);
      mixed.receipts[2] = receiptOf(ranked(2), { runtime });
      expect(codeOf(mixed)).toBe('QUORUM_RUNTIME_MISMATCH');
      // A dissent under another runtime is no evidence of a lie: it may be honest other bits.
      const b = quorumBundle(['agreed', 'dissent', 'agreed', 'agreed']);
      b.receipts = b.receipts.map((_, i) => receiptOf(ranked([0, 2, 3][i] as number), { runtime: portable }));
      b.quorum.dissent[0] = receiptOf(ranked(1), { outputDigest: LIE, runtime });
      expect(codeOf(b)).toBe('QUORUM_RUNTIME_MISMATCH');
      // The same dissent under the quorum's own runtime is evidence, and the bundle verifies.
      b.quorum.dissent[0] = receiptOf(ranked(1), { outputDigest: LIE, runtime: portable });
      expect(codeOf(b)).toBe('ok');
    }
  });

  it('forged multi-key bundle: self-made keys are not registered (RECEIPT_NODE_UNREGISTERED)', () => {
    // Three fresh keys and accounts, with their entries carried in the bundle: under the
    // registry they vouch for nothing, even with the insecure option.
    const forgers = [member(0x41), member(0x42), member(0x43)];
    const bundle = {
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: forgers.map((m) => receiptOf(m)),
      nodes: forgers.map((m) => ({ address: m.address, logKey: m.logKey })),
    };
    expect(codeOf(bundle)).toBe('RECEIPT_NODE_UNREGISTERED');
    expect(codeOf(bundle, { nodes: [] })).toBe('RECEIPT_NODE_UNKNOWN');
    // Only the insecure opt-in without a registry takes them (still quorum-less: no selection).
    expect(codeOf(bundle, { nodes: [], insecureAcceptBundleNodes: true })).toBe('ok');
  });

  it('one key behind several addresses: refused whatever the addresses (BUNDLE_LOG_KEY_REUSED)', () => {
    // One operator, one log: the same Ed25519 key and log signs for three accounts.
    const one = member(0x51);
    const accounts = [0x52, 0x53, 0x54].map((i) => addressFromPrivateKey(`0x${i.toString(16).repeat(32)}`));
    const receipts = accounts.map((a) => receiptOf({ ...one, address: a }));
    const bundle = {
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts,
      nodes: accounts.map((address) => ({ address, logKey: one.logKey })),
    };
    expect(codeOf(bundle, { nodes: [], insecureAcceptBundleNodes: true })).toBe('BUNDLE_LOG_KEY_REUSED');
    // Pinned by hand the same way: still one log.
    expect(codeOf(bundle, { nodes: accounts.map((address) => ({ address, logKey: one.logKey })) })).toBe(
      'BUNDLE_LOG_KEY_REUSED',
    );
    // Two keys under one origin (a registry that predates OriginTaken): one log name, refused too.
    const sameOrigin = (i: number, seed: number): Member => {
      const key = new Uint8Array(32).fill(seed);
      return {
        address: member(i).address,
        logKey: generateNoteKey('same.origin/log', key).verifierKey,
        log: createMemoryLog(createEd25519Signer('same.origin/log', key)),
      };
    };
    const a = sameOrigin(0x64, 1);
    const b = sameOrigin(0x65, 2);
    const two = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receiptOf(a), receiptOf(b)] };
    const pinned = { nodes: [a, b].map((m) => ({ address: m.address, logKey: m.logKey })) };
    expect(codeOf(two, pinned)).toBe('BUNDLE_ORIGIN_REUSED');
  });

  it('refuses nodes the registry does not let vouch: unbonding, under-staked', () => {
    const b = quorumBundle(['agreed', 'agreed', 'agreed']);
    const first = (ranking[0] as RegistryNode).address;
    const withEntry = (more: Partial<RegistryNode>): Trust => ({
      nodes: [],
      registry: { ...snapshot, nodes: snapshot.nodes.map((n) => (n.address === first ? { ...n, ...more } : n)) },
    });
    expect(codeOf(b, withEntry({ status: 'unbonding' }))).toBe('RECEIPT_NODE_INACTIVE');
    expect(codeOf(b, withEntry({ status: 'exited', stake: 0n }))).toBe('RECEIPT_NODE_INACTIVE');
    expect(codeOf(b, withEntry({ stake: ETHER - 1n }))).toBe('RECEIPT_NODE_UNSTAKED');
    // A key pinned by hand vouches whatever the registry says, but the selection still follows
    // the registry: an unbonding node holds no place in the ranking.
    const pinned = { ...withEntry({ status: 'unbonding' }), nodes: [{ address: first, logKey: ranked(0).logKey }] };
    expect(codeOf(b, pinned)).toBe('QUORUM_SELECTION_INVALID');
  });

  it('altered ranking: a node from further down put in place of the head (QUORUM_SELECTION_INVALID)', () => {
    // The coordinator swaps its friend at place 5 for the honest node at place 0.
    const b = quorumBundle(['agreed', 'agreed', 'agreed']);
    const friend = ranked(5);
    b.receipts[0] = receiptOf(friend);
    (b.quorum.asked[0] as { address: string }).address = friend.address;
    expect(codeOf(b)).toBe('QUORUM_SELECTION_INVALID');
    // Reordering the head is a different ranking too.
    const swapped = quorumBundle(['agreed', 'agreed', 'agreed']);
    swapped.receipts.reverse();
    swapped.quorum.asked.reverse();
    expect(codeOf(swapped)).toBe('QUORUM_SELECTION_INVALID');
  });

  it('altered skipped list: a dropped, added or relabelled entry is refused', () => {
    const base = quorumBundle(['agreed', 'skipped', 'agreed', 'agreed']);
    expect(codeOf(base)).toBe('ok');
    // Dropping the skipped node hides that place 1 was passed over: the list is no longer the ranking.
    const dropped = clone(base);
    dropped.quorum.asked.splice(1, 1);
    expect(codeOf(dropped)).toBe('QUORUM_SELECTION_INVALID');
    // Calling it agreed without its receipt.
    const relabelled = clone(base);
    relabelled.quorum.asked[1] = { address: ranked(1).address, outcome: 'agreed' };
    expect(codeOf(relabelled)).toBe('QUORUM_SKIPPED_MISMATCH');
    // Hiding a dissenter as "skipped" while carrying its receipt.
    const hidden = quorumBundle(['agreed', 'dissent', 'agreed', 'agreed']);
    (hidden.quorum.asked[1] as { outcome: string }).outcome = 'skipped';
    expect(codeOf(hidden)).toBe('QUORUM_SKIPPED_MISMATCH');
    // Asking on after the k-th agreement.
    const after = quorumBundle(['agreed', 'agreed', 'agreed', 'skipped']);
    expect(codeOf(after)).toBe('QUORUM_SKIPPED_MISMATCH');
  });

  it('bounds the depth: at most k + QUORUM_MAX_SKIPS ranked nodes (QUORUM_DEPTH_EXCEEDED)', () => {
    const skips = Array.from({ length: QUORUM_MAX_SKIPS }, () => 'skipped' as const);
    expect(codeOf(quorumBundle(['agreed', ...skips, 'agreed'], 2))).toBe('ok');
    expect(codeOf(quorumBundle(['agreed', ...skips, 'skipped', 'agreed'], 2))).toBe('QUORUM_DEPTH_EXCEEDED');
  });

  it('checks block, nonce, mode, k, and dissent', () => {
    const ok = quorumBundle(['agreed', 'dissent', 'agreed', 'agreed']);
    const b1 = clone(ok);
    b1.quorum.block = { number: 121, hash: BLOCK.hash };
    expect(codeOf(b1)).toBe('QUORUM_BLOCK_MISMATCH');
    const b2 = clone(ok);
    b2.quorum.nonce = '0e'.repeat(16);
    expect(codeOf(b2)).toBe('QUORUM_SEED_MISMATCH');
    const b3 = clone(ok);
    b3.quorum.k = 4;
    expect(codeOf(b3)).toBe('QUORUM_TOO_FEW');
    // A receipt logged in mode signed is no quorum member's.
    const signed = quorumBundle(['agreed', 'agreed', 'agreed']);
    signed.receipts[1] = receiptOf(ranked(1), { mode: 'signed' });
    expect(codeOf(signed)).toBe('QUORUM_MODE_INVALID');
    // A dissent receipt for another request is no evidence about this one.
    const other = clone(ok);
    other.quorum.dissent[0] = receiptOf(ranked(1), { outputDigest: LIE, requestId: 'req-other' });
    expect(codeOf(other)).toBe('QUORUM_DISSENT_INVALID');
    const agrees = clone(ok);
    agrees.quorum.dissent[0] = receiptOf(ranked(1));
    expect(codeOf(agrees)).toBe('QUORUM_DISSENT_INVALID');
    const forged = clone(ok);
    (forged.quorum.dissent[0] as Receipt & { record: { outputDigest: string } }).record.outputDigest = toHex(
      new Uint8Array(32).fill(0xcc),
    );
    expect(codeOf(forged)).toBe('QUORUM_DISSENT_INVALID');
    // Quorum receipts without the selection, under the registry.
    const { quorum: _, ...bare } = clone(ok);
    expect(codeOf(bare)).toBe('QUORUM_SELECTION_MISSING');
    // Without a registry the selection cannot be recomputed: said so in the result.
    const pinned = { nodes: members.map((m) => ({ address: m.address, logKey: m.logKey })) };
    const r = verifyBundle(ok, pinned);
    expect(r.ok && r.quorum?.selection).toBe('unchecked');
  });
});

describe('a paid dissent receipt under the verifier’s payment policy', () => {
  const TOKEN = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
  const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
  /** A dissent paid by a contract wallet: its signature recovers to no one (only the chain can vouch). */
  function paidDissent() {
    const b = quorumBundle(['agreed', 'dissent', 'agreed', 'agreed']);
    const m = ranked(1);
    const payment: ReceiptPayment = {
      scheme: 'exact',
      network: 'eip155:31337',
      asset: TOKEN,
      name: 'Verity Test USD',
      version: '1',
      authorization: {
        from: WALLET,
        to: m.address,
        value: '1000',
        validAfter: '0',
        validBefore: '1893456000',
        nonce: `0x${'42'.repeat(32)}`,
      },
      signature: `0x${'11'.repeat(64)}1b`,
    };
    const digest = authorizationDigest(paymentDomain(payment), payment.authorization, 'transfer');
    const receipt = receiptOf(m, { outputDigest: LIE, payment: { digest: toHex(digest), amount: '1000' } });
    b.quorum.dissent[0] = { ...receipt, payment };
    const vouched = { from: WALLET.toLowerCase(), digest: `0x${toHex(digest)}`, signature: payment.signature };
    return { b, vouched };
  }
  const dissentCause = (bundle: unknown, payment: PaymentPolicy) => {
    const r = verifyBundle(bundle, trust, { payment });
    return r.ok ? 'ok' : `${r.code}/${String(r.error.details.causeCode)}`;
  };

  it('checks a dissent’s payment with the policy: a signature the chain vouched for counts, its pin holds', () => {
    const { b, vouched } = paidDissent();
    // Offline, a contract wallet's signature is undecided; vouched for on the chain, it is its payer's.
    expect(dissentCause(b, { network: 'eip155:31337' })).toBe('QUORUM_DISSENT_INVALID/PAYMENT_SIGNATURE_NEEDS_CHAIN');
    expect(dissentCause(b, { network: 'eip155:31337', asset: TOKEN, vouched: [vouched] })).toBe('ok');
    // A dissent paid on another chain or in another token than the verifier pins is refused like a receipt.
    expect(dissentCause(b, { network: 'eip155:1', vouched: [vouched] })).toBe(
      'QUORUM_DISSENT_INVALID/PAYMENT_WRONG_NETWORK',
    );
    expect(dissentCause(b, { asset: WALLET, vouched: [vouched] })).toBe('QUORUM_DISSENT_INVALID/PAYMENT_WRONG_NETWORK');
  });
});
