import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DTYPES,
  type DType,
  decodeInferFrame,
  encodeInferFrame,
  encodeTensors,
  fromHex,
  INFER_MEDIA_TYPE,
  type InferenceRecord,
  type Tensor,
  type TensorMap,
  tensorsDigest,
  tensorsFromJson,
  tensorsToExactJson,
  toHex,
} from '@verity/protocol';
import { createClient } from '@verity/sdk';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSameTensors, tensorArb } from '../../../protocol/src/test-support/tensors.js';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { fixtureModel } from '../runtimes/test-support/onnx-fixtures.js';

// A real node on a real socket: the same tensors sent as JSON and as a binary frame must give the
// same records' digests and the same outputs (docs/api.md "Binary tensors", docs/protocol.md §2.6).

/** Identity over every dtype at ranks 0, 1 and 3, each dim its own symbol: `<d>_r<rank>` → `o_<d>_r<rank>`. */
const RANKS = [0, 1, 3] as const;
const NAMES = DTYPES.flatMap((d) => RANKS.map((r) => ({ dtype: d, rank: r, name: `${d}_r${r}` })));
const MODEL = fixtureModel(
  NAMES.map(({ dtype, rank, name }) => ({
    name,
    dtype,
    shape: Array.from({ length: rank }, (_, i) => `${name}_${i}`),
  })),
  NAMES.map(({ dtype, rank, name }) => ({
    name: `o_${name}`,
    dtype,
    shape: Array.from({ length: rank }, (_, i) => `${name}_${i}`),
  })),
  NAMES.map(({ name }) => ({ op: 'Identity', inputs: [name], outputs: [`o_${name}`] })),
);

/** A random input map of the identity model: every input, any values (NaN payloads, -0, ±Inf, int64 extremes). */
const inputArb: fc.Arbitrary<TensorMap> = fc
  .tuple(
    ...NAMES.map(({ dtype, rank }) =>
      tensorArb(dtype as DType)
        .filter((t) => t.shape.length === rank)
        // onnxruntime cuts strings at U+0000, so the node refuses them (TENSOR_DATA_INVALID) in
        // either form; the property is about the forms, so the values stay in what models take.
        .map((t) => (t.dtype === 'string' ? { ...t, data: t.data.map((v) => v.replaceAll('\u0000', '0')) } : t)),
    ),
  )
  .map((tensors) => {
    const map: TensorMap = Object.create(null);
    NAMES.forEach(({ name }, i) => {
      map[name] = tensors[i] as Tensor;
    });
    return map;
  });

/** The identity's expected output: the input under the output names. */
function renamed(map: TensorMap): TensorMap {
  const out: TensorMap = Object.create(null);
  for (const [name, t] of Object.entries(map)) out[`o_${name}`] = t;
  return out;
}

let node: VerityNode;
let modelCid: string;
const LIMIT = 1024 * 1024;

beforeAll(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-binary-'));
  node = await startNode(
    loadConfig({
      overrides: { dataDir, port: 0, logLevel: 'silent', limits: { bodyBytes: LIMIT, maxElements: 10_000 } },
    }),
  );
  const client = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  modelCid = (await client.pushModel({ name: 'identity', version: '1.0.0', data: MODEL })).id;
});

afterAll(async () => {
  await node?.stop();
});

interface Answer {
  status: number;
  type: string;
  fields: Record<string, unknown> & { error?: { code: string }; receipt?: { record: InferenceRecord } };
  output?: TensorMap;
}

/** POSTs `body` to /v1/infer and reads the answer in whichever form it came. */
async function post(body: Uint8Array | string, headers: Record<string, string>): Promise<Answer> {
  const r = await fetch(`${node.url}/v1/infer`, { method: 'POST', headers, body: body as BodyInit });
  const type = r.headers.get('content-type') ?? '';
  if (type.startsWith(INFER_MEDIA_TYPE)) {
    const { header, tensors } = decodeInferFrame(new Uint8Array(await r.arrayBuffer()), { maxHeaderBytes: 1 << 24 });
    return { status: r.status, type, fields: header as Answer['fields'], output: tensors };
  }
  const fields = (await r.json()) as Answer['fields'];
  return {
    status: r.status,
    type,
    fields,
    ...(fields.output === undefined ? {} : { output: tensorsFromJson(fields.output) }),
  };
}

const BINARY = { 'content-type': INFER_MEDIA_TYPE, accept: INFER_MEDIA_TYPE };
const asJson = (input: TensorMap, extra: Record<string, unknown> = {}) =>
  post(JSON.stringify({ model: modelCid, input: tensorsToExactJson(input), ...extra }), {
    'content-type': 'application/json',
  });
const asBinary = (input: TensorMap, extra: Record<string, unknown> = {}, headers: Record<string, string> = BINARY) =>
  post(encodeInferFrame(JSON.stringify({ model: modelCid, ...extra }), encodeTensors(input)), headers);

