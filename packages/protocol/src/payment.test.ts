/**
 * Payments (payment.ts, docs/protocol.md §17): EIP-3009 digests and signatures against vectors
 * computed with viem 2.x (`hashTypedData`, `signTypedData`, `encodeAbiParameters`: an independent
 * implementation of EIP-712 and the ABI), the x402 header codec, the record's payment commitment,
 * and each tampered payment a verifier must refuse with its own code.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, fromUtf8, toHex, utf8 } from './bytes.js';
import {
  authorizationDigest,
  authorizationSigner,
  type ContractSignature,
  checkRecordPayment,
  contractSignatureOf,
  decodePaymentHeader,
  encodePaymentHeader,
  MAX_PAYMENT_SIGNATURE,
  meteredNonce,
  type PaymentPayload,
  type PaymentRequired,
  parsePaymentPayload,
  parsePaymentRequired,
  parseReceiptPayment,
  paymentDigest,
  type ReceiptPayment,
  receiptPaymentOf,
  type TransferAuthorization,
} from './payment.js';
import { decodeRecord, encodeRecord, type InferenceRecord, parseRecord, recordLeafHash } from './record.js';
import { expectCode } from './test-support/errors.js';

// Anvil's second default account (its well-known private key 0x59c6…690d) pays the EIP-55 example address.
const PAYER = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const NODE = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const TOKEN = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const DOMAIN = { name: 'Verity Test USD', version: '1', chainId: 31337, verifyingContract: TOKEN };
const AUTH: TransferAuthorization = {
  from: PAYER,
  to: NODE,
  value: '1000',
  validAfter: '0',
  validBefore: '1893456000',
  nonce: `0x${'42'.repeat(32)}`,
};
// viem 2.x: hashTypedData({ domain: DOMAIN, primaryType: 'TransferWithAuthorization' | 'ReceiveWithAuthorization', message: AUTH }).
const TRANSFER_DIGEST = 'd954788da2f1d472d6d0343eb31eec1f12b3d1a28a15459b6f7a32379a731d14';
const RECEIVE_DIGEST = 'ef243d6057cf604ee746231057161c193d6d1c529b45e2e6196a71de398a71fd';
// viem 2.x: privateKeyToAccount(0x59c6…690d).signTypedData(… TransferWithAuthorization …).
const SIGNATURE =
  '0x6b4dfe96007c5102c728baeb131238d8336d8d3b614019689e5dc1ec8c5e1080690d21ebfd763f1714c149f31274e02c078a5ee84fddfd0254d3f29365951a201c';
// SIGNATURE with one bit of r flipped: a well-formed signature that recovers to another account.
const OTHER_SIGNATURE = `${SIGNATURE.slice(0, 4)}${(Number.parseInt(SIGNATURE.slice(4, 6), 16) ^ 1).toString(16).padStart(2, '0')}${SIGNATURE.slice(6)}`;
// viem 2.x: keccak256(encodeAbiParameters([address, bytes32], [NODE, 0x07…07])).
const SALT = `0x${'07'.repeat(32)}`;
const METERED_NONCE = '0x1fbcb90fd9f1ba26755be4d5bd8f18726df374a002b906d90c74d9e6d662a02c';

const PAYMENT: ReceiptPayment = {
  scheme: 'exact',
  network: 'eip155:31337',
  asset: TOKEN,
  name: 'Verity Test USD',
  version: '1',
  authorization: AUTH,
  signature: SIGNATURE,
};

const RECORD: InferenceRecord = parseRecord({
  version: 1,
  kind: 'onnx',
  mode: 'signed',
  model: 'bagaaieraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa',
  runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
  inputDigest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  outputDigest: '11'.repeat(32),
  paramsDigest: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  requestId: 'req-1',
  clientNonce: 'cafe',
  timestamp: 1_793_491_200_000,
  node: NODE,
  payment: { digest: TRANSFER_DIGEST, amount: '1000' },
});

// record.test.ts's RECORD_HEX (docs/protocol.md §5.4) followed by the seventh field, by hand:
// length 64 (0x40) ‖ digest ‖ amount 1000 = 0x3e8 as a uint256. Leaf hash by
// `echo 00<hex> | xxd -r -p | sha256sum`.
const PAID_RECORD_HEX =
  '56524543010000000001a19467e8005aaeb6053f3e94c9b9a09f33669435e7ef1beaede3b0c44298fc1c149afbf4c8' +
  '996fb92427ae41e4649b934ca495991b7852b855111111111111111111111111111111111111111111111111111111' +
  '111111111144136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a057265712d3125018004' +
  '122044136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a106f6e6e7872756e74696d652d' +
  '6e6f646506312e33302e30066e617469766502cafe' +
  `40${TRANSFER_DIGEST}${'0'.repeat(61)}3e8`;
const PAID_LEAF_HASH = '4d8978890a996462688d1be9856fd0bc43b9e598efe87d48d7a3a36075813c40';

/** The payer's signature over a digest (r ‖ s ‖ v, v = 27 + recovery id), as wallets make it. */
function signDigest(digest: Uint8Array): string {
  const key = fromHex('59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
  const sig = secp256k1.sign(digest, key, { prehash: false, lowS: true, format: 'recovered' });
  return `0x${toHex(sig.subarray(1))}${(27 + (sig[0] as number)).toString(16)}`;
}

describe('EIP-3009 authorizations', () => {
  it('digests as viem hashTypedData does, for both primary types', () => {
    expect(toHex(authorizationDigest(DOMAIN, AUTH, 'transfer'))).toBe(TRANSFER_DIGEST);
    expect(toHex(authorizationDigest(DOMAIN, AUTH, 'receive'))).toBe(RECEIVE_DIGEST);
  });

  it('recovers the payer from a signature viem made', () => {
    expect(authorizationSigner(fromHex(TRANSFER_DIGEST), SIGNATURE)).toBe(PAYER);
    // The same signature over another chain's digest recovers someone else.
    const other = authorizationDigest({ ...DOMAIN, chainId: 1 }, AUTH, 'transfer');
    expect(authorizationSigner(other, SIGNATURE)).not.toBe(PAYER);
  });

  it('derives the metered nonce as abi.encode(payee, salt) hashed', () => {
    expect(meteredNonce(NODE, SALT)).toBe(METERED_NONCE);
    expect(meteredNonce(NODE.toLowerCase(), SALT)).toBe(METERED_NONCE);
  });

  it('refuses a malformed signature with PAYMENT_SIGNATURE_INVALID', () => {
    // v = 0x1d (29) is no recovery id.
    expectCode(
      () => authorizationSigner(fromHex(TRANSFER_DIGEST), `${SIGNATURE.slice(0, -2)}1d`),
      'PAYMENT_SIGNATURE_INVALID',
    );
  });
});

describe('x402 headers', () => {
  const payload = {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: 'eip155:31337',
      asset: TOKEN,
      amount: '1000',
      payTo: NODE,
      maxTimeoutSeconds: 60,
      extra: { name: 'Verity Test USD', version: '1' },
    },
    payload: { signature: SIGNATURE, authorization: AUTH },
  };

  it('is base64 of the UTF-8 JSON (as @x402/core safeBase64Encode writes it)', () => {
    const header = encodePaymentHeader(payload as PaymentPayload);
    expect(JSON.parse(fromUtf8(fromBase64(header)))).toEqual(payload);
    expect(header).toBe(btoa(JSON.stringify(payload)));
    expect(parsePaymentPayload(decodePaymentHeader(header)).payload.authorization.from).toBe(PAYER);
  });

  it('parses a PaymentRequired and drops schemes it does not know', () => {
    const required: PaymentRequired = parsePaymentRequired({
      x402Version: 2,
      error: 'PAYMENT_REQUIRED',
      resource: { url: 'http://node/v1/infer' },
      accepts: [{ scheme: 'upto', network: 'eip155:8453' }, payload.accepted],
    });
    expect(required.accepts.map((a) => a.scheme)).toEqual(['exact']);
  });

  // Each malformed PAYMENT-SIGNATURE and why: all are PAYMENT_INVALID (the node answers 402).
  const bad: [string, unknown][] = [
    ['not base64', '!!!'],
    ['base64 of no JSON', btoa('nope')],
    ['x402 version 1', btoa(JSON.stringify({ ...payload, x402Version: 1 }))],
    ['unknown scheme', btoa(JSON.stringify({ ...payload, accepted: { ...payload.accepted, scheme: 'upto' } }))],
    [
      'network not CAIP-2 eip155',
      btoa(JSON.stringify({ ...payload, accepted: { ...payload.accepted, network: 'base' } })),
    ],
    [
      'value not a decimal string',
      btoa(JSON.stringify({ ...payload, payload: { ...payload.payload, authorization: { ...AUTH, value: 1000 } } })),
    ],
    [
      'value above uint256',
      btoa(
        JSON.stringify({
          ...payload,
          payload: { ...payload.payload, authorization: { ...AUTH, value: (1n << 256n).toString() } },
        }),
      ),
    ],
    [
      'nonce of 31 bytes',
      btoa(
        JSON.stringify({
          ...payload,
          payload: { ...payload.payload, authorization: { ...AUTH, nonce: `0x${'42'.repeat(31)}` } },
        }),
      ),
    ],
    ['empty signature', btoa(JSON.stringify({ ...payload, payload: { ...payload.payload, signature: '0x' } }))],
    [
      'signature of an odd number of hex digits',
      btoa(JSON.stringify({ ...payload, payload: { ...payload.payload, signature: SIGNATURE.slice(0, -1) } })),
    ],
    [
      'signature of 4097 bytes (above MAX_PAYMENT_SIGNATURE)',
      btoa(JSON.stringify({ ...payload, payload: { ...payload.payload, signature: `0x${'ab'.repeat(4097)}` } })),
    ],
    [
      'metered without salt',
      btoa(
        JSON.stringify({
          ...payload,
          accepted: {
            ...payload.accepted,
            scheme: 'metered',
            extra: { name: 'x', version: '1', settlement: TOKEN, pricePerInputToken: '1', pricePerOutputToken: '1' },
          },
        }),
      ),
    ],
  ];
  it.each(bad)('refuses %s with PAYMENT_INVALID', (_why, header) => {
    expectCode(() => parsePaymentPayload(decodePaymentHeader(header as string)), 'PAYMENT_INVALID');
  });
});

