/**
 * `verity up --nodes 3 --phase1-power 10`: the network's phase 1 is a ceremony among its three
 * nodes on its local chain (each records its contribution from its own account, then a beacon
 * from a later block hash), and a zk push makes its keys in a multi-party phase 2 among the
 * nodes over it: the manifest names both ceremonies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openKeystore } from '@verity/node';
import { zkFacts } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild } from '../../../test-support/wait.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));

let up: ChildProcess;
let info: { url: string; peers: { address: string }[]; address: string };
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-up-zk-'));
  up = spawn(
    process.execPath,
    [BIN, 'up', '--nodes', '3', '--phase1-power', '10', '--data-dir', dataDir, '--port', '0', '--json'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  info = await firstJsonLine(up, 'verity up');
}, 600_000);

afterAll(async () => {
  if (up) await stopChild(up);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 120_000);

describe('verity up with a phase-1 ceremony among its nodes', () => {
  it('a zk push names the phase-1 ceremony and makes its keys in a phase 2 among the nodes', async () => {
    const res = await fetch(`${info.url}/v1/models?name=iris-zk&zk=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${openKeystore(dataDir).apiKey}` },
      body: readFileSync(IRIS),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const facts = zkFacts(((await res.json()) as { manifest: never }).manifest);
    expect(facts.phase1.kind).toBe('ceremony');
    expect(facts.setup).toBe('multi-party');
    expect(facts.phase2?.address).toBe(facts.phase1.kind === 'ceremony' ? facts.phase1.address : undefined);
  }, 600_000);
});
