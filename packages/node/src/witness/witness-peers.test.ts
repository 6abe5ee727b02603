import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDeploymentFile } from '@verity/contracts/node';
import { verifyReceipt } from '@verity/protocol';
import { createClient, createMonitorState, monitorRound } from '@verity/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import { startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { makeRecord, NODE } from '../log/test-support/log-fixtures.js';
import type { VerityNode } from '../node.js';
import { startChainNode } from '../test-support/chain-node.js';

// Two registered nodes on a real chain with `witness.peers` (as `verity up` runs them): each
// witnesses the other's log, found in the registry alone, and submits its own checkpoints to the
// other. A monitor then sees each node's head, the head its witness cosigned and its anchor agree.
let chain: TestChain;
let a: VerityNode;
let b: VerityNode;
let deploymentFile: string;

beforeAll(async () => {
  chain = await startTestChain();
  const dir = await mkdtemp(join(tmpdir(), 'verity-witness-peers-'));
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, await chain.deploy());
  const overrides = { peers: { localNetwork: true }, witness: { peers: true, intervalMs: 50 } };
  a = await startChainNode(chain, { dataDir: join(dir, 'a'), deploymentFile, overrides });
  b = await startChainNode(chain, { dataDir: join(dir, 'b'), deploymentFile, overrides });
}, 120_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await chain?.stop();
});

describe('registered nodes witness each other', () => {
  it("a node's receipt carries the cosignature of the other registered node, and a monitor sees one history", async () => {
    for (let i = 0; i < 3; i++) await a.context.log.append(makeRecord(i, 'peer'));
    const witnessKey = async (n: VerityNode) =>
      ((await (await fetch(`${n.url}/v1/witness`)).json()) as { verifierKey: string }).verifierKey;
    const bKey = await witnessKey(b);
    const aKey = await witnessKey(a); // a's own witness key: a never cosigns its own log
    await until(async () => {
      const r = await fetch(`${a.url}/v1/log/witnessed`);
      return r.status === 200 && (await r.text()).includes('\n3\n') ? true : undefined;
    }, 'a cosigned checkpoint of size 3');
    const receipt = await (await fetch(`${a.url}/v1/receipts/peer-1`)).json();
    const trust = {
      nodes: [{ address: NODE, logKey: a.context.keys.logKey }],
      witnesses: { keys: [bKey], threshold: 1 },
    };
    const result = verifyReceipt(receipt, trust);
    expect(result.ok ? result.receipts[0]?.cosignatures?.length : result.code).toBe(1);
    // The same through the SDK: the client's trust, and a witness policy on top.
    const client = createClient({ url: a.url, trust: { nodes: trust.nodes } });
    const fetched = await client.getReceipt('peer-1');
    const viaSdk = await client.verify(fetched, { witnesses: trust.witnesses });
    expect(viaSdk.ok ? viaSdk.receipts[0]?.cosignatures?.[0]?.keyId : viaSdk.code).toBeTypeOf('number');
    const strict = await client.verify(fetched, { witnesses: { keys: [bKey, aKey], threshold: 2 } });
    expect(strict.ok ? 'ok' : strict.code).toBe('WITNESS_QUORUM_UNMET');

    await a.context.chain?.anchorNow();
    const deployment = JSON.parse(await readFile(deploymentFile, 'utf8'));
    const events = await monitorRound({ chain: { rpcUrl: chain.anvil.rpcUrl, deployment } }, createMonitorState());
    expect(events.filter((e) => e.event === 'split-view' || e.event === 'error')).toEqual([]);
    const aHeads = events.filter(
      (e) => e.event === 'head' && e.node.toLowerCase() === a.context.keys.address.toLowerCase(),
    );
    // The node's own head; the witness's and the anchor's are the same head, so not new.
    expect(aHeads.map((e) => (e.event === 'head' ? e.size : -1))).toEqual([3]);
  }, 120_000);
});
