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
 * - Batching: N `transferWithAuthorization` calls in one transaction through a minimal call
 *   batcher (compiled here with solc-js; bench code, not a Verity contract), against the same N
 *   as N transactions. `MeteredSettlement.settle` binds the payee by msg.sender, so a generic
 *   batcher cannot carry it; a `settle` over many authorizations inside MeteredSettlement would
 *   save the same per-transaction costs (21,000 base gas and the token's cold account access).
 *
 * Steady state, as on a node that has been paid before: every payer is a different account with a
 * non-zero balance before and after (its balance slot is cold and stays non-zero), the node's
 * balance is already non-zero, and every nonce is fresh (a cold zero slot written once). The first
 * payment a node ever receives also writes its balance slot from zero (+17,100 gas; printed).
 * Gas is deterministic for a compiler and input; each row is one transaction's `gasUsed` (batch
 * rows: divided by N).
 */
import { createRequire } from 'node:module';
import {
  type ChainClients,
  deployPaymentContracts,
  getTokenDomain,
  meteredNonce,
  mintTestTokens,
  randomBytes32,
  settleExact,
  settleMetered,
  signTransferAuthorization,
  type TokenDomain,
  type TransferAuthorization,
  testStablecoinAbi,
} from '@verity/contracts';
import { startAnvil } from '@verity/contracts/node';
import {
  type Abi,
  type Address,
  createPublicClient,
  createWalletClient,
  encodeFunctionData,
  getAddress,
  type Hex,
  http,
  keccak256,
  type LocalAccount,
  parseSignature,
  type TransactionReceipt,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const BATCH_SIZES = [1, 2, 5, 10, 20, 50];
const PRICE = 10_000n; // 0.01 vUSD
const MAX = 50_000n;

const BATCHER_SOURCE = `// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
contract CallBatcher {
    function batch(address target, bytes[] calldata calls) external {
        for (uint256 i; i < calls.length; ++i) {
            (bool ok, bytes memory answer) = target.call(calls[i]);
            if (!ok) assembly { revert(add(answer, 32), mload(answer)) }
        }
    }
}`;

/** The batcher, compiled with the settings of packages/contracts/scripts/compile.mjs. */
function compileBatcher(): { abi: Abi; bytecode: Hex } {
  const solc = createRequire(import.meta.url)('solc') as { compile(input: string): string };
  const output = JSON.parse(
    solc.compile(
      JSON.stringify({
        language: 'Solidity',
        sources: { 'CallBatcher.sol': { content: BATCHER_SOURCE } },
        settings: {
          optimizer: { enabled: true, runs: 200 },
          evmVersion: 'shanghai',
          outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
        },
      }),
    ),
  );
  const c = output.contracts?.['CallBatcher.sol']?.CallBatcher;
  if (c === undefined) throw new Error(`solc: ${JSON.stringify(output.errors)}`);
  return { abi: c.abi as Abi, bytecode: `0x${c.evm.bytecode.object}` };
}

const anvil = await startAnvil();
/** What a settlement costs: gas used, and calldata bytes (what an L2 posts to L1). */
interface Cost {
  readonly gas: bigint;
  readonly bytes: number;
}
const rows: [string, Cost, string][] = [];
const batchRows: [number, Cost][] = [];
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
  for (const [what, amount] of [
    ['metered (charge part, refund the rest)', 12_345n],
    ['metered, amount = max (nothing to refund)', MAX],
    ['metered, amount = 0 (all refunded)', 0n],
  ] as const) {
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
    const signature = await signTransferAuthorization(payer, domain, auth, 'receive');
    const receipt = await settleMetered(node, meteredSettlement, token, auth, salt, signature, amount);
    rows.push([what, await cost(receipt), 'MeteredSettlement.settle']);
  }

  // Batches: N authorizations from N different payers, one transaction from the node.
  const batcher = compileBatcher();
  const deployHash = await node.walletClient.deployContract({ ...batcher, account: nodeAccount, chain });
  const batcherAddress = getAddress(
    (await publicClient.waitForTransactionReceipt({ hash: deployHash })).contractAddress as Address,
  );
  for (const n of BATCH_SIZES) {
    const calls: Hex[] = [];
    for (let i = 0; i < n; i++) {
      const { auth, signature } = await exactAuth(await freshPayer());
      const { r, s, v } = parseSignature(signature);
      calls.push(
        encodeFunctionData({
          abi: testStablecoinAbi,
          functionName: 'transferWithAuthorization',
          args: [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, Number(v), r, s],
        }),
      );
    }
    const hash = await node.walletClient.writeContract({
      address: batcherAddress,
      abi: batcher.abi,
      functionName: 'batch',
      args: [token, calls],
      account: nodeAccount,
      chain,
    });
    batchRows.push([n, await cost(await publicClient.waitForTransactionReceipt({ hash }), n)]);
  }
} finally {
  await anvil.stop();
}

const fmt = (n: number | bigint) => n.toLocaleString('en-US');
const single = rows.find(([what]) => what === 'exact')?.[1];
if (single === undefined) throw new Error('no exact row');
console.log(`Verity payments bench — node ${process.version}, anvil (automine), ${new Date().toISOString()}`);
console.log('| settlement | gas used | calldata bytes | |');
console.log('|---|---:|---:|---|');
for (const [what, c, note] of rows) console.log(`| ${what} | ${fmt(c.gas)} | ${c.bytes} | ${note} |`);
console.log(
  '\n| exact settlements per transaction (batched) | gas per settlement | vs one per transaction | calldata bytes per settlement |',
);
console.log('|---:|---:|---:|---:|');
for (const [n, c] of batchRows) {
  const ratio = Number(c.gas) / Number(single.gas);
  console.log(`| ${n} | ${fmt(c.gas)} | ${ratio.toFixed(2)}× | ${c.bytes} |`);
}
