/**
 * Offline registry trust: what checking a bundle's `registryProof` costs (docs/protocol.md §13),
 * on the proof a real anvil printed (packages/protocol/fixtures/registry-proof/anvil.json: three
 * nodes, 32 storage proofs, 8 of them long-string data words).
 *
 *   npx tsc -b bench && node bench/dist/registry-proof.js
 *
 * One row, as a ratio against a baseline in the same run: registry proof → snapshot (parse,
 * header hash, account proof, every storage proof: `registrySnapshotFromProof`), against
 * Keccak-256 of every trie node once (the floor: no proof check can hash less). A verifier does
 * this once per pinned block; receipts are then verified against the snapshot (bench/protocol.ts).
 */
import { readFileSync } from 'node:fs';
import {
  fromHex,
  keccak256,
  type PinnedBlock,
  type RegistryDeployment,
  type RegistryProofEvidence,
  registrySnapshotFromProof,
} from '@verity/protocol';
import { opsPerSecondAsync } from './measure.js';

const fixture = JSON.parse(
  readFileSync(new URL('../../packages/protocol/fixtures/registry-proof/anvil.json', import.meta.url), 'utf8'),
) as {
  pinned: PinnedBlock;
  deployment: { chainId: number; nodeRegistry: string; minStake: string };
  registryProof: RegistryProofEvidence;
};
const deployment: RegistryDeployment = { ...fixture.deployment, minStake: BigInt(fixture.deployment.minStake) };
const evidence = fixture.registryProof;
const nodes = [evidence.header, ...evidence.accountProof, ...evidence.storageProof.flatMap((s) => s.proof)].map((n) =>
  fromHex(n),
);
const bytes = nodes.reduce((a, n) => a + n.length, 0);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const snapshot = await registrySnapshotFromProof(evidence, fixture.pinned, deployment);
if (snapshot.nodes.length !== 3) throw new Error('bench fixture did not verify');
// Three seconds each: the first calls run before the JIT has warmed up (2× slower).
const proofRate = await opsPerSecondAsync(() => registrySnapshotFromProof(evidence, fixture.pinned, deployment), 3);
const floorRate = await opsPerSecondAsync(async () => {
  for (const n of nodes) keccak256(n);
}, 3);

console.log(`Verity registry proof bench — node ${process.version}, ${new Date().toISOString()}`);
console.log(
  `fixture: ${snapshot.nodes.length} nodes, ${evidence.storageProof.length} storage proofs, ${nodes.length} trie nodes + header, ${fmt(bytes)} bytes, bundle member ${fmt(JSON.stringify(evidence).length)} characters of JSON`,
);
console.log('| operation | ops/s | ms each | baseline | baseline ops/s | ratio |');
console.log('|---|---:|---:|---|---:|---:|');
console.log(
  `| registry proof → snapshot | ${fmt(proofRate)} | ${(1000 / proofRate).toFixed(2)} | Keccak-256 of every node once | ${fmt(floorRate)} | ${(proofRate / floorRate).toFixed(2)}× |`,
);
