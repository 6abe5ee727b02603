/**
 * Gas per log anchor as the log grows (`LogAnchor.anchor` checks an RFC 9162 consistency proof
 * from the node's previous anchor on chain: docs/protocol.md, "Anchors"), on a real anvil.
 *
 *   npm run bench:anchor      (or: npx tsc -b bench && node bench/dist/anchor.js)
 *
 * A consistency proof between sizes m < n has at most ⌈log2 n⌉ + 1 hashes, so the cost is set by
 * the log's size, not by how far apart the anchors are. Logs of 1k, 1M and 1G entries are too big
 * to build here, but a proof only needs the hashes of a few complete subtrees: in a log whose
 * entries are all the same record, every complete subtree of one level has the same hash, so a
 * reader answers `subtree(level, index)` from a table of 64 hashes. The proofs, the roots and the
 * transactions are real (the contract verifies them; a refused one would revert), and what the
 * EVM pays does not depend on the hash values (SHA-256 precompile by length; calldata: the hashes
 * have no zero bytes to speak of either way).
 *
 * Per log size three anchors, each the second anchor of a fresh node (the first, with an empty
 * proof, is not counted): the previous anchor 37 entries back (a small batch), half the log back,
 * and the previous size whose proof is longest among 20,000 sampled. Printed: proof length, gas
 * used, calldata bytes, and a least-squares line gas = a + b·hashes over all rows.
 */

import { anchorCheckpoint, type ChainClients, deployContracts, registerNode } from '@verity/contracts';
import { startAnvil } from '@verity/contracts/node';
import {
  consistencyProofFromReader,
  hashChildren,
  hashLeaf,
  type MerkleHashReader,
  rootFromReader,
} from '@verity/protocol';
import { createPublicClient, createWalletClient, http, parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

/** A log of `2^63` identical entries, read lazily: level L's subtrees all hash to `levels[L]`. */
function uniformLog(): MerkleHashReader {
  const levels = [hashLeaf(new TextEncoder().encode('the same record'))];
  for (let l = 1; l < 64; l++) levels.push(hashChildren(levels[l - 1] as Uint8Array, levels[l - 1] as Uint8Array));
  return { subtree: (level) => levels[level] as Uint8Array };
}

/** Deterministic previous size in [1, n) with the longest proof to n, among `samples` tried. */
function longestProofFrom(log: MerkleHashReader, n: number, samples: number): number {
  let best = 1;
  let bestLength = -1;
  let x = 0x9e3779b9;
  for (let i = 0; i < samples; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const m = 1 + Math.floor((x / 2 ** 32) * (n - 1));
    const length = consistencyProofFromReader(log, m, n).length;
    if (length > bestLength) [best, bestLength] = [m, length];
  }
  return best;
}

const log = uniformLog();
const SIZES: [string, number][] = [
  ['1k', 1_000],
  ['1M', 1_000_000],
  ['1G', 1_000_000_000],
];
const cases = SIZES.flatMap(([label, n]) =>
  [n - 37, Math.floor(n / 2) + 1, longestProofFrom(log, n, 20_000)].map((m, i) => ({
    label,
    n,
    m,
    what: ['37 back', 'half the log back', 'longest proof'][i] as string,
  })),
);

const anvil = await startAnvil();
const rows: { label: string; what: string; m: number; n: number; hashes: number; gas: bigint; calldata: number }[] = [];
try {
  const chain = anvil.chain;
  const transport = http(anvil.rpcUrl);
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const clients = (i: number): ChainClients => ({
    publicClient,
    walletClient: createWalletClient({
      account: privateKeyToAccount(anvil.privateKeys[i] as `0x${string}`),
      chain,
      transport,
    }),
  });
  // Accounts 1–8 are nodes; a fresh deployment whenever they are used up.
  let deployment = await deployContracts(clients(0), {
    minStake: parseEther('1'),
    unbondingDelay: 3600,
    slasher: privateKeyToAccount(anvil.privateKeys[9] as `0x${string}`).address,
  });
  let next = 1;
  for (const c of cases) {
    if (next > 8) {
      deployment = await deployContracts(clients(0), deployment.params);
      next = 1;
    }
    const node = clients(next++);
    await registerNode(node, {
      nodeRegistry: deployment.contracts.nodeRegistry,
      logKey: hashLeaf(new Uint8Array([next])),
      origin: `bench.verity/node-${next}`,
      endpoint: 'http://127.0.0.1:1',
      capabilities: ['mode:signed'],
      stake: parseEther('1'),
    });
    const { logAnchor } = deployment.contracts;
    await anchorCheckpoint(node, { logAnchor, treeSize: c.m, rootHash: rootFromReader(log, c.m), consistency: [] });
    const consistency = consistencyProofFromReader(log, c.m, c.n);
    const receipt = await anchorCheckpoint(node, {
      logAnchor,
      treeSize: c.n,
      rootHash: rootFromReader(log, c.n),
      consistency,
    });
    const tx = await publicClient.getTransaction({ hash: receipt.transactionHash });
    rows.push({ ...c, hashes: consistency.length, gas: receipt.gasUsed, calldata: (tx.input.length - 2) / 2 });
  }
} finally {
  await anvil.stop();
}

// Least squares over all rows: gas = a + b·hashes.
const xs = rows.map((r) => r.hashes);
const ys = rows.map((r) => Number(r.gas));
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const [mx, my] = [mean(xs), mean(ys)];
const b =
  xs.reduce((s, x, i) => s + (x - mx) * ((ys[i] as number) - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
const a = my - b * mx;
const fmt = (n: number | bigint) => n.toLocaleString('en-US');

console.log(`Verity anchor gas bench — node ${process.version}, anvil, ${new Date().toISOString()}`);
console.log('| log size n | previous anchor m | proof hashes | gas used | calldata bytes |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.label} (${fmt(r.n)}) | ${r.what} (${fmt(r.m)}) | ${r.hashes} | ${fmt(r.gas)} | ${fmt(r.calldata)} |`,
  );
}
console.log(
  `fit: gas ≈ ${fmt(Math.round(a))} + ${fmt(Math.round(b))} per proof hash; at most ⌈log2 n⌉ + 1 hashes (n = 2^40: 41 hashes ≈ ${fmt(Math.round(a + 41 * b))} gas)`,
);
