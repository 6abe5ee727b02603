import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerNode } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import {
  createEd25519Signer,
  createMemoryTree,
  formatAddCheckpoint,
  generateNoteKey,
  hashLeaf,
  signCheckpoint,
} from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_STAKE, startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';

// A node that signs two different heads of one size (test code only: a key and two Merkle trees
// of our own behind a small HTTP server) is registered on a real chain. It shows one head to
// whoever asks it, and got a real witness node to cosign the other. `verity monitor`, run as a
// user runs it, must report the split view with both signed heads.
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

const seed = new Uint8Array(32).fill(0x42);
let chain: TestChain;
let witness: VerityNode;
let server: Server;
let deploymentFile: string;
let origin: string;
let shown: string;
let cosigned: string;
let hidden: string;

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  const dir = await mkdtemp(join(tmpdir(), 'verity-monitor-'));
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, deployment);
  const account = chain.address(1);
  origin = `liar.verity.test/log/${account.toLowerCase()}`;
  const signer = createEd25519Signer(origin, seed);
  const logKey = generateNoteKey(origin, seed).verifierKey;
  const tree = (odd: number) => {
    const t = createMemoryTree();
    for (let i = 0; i < 5; i++) t.append(hashLeaf(new Uint8Array([i === 2 ? odd : i])));
    return t;
  };
  const liarTree = tree(2);
  const other = tree(0xee);
  shown = signCheckpoint({ origin, size: 5, rootHash: liarTree.root(), extensions: [] }, signer);
  hidden = signCheckpoint({ origin, size: 5, rootHash: other.root(), extensions: [] }, signer);
  // The liar's endpoint: it shows `shown` to everyone who asks it.
  server = createServer((req, res) => {
    if (req.url === '/checkpoint') res.writeHead(200, { 'content-type': 'text/plain' }).end(shown);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await registerNode(chain.clients(1), {
    nodeRegistry: deployment.contracts.nodeRegistry,
    logKey: generateNoteKey(origin, seed).publicKey,
    origin,
    endpoint: `http://127.0.0.1:${port}`,
    capabilities: ['mode:signed'],
    stake: MIN_STAKE,
  });
  // A real witness node that witnesses the liar's log; the liar gets `hidden` cosigned there.
  witness = await startNode(
    loadConfig({
      overrides: {
        dataDir: join(dir, 'witness'),
        port: 0,
        logLevel: 'silent',
        fsync: false,
        witness: { logs: [logKey] },
      },
    }),
  );
  const r = await fetch(`${witness.url}/add-checkpoint`, {
    method: 'POST',
    body: formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: hidden }),
  });
  expect(r.status).toBe(200);
  cosigned = `${hidden}${await r.text()}`;
}, 120_000);

afterAll(async () => {
  await witness?.stop();
  await new Promise((resolve) => server?.close(resolve));
  await chain?.stop();
});

describe('verity monitor', () => {
  it('reports the split view of a node that signed two heads of one size, with both signed heads', async () => {
    const run = await verity(
      'monitor',
      '--rpc',
      chain.anvil.rpcUrl,
      '--deployment',
      deploymentFile,
      '--witness',
      witness.url,
      '--once',
    );
    const events = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const split = events.find((e) => e.event === 'split-view');
    expect(run.code, run.stderr).toBe(1);
    expect(split?.evidence.reason).toBe('same-size');
    expect(split?.evidence.origin).toBe(origin);
    expect(split?.node.toLowerCase()).toBe(chain.address(1).toLowerCase());
    // Both heads, as signed notes anyone can check under the registered key: the one the node
    // showed, and the one the witness cosigned (with the witness's cosignature on it).
    expect([split?.evidence.first.note, split?.evidence.second.note].sort()).toEqual([shown, cosigned].sort());
  }, 120_000);

  it('with --state, a later run compares with the heads an earlier run saw (the node changed its head)', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'verity-monitor-state-')), 'state.json');
    const before = await verity(
      'monitor',
      '--rpc',
      chain.anvil.rpcUrl,
      '--deployment',
      deploymentFile,
      '--state',
      file,
      '--once',
    );
    expect(before.code, before.stderr).toBe(0);
    const first = shown;
    shown = hidden; // the node now shows another head of the same size
    const after = await verity(
      'monitor',
      '--rpc',
      chain.anvil.rpcUrl,
      '--deployment',
      deploymentFile,
      '--state',
      file,
      '--once',
    );
    expect(after.code, after.stderr).toBe(1);
    const split = after.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'split-view');
    expect([split?.evidence.first.note, split?.evidence.second.note].sort()).toEqual([first, hidden].sort());
    // Reported once: a third run with the same state says nothing new.
    const again = await verity(
      'monitor',
      '--rpc',
      chain.anvil.rpcUrl,
      '--deployment',
      deploymentFile,
      '--state',
      file,
      '--once',
    );
    expect([again.code, again.stdout]).toEqual([0, '']);
  }, 120_000);

  it('reports no split view once the node shows the head the witness cosigned', async () => {
    shown = hidden; // the node now shows the head the witness cosigned
    const run = await verity(
      'monitor',
      '--rpc',
      chain.anvil.rpcUrl,
      '--deployment',
      deploymentFile,
      '--witness',
      witness.url,
      '--once',
    );
    expect(run.code, run.stderr).toBe(0);
    const events = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // One head (the witness's is the same one, so it is not new), no error, no split view.
    expect(events.map((e) => [e.event, e.source.split(' ')[0]])).toEqual([['head', 'node']]);
  }, 120_000);
});
