/**
 * Routing's choices over real HTTP servers (node:http on loopback): which node comes first (holds
 * the model, then latency), what a failure and a refusal do to a node (backoff, sitting out), that
 * the registry decides who is a node (a node that leaves is dropped, one that joins is probed),
 * and that `routed` fails over on the node's failures but returns the caller's at once. The
 * registry snapshot is handed in (the chain is the process-level test's: cli/src/gateway.test.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type RegistrySnapshot, VerityError } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { routed } from './actions/routed.js';
import { type ClientBase, createClientBase } from './client.js';
import { createNetwork } from './network.js';

interface FakeNode {
  server: Server;
  url: string;
  address: string;
}

/** A server answering `GET /v1/models` with `models` after `delayMs`, or `status`. */
async function serve(address: string, models: string[], delayMs: number, status = 200): Promise<FakeNode> {
  const server = createServer((_req, res) => {
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: models.map((ref) => ({ id: `cid-${ref}`, ref })) }));
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, address };
}

let fast: FakeNode;
let slow: FakeNode;
let empty: FakeNode;
let broken: FakeNode;

beforeAll(async () => {
  fast = await serve('0x00000000000000000000000000000000000000a1', ['iris@1.0.0'], 0);
  // Slower by far more than a busy machine adds to a loopback answer: the ranking by latency holds.
  slow = await serve('0x00000000000000000000000000000000000000a2', ['iris@1.0.0'], 400);
  empty = await serve('0x00000000000000000000000000000000000000a3', [], 0);
  broken = await serve('0x00000000000000000000000000000000000000a4', ['iris@1.0.0'], 0, 500);
});

afterAll(async () => {
  for (const n of [fast, slow, empty, broken]) await new Promise((r) => n.server.close(r));
});

function snapshotOf(nodes: FakeNode[], extra: { status?: 'registered' | 'unbonding'; stake?: bigint } = {}) {
  return (): Promise<RegistrySnapshot> =>
    Promise.resolve({
      chainId: 31337,
      nodeRegistry: '0x0000000000000000000000000000000000000001',
      block: { number: 1, hash: `0x${'00'.repeat(32)}` },
      minStake: 10n,
      nodes: nodes.map((n) => ({
        address: n.address,
        logKey: 'unused',
        stake: extra.stake ?? 10n,
        status: extra.status ?? 'registered',
        capabilities: 0n,
        endpoint: n.url,
      })),
    });
}

