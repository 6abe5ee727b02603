import { createMemoryTree, hashLeaf } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorCheckpoint } from './log-anchor.js';
import { publishModel } from './model-registry.js';
import { registerNode, updateNode } from './node-registry.js';
import { fill32, MIN_STAKE, startTestChain, type TestChain } from './test-support/chain.js';

let chain: TestChain;
beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(() => chain.stop());

// Gas is deterministic for a given compiler and input, so ceilings catch a contract change that
// makes what every node does often (anchor) or once (register, publish) much dearer. The
// measured values are printed; a ceiling sits ~20% above them.
describe('gas', () => {
  it('stays within budget for register, update, anchor and publish', async () => {
    const d = await chain.deploy();
    const c = chain.clients(1);
    const used: Record<string, bigint> = {};
    used.register = (
      await registerNode(c, {
        nodeRegistry: d.contracts.nodeRegistry,
        logKey: fill32(1),
        origin: 'verity.test/node-1',
        endpoint: 'http://127.0.0.1:8001',
        capabilities: ['mode:signed', 'runtime:onnx-native'],
        stake: MIN_STAKE,
      })
    ).gasUsed;
    used.update = (
      await updateNode(c, {
        nodeRegistry: d.contracts.nodeRegistry,
        endpoint: 'http://127.0.0.1:9001',
        capabilities: [],
      })
    ).gasUsed;
    // A real log: the second anchor carries the consistency proof 1 → 1000 (10 hashes).
    const log = createMemoryTree(Array.from({ length: 1000 }, (_, i) => hashLeaf(new Uint8Array([i >> 8, i & 0xff]))));
    const logAnchor = d.contracts.logAnchor;
    used.anchorFirst = (
      await anchorCheckpoint(c, { logAnchor, treeSize: 1, rootHash: log.root(1), consistency: [] })
    ).gasUsed;
    const consistency = log.consistencyProof(1, 1000);
    used.anchorNext = (
      await anchorCheckpoint(c, { logAnchor, treeSize: 1000, rootHash: log.root(), consistency })
    ).gasUsed;
    const cid = 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea';
    const publish = (version: string) =>
      publishModel(c, { modelRegistry: d.contracts.modelRegistry, name: 'iris', version, manifestCid: cid });
    used.publishFirst = (await publish('1.0.0')).gasUsed;
    used.publishNext = (await publish('1.1.0')).gasUsed;
    console.log('gas used:', Object.fromEntries(Object.entries(used).map(([k, v]) => [k, Number(v)])));
    const ceilings: Record<string, bigint> = {
      register: 250_000n,
      update: 45_000n,
      anchorFirst: 120_000n,
      anchorNext: 95_000n,
      publishFirst: 230_000n,
      publishNext: 185_000n,
    };
    for (const [k, ceiling] of Object.entries(ceilings)) expect(used[k], k).toBeLessThan(ceiling);
  });
});
