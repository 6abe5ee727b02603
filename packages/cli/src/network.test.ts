import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, openKeystore, type VerityNode } from '@verity/node';
import { createClient } from '@verity/sdk';
import { createTestClient, http, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild, until } from '../../../test-support/wait.js';
import { startLyingNode } from '../../node/src/test-support/lying-node.js';

// `verity up --nodes 3` as a user runs it: anvil, the contracts, three node processes that
// register on chain; then quorum answers, a lying node, and a node killed under load.
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS_SAMPLE = { x: [[5.1, 3.5, 1.4, 0.2]] };

interface UpInfo {
  url: string;
  address: string;
  peers: { url: string; address: string; pid: number }[];
  chain: { rpcUrl: string; deploymentFile: string };
}

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

let up: ChildProcess;
let info: UpInfo;
let dataDir: string;
let chain: { rpcUrl: string; deployment: unknown };
let liar: VerityNode | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-net-'));
  up = spawn(process.execPath, [BIN, 'up', '--nodes', '3', '--data-dir', dataDir, '--port', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  info = await firstJsonLine<UpInfo>(up, 'verity up');
  chain = { rpcUrl: info.chain.rpcUrl, deployment: JSON.parse(await readFile(info.chain.deploymentFile, 'utf8')) };
}, 120_000);
afterAll(async () => {
  await liar?.stop();
  if (up) await stopChild(up);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 120_000);

describe('verity up --nodes 3', () => {
  it('answers in quorum mode with k = 3 through the CLI and the SDK; the bundle verifies offline', async () => {
    expect(info.peers).toHaveLength(2);
    const bundlePath = join(dataDir, 'quorum.json');
    const run = await verity(
      'infer',
      'iris@1.0.0',
      '--url',
      info.url,
      '--mode',
      'quorum',
      '--k',
      '3',
      '--input',
      JSON.stringify(IRIS_SAMPLE),
      '--out',
      bundlePath,
      '--data-dir',
      dataDir,
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    const bundle = JSON.parse(readFileSync(bundlePath, 'utf8')) as {
      receipts: { record: { node: string; mode: string } }[];
    };
    const nodes = new Set(bundle.receipts.map((r) => r.record.node.toLowerCase()));
    expect(nodes).toEqual(new Set([info.address, ...info.peers.map((p) => p.address)].map((a) => a.toLowerCase())));
    expect(bundle.receipts.every((r) => r.record.mode === 'quorum')).toBe(true);
    // Against the registry of the chain `verity up` runs (found in its data dir): no insecure flag.
    const offline = await verity('verify', bundlePath, '--data-dir', dataDir, '--json');
    expect(offline.code, offline.stdout).toBe(0);
    // The selection was recomputed from the registry; trusting the bundle's own keys cannot do that, and says so.
    expect(JSON.parse(offline.stdout).quorum).toEqual({ selection: 'checked', dissent: [] });
    const bundleKeys = await verity('verify', bundlePath, '--insecure-trust-bundle-nodes', '--data-dir', dataDir);
    expect(bundleKeys.code, bundleKeys.stdout).toBe(0);
    expect(bundleKeys.stdout).toContain('quorum selection not checked');

    // The SDK checks the three receipts against the registry read from the chain itself.
    const client = createClient({ url: info.peers[0]?.url as string, chain });
    const result = await client.infer({ model: 'iris@1.0.0', input: IRIS_SAMPLE, mode: 'quorum', k: 3 });
    expect(result.receipts).toHaveLength(3);
  }, 120_000);

  it('never accepts the answers of a node that lies; it is outvoted, its receipt kept as evidence', async () => {
    const dir = join(dataDir, 'liar');
    mkdirSync(dir, { recursive: true });
    // Its account needs ether to stake: `verity up` funds the nodes it starts; this one is ours.
    const { address } = openKeystore(dir);
    await createTestClient({ transport: http(info.chain.rpcUrl), mode: 'anvil' }).setBalance({
      address: address as `0x${string}`,
      value: parseEther('10'),
    });
    // The real node, made to lie by test code (a wrapped runtime), in this process.
    liar = await startLyingNode(
      loadConfig({
        overrides: {
          dataDir: dir,
          port: 0,
          logLevel: 'warn',
          chain: { rpcUrl: info.chain.rpcUrl, deploymentFile: info.chain.deploymentFile },
          peers: { localNetwork: true },
        },
      }),
    );
    const liarAddress = liar.context.keys.address.toLowerCase();
    const client = createClient({ url: info.url, chain });
    let outvoted = 0;
    for (let i = 0; i < 12; i++) {
      const r = await client.infer({ model: 'iris@1.0.0', input: IRIS_SAMPLE, mode: 'quorum', k: 3 });
      // The k agreeing receipts never include the liar; when it was asked, its receipt is dissent.
      expect(r.receipts.map((x) => x.record.node.toLowerCase())).not.toContain(liarAddress);
      if (r.dissent?.some((x) => x.record.node.toLowerCase() === liarAddress)) outvoted++;
    }
    expect(outvoted).toBeGreaterThan(0);
    await liar.stop();
    liar = undefined;
  }, 120_000);

  it('loses no request when one of three nodes is killed under load (SDK failover, quorum failover)', async () => {
    const victim = info.peers[1] as { url: string; address: string; pid: number };
    // Signed answers from whichever node is up, verified with the registry's keys.
    const client = createClient({ url: victim.url, fallbackUrls: [info.url, info.peers[0]?.url as string], chain });
    const coordinator = createClient({ url: info.url, chain });
    const failures: unknown[] = [];
    let served = 0;
    const one = async (i: number) => {
      try {
        const r =
          i % 2 === 0
            ? await client.infer({ model: 'iris@1.0.0', input: IRIS_SAMPLE })
            : await coordinator.infer({ model: 'iris@1.0.0', input: IRIS_SAMPLE, mode: 'quorum', k: 2 });
        expect(r.receipts.length).toBeGreaterThan(0);
        served++;
      } catch (e) {
        failures.push(e);
      }
    };
    const load = (async () => {
      for (let i = 0; i < 40; i++) await Promise.all([one(2 * i), one(2 * i + 1)]);
    })();
    // Killed mid-load: once some answers are in, whatever the machine's pace.
    await until(async () => (served + failures.length >= 10 ? true : undefined), 'the first answers');
    process.kill(victim.pid, 'SIGKILL');
    await load;
    expect(failures).toEqual([]);
    expect(served).toBe(80);
    // The victim is really gone.
    await expect(fetch(`${victim.url}/healthz`)).rejects.toThrow();
  }, 120_000);

  it('stops on SIGTERM in reverse order: its nodes, then its chain; exit 0, nothing left running', async () => {
    await liar?.stop();
    liar = undefined;
    const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
    up.kill('SIGTERM');
    expect(await exited).toBe(0);
    // No orphan: every peer process and the chain (anvil) are gone with it.
    for (const p of info.peers) expect(() => process.kill(p.pid, 0)).toThrow();
    await expect(
      fetch(info.chain.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}',
      }),
    ).rejects.toThrow();
  }, 120_000);
});
