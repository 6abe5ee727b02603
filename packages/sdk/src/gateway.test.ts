/**
 * The gateway's web adapter (`fetch`: `Request` → `Response`) in process, over a network of one
 * real node:http server that lists a model (the registry snapshot handed in, as in
 * network.test.ts): the routes that need no chain, and the errors a caller's mistakes get, each
 * with its code. Inference through it on a real network: packages/cli/src/gateway.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RegistrySnapshot } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientBase } from './client.js';
import { createGateway } from './gateway.js';
import { createNetwork } from './network.js';

let server: Server;
let url: string;
const address = '0x00000000000000000000000000000000000000c1';

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ id: 'cid-iris', ref: 'iris@1.0.0', price: { request: '7' } }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

function gatewayOver() {
  const snapshot = (): Promise<RegistrySnapshot> =>
    Promise.resolve({
      chainId: 31337,
      nodeRegistry: '0x0000000000000000000000000000000000000001',
      block: { number: 1, hash: `0x${'00'.repeat(32)}` },
      minStake: 10n,
      nodes: [{ address, logKey: 'unused', stake: 10n, status: 'registered', capabilities: 0n, endpoint: url }],
    });
  const network = createNetwork(snapshot, fetch, { refreshMs: 60_000 });
  const client = { ...createClientBase({ url: 'http://unused.invalid' }), url: '', network };
  return { gateway: createGateway(client), network };
}

describe('the gateway over fetch', () => {
  it('lists the nodes (with the prices they list), their models, health and metrics', async () => {
    const { gateway, network } = gatewayOver();
    try {
      const models = await gateway.fetch(new Request('http://gw/v1/models'));
      expect(((await models.json()) as { data: { ref: string }[] }).data.map((m) => m.ref)).toEqual(['iris@1.0.0']);
      const nodes = (await (await gateway.fetch(new Request('http://gw/v1/network?x=1'))).json()) as {
        nodes: { address: string; state: string; prices: Record<string, unknown> }[];
      };
      expect(nodes.nodes).toMatchObject([{ address, state: 'up', prices: { 'iris@1.0.0': { request: '7' } } }]);
      expect(await (await gateway.fetch(new Request('http://gw/healthz'))).json()).toEqual({
        status: 'ok',
        nodes: 1,
        up: 1,
      });
      const metrics = await gateway.fetch(new Request('http://gw/metrics'));
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await metrics.text()).toContain(`verity_gateway_node_up{node="${address}",url="${url}"} 1`);
    } finally {
      network.close();
    }
  });

  it("answers a caller's mistakes with their codes, counted as errors", async () => {
    const { gateway, network } = gatewayOver();
    const codeOf = async (r: Response) => [r.status, ((await r.json()) as { error: { code: string } }).error.code];
    try {
      expect(await codeOf(await gateway.fetch(new Request('http://gw/v1/nothing')))).toEqual([404, 'NOT_FOUND']);
      // Bad percent-encoding in a path parameter.
      expect(await codeOf(await gateway.fetch(new Request('http://gw/v1/receipts/%E0%A4%A')))).toEqual([
        400,
        'INVALID_ARGUMENT',
      ]);
      const absolute = await gateway.handle({ method: 'GET', path: 'http://gw/healthz', header: () => undefined });
      expect(absolute.status).toBe(200);
      const text = new Request('http://gw/v1/infer', {
        method: 'POST',
        body: 'x',
        headers: { 'content-type': 'text/plain' },
      });
      expect(await codeOf(await gateway.fetch(text))).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
      const broken = new Request('http://gw/v1/chat/completions', {
        method: 'POST',
        body: '{"model":',
        headers: { 'content-type': 'application/json' },
      });
      const answer = await gateway.fetch(broken);
      expect(answer.status).toBe(400);
      // OpenAI routes answer in OpenAI's error shape too.
      expect(((await answer.json()) as { error: unknown }).error).toMatchObject({
        code: 'JSON_INVALID',
        type: 'invalid_request_error',
      });
      const noInput = new Request('http://gw/v1/infer', {
        method: 'POST',
        body: '{"model":"iris@1.0.0"}',
        headers: { 'content-type': 'application/json' },
      });
      expect(await codeOf(await gateway.fetch(noInput))).toEqual([400, 'INVALID_ARGUMENT']);
      expect(gateway.metrics()).toContain('verity_gateway_requests_total{route="/v1/infer",outcome="error"} 2');
    } finally {
      network.close();
    }
  });
});