describe('binary tensors on /v1/infer', () => {
  it('give the same digests and outputs as JSON, over random tensor maps of every dtype', async () => {
    await fc.assert(
      fc.asyncProperty(inputArb, async (input) => {
        const [json, binary] = [await asJson(input), await asBinary(input)];
        expect(json.status, JSON.stringify(json.fields.error)).toBe(200);
        expect(binary.status, JSON.stringify(binary.fields.error)).toBe(200);
        expect(json.type).toMatch(/^application\/json/);
        expect(binary.type).toBe(INFER_MEDIA_TYPE);
        const a = json.fields.receipt?.record as InferenceRecord;
        const b = binary.fields.receipt?.record as InferenceRecord;
        expect(b.inputDigest).toBe(toHex(tensorsDigest(input)));
        expect(a.inputDigest).toBe(b.inputDigest);
        expect(a.outputDigest).toBe(b.outputDigest);
        expect(b.outputDigest).toBe(toHex(tensorsDigest(renamed(input))));
        expectSameTensors(binary.output as TensorMap, json.output as TensorMap);
        expectSameTensors(binary.output as TensorMap, renamed(input));
      }),
      { numRuns: 40 },
    );
  });

  it('mix: a JSON request may ask for a binary answer, a binary request for a JSON one', async () => {
    const input = fc.sample(inputArb, { numRuns: 1, seed: 7 })[0] as TensorMap;
    const jsonIn = await post(JSON.stringify({ model: modelCid, input: tensorsToExactJson(input) }), {
      'content-type': 'application/json',
      accept: INFER_MEDIA_TYPE,
    });
    expect(jsonIn.type).toBe(INFER_MEDIA_TYPE);
    const binaryIn = await asBinary(input, {}, { 'content-type': INFER_MEDIA_TYPE });
    expect(binaryIn.type).toMatch(/^application\/json/);
    expect(jsonIn.fields.receipt?.record.outputDigest).toBe(binaryIn.fields.receipt?.record.outputDigest);
    // Audited: the kept payload is the very bytes received.
    const audited = await asBinary(input, { mode: 'audited' });
    expect(audited.status).toBe(200);
    const payload = (await (await fetch(`${node.url}/v1/payloads/${audited.fields.requestId}`)).json()) as {
      input: string;
    };
    expect(Buffer.from(payload.input, 'base64').equals(Buffer.from(encodeTensors(input)))).toBe(true);
  });

  it('the SDK sends binary by default, JSON forms or tensors; its receipts verify the same as over JSON', async () => {
    const { address, logKey } = node.context.keys;
    const client = createClient({ url: node.url, trust: { nodes: [{ address, logKey }] } });
    const input = fc.sample(inputArb, { numRuns: 1, seed: 11 })[0] as TensorMap;
    const binary = await client.infer({ model: modelCid, input: tensorsToExactJson(input) });
    const json = await client.infer({ model: modelCid, input: tensorsToExactJson(input), wire: 'json' });
    // Input given as tensors (typed arrays), over either wire: the same record digests.
    for (const wire of ['binary', 'json'] as const) {
      const fromTensors = await client.infer({ model: modelCid, input, wire });
      expect(fromTensors.record.inputDigest).toBe(json.record.inputDigest);
      expect(fromTensors.record.outputDigest).toBe(json.record.outputDigest);
    }
    expect(binary.record.inputDigest).toBe(json.record.inputDigest);
    expect(binary.record.outputDigest).toBe(json.record.outputDigest);
    expectSameTensors(binary.output, json.output);
    expect(binary.outputJson).toEqual(json.outputJson);
    // Bundles stay JSON, and carry the same tensors either way.
    expect(binary.bundle().output).toEqual(json.bundle().output);
    expect(binary.bundle().input).toEqual(json.bundle().input);
  });
});

