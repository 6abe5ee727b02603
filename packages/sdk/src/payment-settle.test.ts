/**
 * What the paying fetch signs settles on a real chain: a server (this test, in the node's place)
 * answers 402 as the x402 v2 transport has it, and settles each payment it is sent with the
 * contracts package's `settleExact` / `settleMetered` on anvil, where `TestStablecoin` checks
 * the EIP-3009 signature itself and `MeteredSettlement` recomputes the nonce from its caller.
 * Balances move by exactly the price (exact) or the amount charged (metered, the rest back).
 *
 * And against a dishonest node: one that asks for the same units of another (dearer) token the
 * payer holds is not paid (`PAYMENT_ASSET_NOT_PINNED`, nothing signed, both balances unchanged);
 * one whose record commits to an authorization it never submitted is `PAYMENT_NOT_SETTLED` for a
 * client with a chain, read on the real token (a receipt signed here with a test node's log key).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deploymentToJson, type PaymentContracts, settleExact, settleMetered, tokenBalance } from '@verity/contracts';
import {
  BUNDLE_MEDIA_TYPE,
  createEd25519Signer,
  createMemoryLog,
  generateNoteKey,
  type InferenceRecord,
  isVerityError,
  manifestCid,
  type PaymentPayload,
  paramsDigest,
  type Receipt,
  receiptPaymentOf,
} from '@verity/protocol';
import { type Address, getAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { verify } from './actions/receipts.js';
import { createClientBase } from './client.js';
import { answerPayment, createPayer, type PaymentMade, paymentOf } from './payment.js';

const PAYER = 3;
const NODE = 1;
let chain: TestChain;
let payments: PaymentContracts;
/** Another token the payer holds (worth more per unit, say): a node must not switch to it. */
let dearer: PaymentContracts;
let deployment: ReturnType<typeof deploymentToJson>;
let network: string;
let server: Server;
let url: string;
/** Paths the server got a `PAYMENT-SIGNATURE` for. */
const signedFor: string[] = [];
/** The token and chain the payers below pay in. */
const pin = () => ({ networks: [network], assets: [payments.token], settlements: [payments.meteredSettlement] });

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');
const unb64 = (s: string) => JSON.parse(Buffer.from(s, 'base64').toString('utf8'));

interface Wire {
  accepted: { scheme: string; extra: { settlement?: Address } };
  payload: {
    authorization: { from: Address; to: Address; value: string; validAfter: string; validBefore: string; nonce: Hex };
    signature: Hex;
    salt?: Hex;
  };
}

const authorizationOf = (a: Wire['payload']['authorization']) => ({
  from: getAddress(a.from),
  to: getAddress(a.to),
  value: BigInt(a.value),
  validAfter: BigInt(a.validAfter),
  validBefore: BigInt(a.validBefore),
  nonce: a.nonce,
});

