import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import { type Trust, verifyBundle } from '@verity/protocol';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyLlama } from '../../../examples/llm/tiny-llama.js';
import { codeOf } from '../../protocol/src/test-support/errors.js';
import { createClient, verifyChatCompletion, verifyCompletion } from './index.js';

// A real node serving the repo's tiny random-weight llama GGUF, driven by the official `openai`
// client; every answer's receipt is verified with the SDK. The model writes gibberish, but
// gibberish that is logged, reproducible and, under a grammar, valid JSON.
const GGUF = fileURLToPath(new URL('../../../examples/models/tiny-chat.gguf', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
let node: VerityNode;
let openai: OpenAI;
let trust: Trust;

beforeAll(async () => {
  node = await startNode(
    loadConfig({
      overrides: {
        dataDir: await mkdtemp(join(tmpdir(), 'verity-llm-')),
        port: 0,
        logLevel: 'silent',
        llm: { gpu: 'cpu', sequences: 2, contextSize: 2048 },
        executor: { maxQueue: 4 },
      },
    }),
  );
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  const model = await admin.pushModel({ name: 'tiny-chat', format: 'gguf', data: new Uint8Array(readFileSync(GGUF)) });
  expect(model.manifest.format).toBe('gguf');
  expect(model.manifest.metadata?.['general.architecture']).toBe('llama');
  await admin.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) });
  // The same tiny model with its end-of-turn token pushed far down: it talks until max_tokens.
  await admin.pushModel({ name: 'tiny-endless', format: 'gguf', data: buildTinyLlama({ endOfTurnBias: -30 }) });
  openai = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  trust = await createClient({ url: node.url, insecureTrustNode: true }).trust();
}, 120_000);
afterAll(async () => {
  await node?.stop();
});

const user = (content: string) => [{ role: 'user' as const, content }];