describe('hostile binary requests: each refused with its code, nothing logged', () => {
  const input = () => fc.sample(inputArb, { numRuns: 1, seed: 3 })[0] as TensorMap;
  const good = () => encodeInferFrame(JSON.stringify({ model: modelCid }), encodeTensors(input()));
  const withLength = (header: string, tensors: Uint8Array, length: number) => {
    const f = encodeInferFrame(header, tensors);
    new DataView(f.buffer).setUint32(4, length, true);
    return f;
  };
  const cases: {
    what: string;
    body: () => Uint8Array | string;
    headers?: Record<string, string>;
    status: number;
    code: string;
  }[] = [
    { what: 'truncated in the header', body: () => good().subarray(0, 12), status: 400, code: 'INFER_FRAME_INVALID' },
    {
      what: 'truncated in the tensors',
      body: () => good().subarray(0, good().length - 3),
      status: 400,
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'trailing bytes',
      body: () => Buffer.concat([good(), new Uint8Array([0, 0])]),
      status: 400,
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'a header length of 2^32 - 1',
      body: () => withLength('{}', encodeTensors(input()), 0xffffffff),
      status: 413,
      code: 'INFER_HEADER_TOO_LARGE',
    },
    {
      what: 'a header above 64 KiB',
      body: () =>
        encodeInferFrame(JSON.stringify({ model: modelCid, pad: 'x'.repeat(70_000) }), encodeTensors(input())),
      status: 413,
      code: 'INFER_HEADER_TOO_LARGE',
    },
    {
      what: 'a JSON body labelled binary',
      body: () => JSON.stringify({ model: modelCid, input: {} }),
      status: 400,
      code: 'INFER_FRAME_INVALID',
    },
    {
      what: 'the input in the header',
      body: () => encodeInferFrame(JSON.stringify({ model: modelCid, input: {} }), encodeTensors(input())),
      status: 400,
      code: 'INVALID_ARGUMENT',
    },
    {
      what: 'an unknown header field',
      body: () => encodeInferFrame(JSON.stringify({ model: modelCid, extra: 1 }), encodeTensors(input())),
      status: 400,
      code: 'INVALID_ARGUMENT',
    },
    {
      what: 'a tensor count of 2^32 - 1',
      body: () => encodeInferFrame(JSON.stringify({ model: modelCid }), fromHex('56544e31ffffffff0100000078020000')),
      status: 400,
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'a shape of 2^52 float32 elements',
      body: () =>
        encodeInferFrame(
          JSON.stringify({ model: modelCid }),
          fromHex('56544e3101000000010000007801020000000001000000000010000000000000000000'),
        ),
      status: 400,
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'names out of order (not canonical)',
      body: () =>
        encodeInferFrame(
          JSON.stringify({ model: modelCid }),
          fromHex('56544e310200000001000000620200000100000061020000'),
        ),
      status: 400,
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'a canonical encoding the model does not take (a missing input)',
      body: () => encodeInferFrame(JSON.stringify({ model: modelCid }), encodeTensors({})),
      status: 400,
      code: 'TENSOR_MISSING',
    },
    {
      what: 'more elements than the limit',
      body: () => {
        const big = {
          ...input(),
          uint8_r1: { dtype: 'uint8', shape: [20_000], data: new Uint8Array(20_000) } as Tensor,
        };
        return encodeInferFrame(JSON.stringify({ model: modelCid }), encodeTensors(big));
      },
      status: 400,
      code: 'TENSOR_TOO_LARGE',
    },
    {
      what: 'a frame sent as text/plain',
      body: () => good(),
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      what: 'a frame sent as application/octet-stream',
      body: () => good(),
      headers: { 'content-type': 'application/octet-stream' },
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      what: 'an Accept that names neither form',
      body: () => good(),
      headers: { 'content-type': INFER_MEDIA_TYPE, accept: 'text/html' },
      status: 406,
      code: 'NOT_ACCEPTABLE',
    },
    {
      what: 'an Accept that refuses both forms',
      body: () => good(),
      headers: { 'content-type': INFER_MEDIA_TYPE, accept: `application/json;q=0, ${INFER_MEDIA_TYPE};q=0` },
      status: 406,
      code: 'NOT_ACCEPTABLE',
    },
    {
      what: 'a body above the limit',
      body: () => Buffer.concat([good(), new Uint8Array(LIMIT)]),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    },
  ];

  for (const c of cases) {
    it(`${c.what}: ${c.status} ${c.code}`, async () => {
      const before = node.context.log.size;
      const r = await post(c.body(), c.headers ?? BINARY);
      expect(r.status).toBe(c.status);
      expect(r.type).toMatch(/^application\/json/); // errors are JSON, whatever was asked for
      expect(r.fields.error?.code).toBe(c.code);
      expect(node.context.log.size).toBe(before);
    });
  }

  it('a binary body on another route: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const r = await fetch(`${node.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': INFER_MEDIA_TYPE },
      body: good() as BodyInit,
    });
    expect(r.status).toBe(415);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('a declared Content-Length of 10 GiB is refused before the body is read: 413 PAYLOAD_TOO_LARGE', async () => {
    const before = node.context.log.size;
    const { port } = new URL(node.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let text = '';
      socket.on('data', (d) => {
        text += d.toString('latin1');
        // The whole error body is in: done, whether or not the server keeps the connection.
        if (text.includes('"details"')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('end', () => resolve(text));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      // Headers and 8 bytes of a body that never comes: the answer must not wait for it.
      socket.write(
        `POST /v1/infer HTTP/1.1\r\nhost: x\r\ncontent-type: ${INFER_MEDIA_TYPE}\r\ncontent-length: ${10 * 2 ** 30}\r\n\r\nVIF1\x02\x00\x00\x00`,
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toContain('PAYLOAD_TOO_LARGE');
    expect(node.context.log.size).toBe(before);
  });
});
