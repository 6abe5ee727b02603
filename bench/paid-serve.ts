/**
 * Paid vs free answers on one node (issue 15): latency and throughput of `POST /v1/infer` for the
 * same ONNX model pushed twice, once free and once priced (x402 `exact`), on a real anvil.
 *
 *   npm run bench:paid      (or: npx tsc -b bench && node bench/dist/paid-serve.js)
 *
 * A paid request costs what the node does beyond a free one: decode and check the payment (an
 * EIP-712 digest and an ecrecover), two chain reads (nonce state, balance), the journal line
 * (fdatasync), and the settlement transaction, mined before the answer leaves (anvil automines:
 * on a real chain add the block time). Settlements go through the node's one transaction queue;
 * those that arrive while one is in flight go together in the next transaction
 * (`MeteredSettlement.settleMany`, group commit), so concurrent paid requests share transactions.
 * The run prints paid/free throughput, the same paid run with settlements one per transaction
 * (as before group commit), and gas per settlement as the node batched them under load against one
 * per transaction (the sequential run), from the settlements' own receipts. Payments
 * are signed before the timed runs (a client's signing cost is printed on its own).
 */

import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  deployContracts,
  deployPaymentContracts,
  getTokenDomain,
  mintTestTokens,
  randomBytes32,
  signTransferAuthorization,
  tokenBalance,
} from '@verity/contracts';
import { startAnvil, writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, openKeystore, startNode } from '@verity/node';
import { decodePaymentHeader, encodePaymentHeader, PAYMENT_HEADERS, parseSettleResponse } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { type Address, createPublicClient, createWalletClient, type Hex, http, parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const IRIS = new Uint8Array(readFileSync(fileURLToPath(new URL('../../examples/models/iris.onnx', import.meta.url))));
const PRICE = 1000n;
const SEQUENTIAL = Number(process.env.BENCH_N ?? 200);
const CONCURRENCY = 8;
const SECONDS = 5;
const BODY = (model: string) => JSON.stringify({ model, input: { x: [[5.1, 3.5, 1.4, 0.2]] } });

const anvil = await startAnvil();
const transport = http(anvil.rpcUrl);
const publicClient = createPublicClient({ chain: anvil.chain, transport, pollingInterval: 20 });
const deployer = privateKeyToAccount(anvil.privateKeys[0] as Hex);
const payer = privateKeyToAccount(anvil.privateKeys[1] as Hex);
const clients = {
  publicClient,
  walletClient: createWalletClient({ account: deployer, chain: anvil.chain, transport }),
};
const dir = await mkdtemp(join(tmpdir(), 'verity-bench-paid-'));
const d = await deployContracts(clients as never, {
  minStake: parseEther('1'),
  unbondingDelay: 3600,
  slasher: deployer.address,
});
const pay = await deployPaymentContracts(clients as never);
await mintTestTokens(clients as never, pay.token, payer.address, 10n ** 12n);
const deploymentFile = join(dir, 'deployment.json');
await writeDeploymentFile(deploymentFile, { ...d, payments: pay });
const dataDir = join(dir, 'node');
await mkdir(dataDir, { recursive: true, mode: 0o700 });
const { address } = openKeystore(dataDir);
await clients.walletClient.sendTransaction({ to: address as Address, value: parseEther('10') });
// For the comparison row only (bench code, through startNode's test hook): settlements handed to
// the node's settler one at a time, each mined before the next starts, as before group commit.
let oneAtATime = false;
let previous: Promise<unknown> = Promise.resolve();
const node = await startNode(
  loadConfig({
    overrides: {
      dataDir,
      port: 0,
      logLevel: 'silent',
      chain: { rpcUrl: anvil.rpcUrl, deploymentFile, anchorIntervalMs: 0 },
      payments: { prices: { 'iris-paid@1.0.0': { request: PRICE.toString() } } },
    },
  }),
  {
    paymentSettler: (settler) => ({
      ...settler,
      settle(payment, amount) {
        if (!oneAtATime) return settler.settle(payment, amount);
        const next = previous.then(() => settler.settle(payment, amount));
        previous = next.catch(() => undefined);
        return next;
      },
    }),
  },
);
const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
await admin.pushModel({ name: 'iris', version: '1.0.0', data: IRIS });
await admin.pushModel({ name: 'iris-paid', version: '1.0.0', data: IRIS });
const domain = await getTokenDomain(publicClient, pay.token);

async function sign(): Promise<string> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const auth = {
    from: payer.address,
    to: node.context.keys.address as Address,
    value: PRICE,
    validAfter: now - 600n,
    validBefore: now + 3600n,
    nonce: randomBytes32(),
  };
  const signature = await signTransferAuthorization(payer, domain, auth, 'transfer');
  return encodePaymentHeader({
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: `eip155:${domain.chainId}`,
      asset: pay.token,
      amount: PRICE.toString(),
      payTo: node.context.keys.address,
      maxTimeoutSeconds: 300,
      extra: { name: domain.name, version: domain.version },
    },
    payload: {
      signature,
      authorization: {
        ...auth,
        value: auth.value.toString(),
        validAfter: auth.validAfter.toString(),
        validBefore: auth.validBefore.toString(),
      },
    },
  });
}