describe('OpenAI API: chat completions', () => {
  it('answers a plain chat; the receipt in the body and in the header verify', async () => {
    const request = { model: 'tiny-chat', messages: user('Hello there'), max_tokens: 24, temperature: 0 };
    const { data, response } = await openai.chat.completions.create(request).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]?.message.role).toBe('assistant');
    expect(data.usage?.completion_tokens).toBeGreaterThan(0);
    const verified = verifyChatCompletion(request, data, trust);
    expect(verified.record.kind).toBe('llm');
    expect(verified.record.runtime.id).toBe('node-llama-cpp');
    const header = JSON.parse(Buffer.from(response.headers.get('x-verity-receipt') ?? '', 'base64').toString());
    expect(header).toEqual((data as unknown as { verity: { receipt: unknown } }).verity.receipt);
    // The bundle verifies offline, and refuses an edited output.
    const bundle = verified.bundle();
    expect(verifyBundle(bundle, trust)).toMatchObject({ ok: true, checked: { input: true, output: true } });
    const edited = structuredClone(bundle) as { output: { message: { content: string } } };
    edited.output.message.content += '!';
    expect(verifyBundle(edited, trust)).toMatchObject({ ok: false, code: 'RECEIPT_OUTPUT_DIGEST_MISMATCH' });
    // The bundled LLM input is checked as docs/protocol.md §9.2 step 7 says: canonical form, then digest.
    const asked = structuredClone(bundle) as { input: { messages: { content: string }[]; extra?: number } };
    (asked.input.messages[0] as { content: string }).content = 'Hello there!';
    expect(verifyBundle(asked, trust)).toMatchObject({ ok: false, code: 'RECEIPT_INPUT_DIGEST_MISMATCH' });
    asked.input.extra = 1;
    expect(verifyBundle(asked, trust)).toMatchObject({ ok: false, code: 'BUNDLE_MALFORMED' });
  });

  it('streams the same answer, then the receipt in a last chunk before [DONE]', async () => {
    const request = { model: 'tiny-chat', messages: user('Tell me a story'), max_tokens: 40, temperature: 0 };
    const whole = await openai.chat.completions.create(request);
    const stream = await openai.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: unknown[] = [];
    let text = '';
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    const last = chunks.at(-1) as { choices: unknown[]; verity?: unknown };
    expect(last.choices).toEqual([]);
    expect(last.verity).toBeDefined();
    expect(chunks.some((c) => (c as { usage?: unknown }).usage !== undefined)).toBe(true);
    const verified = verifyChatCompletion(request, chunks, trust);
    // Same request, same params: the streamed and the whole answer have the same digests.
    expect(verified.record.outputDigest).toBe(verifyChatCompletion(request, whole, trust).record.outputDigest);
  });

  it('enforces a JSON schema by grammar', async () => {
    const schema = {
      type: 'object',
      properties: { ok: { type: 'boolean' }, tag: { enum: ['red', 'green', 'blue'] } },
      required: ['ok', 'tag'],
      additionalProperties: false,
    };
    const request = {
      model: 'tiny-chat',
      messages: user('Pick a colour'),
      max_tokens: 200,
      temperature: 0.7,
      seed: 3,
      response_format: { type: 'json_schema' as const, json_schema: { name: 'pick', schema } },
    };
    const completion = await openai.chat.completions.create(request);
    const value = JSON.parse(completion.choices[0]?.message.content ?? '');
    expect(typeof value.ok).toBe('boolean');
    expect(['red', 'green', 'blue']).toContain(value.tag);
    expect(Object.keys(value).sort()).toEqual(['ok', 'tag']);
    verifyChatCompletion(request, completion, trust);
  });

  it('calls a tool when asked to, and takes its result in the next turn', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: {
            type: 'object',
            properties: { city: { enum: ['Paris', 'Oslo'] }, days: { enum: [1, 2, 3] } },
            required: ['city', 'days'],
            additionalProperties: false,
          },
        },
      },
    ];
    const request = {
      model: 'tiny-chat',
      messages: user('Weather in Oslo?'),
      tools,
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
      max_tokens: 120,
      temperature: 0,
      seed: 11, // tool call ids derive from the input digest, which covers the seed
    };
    const completion = await openai.chat.completions.create(request);
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    const call = choice?.message.tool_calls?.[0] as { id: string; function: { name: string; arguments: string } };
    expect(call.function.name).toBe('get_weather');
    const args = JSON.parse(call.function.arguments);
    expect(['Paris', 'Oslo']).toContain(args.city);
    expect([1, 2, 3]).toContain(args.days);
    verifyChatCompletion(request, completion, trust);

    // Streamed, the call arrives as tool_call deltas and verifies the same way.
    const chunks: unknown[] = [];
    for await (const c of await openai.chat.completions.create({ ...request, stream: true })) chunks.push(c);
    expect(verifyChatCompletion(request, chunks, trust).output).toEqual(
      verifyChatCompletion(request, completion, trust).output,
    );
    expect(verifyChatCompletion(request, chunks, trust).record.outputDigest).toBe(
      verifyChatCompletion(request, completion, trust).record.outputDigest,
    );

    const next = {
      model: 'tiny-chat',
      messages: [
        ...request.messages,
        choice?.message as OpenAI.Chat.ChatCompletionMessageParam,
        { role: 'tool' as const, tool_call_id: call.id, content: '{"temp": 3}' },
      ],
      tools,
      max_tokens: 16,
      temperature: 0,
    };
    const answer = await openai.chat.completions.create(next);
    expect(answer.choices[0]?.message.role).toBe('assistant');
    verifyChatCompletion(next, answer, trust);
  });

  it('reproduces tokens with a fixed seed; a changed message or parameter changes the digests', async () => {
    const base = { model: 'tiny-chat', messages: user('Once upon a time'), max_tokens: 32, temperature: 0.9, seed: 42 };
    const a = verifyChatCompletion(base, await openai.chat.completions.create(base), trust);
    const b = verifyChatCompletion(base, await openai.chat.completions.create(base), trust);
    expect(b.record.requestId).not.toBe(a.record.requestId);
    expect(b.output).toEqual(a.output);
    expect(b.record.outputDigest).toBe(a.record.outputDigest);
    expect(b.record.inputDigest).toBe(a.record.inputDigest);
    expect(b.record.paramsDigest).toBe(a.record.paramsDigest);

    const otherMessage = { ...base, messages: user('Once upon a tame') };
    const c = verifyChatCompletion(otherMessage, await openai.chat.completions.create(otherMessage), trust);
    expect(c.record.inputDigest).not.toBe(a.record.inputDigest);
    expect(c.record.paramsDigest).toBe(a.record.paramsDigest);

    const otherParam = { ...base, temperature: 0.5 };
    const d = verifyChatCompletion(otherParam, await openai.chat.completions.create(otherParam), trust);
    expect(d.record.paramsDigest).not.toBe(a.record.paramsDigest);
    expect(d.record.inputDigest).not.toBe(a.record.inputDigest);

    // No seed given: the node draws one and reports it; re-running with it reproduces the answer.
    const unseeded = { model: 'tiny-chat', messages: user('Once upon a time'), max_tokens: 32, temperature: 0.9 };
    const e = verifyChatCompletion(unseeded, await openai.chat.completions.create(unseeded), trust);
    const again = { ...unseeded, seed: e.verity.params.seed };
    const f = verifyChatCompletion(again, await openai.chat.completions.create(again), trust);
    expect(f.output).toEqual(e.output);
  });

  it('refuses answers that do not match the request or were edited, each with its code', async () => {
    const request = { model: 'tiny-chat', messages: user('Hello'), max_tokens: 16, temperature: 0, seed: 9 };
    const completion = await openai.chat.completions.create(request);
    expect(() => verifyChatCompletion(request, completion, trust)).not.toThrow();

    const edited = structuredClone(completion);
    (edited.choices[0] as { message: { content: string } }).message.content = 'I am a trustworthy answer';
    expect(codeOf(() => verifyChatCompletion(request, edited, trust))).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');

    const otherRequest = { ...request, messages: user('Goodbye') };
    expect(codeOf(() => verifyChatCompletion(otherRequest, completion, trust))).toBe('RECEIPT_INPUT_DIGEST_MISMATCH');

    // The node claims other sampling settings than the ones asked for.
    const hotter = { ...request, temperature: 1.5 };
    expect(codeOf(() => verifyChatCompletion(hotter, completion, trust))).toBe('RECEIPT_PARAMS_MISMATCH');

    // Params edited in the answer no longer match the record.
    const params = structuredClone(completion) as unknown as { verity: { params: { top_p: number } } };
    params.verity.params.top_p = 0.5;
    expect(codeOf(() => verifyChatCompletion({ ...request }, params, trust))).toBe('RECEIPT_INPUT_DIGEST_MISMATCH');

    const stranger: Trust = {
      nodes: [{ address: '0x0000000000000000000000000000000000000001', logKey: trust.nodes[0]?.logKey as string }],
    };
    expect(codeOf(() => verifyChatCompletion(request, completion, stranger))).toBe('RECEIPT_NODE_UNKNOWN');
  });
});

