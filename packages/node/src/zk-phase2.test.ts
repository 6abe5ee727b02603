/**
 * Push-time phase 2 (issue 11.1): a node on a chain with other registered nodes does not make a
 * zk model's keys alone. Real anvil, three real nodes over HTTP: A pushes iris with zk over a
 * phase-1 file; the ceremony is opened on chain, A and the nodes drawn from the block hash (B, C)
 * contribute, each recording its hash with its own account, and it is finished with the beacon
 * from a later block hash. The manifest says multi-party and names the ceremony; A proves with the
 * final key; B, a replica, checks the transcript against the chain before it proves. A node
 * refuses to contribute to a ceremony that is closed, does not list it, or whose head is not the
 * zkey it is sent.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCeremony, readCeremony } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { zkFacts, zkVkDigest } from '@verity/protocol';
import { contributeZkey, contributionName, newZkey, releaseCurves, zkeyTranscript } from '@verity/zk';
import type { Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import type { VerityNode } from './node.js';
import { IRIS, PHASE1_PTAU as PTAU, pushZk, startPhase2Nodes } from './test-support/zk-network.js';

const SAMPLE = { x: [[5.1, 3.5, 1.4, 0.2]] };
const dirs: string[] = [];
let chain: TestChain;
let deploymentFile: string;
let ceremony: Address;
let nodes: VerityNode[] = [];
let cid: string;
let manifest: never;
// anvil mines a block per transaction only: the beacon block (one after the close) needs another.
let miner: ReturnType<typeof setInterval> | undefined;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-zk-phase2-'));
  dirs.push(dir);
  return dir;
}

async function inferZk(n: VerityNode) {
  const res = await fetch(`${n.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: cid, input: SAMPLE, mode: 'zk' }),
  });
  return { status: res.status, body: (await res.json()) as { zk?: { vk: unknown; setup: string } } };
}

async function contribute(n: VerityNode, id: string, zkey: Uint8Array) {
  const res = await fetch(`${n.url}/v1/zk/ceremonies/${id}/contribute`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from(zkey),
  });
  return { status: res.status, body: res.ok ? undefined : ((await res.json()) as { error: { code: string } }) };
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  ceremony = deployment.contracts.ceremony as Address;
  deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  nodes = await startPhase2Nodes(chain, { deploymentFile, tempDir, count: 3 });
  miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 500);
  ({ id: cid, manifest } = await pushZk(nodes[0] as VerityNode));
}, 600_000);

afterAll(async () => {
  if (miner) clearInterval(miner);
  await Promise.all(nodes.map((n) => n.stop()));
  await chain?.stop();
  await releaseCurves();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  nodes = [];
});

describe('push-time phase 2', () => {
  it('the keys come from a ceremony on chain: the publisher and the drawn nodes contributed, each from its own account, then the beacon', async () => {
    const facts = zkFacts(manifest);
    expect(facts.setup).toBe('multi-party');
    expect(facts.phase1.kind).toBe('file');
    expect(facts.phase2).toMatchObject({ chainId: 31337, address: ceremony });
    const record = await readCeremony(chain.publicClient, ceremony, facts.phase2?.id as Hex);
    const accounts = nodes.map((n) => n.context.keys.address.toLowerCase());
    const contributors = record.contributions.map((c) => c.contributor.toLowerCase());
    expect(contributors[0]).toBe(accounts[0]); // the publisher first
    expect(new Set(contributors.slice(1))).toEqual(new Set(accounts.slice(1)));
    expect(record.beacon).toMatch(/^0x[0-9a-f]{64}$/);
    expect(record.finalHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(record.subject).toBe(`0x${facts.r1cs}`);
  });

  it('the publisher proves with the final key; a replica checks the transcript on chain and proves too', async () => {
    const vk = zkFacts(manifest).vk;
    const fromA = await inferZk(nodes[0] as VerityNode);
    expect(fromA.status, JSON.stringify(fromA.body)).toBe(200);
    expect(zkVkDigest(fromA.body.zk?.vk)).toBe(vk);
    expect(fromA.body.zk?.setup).toBe('multi-party');
    const fromB = await inferZk(nodes[1] as VerityNode);
    expect(fromB.status, JSON.stringify(fromB.body)).toBe(200);
    expect(zkVkDigest(fromB.body.zk?.vk)).toBe(vk);
  }, 600_000);

  it('a node refuses to contribute to a finished ceremony, an unknown one, one that does not list it, or from a zkey that is not the head', async () => {
    const b = nodes[1] as VerityNode;
    const c = nodes[2] as VerityNode;
    const facts = zkFacts(manifest);
    const final = new Uint8Array(await (await fetch(`${nodes[0]?.url}/v1/zk/${cid}/zkey`)).arrayBuffer());
    expect((await contribute(b, facts.phase2?.id as string, final)).body?.error.code).toBe('ZK_CONTRIBUTION_REFUSED');
    const unknown = await contribute(b, `0x${randomBytes(32).toString('hex')}`, final);
    expect(unknown.status).toBe(403);
    expect(unknown.body?.error.code).toBe('ZK_CONTRIBUTION_REFUSED');
    // A fresh ceremony listing only B, opened by a test account.
    const { compileCircom, compileModel } = await import('@verity/zk');
    const circuit = await compileCircom(
      compileModel(new Uint8Array(readFileSync(IRIS)), { params: facts.params }).circom,
    );
    const initial = await newZkey(circuit.r1cs, new Uint8Array(readFileSync(PTAU)));
    const id = `0x${randomBytes(32).toString('hex')}` as Hex;
    await openCeremony(chain.clients(5), {
      ceremony,
      id,
      kind: 2,
      subject: `0x${facts.r1cs}`,
      initialHash: (await zkeyTranscript(initial)).initialHash as Hex,
      contributors: [b.context.keys.address as Address],
    });
    // C is not listed.
    expect((await contribute(c, id, initial)).body?.error.code).toBe('ZK_CONTRIBUTION_REFUSED');
    // A zkey with a contribution the chain never recorded is not the head.
    const ahead = await contributeZkey(initial, { name: contributionName(c.context.keys.address, 'x') });
    expect((await contribute(b, id, ahead.file)).body?.error.code).toBe('ZK_CONTRIBUTION_REFUSED');
    // The head itself: B contributes and records its hash with its own account.
    const ok = await contribute(b, id, initial);
    expect(ok.status).toBe(200);
    const record = await readCeremony(chain.publicClient, ceremony, id);
    expect(record.contributions.map((x) => x.contributor.toLowerCase())).toEqual([
      b.context.keys.address.toLowerCase(),
    ]);
    // Once only.
    expect((await contribute(b, id, initial)).body?.error.code).toBe('ZK_CONTRIBUTION_REFUSED');
  }, 600_000);
});
