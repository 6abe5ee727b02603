import { describe, expect, it } from 'vitest';
import { addressFromPrivateKey } from './eth.js';
import { createMemoryLog } from './memory-log.js';
import { createEd25519Signer, generateNoteKey } from './note.js';
import { BUNDLE_MEDIA_TYPE } from './receipt.js';
import { type InferenceRecord, paramsDigest } from './record.js';
import type { RegistryNode, RegistrySnapshot } from './registry.js';
import { type Trust, verifyBundle, verifyReceipt } from './verify.js';

// A bundle names the block whose registry vouches for its node (docs/protocol.md §9.2 step 9a).
// A node that has since left — stake withdrawn — could otherwise keep signing answers and name a
// block from when it was staked: with the registry now (`Trust.current`), that is refused.

const ETHER = 10n ** 18n;
const origin = 'backdate.verity.test/log';
const seed = new Uint8Array(32).fill(9);
const address = addressFromPrivateKey(`0x${'09'.repeat(32)}`);
const logKey = generateNoteKey(origin, seed).verifierKey;
const log = createMemoryLog(createEd25519Signer(origin, seed));
const record: InferenceRecord = {
  version: 1,
  kind: 'onnx',
  mode: 'signed',
  model: 'bagaaierafygq54vt4qtqdkwwssnyp2kmdcsgweit65y77eohobt3udwwrrfq',
  runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
  inputDigest: '11'.repeat(32),
  outputDigest: '22'.repeat(32),
  paramsDigest: paramsDigest({}),
  requestId: 'backdated-request-0123456789',
  timestamp: 1_793_491_200_000,
  node: address,
};
const receipt = log.receipt(log.append(record));
const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] };

const entry = (more: Partial<RegistryNode> = {}): RegistryNode => ({
  address,
  logKey,
  stake: 2n * ETHER,
  status: 'registered',
  capabilities: 1n,
  endpoint: 'https://node.example',
  ...more,
});
const at = (number: number, nodes: RegistryNode[]): RegistrySnapshot => ({
  chainId: 31337,
  nodeRegistry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  block: { number, hash: `0x${number.toString(16).padStart(64, '0')}` },
  minStake: ETHER,
  nodes,
});
const then = at(100, [entry()]);

describe('a node must still be backed now, not only at the block a bundle names', () => {
  it('verifies while the node is still registered, or unbonding (its stake still slashable)', () => {
    expect(verifyBundle(bundle, { nodes: [], registry: then, current: at(200, [entry()]) }).ok).toBe(true);
    const unbonding = at(200, [entry({ status: 'unbonding' })]);
    expect(verifyBundle(bundle, { nodes: [], registry: then, current: unbonding }).ok).toBe(true);
  });

  it('refuses a node that has exited since (gone from the registry): RECEIPT_NODE_EXITED', () => {
    const trust: Trust = { nodes: [], registry: then, current: at(200, []) };
    expect(verifyBundle(bundle, trust)).toMatchObject({ ok: false, code: 'RECEIPT_NODE_EXITED' });
    expect(verifyReceipt(receipt, trust)).toMatchObject({ ok: false, code: 'RECEIPT_NODE_EXITED' });
    // Without the registry now, the backdated bundle would pass: the hole this check closes.
    expect(verifyBundle(bundle, { nodes: [], registry: then }).ok).toBe(true);
  });

  it('refuses a node slashed to nothing since', () => {
    const slashed = at(200, [entry({ stake: 0n })]);
    expect(verifyBundle(bundle, { nodes: [], registry: then, current: slashed })).toMatchObject({
      ok: false,
      code: 'RECEIPT_NODE_EXITED',
    });
  });

  it('does not apply to an earlier or equal block, nor to keys pinned by hand', () => {
    expect(verifyBundle(bundle, { nodes: [], registry: then, current: at(100, []) }).ok).toBe(true);
    expect(verifyBundle(bundle, { nodes: [{ address, logKey }], registry: then, current: at(200, []) }).ok).toBe(true);
  });
});

describe('one registrant with an unusable key cannot stop verification for everyone', () => {
  it('refuses only that node (RECEIPT_NODE_KEY_INVALID); every other node still verifies', () => {
    // The contract does not check origins: a staked registrant may hold one that is no key name.
    const bad = entry({
      address: addressFromPrivateKey(`0x${'0a'.repeat(32)}`),
      logKey: `bad origin+00000000+${'A'.repeat(44)}`,
    });
    const registry = at(100, [bad, entry()]);
    expect(verifyBundle(bundle, { nodes: [], registry }).ok).toBe(true);
    const other = createMemoryLog(createEd25519Signer(origin, seed));
    const fromBad = other.receipt(other.append({ ...record, node: bad.address }));
    expect(verifyReceipt(fromBad, { nodes: [], registry })).toMatchObject({
      ok: false,
      code: 'RECEIPT_NODE_KEY_INVALID',
    });
  });
});