describe('OpenAI API: completions and models', () => {
  it('completes a prompt, whole and streamed, each verified', async () => {
    const request = { model: 'tiny-chat', prompt: 'The quick brown fox', max_tokens: 20, temperature: 0 };
    const whole = await openai.completions.create(request);
    expect(whole.object).toBe('text_completion');
    const a = verifyCompletion(request, whole, trust);
    const chunks: unknown[] = [];
    for await (const c of await openai.completions.create({ ...request, stream: true })) chunks.push(c);
    const b = verifyCompletion(request, chunks, trust);
    expect(b.record.outputDigest).toBe(a.record.outputDigest);
  });

  it('lists models in OpenAI shape', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    const tiny = await createClient({ url: node.url, insecureTrustNode: true }).model('tiny-chat');
    expect(ids).toContain(tiny.id);
    // The manifest CID works as a model name on the OpenAI routes too.
    const completion = await openai.chat.completions.create({ model: tiny.id, messages: user('Hi'), max_tokens: 4 });
    expect(completion.choices).toHaveLength(1);
  });
});

describe('OpenAI API: bad input', () => {
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return undefined;
    } catch (e) {
      const err = e as InstanceType<typeof OpenAI.APIError>;
      return { status: err.status, code: err.code, param: err.param, type: err.type, message: err.message };
    }
  };

  it('refuses each bad request with a clear error in OpenAI shape', async () => {
    expect(
      await status(openai.chat.completions.create({ model: 'no-such-model', messages: user('Hi') })),
    ).toMatchObject({
      status: 404,
      code: 'MODEL_NOT_FOUND',
      type: 'not_found_error',
    });
    expect(await status(openai.chat.completions.create({ model: 'tiny-chat', messages: [] }))).toMatchObject({
      status: 400,
      code: 'INVALID_ARGUMENT',
      param: 'messages',
    });
    expect(
      await status(
        openai.chat.completions.create({ model: 'tiny-chat', messages: [{ role: 'wizard', content: 'x' }] as never }),
      ),
    ).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT', param: 'messages[0].role' });
    expect(
      await status(openai.chat.completions.create({ model: 'tiny-chat', messages: user('Hi'), max_tokens: 1_000_000 })),
    ).toMatchObject({ status: 400, code: 'CONTEXT_LENGTH_EXCEEDED', param: 'max_tokens' });
    expect(
      await status(
        openai.chat.completions.create({
          model: 'tiny-chat',
          messages: user('Hi'),
          response_format: { type: 'json_schema', json_schema: { name: 'x', schema: 'not a schema' as never } },
        }),
      ),
    ).toMatchObject({ status: 400, code: 'JSON_SCHEMA_INVALID' });
    expect(
      await status(
        openai.chat.completions.create({
          model: 'tiny-chat',
          messages: user('Hi'),
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'no-such-type' } } } },
          },
        }),
      ),
    ).toMatchObject({ status: 400, code: 'JSON_SCHEMA_INVALID' });
    expect(
      await status(openai.chat.completions.create({ model: 'tiny-chat', messages: user('Hi'), temperature: 7 })),
    ).toMatchObject({ status: 400, param: 'temperature' });
    expect(await status(openai.chat.completions.create({ model: 'iris', messages: user('Hi') }))).toMatchObject({
      status: 400,
      param: 'model',
    });
    expect(
      await status(
        openai.chat.completions.create({
          model: 'tiny-chat',
          messages: [{ role: 'tool', tool_call_id: 'call_x', content: 'orphan' }],
        }),
      ),
    ).toMatchObject({ status: 400, param: 'messages[0].tool_call_id' });
    const eos = (await createClient({ url: node.url, insecureTrustNode: true }).model('tiny-chat')).manifest.metadata?.[
      'tokenizer.eos_token_id'
    ];
    expect(
      await status(
        openai.chat.completions.create({
          model: 'tiny-chat',
          messages: user('Hi'),
          logit_bias: { [eos as string]: -100 },
        }),
      ),
    ).toMatchObject({ status: 400, param: 'logit_bias' });
    // The node is still fine.
    const ok = await openai.chat.completions.create({ model: 'tiny-chat', messages: user('Hi'), max_tokens: 4 });
    expect(ok.choices).toHaveLength(1);
  });

  it('refuses requests beyond the queue with 429 and Retry-After; the accepted ones verify', async () => {
    // 2 sequences run, 4 wait (maxQueue): of 12 long requests at once, some must be refused.
    const request = { model: 'tiny-endless', messages: user('Go on'), max_tokens: 300, temperature: 0, seed: 5 };
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        openai.chat.completions
          .create(request)
          .withResponse()
          .then(
            ({ data }) => ({ ok: true as const, data }),
            (e: InstanceType<typeof OpenAI.APIError>) => ({ ok: false as const, e }),
          ),
      ),
    );
    const refused = results.filter((r) => !r.ok);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.e.status).toBe(429);
      expect(r.e.code).toBe('QUEUE_FULL');
      expect(r.e.headers?.get('retry-after')).toBe('1');
    }
    const served = results.filter((r) => r.ok);
    expect(served.length).toBeGreaterThanOrEqual(6);
    for (const r of served) {
      expect(r.data.usage?.completion_tokens).toBe(300);
      verifyChatCompletion(request, r.data, trust);
    }
  }, 120_000);

  it('stops generating when the client goes away mid-stream, and releases the sequence', async () => {
    const stored = node.context.store.resolve('tiny-endless');
    const model = await node.context.llms.get(stored.manifestCid, stored.artifactPath);
    expect(model.sequencesLeft()).toBe(2);
    const logBefore = node.context.log.size;
    const body = JSON.stringify({
      model: 'tiny-endless',
      messages: user('Write a very long essay'),
      stream: true,
      max_tokens: 1900,
      temperature: 1,
      seed: 1,
    });
    // A client that reads three events, then drops the connection.
    const chunks = await new Promise<number>((resolve, reject) => {
      const req = request(`${node.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        let events = 0;
        res.on('data', (d: Buffer) => {
          events += d.toString().split('\n\n').length - 1;
          if (events >= 3) {
            req.destroy();
            resolve(events);
          }
        });
      });
      req.on('error', (e) => {
        if (!req.destroyed) reject(e);
      });
      req.end(body);
    });
    expect(chunks).toBeLessThan(100);
    await node.context.executor.idle();
    expect(model.sequencesLeft()).toBe(2);
    // Nothing was logged for the abandoned answer, and the node keeps serving.
    expect(node.context.log.size).toBe(logBefore);
    const ok = await openai.chat.completions.create({ model: 'tiny-chat', messages: user('Hi'), max_tokens: 4 });
    expect(ok.choices).toHaveLength(1);
  });
});