describe('the record payment commitment', () => {
  it('encodes a paid record as the §5.2 vector plus the payment field, and decodes it back', () => {
    expect(toHex(encodeRecord(RECORD))).toBe(PAID_RECORD_HEX);
    expect(toHex(recordLeafHash(RECORD))).toBe(PAID_LEAF_HASH);
    expect(decodeRecord(fromHex(PAID_RECORD_HEX))).toEqual(RECORD);
  });

  it('the commitment is the authorization digest', () => {
    expect(paymentDigest(PAYMENT)).toBe(TRANSFER_DIGEST);
  });

  // Tampered paid records: the decoder accepts only what encodeRecord writes.
  const tampered: [string, string][] = [
    ['payment field of 63 bytes', `${PAID_RECORD_HEX.slice(0, -132)}3f${PAID_RECORD_HEX.slice(-128, -2)}`],
    ['payment field of 65 bytes', `${PAID_RECORD_HEX.slice(0, -130)}41${PAID_RECORD_HEX.slice(-128)}00`],
    ['an empty seventh field', `${PAID_RECORD_HEX.slice(0, -130)}00`],
    ['a byte after the payment field', `${PAID_RECORD_HEX}00`],
  ];
  it.each(tampered)('refuses %s with RECORD_ENCODING_INVALID', (_why, hex) => {
    expectCode(() => decodeRecord(fromHex(hex)), 'RECORD_ENCODING_INVALID');
  });

  it('refuses a malformed commitment in the JSON form with RECORD_INVALID', () => {
    const { payment: _, ...free } = RECORD;
    expectCode(
      () => parseRecord({ ...free, payment: { digest: TRANSFER_DIGEST.toUpperCase(), amount: '1' } }),
      'RECORD_INVALID',
    );
    expectCode(() => parseRecord({ ...free, payment: { digest: TRANSFER_DIGEST, amount: '01' } }), 'RECORD_INVALID');
    expectCode(
      () => parseRecord({ ...free, payment: { digest: TRANSFER_DIGEST, amount: '1', payer: PAYER } }),
      'RECORD_INVALID',
    );
  });
});

