/**
 * A paid quorum through the SDK (docs/protocol.md §17.5; issue 15): a real anvil with
 * TestStablecoin and three real registered, priced nodes over HTTP. The client pays the
 * coordinator's 402 (the quorum price) in its chain's token; the answer is returned only when the
 * coordinator's record commits to that payment and the token shows it used (settled), and
 * `verify(client, bundle)` with the chain finds every receipt's payment settled, the members'
 * (paid by the coordinator) included.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Deployment, mintTestTokens, type PaymentContracts, tokenBalance } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import type { VerityNode } from '@verity/node';
import { type Address, type Hex, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { startChainNode } from '../../node/src/test-support/chain-node.js';
import { createClient } from './index.js';

const IRIS = new Uint8Array(
  readFileSync(fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url))),
);
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };
const PRICES = [1000n, 200n, 300n]; // coordinator, then the two members
const TOTAL = PRICES.reduce((a, b) => a + b, 0n);
const PAYER = 1;

let chain: TestChain;
let work: string;
let pay: PaymentContracts;
let deployment: Deployment;
const nodes: VerityNode[] = [];

const balance = (owner: string) => tokenBalance(chain.publicClient, pay.token, owner as Address);
const balances = () =>
  Promise.all([chain.address(PAYER), ...nodes.map((n) => n.context.keys.address)].map((a) => balance(a)));

beforeAll(async () => {
  chain = await startTestChain();
  const d = await chain.deploy();
  pay = await chain.deployPayments({ [PAYER]: 10_000_000n });
  deployment = { ...d, payments: pay };
  work = await mkdtemp(join(tmpdir(), 'verity-sdk-payquorum-'));
  const deploymentFile = join(work, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  for (let i = 0; i < 3; i++) {
    nodes.push(
      await startChainNode(chain, {
        dataDir: join(work, `node-${i}`),
        deploymentFile,
        overrides: {
          chain: { stakeWei: parseEther('2').toString() },
          peers: { localNetwork: true },
          payments: { prices: { 'iris@1.0.0': { request: (PRICES[i] as bigint).toString() } } },
        },
      }),
    );
  }
  const first = nodes[0] as VerityNode;
  await createClient({ url: first.url, apiKey: first.context.keys.apiKey }).pushModel({
    name: 'iris',
    version: '1.0.0',
    data: IRIS,
  });
  // The coordinator pays its members before the caller's payment settles: it holds a float.
  await mintTestTokens(chain.clients(0), pay.token, first.context.keys.address as Address, 100_000n);
}, 180_000);

afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await chain?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a paid quorum through the SDK', () => {
  it('pays the quorum price in the chain’s token; the coordinator’s record commits to it, settled; the bundle verifies with every payment settled', async () => {
    const verity = createClient({
      url: (nodes[0] as VerityNode).url,
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment },
      payment: { account: chain.anvil.privateKeys[PAYER] as Hex, budget: 10_000n, maxPrice: TOTAL },
    });
    const before = await balances();
    const result = await verity.infer({ model: 'iris@1.0.0', input: INPUT, mode: 'quorum', k: 3 });
    expect(result.payment).toMatchObject({ scheme: 'exact', amount: TOTAL.toString(), asset: pay.token });
    expect(verity.base.payer?.spent()).toBe(TOTAL);
    const [p0, c0, m10, m20] = before as [bigint, bigint, bigint, bigint];
    expect(await balances()).toEqual([
      p0 - TOTAL,
      c0 + (PRICES[0] as bigint),
      m10 + (PRICES[1] as bigint),
      m20 + (PRICES[2] as bigint),
    ]);
    // Every receipt carries a payment (the caller's to the coordinator, the coordinator's to each member).
    const bundle = result.bundle();
    expect(bundle.receipts.every((r) => r.payment !== undefined)).toBe(true);
    const verified = await verity.verify(bundle);
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
  });
});