/** The settlement transactions of paid answers (`PAYMENT-RESPONSE`), one entry per answer. */
const settlements: string[] = [];

async function call(model: string, header?: string, retried = false): Promise<void> {
  let r: Response;
  try {
    r = await fetch(`${node.url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(header ? { [PAYMENT_HEADERS.signature]: header } : {}) },
      body: BODY(model),
    });
  } catch (e) {
    // A kept-alive connection the node closed after a pause (5 s): once more on a new one (a
    // paid retry is idempotent: the same payment gets the same answer).
    if (retried) throw e;
    return call(model, header, true);
  }
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${model}: status ${r.status}`);
  const response = r.headers.get(PAYMENT_HEADERS.response);
  if (response !== null) settlements.push(parseSettleResponse(decodePaymentHeader(response)).transaction);
}

/** Gas per settlement and settlements per transaction over the answers `from`..`to` of `settlements`. */
async function gasOf(from: number, to = settlements.length): Promise<{ perSettlement: number; perTx: number }> {
  const txs = new Map<string, number>();
  for (const t of settlements.slice(from, to)) txs.set(t, (txs.get(t) ?? 0) + 1);
  let gas = 0n;
  for (const hash of txs.keys()) gas += (await publicClient.getTransactionReceipt({ hash: hash as Hex })).gasUsed;
  const n = to - from;
  return { perSettlement: Number(gas) / n, perTx: n / txs.size };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

// Warm-up: models loaded, connections open, the first settlement's cold storage written.
for (let i = 0; i < 20; i++) await call('iris@1.0.0');
for (let i = 0; i < 5; i++) await call('iris-paid@1.0.0', await sign());

const signStart = performance.now();
const headers: string[] = [];
for (let i = 0; i < SEQUENTIAL; i++) headers.push(await sign());
const signMs = (performance.now() - signStart) / SEQUENTIAL;

async function sequential(model: string, paid: boolean): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const header = paid ? headers[i] : undefined;
    const t = performance.now();
    await call(model, header);
    out.push(performance.now() - t);
  }
  return out;
}
// Payments for the throughput run, signed before any timing.
const poolHeaders = await Promise.all(Array.from({ length: 2500 }, () => sign()));
const free = await sequential('iris@1.0.0', false);
const sequentialFrom = settlements.length;
const paid = await sequential('iris-paid@1.0.0', true);
const single = await gasOf(sequentialFrom);

async function throughput(model: string, paid: boolean): Promise<number> {
  const pool = paid ? poolHeaders : [];
  // After a pause the kept-alive connections are gone: one call opens them again.
  await call(model, paid ? pool.pop() : undefined);
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await call(model, paid ? pool.pop() : undefined);
        done++;
      }
    }),
  );
  return done / SECONDS;
}
const freeRps = await throughput('iris@1.0.0', false);
const concurrentFrom = settlements.length + 1; // after the call that opens the connections
const paidRps = await throughput('iris-paid@1.0.0', true);
const batched = await gasOf(concurrentFrom);
oneAtATime = true;
const unbatchedRps = await throughput('iris-paid@1.0.0', true);
oneAtATime = false;

const row = (name: string, xs: number[], rps: number) =>
  `| ${name} | ${pct(xs, 50).toFixed(2)} | ${pct(xs, 90).toFixed(2)} | ${pct(xs, 99).toFixed(2)} | ${rps.toFixed(0)} |`;
console.log(
  `\nPOST /v1/infer, iris, ${SEQUENTIAL} sequential requests; throughput ${CONCURRENCY} concurrent, ${SECONDS} s`,
);
console.log('| answer | p50 ms | p90 ms | p99 ms | requests/s |');
console.log('|---|---:|---:|---:|---:|');
console.log(row('free', free, freeRps));
console.log(row('paid (x402 exact, settled before the answer)', paid, paidRps));
console.log(`| paid, settlements one per transaction (before group commit) | | | | ${unbatchedRps.toFixed(0)} |`);
console.log(
  `\npaid / free throughput: ${(paidRps / freeRps).toFixed(2)}× (one settlement per transaction: ${(unbatchedRps / freeRps).toFixed(2)}×); group commit / one per transaction: ${(paidRps / unbatchedRps).toFixed(2)}×`,
);
console.log('| settlements | per transaction (mean) | gas per settlement | vs one per transaction |');
console.log('|---|---:|---:|---:|');
console.log(
  `| sequential (one per transaction) | ${single.perTx.toFixed(1)} | ${single.perSettlement.toFixed(0)} | 1.00× |`,
);
console.log(
  `| ${CONCURRENCY} concurrent (group commit) | ${batched.perTx.toFixed(1)} | ${batched.perSettlement.toFixed(0)} | ${(batched.perSettlement / single.perSettlement).toFixed(2)}× |`,
);
console.log(`\nsigning a payment (client side, viem): ${signMs.toFixed(2)} ms`);
console.log(
  `node balance: ${await tokenBalance(publicClient, pay.token, node.context.keys.address as Address)} atomic units`,
);

await node.stop();
await anvil.stop();
await rm(dir, { recursive: true, force: true });
