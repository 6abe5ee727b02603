/**
 * Mode quorum for a priced model (issue 15 item 4, docs/api.md "Payments"): a real anvil with
 * TestStablecoin and three real registered nodes over HTTP, each with its own price. The caller
 * pays the coordinator the quorum price (its own price plus each member's); the coordinator pays
 * each member its price from its own account; every receipt of the bundle commits to the payment
 * its node got and verifies. A member that refuses its payment answers nothing and is not paid.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  getTokenDomain,
  mintTestTokens,
  type PaymentContracts,
  randomBytes32,
  signTransferAuthorization,
  type TokenDomain,
  tokenBalance,
} from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import {
  BUNDLE_MEDIA_TYPE,
  decodePaymentHeader,
  encodePaymentHeader,
  PAYMENT_HEADERS,
  type PaymentPayload,
  type PaymentRequirements,
  parsePaymentRequired,
  type Receipt,
  type ReceiptPayment,
  verifyBundle,
} from '@verity/protocol';
import { createClient, registrySnapshot } from '@verity/sdk';
import { type Address, type Hex, parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import type { VerityNode } from '../node.js';
import { startChainNode } from '../test-support/chain-node.js';
import { paymentError, type VerifiedPayment } from './index.js';

const IRIS = new Uint8Array(
  readFileSync(fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url))),
);
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };
const PRICES = [1000n, 200n, 300n]; // coordinator, then the two members
const PAYER = 1;
const K = 3;

let chain: TestChain;
let work: string;
let pay: PaymentContracts;
let domain: TokenDomain;
let chainId: number;
let registry: { rpcUrl: string; nodeRegistry: `0x${string}` };
const nodes: VerityNode[] = [];

const payer = () => privateKeyToAccount(chain.anvil.privateKeys[PAYER] as Hex);
const balance = (owner: string) => tokenBalance(chain.publicClient, pay.token, owner as Address);
const balances = () => Promise.all([payer().address, ...nodes.map((n) => n.context.keys.address)].map(balance));
const head = async () => Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));

beforeAll(async () => {
  chain = await startTestChain();
  const d = await chain.deploy();
  chainId = d.chainId;
  pay = await chain.deployPayments({ [PAYER]: 10_000_000n });
  work = await mkdtemp(join(tmpdir(), 'verity-payquorum-'));
  const deploymentFile = join(work, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...d, rpcUrl: chain.anvil.rpcUrl, payments: pay });
  registry = { rpcUrl: chain.anvil.rpcUrl, nodeRegistry: d.contracts.nodeRegistry };
  for (let i = 0; i < 3; i++) {
    const node = await startChainNode(chain, {
      dataDir: join(work, `node-${i}`),
      deploymentFile,
      overrides: {
        chain: { stakeWei: parseEther('2').toString() },
        peers: { localNetwork: true },
        payments: { prices: { 'iris@1.0.0': { request: (PRICES[i] as bigint).toString() } } },
      },
    });
    nodes.push(node);
  }
  // Published on the coordinator; the members fetch it from their peers when first asked.
  const first = nodes[0] as VerityNode;
  await createClient({ url: first.url, apiKey: first.context.keys.apiKey }).pushModel({
    name: 'iris',
    version: '1.0.0',
    data: IRIS,
  });
  // The coordinator pays its members before the caller's payment settles: it holds a float.
  await mintTestTokens(chain.clients(0), pay.token, (nodes[0] as VerityNode).context.keys.address as Address, 100_000n);
  domain = await getTokenDomain(chain.publicClient, pay.token);
}, 180_000);

afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await chain?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function quorumCall(body: Record<string, unknown>, header?: string) {
  const r = await fetch(`${(nodes[0] as VerityNode).url}/v1/infer`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(header === undefined ? {} : { [PAYMENT_HEADERS.signature]: header }),
    },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return {
    status: r.status,
    headers: r.headers,
    text,
    body: JSON.parse(text) as Record<string, unknown> & { error?: { code: string } },
  };
}

async function payment(req: PaymentRequirements): Promise<string> {
  const signer = payer();
  const now = BigInt(Math.floor(Date.now() / 1000));
  const auth = {
    from: signer.address,
    to: req.payTo as Address,
    value: BigInt(req.amount),
    validAfter: now - 600n,
    validBefore: now + BigInt(req.maxTimeoutSeconds),
    nonce: randomBytes32(),
  };
  const signature = await signTransferAuthorization(signer, domain, auth, 'transfer');
  const payload = {
    x402Version: 2,
    accepted: req,
    payload: {
      signature,
      authorization: {
        ...auth,
        value: auth.value.toString(),
        validAfter: auth.validAfter.toString(),
        validBefore: auth.validBefore.toString(),
      },
    },
  } as PaymentPayload;
  return encodePaymentHeader(payload);
}

describe('mode quorum for a priced model', () => {
  it('the caller pays the quorum price; each member is paid its price by the coordinator; the bundle verifies', async () => {
    const block = await head();
    const body = { model: 'iris@1.0.0', input: INPUT, mode: 'quorum', k: K, clientNonce: 'ab'.repeat(16), block };
    const unpaid = await quorumCall(body);
    expect([unpaid.status, unpaid.body.error?.code]).toEqual([402, 'PAYMENT_REQUIRED']);
    const req = parsePaymentRequired(decodePaymentHeader(unpaid.headers.get(PAYMENT_HEADERS.required) as string))
      .accepts[0] as PaymentRequirements;
    const total = PRICES.reduce((a, b) => a + b, 0n);
    expect(req.amount).toBe(total.toString());
    const before = await balances();
    const r = await quorumCall(body, await payment(req));
    expect(r.status, r.text).toBe(200);
    const after = await balances();
    const [p0, c0, m10, m20] = before as [bigint, bigint, bigint, bigint];
    // Payer −1500; coordinator +1500 −200 −300 = +1000; members +200 and +300.
    expect(after).toEqual([
      p0 - total,
      c0 + (PRICES[0] as bigint),
      m10 + (PRICES[1] as bigint),
      m20 + (PRICES[2] as bigint),
    ]);
    const receipts = r.body.receipts as Receipt[];
    expect(receipts).toHaveLength(K);
    const byNode = new Map(receipts.map((x) => [x.record.node.toLowerCase(), x]));
    nodes.forEach((n, i) => {
      const receipt = byNode.get(n.context.keys.address.toLowerCase()) as Receipt;
      // The coordinator's record commits to the caller's payment (the total); each member's to its price.
      expect(receipt.record.payment?.amount).toBe(i === 0 ? total.toString() : (PRICES[i] as bigint).toString());
      expect(receipt.payment?.authorization.to.toLowerCase()).toBe(n.context.keys.address.toLowerCase());
    });
    const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts, quorum: r.body.quorum };
    const policy = { payment: { network: `eip155:${chainId}`, asset: pay.token } };
    const verified = verifyBundle(
      bundle,
      { nodes: [], registry: await registrySnapshot(registry, BigInt(block)) },
      policy,
    );
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
  });

  it('a member that refuses its payment is not paid; no quorum, the caller is not charged', async () => {
    // Fault injection: member 2 quotes its price in its 402 but refuses every payment it is sent.
    const member = nodes[2] as VerityNode;
    const service = member.context.payments as NonNullable<VerityNode['context']['payments']>;
    const check = service.check.bind(service);
    (service as { check: typeof check }).check = async (header, reqs, url, key) => {
      if (header !== undefined && reqs !== undefined) {
        throw paymentError('PAYMENT_UNDERPAID', 'refused (test)', service.required(reqs, url));
      }
      return check(header, reqs, url, key);
    };
    try {
      const block = await head();
      const body = { model: 'iris@1.0.0', input: INPUT, mode: 'quorum', k: K, clientNonce: 'cd'.repeat(16), block };
      const unpaid = await quorumCall(body);
      const req = parsePaymentRequired(decodePaymentHeader(unpaid.headers.get(PAYMENT_HEADERS.required) as string))
        .accepts[0] as PaymentRequirements;
      const before = await balances();
      const r = await quorumCall(body, await payment(req));
      expect([r.status, r.body.error?.code]).toEqual([503, 'QUORUM_UNAVAILABLE']);
      const [p0, c0, m10, m20] = before as [bigint, bigint, bigint, bigint];
      // Member 1 answered and was paid its price; member 2 refused and got nothing; the caller
      // got no answer and paid nothing.
      expect(await balances()).toEqual([p0, c0 - (PRICES[1] as bigint), m10 + (PRICES[1] as bigint), m20]);
    } finally {
      (service as { check: typeof check }).check = check;
    }
  });
  it('a member whose receipt commits to an older payment than the one just sent it is skipped; the caller is not charged', async () => {
    const member = nodes[2] as VerityNode;
    const address = member.context.keys.address;
    const call = async (nonce: string) => {
      const block = await head();
      const body = { model: 'iris@1.0.0', input: INPUT, mode: 'quorum', k: K, clientNonce: nonce.repeat(16), block };
      const unpaid = await quorumCall(body);
      const req = parsePaymentRequired(decodePaymentHeader(unpaid.headers.get(PAYMENT_HEADERS.required) as string))
        .accepts[0] as PaymentRequirements;
      return quorumCall(body, await payment(req));
    };
    // A paid quorum as it should be: member 2's receipt commits to the payment it got then.
    const first = await call('e1');
    expect(first.status, first.text).toBe(200);
    const oldReceipt = (first.body.receipts as Receipt[]).find(
      (x) => x.record.node.toLowerCase() === address.toLowerCase(),
    ) as Receipt;
    const old = oldReceipt.record.payment as NonNullable<Receipt['record']['payment']>;
    expect(oldReceipt.payment).toBeDefined();
    // Fault injection: member 2 takes (and settles) the next payment, but its record and its
    // receipt commit to that older, settled one of this coordinator's.
    const service = member.context.payments as NonNullable<VerityNode['context']['payments']>;
    const { check, settle, commitment } = service;
    const real = new Map<string, VerifiedPayment>();
    const patched = service as {
      check: typeof check;
      settle: typeof settle;
      commitment: typeof commitment;
    };
    patched.check = async (...args) => {
      const c = await check.apply(service, args);
      if (c.kind !== 'paid') return c;
      real.set(c.payment.id, c.payment);
      return { kind: 'paid', payment: { ...c.payment, receipt: oldReceipt.payment as ReceiptPayment } };
    };
    patched.commitment = () => old;
    patched.settle = (p, amount, answer) => settle.call(service, real.get(p.id) ?? p, amount, answer);
    try {
      const before = await balances();
      const r = await call('e2');
      expect([r.status, r.body.error?.code]).toEqual([503, 'QUORUM_UNAVAILABLE']);
      const asked = (r.body.error as { details?: { asked?: { address: string; code?: string }[] } }).details?.asked;
      expect(asked?.find((a) => a.address.toLowerCase() === address.toLowerCase())?.code).toBe(
        'RECEIPT_PAYMENT_MISMATCH',
      );
      const [p0, c0, m10, m20] = before as [bigint, bigint, bigint, bigint];
      // The coordinator paid both members (its loss to a member that cheats); the caller paid nothing.
      const members = (PRICES[1] as bigint) + (PRICES[2] as bigint);
      expect(await balances()).toEqual([p0, c0 - members, m10 + (PRICES[1] as bigint), m20 + (PRICES[2] as bigint)]);
    } finally {
      Object.assign(patched, { check, settle, commitment });
    }
  });
  it('a node outside the first k ranked nodes refuses a paid quorum before anything is paid (its record could not commit to the payment)', async () => {
    const coordinator = (nodes[0] as VerityNode).context.keys.address.toLowerCase();
    const block = await head();
    const before = await balances();
    // The ranking follows the caller's nonce: with k = 2 of 3 nodes, some nonces rank the coordinator third.
    let refused: Awaited<ReturnType<typeof quorumCall>> | undefined;
    for (let i = 0; i < 40 && refused === undefined; i++) {
      const body = {
        model: 'iris@1.0.0',
        input: INPUT,
        mode: 'quorum',
        k: 2,
        clientNonce: i.toString(16).padStart(32, '0'),
        block,
      };
      const r = await quorumCall(body);
      if (r.status === 409) refused = r;
      else {
        expect([r.status, r.body.error?.code]).toEqual([402, 'PAYMENT_REQUIRED']);
      }
    }
    expect(refused, 'no nonce of 40 ranked the coordinator outside the first 2').toBeDefined();
    const r = refused as NonNullable<typeof refused>;
    expect(r.body.error?.code).toBe('QUORUM_PAID_COORDINATOR');
    const ranked = (r.body.error as { details?: { ranked?: string[] } }).details?.ranked ?? [];
    expect(ranked).toHaveLength(2);
    expect(ranked.map((a) => a.toLowerCase())).not.toContain(coordinator);
    expect(await balances()).toEqual(before);
  });
});