describe('checkRecordPayment', () => {
  it('accepts the authorization the record commits to, and an amount below its value', () => {
    expect(() =>
      checkRecordPayment(RECORD, PAYMENT, { network: 'eip155:31337', asset: TOKEN.toLowerCase() }),
    ).not.toThrow();
    expect(() =>
      checkRecordPayment({ ...RECORD, payment: { digest: TRANSFER_DIGEST, amount: '999' } }, PAYMENT),
    ).not.toThrow();
    expect(() => checkRecordPayment({ node: NODE }, undefined)).not.toThrow();
  });

  it('accepts a metered authorization bound to the node by its nonce', () => {
    const auth = { ...AUTH, to: TOKEN, nonce: METERED_NONCE };
    const unsigned: ReceiptPayment = { ...PAYMENT, scheme: 'metered', authorization: auth, salt: SALT };
    const digest = paymentDigest(unsigned);
    // The exact payment's signature is over another message: recovery gives someone else, which
    // offline is undecided (a contract wallet's signature looks the same).
    expectCode(
      () => checkRecordPayment({ node: NODE, payment: { digest, amount: '5' } }, unsigned),
      'PAYMENT_SIGNATURE_NEEDS_CHAIN',
    );
    const metered = { ...unsigned, signature: signDigest(fromHex(digest)) };
    expect(() => checkRecordPayment({ node: NODE, payment: { digest, amount: '5' } }, metered)).not.toThrow();
    // Bound to another payee: the nonce does not match keccak256(node, salt).
    const other = '0x0000000000000000000000000000000000000001';
    expectCode(
      () => checkRecordPayment({ node: other, payment: { digest, amount: '5' } }, metered),
      'RECEIPT_PAYMENT_MISMATCH',
    );
  });

  // Each tampered receipt payment, what is wrong, and its code.
  const cases: [string, Parameters<typeof checkRecordPayment>, string][] = [
    [
      'authorization value lowered after signing (digest differs)',
      [RECORD, { ...PAYMENT, authorization: { ...AUTH, value: '999' } }],
      'RECEIPT_PAYMENT_MISMATCH',
    ],
    [
      'record charges more than authorized',
      [{ ...RECORD, payment: { digest: TRANSFER_DIGEST, amount: '1001' } }, PAYMENT],
      'RECEIPT_PAYMENT_MISMATCH',
    ],
    [
      'another chain claimed for the same authorization',
      [RECORD, { ...PAYMENT, network: 'eip155:1' }],
      'RECEIPT_PAYMENT_MISMATCH',
    ],
    ['paid record without its authorization', [RECORD, undefined], 'RECEIPT_PAYMENT_MISMATCH'],
    ['authorization next to a free record', [{ node: NODE }, PAYMENT], 'RECEIPT_PAYMENT_MISMATCH'],
    [
      'the same record under another node (payee is not the node)',
      [{ ...RECORD, node: PAYER }, PAYMENT],
      'RECEIPT_PAYMENT_MISMATCH',
    ],
    [
      'a signature by another account',
      [
        RECORD,
        {
          ...PAYMENT,
          signature: OTHER_SIGNATURE,
        },
      ],
      // Offline a forgery and a contract wallet's signature look alike: only the chain can tell.
      'PAYMENT_SIGNATURE_NEEDS_CHAIN',
    ],
    [
      'a signature by another account, paying another account than the node (decided first)',
      [
        { ...RECORD, node: PAYER },
        { ...PAYMENT, signature: OTHER_SIGNATURE },
      ],
      'RECEIPT_PAYMENT_MISMATCH',
    ],
    [
      'on another chain than the verifier accepts',
      [RECORD, PAYMENT, { network: 'eip155:8453' }],
      'PAYMENT_WRONG_NETWORK',
    ],
    ['in another token than the verifier accepts', [RECORD, PAYMENT, { asset: NODE }], 'PAYMENT_WRONG_NETWORK'],
  ];
  it.each(cases)('refuses %s', (_why, args, code) => {
    expectCode(() => checkRecordPayment(...args), code as never);
  });

  it('passes a signature that does not recover to the payer only when the chain vouched for it (ERC-1271)', () => {
    // ECDSA decides: nothing to ask.
    expect(contractSignatureOf(PAYMENT)).toBeUndefined();
    // A contract wallet's signature: any length, no ECDSA of the payer.
    const wallet = { ...PAYMENT, signature: `${SIGNATURE}c0ffee` };
    const ask = contractSignatureOf(wallet);
    expect(ask).toEqual({ from: PAYER.toLowerCase(), digest: `0x${TRANSFER_DIGEST}`, signature: `${SIGNATURE}c0ffee` });
    expectCode(() => checkRecordPayment(RECORD, wallet), 'PAYMENT_SIGNATURE_NEEDS_CHAIN');
    expect(() => checkRecordPayment(RECORD, wallet, { vouched: [ask as ContractSignature] })).not.toThrow();
    // Vouched for is one signature of one payer over one digest: not another signature, not another payer.
    const vouched = [{ ...(ask as ContractSignature), signature: `${SIGNATURE}c0ffef` }];
    expectCode(() => checkRecordPayment(RECORD, wallet, { vouched }), 'PAYMENT_SIGNATURE_NEEDS_CHAIN');
    const elsewhere = [{ ...(ask as ContractSignature), from: NODE.toLowerCase() }];
    expectCode(() => checkRecordPayment(RECORD, wallet, { vouched: elsewhere }), 'PAYMENT_SIGNATURE_NEEDS_CHAIN');
    // Vouching does not lift the other checks.
    expectCode(
      () => checkRecordPayment({ ...RECORD, node: PAYER }, wallet, { vouched: [ask as ContractSignature] }),
      'RECEIPT_PAYMENT_MISMATCH',
    );
  });

  it('carries signatures of 1 to MAX_PAYMENT_SIGNATURE bytes in receipts', () => {
    const long = `0x${'ab'.repeat(MAX_PAYMENT_SIGNATURE)}`;
    expect(parseReceiptPayment({ ...PAYMENT, signature: long }).signature).toBe(long);
    expect(parseReceiptPayment({ ...PAYMENT, signature: '0x01' }).signature).toBe('0x01');
    expectCode(() => parseReceiptPayment({ ...PAYMENT, signature: `${long}ab` }), 'RECEIPT_MALFORMED');
    expectCode(() => parseReceiptPayment({ ...PAYMENT, signature: '0x' }), 'RECEIPT_MALFORMED');
    expectCode(() => parseReceiptPayment({ ...PAYMENT, signature: `${SIGNATURE}a` }), 'RECEIPT_MALFORMED');
  });

  it('parses the receipt form strictly', () => {
    expect(parseReceiptPayment(JSON.parse(JSON.stringify(PAYMENT)))).toEqual({
      ...PAYMENT,
      authorization: { ...AUTH },
    });
    expectCode(() => parseReceiptPayment({ ...PAYMENT, extra: 1 }), 'RECEIPT_MALFORMED');
    expectCode(() => parseReceiptPayment({ ...PAYMENT, salt: SALT }), 'RECEIPT_MALFORMED');
  });

  it('receiptPaymentOf carries what the payload signed', () => {
    const payload = parsePaymentPayload({
      x402Version: 2,
      accepted: {
        scheme: 'exact',
        network: 'eip155:31337',
        asset: TOKEN,
        amount: '1000',
        payTo: NODE,
        maxTimeoutSeconds: 60,
        extra: { name: 'Verity Test USD', version: '1' },
      },
      payload: { signature: SIGNATURE, authorization: AUTH },
    });
    expect(paymentDigest(receiptPaymentOf(payload))).toBe(TRANSFER_DIGEST);
    expect(utf8('x').length).toBe(1);
  });
});
