/**
 * What the paying fetch signs settles on a real chain: a server (this test, in the node's place)
 * answers 402 as the x402 v2 transport has it, and settles each payment it is sent with the
 * contracts package's `settleExact` / `settleMetered` on anvil, where `TestStablecoin` checks
 * the EIP-3009 signature itself and `MeteredSettlement` recomputes the nonce from its caller.
 * Balances move by exactly the price (exact) or the amount charged (metered, the rest back).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { deploymentToJson, type PaymentContracts, settleExact, settleMetered, tokenBalance } from '@verity/contracts';
import { isVerityError } from '@verity/protocol';
import { type Address, getAddress, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { createClientBase } from './client.js';
import { createPayer, paymentOf } from './payment.js';

const PAYER = 3;
const NODE = 1;
let chain: TestChain;
let payments: PaymentContracts;
let server: Server;
let url: string;

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

beforeAll(async () => {
  chain = await startTestChain();
  payments = await chain.deployPayments({ [PAYER]: 1_000_000n });
  const chainId = await chain.publicClient.getChainId();
  const base = {
    network: `eip155:${chainId}`,
    asset: payments.token,
    payTo: chain.address(NODE),
    maxTimeoutSeconds: 300,
  };
  const accepts: Record<string, unknown> = {
    '/exact': { ...base, scheme: 'exact', amount: '10000', extra: { name: 'Verity Test USD', version: '1' } },
    '/metered': {
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
    },
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
    const { accepted, payload } = unb64(header) as Wire;
    const a = payload.authorization;
    const auth = {
      from: getAddress(a.from),
      to: getAddress(a.to),
      value: BigInt(a.value),
      validAfter: BigInt(a.validAfter),
      validBefore: BigInt(a.validBefore),
      nonce: a.nonce,
    };
    try {
      const receipt =
        accepted.scheme === 'exact'
          ? await settleExact(chain.clients(NODE), payments.token, auth, payload.signature)
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
        'payment-response': b64({ success: true, transaction: receipt.transactionHash, network: base.network }),
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
});

describe('payments the SDK signs settle on chain', () => {
  it('exact: the token accepts x402 exact’s signature; the price moves from payer to node', async () => {
    const payer = createPayer({ account: chain.anvil.privateKeys[PAYER] as Hex, budget: 100_000n });
    const before = await balances();
    const res = await payer.wrap()(`${url}/exact`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(200);
    const after = await balances();
    expect([before.payer - after.payer, after.node - before.node]).toEqual([10_000n, 10_000n]);
    expect(paymentOf(res)?.settlement?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it('metered: MeteredSettlement takes the maximum, pays the node 1234 and returns the rest', async () => {
    const payer = createPayer({ account: chain.anvil.privateKeys[PAYER] as Hex, budget: 100_000n });
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

describe('a client on a chain pays in the token its deployment names', () => {
  it('a node asking for another token is not paid (PAYMENT_REQUIRED), the named one is', async () => {
    const deployment = deploymentToJson(await chain.deploy());
    const base = (token: Address) =>
      createClientBase({
        url,
        chain: { rpcUrl: chain.anvil.rpcUrl, deployment: { ...deployment, payments: { ...payments, token } } },
        payment: { account: chain.anvil.privateKeys[PAYER] as Hex, budget: 100_000n },
      });
    const other = base(chain.address(7));
    const e = await other.fetch(`${url}/exact`, { method: 'POST', body: '{}' }).catch((x: unknown) => x);
    expect(isVerityError(e, 'PAYMENT_REQUIRED')).toBe(true);
    expect(other.payer?.spent()).toBe(0n);
    const same = base(payments.token);
    expect((await same.fetch(`${url}/exact`, { method: 'POST', body: '{}' })).status).toBe(200);
    expect(same.payer?.spent()).toBe(10_000n);
  });
});