beforeAll(async () => {
  chain = await startTestChain();
  payments = await chain.deployPayments({ [PAYER]: 1_000_000n });
  dearer = await chain.deployPayments({ [PAYER]: 1_000_000n });
  deployment = deploymentToJson(await chain.deploy());
  network = `eip155:${await chain.publicClient.getChainId()}`;
  const base = { network, asset: payments.token, payTo: chain.address(NODE), maxTimeoutSeconds: 300 };
  const exact = { ...base, scheme: 'exact', amount: '10000', extra: { name: 'Verity Test USD', version: '1' } };
  const metered = {
    ...base,
    scheme: 'metered',
    amount: '50000',
    extra: {
      name: 'Verity Test USD',
      version: '1',
      settlement: payments.meteredSettlement,
      pricePerInputToken: '10',
      pricePerOutputToken: '100',
    },
  };
  const accepts: Record<string, unknown> = {
    '/exact': exact,
    '/metered': metered,
    // The same number of units of the other token: a node that would rather be paid in it.
    '/dearer': { ...exact, asset: dearer.token },
    // A node that takes the payment and answers, but never submits it.
    '/unsettled': exact,
    '/unsettled-metered': metered,
  };
  server = createServer(async (req, res) => {
    const path = req.url ?? '';
    for await (const _ of req) {
      // drain the body
    }
    const header = req.headers['payment-signature'];
    if (typeof header !== 'string') {
      res.writeHead(402, {
        'content-type': 'application/json',
        'payment-required': b64({ x402Version: 2, resource: { url: path }, accepts: [accepts[path]] }),
      });
      return void res.end(JSON.stringify({ error: { code: 'PAYMENT_REQUIRED', message: 'pay' } }));
    }
    signedFor.push(path);
    if (path.startsWith('/unsettled')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"ok":true}');
    }
    const { accepted, payload } = unb64(header) as Wire;
    const auth = authorizationOf(payload.authorization);
    const token = accepted.scheme === 'exact' && path === '/dearer' ? dearer.token : payments.token;
    try {
      const receipt =
        accepted.scheme === 'exact'
          ? await settleExact(chain.clients(NODE), token, auth, payload.signature)
          : // The node served 1234 units' worth of tokens: that is charged, the rest goes back.
            await settleMetered(
              chain.clients(NODE),
              payments.meteredSettlement,
              payments.token,
              auth,
              payload.salt as Hex,
              payload.signature,
              1234n,
            );
      res.writeHead(200, {
        'content-type': 'application/json',
        'payment-response': b64({ success: true, transaction: receipt.transactionHash, network }),
      });
      res.end('{"ok":true}');
    } catch (e) {
      res.writeHead(402, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'PAYMENT_SETTLEMENT_FAILED', message: String(e) } }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((r) => server?.close(() => r()));
  await chain?.stop();
});

const balances = async () => ({
  payer: await tokenBalance(chain.publicClient, payments.token, chain.address(PAYER)),
  node: await tokenBalance(chain.publicClient, payments.token, chain.address(NODE)),
  payerDearer: await tokenBalance(chain.publicClient, dearer.token, chain.address(PAYER)),
  nodeDearer: await tokenBalance(chain.publicClient, dearer.token, chain.address(NODE)),
});

const PAYER_KEY = () => chain.anvil.privateKeys[PAYER] as Hex;

/** A client of the test server on the chain, its deployment naming `token` as the payment token. */
const chainClient = (token: Address = payments.token, payment: object = {}) =>
  createClientBase({
    url,
    chain: { rpcUrl: chain.anvil.rpcUrl, deployment: { ...deployment, payments: { ...payments, token } } },
    payment: { account: PAYER_KEY(), budget: 100_000n, ...payment },
  });

describe('payments the SDK signs settle on chain', () => {
  it('exact: the token accepts x402 exact’s signature; the price moves from payer to node', async () => {
    const payer = createPayer({ account: PAYER_KEY(), ...pin(), budget: 100_000n });
    const before = await balances();
    const res = await payer.wrap()(`${url}/exact`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(200);
    const after = await balances();
    expect([before.payer - after.payer, after.node - before.node]).toEqual([10_000n, 10_000n]);
    expect(paymentOf(res)?.settlement?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it('metered: MeteredSettlement takes the maximum, pays the node 1234 and returns the rest', async () => {
    const payer = createPayer({ account: PAYER_KEY(), ...pin(), budget: 100_000n });
    const before = await balances();
    const res = await payer.wrap()(`${url}/metered`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(200);
    const after = await balances();
    expect([before.payer - after.payer, after.node - before.node]).toEqual([1234n, 1234n]);
    const made = paymentOf(res);
    expect(made?.authorized).toBe(50_000n);
    // The budget holds the maximum until the receipt says what was charged.
    expect(payer.spent()).toBe(50_000n);
    if (made) payer.charged(made, 1234n);
    expect(payer.spent()).toBe(1234n);
  });
});

describe('the token paid in is the payer’s choice, not the node’s', () => {
  /** Asks `path` through `fetch`: PAYMENT_ASSET_NOT_PINNED, nothing signed, no balance moved. */
  const refused = async (fetch: typeof globalThis.fetch, path: string) => {
    const before = await balances();
    const signed = signedFor.length;
    const e = await fetch(`${url}${path}`, { method: 'POST', body: '{}' }).catch((x: unknown) => x);
    expect(isVerityError(e, 'PAYMENT_ASSET_NOT_PINNED')).toBe(true);
    expect(signedFor.length).toBe(signed);
    expect(await balances()).toEqual(before);
  };

  it('a client on a chain pays only in its deployment’s token: a node naming another is refused', async () => {
    const client = chainClient();
    await refused(client.fetch, '/dearer');
    expect(client.payer?.spent()).toBe(0n);
    // The named one is paid.
    expect((await client.fetch(`${url}/exact`, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(client.payer?.spent()).toBe(10_000n);
  });

  it('a client on a chain authorizes a metered maximum only to its deployment’s MeteredSettlement', async () => {
    // The deployment names the other settlement contract: the one the node names is not pinned.
    const client = createClientBase({
      url,
      chain: {
        rpcUrl: chain.anvil.rpcUrl,
        deployment: { ...deployment, payments: { ...payments, meteredSettlement: dearer.meteredSettlement } },
      },
      payment: { account: PAYER_KEY(), budget: 100_000n },
    });
    await refused(client.fetch, '/metered');
    expect(client.payer?.spent()).toBe(0n);
  });

  it('a client with a URL only pays nothing it was not told to (no chain, no assets)', async () => {
    const client = createClientBase({ url, payment: { account: PAYER_KEY(), budget: 100_000n } });
    await refused(client.fetch, '/exact');
    await refused(client.fetch, '/dearer');
    expect(client.payer?.spent()).toBe(0n);
  });

  it('a URL-only client or payingFetch with `assets` and `networks` pays that token, and only it', async () => {
    const client = createClientBase({ url, payment: { account: PAYER_KEY(), budget: 100_000n, ...pin() } });
    await refused(client.fetch, '/dearer');
    expect((await client.fetch(`${url}/exact`, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(client.payer?.spent()).toBe(10_000n);
    // The payer's own pin rules over a chain's: pinned to the other token, the deployment's is refused.
    const elsewhere = chainClient(payments.token, { assets: [dearer.token] });
    await refused(elsewhere.fetch, '/exact');
  });
});

// A paid receipt signed in test code, as a node would make it: the record commits to `made`, the
// receipt carries its authorization, the checkpoint is signed with a test node's log key.
const MODEL = manifestCid({
  schema: 'verity.manifest/v1',
  name: 'settle-test',
  version: '1.0.0',
  format: 'onnx',
  artifact: { cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', size: 0 },
  inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 3] }],
  profiles: ['native'],
  publisher: getAddress('0x00000000000000000000000000000000000000c0'),
  createdAt: '2026-12-01T00:00:00Z',
});

function paidReceipt(made: PaymentMade, amount: bigint): { receipt: Receipt; trust: { nodes: object[] } } {
  const node = getAddress(made.payTo);
  const origin = `settle.verity.test/log/${node.toLowerCase()}`;
  const seed = new Uint8Array(32).fill(7);
  const log = createMemoryLog(createEd25519Signer(origin, seed));
  const record: InferenceRecord = {
    version: 1,
    kind: 'onnx',
    mode: 'signed',
    model: MODEL,
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest: '11'.repeat(32),
    outputDigest: '22'.repeat(32),
    paramsDigest: paramsDigest({}),
    requestId: `settle-${made.digest.slice(2, 10)}`,
    timestamp: Date.now(),
    node,
    payment: { digest: made.digest.slice(2), amount: amount.toString() },
  };
  const receipt = {
    ...log.receipt(log.append(record)),
    payment: receiptPaymentOf(made.payload as unknown as PaymentPayload),
  };
  return { receipt, trust: { nodes: [{ address: node, logKey: generateNoteKey(origin, seed).verifierKey }] } };
}

describe('with a chain, a paid receipt must be settled, not only authorized', () => {
  it('exact: a record committing to a payment the node never submitted is PAYMENT_NOT_SETTLED; settled, it passes', async () => {
    const client = chainClient();
    const before = await balances();
    const res = await client.fetch(`${url}/unsettled`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(200);
    const made = paymentOf(res) as PaymentMade;
    const { receipt, trust } = paidReceipt(made, 10_000n);
    // Offline, the receipt proves only that the payer signed what the record commits to.
    const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] };
    const offline = createClientBase({ url, insecureTrustNode: true });
    expect((await verify(offline, bundle, { trust: trust as never })).ok).toBe(true);
    // With the chain: the token never saw the authorization used.
    const unsettled = await verify(client, bundle, { trust: trust as never });
    expect(unsettled.ok ? 'ok' : [unsettled.code, unsettled.receipt]).toEqual(['PAYMENT_NOT_SETTLED', 0]);
    expect((await verify(client, receipt, { trust: trust as never })).ok).toBe(false);
    // The same check runs on the client's own paid answers (infer, chat).
    const e = await answerPayment(client.payer, client.chain, made, receipt.record).catch((x: unknown) => x);
    expect(isVerityError(e, 'PAYMENT_NOT_SETTLED')).toBe(true);
    expect(await balances()).toEqual(before);

    // An honest node submits it: the same receipt now verifies, the answer's payment is accepted.
    const { authorization, signature } = (made.payload as unknown as Wire).payload;
    await settleExact(chain.clients(NODE), payments.token, authorizationOf(authorization), signature);
    expect((await verify(client, bundle, { trust: trust as never })).ok).toBe(true);
    const payment = await answerPayment(client.payer, client.chain, made, receipt.record);
    expect(payment?.amount).toBe('10000');
  });

  it('metered: the nonce bound to the node is read on the token, used once MeteredSettlement settles', async () => {
    const client = chainClient();
    const res = await client.fetch(`${url}/unsettled-metered`, { method: 'POST', body: '{}' });
    const made = paymentOf(res) as PaymentMade;
    const { receipt, trust } = paidReceipt(made, 1234n);
    const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] };
    const unsettled = await verify(client, bundle, { trust: trust as never });
    expect(unsettled.ok ? 'ok' : unsettled.code).toBe('PAYMENT_NOT_SETTLED');
    const { authorization, signature, salt } = (made.payload as unknown as Wire).payload;
    const settled = await settleMetered(
      chain.clients(NODE),
      payments.meteredSettlement,
      payments.token,
      authorizationOf(authorization),
      salt as Hex,
      signature,
      1234n,
    );
    expect((await verify(client, bundle, { trust: trust as never })).ok).toBe(true);
    // The client's own answer: the node names its settlement transaction, whose MeteredSettled
    // event says what the chain moved; the record must commit to that, not to less.
    const noTransaction = await answerPayment(client.payer, client.chain, made, receipt.record).catch((x) => x);
    expect(isVerityError(noTransaction, 'PAYMENT_NOT_COMMITTED')).toBe(true);
    made.settlement = {
      success: true,
      transaction: settled.transactionHash,
      network: network as `${string}:${string}`,
    };
    const digest = made.digest.slice(2);
    const understated = await answerPayment(client.payer, client.chain, made, {
      ...receipt.record,
      payment: { digest, amount: '1000' },
    }).catch((x: unknown) => x);
    expect(isVerityError(understated, 'PAYMENT_NOT_COMMITTED')).toBe(true);
    expect((understated as { details: unknown }).details).toMatchObject({ amount: '1000', settled: '1234' });
    expect(client.payer?.spent()).toBe(50_000n); // nothing learnt from a refused answer
    expect((await answerPayment(client.payer, client.chain, made, receipt.record))?.amount).toBe('1234');
    expect(client.payer?.spent()).toBe(1234n);
  });

  it('a receipt paid in another token than the deployment’s is PAYMENT_WRONG_NETWORK for a client on that chain', async () => {
    const client = chainClient(dearer.token);
    const payer = createClientBase({ url, payment: { account: PAYER_KEY(), budget: 100_000n, ...pin() } });
    const made = paymentOf(await payer.fetch(`${url}/unsettled`, { method: 'POST', body: '{}' })) as PaymentMade;
    const { receipt, trust } = paidReceipt(made, 10_000n);
    const result = await verify(
      client,
      { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] },
      { trust: trust as never },
    );
    expect(result.ok ? 'ok' : result.code).toBe('PAYMENT_WRONG_NETWORK');
    // A caller's policy adds to the chain's pin, it does not drop it.
    const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] };
    const added = await verify(client, bundle, { trust: trust as never, payment: { vouched: [] } });
    expect(added.ok ? 'ok' : added.code).toBe('PAYMENT_WRONG_NETWORK');
    // Even a policy naming the receipt's token: the settlement is asked of the deployment's token only.
    const named = await verify(client, bundle, { trust: trust as never, payment: { asset: payments.token } });
    expect(named.ok ? 'ok' : named.code).toBe('PAYMENT_WRONG_NETWORK');
  });
});
