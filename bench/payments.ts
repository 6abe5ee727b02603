/**
 * Gas per settlement of a paid answer (issue 15) on a real anvil, and whether batching settlements
 * pays off.
 *
 *   npm run bench:payments      (or: npx tsc -b bench && node bench/dist/payments.js)
 *
 * - `exact`: the node submits the payer's EIP-3009 TransferWithAuthorization (`settleExact`), in
 *   the (v, r, s) form that @x402/evm's facilitator uses for a 65-byte signature, and in the
 *   `bytes signature` form. A plain ERC-20 `transfer` by the payer is the baseline: what moving
 *   the money costs without an authorization.
 * - `metered`: `MeteredSettlement.settle` (`settleMetered`): pull the maximum, pay the amount,
 *   refund the rest; also with nothing to refund (amount = max) and nothing charged (amount = 0).
 * - Batching: N settlements in one transaction through `MeteredSettlement.settleMany` (what a node
 *   sends for the settlements that arrived while its previous one was being mined), `exact` and
 *   `metered` alike, against one per transaction; each item in its own try/catch, so one refused
 *   item does not undo the others.
 *
 * Steady state, as on a node that has been paid before: every payer is a different account with a
 * non-zero balance before and after (its balance slot is cold and stays non-zero), the node's
 * balance is already non-zero, and every nonce is fresh (a cold zero slot written once). The first
 * payment a node ever receives also writes its balance slot from zero (+17,100 gas; printed).
 * Gas is deterministic for a compiler and input; each row is one transaction's `gasUsed` (batch
 * rows: divided by N).
 */