describe('createNetwork', () => {
  it('ranks healthy nodes holding the model first, then by latency; failing ones last', async () => {
    const network = createNetwork(snapshotOf([slow, empty, broken, fast]), fetch, { refreshMs: 60_000 });
    try {
      const order = (await network.candidates('iris@1.0.0')).map((n) => n.address);
      expect(order).toEqual([fast.address, slow.address, empty.address, broken.address]);
      const states = Object.fromEntries(network.nodes().map((n) => [n.address, n.state]));
      expect(states[broken.address]).toBe('down');
      expect(states[fast.address]).toBe('up');
      // A bare name matches the node's `name@version`; another model puts holders and others alike by latency.
      expect((await network.candidates('iris'))[0]?.address).toBe(fast.address);
      expect((await network.candidates('other')).at(-1)?.address).toBe(broken.address);
    } finally {
      network.close();
    }
  });

  it('sends a node that failed behind the others, and one whose answer did not verify further (refused)', async () => {
    const network = createNetwork(snapshotOf([fast, slow, empty]), fetch, { refreshMs: 60_000 });
    try {
      const [first] = await network.candidates('iris@1.0.0');
      network.report(first as NonNullable<typeof first>, { ok: false, error: 'NETWORK_ERROR' });
      expect((await network.candidates('iris@1.0.0'))[0]?.address).toBe(slow.address);
      const second = (await network.candidates('iris@1.0.0'))[0] as NonNullable<typeof first>;
      network.report(second, { ok: false, error: 'RECEIPT_OUTPUT_DIGEST_MISMATCH', refused: true });
      const json = network.nodes();
      expect(json.find((n) => n.address === slow.address)).toMatchObject({ state: 'refused', verificationFailures: 1 });
      expect(json.find((n) => n.address === fast.address)).toMatchObject({ state: 'down', failovers: 1 });
      expect((await network.candidates('iris@1.0.0'))[0]?.address).toBe(empty.address);
    } finally {
      network.close();
    }
  });

  it('routes only to registered nodes staked at least the minimum', async () => {
    for (const extra of [{ status: 'unbonding' as const }, { stake: 9n }]) {
      const network = createNetwork(snapshotOf([fast], extra), fetch);
      try {
        expect(await network.candidates()).toEqual([]);
      } finally {
        network.close();
      }
    }
  });

  it('follows the registry: a node that joins is probed and used, one that leaves is dropped', async () => {
    let nodes = [slow];
    const network = createNetwork(() => snapshotOf(nodes)(), fetch, { refreshMs: 0 });
    try {
      expect((await network.candidates('iris@1.0.0')).map((n) => n.address)).toEqual([slow.address]);
      nodes = [slow, fast];
      // The registry is read in the background; the next reads see the new node once probed.
      const order = async () => (await network.candidates('iris@1.0.0')).map((n) => n.address);
      const joined = await until(async () => {
        const o = await order();
        return o[0] === fast.address ? o : undefined;
      }, 'the joining node to be probed');
      expect(joined).toEqual([fast.address, slow.address]);
      nodes = [fast];
      const left = await until(async () => {
        const o = await order();
        return o.length === 1 ? o : undefined;
      }, 'the leaving node to be dropped');
      expect(left).toEqual([fast.address]);
    } finally {
      network.close();
    }
  });
});

describe('routed', () => {
  function clientOver(nodes: FakeNode[]): ClientBase {
    const base = createClientBase({ url: 'http://unused.invalid' });
    return { ...base, url: '', network: createNetwork(snapshotOf(nodes), fetch, { refreshMs: 60_000 }) };
  }

  it("fails over on the node's failures (unreachable, 5xx, a refused answer) and says why", async () => {
    const client = clientOver([fast, slow, empty]);
    const failures = [
      new VerityError('NETWORK_ERROR', 'cannot reach'),
      new VerityError('RECEIPT_OUTPUT_DIGEST_MISMATCH', 'the record is for another output'),
    ];
    try {
      const { value, route } = await routed(client, { model: 'iris@1.0.0' }, async (node) => {
        const failure = failures.shift();
        if (failure) throw failure;
        return node.url;
      });
      expect(value).toBe(empty.url);
      expect(route.node).toBe(empty.address);
      expect(route.tried).toEqual([
        { node: fast.address, code: 'NETWORK_ERROR' },
        { node: slow.address, code: 'RECEIPT_OUTPUT_DIGEST_MISMATCH' },
      ]);
      expect(route.reason).toMatch(/^failover: .* failed \(RECEIPT_OUTPUT_DIGEST_MISMATCH\)/);
    } finally {
      client.network?.close();
    }
  });

  it("returns the caller's error at once (a 4xx), and NO_NODE_AVAILABLE when every node failed", async () => {
    const client = clientOver([fast, slow]);
    try {
      let calls = 0;
      const caller = routed(client, { model: 'iris@1.0.0' }, async () => {
        calls += 1;
        throw new VerityError('TENSOR_SHAPE_MISMATCH', 'bad input', { details: { status: 400 } });
      });
      await expect(caller).rejects.toMatchObject({ code: 'TENSOR_SHAPE_MISMATCH' });
      expect(calls).toBe(1);
      const none = routed(client, { model: 'iris@1.0.0' }, async () => {
        throw new VerityError('INTERNAL', 'boom', { details: { status: 500 } });
      });
      await expect(none).rejects.toMatchObject({ code: 'NO_NODE_AVAILABLE' });
    } finally {
      client.network?.close();
    }
  });
});