import {
  type ChainClients,
  deployPaymentContracts,
  getTokenDomain,
  meteredNonce,
  mintTestTokens,
  randomBytes32,
  type SettlementItem,
  settleExact,
  settleMany,
  settleMetered,
  signTransferAuthorization,
  type TokenDomain,
  type TransferAuthorization,
  testStablecoinAbi,
} from '@verity/contracts';
import { startAnvil } from '@verity/contracts/node';
import {
  type Address,
  createPublicClient,
  createWalletClient,
  type Hex,
  http,
  keccak256,
  type LocalAccount,
  type TransactionReceipt,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const BATCH_SIZES = [1, 2, 5, 10, 20, 50];
const PRICE = 10_000n; // 0.01 vUSD
const MAX = 50_000n;

const anvil = await startAnvil();
/** What a settlement costs: gas used, and calldata bytes (what an L2 posts to L1). */
interface Cost {
  readonly gas: bigint;
  readonly bytes: number;
}
const rows: [string, Cost, string][] = [];
const batchRows: [number, Cost, Cost][] = [];
try {
  const transport = http(anvil.rpcUrl);
  const chain = anvil.chain;
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const key = (i: number) => anvil.privateKeys[i] as Hex;
  const clientsOf = (account: LocalAccount): ChainClients => ({
    publicClient,
    walletClient: createWalletClient({ account, chain, transport }),
  });
  const deployer = clientsOf(privateKeyToAccount(key(0)));
  const cost = async (receipt: TransactionReceipt, n = 1): Promise<Cost> => {
    if (receipt.status !== 'success') throw new Error('a settlement reverted');
    const tx = await publicClient.getTransaction({ hash: receipt.transactionHash });
    return { gas: receipt.gasUsed / BigInt(n), bytes: Math.round((tx.input.length - 2) / 2 / n) };
  };
  const nodeAccount = privateKeyToAccount(key(2));
  const node = clientsOf(nodeAccount);
  const { token, meteredSettlement } = await deployPaymentContracts(deployer);
  const domain: TokenDomain = await getTokenDomain(publicClient, token);

  // Payers sign offline and never send a transaction: fresh keys, funded by minting.
  let payerIndex = 0;
  const freshPayer = async (): Promise<LocalAccount> => {
    const payer = privateKeyToAccount(keccak256(toHex(`verity bench payer ${payerIndex++}`)));
    await mintTestTokens(deployer, token, payer.address, 1_000_000_000n);
    return payer;
  };
  const exactAuth = async (payer: LocalAccount, to: Address = nodeAccount.address) => {
    const auth: TransferAuthorization = {
      from: payer.address,
      to,
      value: PRICE,
      validAfter: 0n,
      validBefore: BigInt(Math.floor(Date.now() / 1000) + 3600),
      nonce: randomBytes32(),
    };
    return { auth, signature: await signTransferAuthorization(payer, domain, auth, 'transfer') };
  };

  // The first payment a node ever receives (its balance slot written from zero).
  {
    const first = await exactAuth(await freshPayer());
    rows.push([
      'exact, first payment to the node',
      await cost(await settleExact(node, token, first.auth, first.signature)),
      'transferWithAuthorization (v, r, s); node balance 0 → non-zero',
    ]);
  }
  {
    const { auth, signature } = await exactAuth(await freshPayer());
    rows.push([
      'exact',
      await cost(await settleExact(node, token, auth, signature)),
      'transferWithAuthorization (v, r, s), as @x402/evm sends it',
    ]);
  }
  {
    const { auth, signature } = await exactAuth(await freshPayer());
    const hash = await node.walletClient.writeContract({
      address: token,
      abi: testStablecoinAbi,
      functionName: 'transferWithAuthorization',
      args: [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, signature],
      account: nodeAccount,
      chain,
    });
    rows.push([
      'exact, bytes signature',
      await cost(await publicClient.waitForTransactionReceipt({ hash })),
      'transferWithAuthorization (bytes)',
    ]);
  }
  {
    // The payer pays its own gas here: give it ETH first (not counted).
    const payer = await freshPayer();
    const fund = await deployer.walletClient.sendTransaction({
      to: payer.address,
      value: 10n ** 17n,
      account: deployer.walletClient.account,
      chain,
    });
    await publicClient.waitForTransactionReceipt({ hash: fund });
    const hash = await createWalletClient({ account: payer, chain, transport }).writeContract({
      address: token,
      abi: testStablecoinAbi,
      functionName: 'transfer',
      args: [nodeAccount.address, PRICE],
      account: payer,
      chain,
    });
    rows.push([
      'baseline: plain ERC-20 transfer',
      await cost(await publicClient.waitForTransactionReceipt({ hash })),
      'sent by the payer itself: no authorization',
    ]);
  }
  /** A metered authorization of MAX from a fresh payer to the node, charging `amount`. */
  const meteredItem = async (amount: bigint): Promise<Extract<SettlementItem, { scheme: 'metered' }>> => {
    const payer = await freshPayer();
    const salt = randomBytes32();
    const auth: TransferAuthorization = {
      from: payer.address,
      to: meteredSettlement,
      value: MAX,
      validAfter: 0n,
      validBefore: BigInt(Math.floor(Date.now() / 1000) + 3600),
      nonce: meteredNonce(nodeAccount.address, salt),
    };
    return {
      scheme: 'metered',
      auth,
      salt,
      signature: await signTransferAuthorization(payer, domain, auth, 'receive'),
      amount,
    };
  };
  for (const [what, amount] of [
    ['metered (charge part, refund the rest)', 12_345n],
    ['metered, amount = max (nothing to refund)', MAX],
    ['metered, amount = 0 (all refunded)', 0n],
  ] as const) {
    const m = await meteredItem(amount);
    const receipt = await settleMetered(node, meteredSettlement, token, m.auth, m.salt, m.signature, amount);
    rows.push([what, await cost(receipt), 'MeteredSettlement.settle']);
  }

  // Batches: N exact and N metered authorizations from different payers, one transaction each.
  for (const n of BATCH_SIZES) {
    const exact: SettlementItem[] = [];
    const metered: SettlementItem[] = [];
    for (let i = 0; i < n; i++) {
      exact.push({ scheme: 'exact', ...(await exactAuth(await freshPayer())) });
      metered.push(await meteredItem(12_345n));
    }
    const e = await settleMany(node, meteredSettlement, token, exact);
    const m = await settleMany(node, meteredSettlement, token, metered);
    if ([...e.failures, ...m.failures].some((f) => f !== undefined)) throw new Error('a batch item failed');
    batchRows.push([n, await cost(e.receipt, n), await cost(m.receipt, n)]);
  }
} finally {
  await anvil.stop();
}

const fmt = (n: number | bigint) => n.toLocaleString('en-US');
const single = rows.find(([what]) => what === 'exact')?.[1];
const singleMetered = rows.find(([what]) => what === 'metered (charge part, refund the rest)')?.[1];
if (single === undefined || singleMetered === undefined) throw new Error('no single rows');
console.log(`Verity payments bench — node ${process.version}, anvil (automine), ${new Date().toISOString()}`);
console.log('| settlement | gas used | calldata bytes | |');
console.log('|---|---:|---:|---|');
for (const [what, c, note] of rows) console.log(`| ${what} | ${fmt(c.gas)} | ${c.bytes} | ${note} |`);
console.log(
  '\n| settlements per transaction (settleMany) | exact: gas per settlement | vs one per transaction | metered: gas per settlement | vs one per transaction | calldata bytes per settlement (exact / metered) |',
);
console.log('|---:|---:|---:|---:|---:|---:|');
for (const [n, e, m] of batchRows) {
  const ratio = (c: Cost, one: Cost) => (Number(c.gas) / Number(one.gas)).toFixed(2);
  console.log(
    `| ${n} | ${fmt(e.gas)} | ${ratio(e, single)}× | ${fmt(m.gas)} | ${ratio(m, singleMetered)}× | ${e.bytes} / ${m.bytes} |`,
  );
}
