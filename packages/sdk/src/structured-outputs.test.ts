import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import { APICallError, generateObject } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, verifyChatCompletion } from './index.js';

// Structured outputs as TypeScript clients send them: the Vercel AI SDK's generateObject with zod
// schemas, and the official openai client's response_format. The node serves the repo's tiny
// random-weight model, which writes gibberish: only the grammar makes its answers valid, so every
// answer that parses and passes zod is the grammar's doing.
const GGUF = fileURLToPath(new URL('../../../examples/models/tiny-chat.gguf', import.meta.url));
let node: VerityNode;
let dataDir: string;
let openai: OpenAI;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-structured-'));
  node = await startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        llm: { gpu: 'cpu', sequences: 2, contextSize: 2048 },
      },
    }),
  );
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  await admin.pushModel({ name: 'tiny-chat', format: 'gguf', data: new Uint8Array(readFileSync(GGUF)) });
  openai = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const provider = () =>
  createOpenAICompatible({ name: 'verity', baseURL: `${node.url}/v1`, supportsStructuredOutputs: true });

describe('structured outputs through the Vercel AI SDK (generateObject + zod)', () => {
  const schema = z.object({
    n: z.number().int(), // zod sends ±(2^53 − 1) bounds: once refused as "minimum cannot be enforced"
    x: z.number(), // once free to write 2E9257, which parses to Infinity
    s: z.string().min(1).max(8),
    e: z.enum(['a', 'b']),
    small: z.number().int().min(-5).max(5),
    pos: z.number().positive(),
    unit: z.number().gt(0.5).lte(1.25),
    day: z.iso.date(),
    id: z.uuid(),
    tags: z.array(z.string().max(4)).max(2),
    nul: z.number().nullable(),
    opt: z.boolean().optional(),
  });

  it('returns objects that satisfy the zod schema, for every seed', { timeout: 180_000 }, async () => {
    const model = provider().chatModel('tiny-chat');
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const { object, finishReason } = await generateObject({
        model,
        schema,
        prompt: 'Describe a thing as JSON.',
        seed,
        temperature: 1,
        maxOutputTokens: 400,
        maxRetries: 0,
      });
      expect(finishReason).toBe('stop');
      // generateObject already validated it with zod; checked again to say so.
      expect(schema.safeParse(object).success).toBe(true);
      expect(Number.isFinite(object.x)).toBe(true);
      expect(Number.isSafeInteger(object.n)).toBe(true);
    }
  });

  it('gives the same object for the same seed (the grammar is a function of the request)', {
    timeout: 120_000,
  }, async () => {
    const model = provider().chatModel('tiny-chat');
    const run = () =>
      generateObject({
        model,
        schema,
        prompt: 'Again.',
        seed: 42,
        temperature: 1,
        maxOutputTokens: 400,
        maxRetries: 0,
      });
    expect((await run()).object).toEqual((await run()).object);
  });

  it('refuses a schema it cannot enforce with 400 and its code', { timeout: 120_000 }, async () => {
    const model = provider().chatModel('tiny-chat');
    const refused = async (s: z.ZodObject) => {
      try {
        await generateObject({ model, schema: s, prompt: 'x', maxOutputTokens: 50, maxRetries: 0 });
        return undefined;
      } catch (e) {
        if (!APICallError.isInstance(e)) throw e;
        return {
          status: e.statusCode,
          code: (JSON.parse(e.responseBody ?? '{}') as { error: { code: string } }).error.code,
        };
      }
    };
    expect(await refused(z.object({ p: z.number().multipleOf(0.5) }))).toEqual({
      status: 400,
      code: 'JSON_SCHEMA_UNSUPPORTED',
    });
    expect(await refused(z.object({ p: z.string().regex(/^(?=a)/) }))).toEqual({
      status: 400,
      code: 'JSON_SCHEMA_UNSUPPORTED',
    });
  });
});

describe('structured outputs through the openai client (response_format json_schema)', () => {
  const status = async (schema: Record<string, unknown>) => {
    try {
      await openai.chat.completions.create({
        model: 'tiny-chat',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 20,
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
      });
      return undefined;
    } catch (e) {
      const err = e as InstanceType<typeof OpenAI.APIError>;
      return { status: err.status, code: err.code, param: err.param };
    }
  };

  it('refuses an unresolvable $ref and every schema it cannot enforce exactly', { timeout: 120_000 }, async () => {
    // Once answered 200 as if enforced: the $ref pointed nowhere and was taken as "any JSON".
    expect(await status({ $ref: '#/nope' })).toEqual({
      status: 400,
      code: 'JSON_SCHEMA_INVALID',
      param: 'response_format.json_schema',
    });
    expect(await status({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } })).toMatchObject({
      status: 400,
      code: 'JSON_SCHEMA_INVALID',
    });
    for (const schema of [
      { $ref: 'https://example.com/schema.json' },
      { type: 'object', properties: { next: { $ref: '#' } }, required: ['next'] },
      { type: 'object', patternProperties: { '^x': { type: 'string' } } },
      { type: 'array', items: { type: 'string' }, uniqueItems: true },
      { not: { type: 'null' } },
      { type: 'string', format: 'hostname' },
    ]) {
      expect(await status(schema)).toMatchObject({ status: 400, code: 'JSON_SCHEMA_UNSUPPORTED' });
    }
    // Forced tool calls are written under their parameters' grammar: the same rule.
    await expect(
      openai.chat.completions.create({
        model: 'tiny-chat',
        messages: [{ role: 'user', content: 'Hi' }],
        tools: [{ type: 'function', function: { name: 'f', parameters: { $ref: '#/nope' } } }],
        tool_choice: 'required',
      }),
    ).rejects.toMatchObject({ status: 400, code: 'JSON_SCHEMA_INVALID', param: 'tools[0].function.parameters' });
  });

  it('json_object gives an object, whole and streamed alike', { timeout: 120_000 }, async () => {
    for (const seed of [1, 2, 3]) {
      const request = {
        model: 'tiny-chat',
        messages: [{ role: 'user' as const, content: 'Any JSON' }],
        max_tokens: 300,
        temperature: 1,
        seed,
        response_format: { type: 'json_object' as const },
      };
      const whole = await openai.chat.completions.create(request);
      if (whole.choices[0]?.finish_reason !== 'stop') continue; // a long answer cut by max_tokens
      const value = JSON.parse(whole.choices[0]?.message.content ?? '');
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
      let text = '';
      for await (const c of await openai.chat.completions.create({ ...request, stream: true })) {
        text += c.choices[0]?.delta.content ?? '';
      }
      expect(text).toBe(whole.choices[0]?.message.content);
    }
  });

  it('enforces bounds, recursion and formats; the answer verifies', { timeout: 120_000 }, async () => {
    const trust = await createClient({ url: node.url, insecureTrustNode: true }).trust();
    const schema = {
      type: 'object',
      properties: {
        score: { type: 'integer', minimum: 1, maximum: 10 },
        ratio: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
        when: { type: 'string', format: 'date-time' },
        tree: { $ref: '#/$defs/node' },
      },
      required: ['score', 'ratio', 'when', 'tree'],
      additionalProperties: false,
      $defs: {
        node: {
          type: 'object',
          properties: { v: { enum: [1, 2] }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } },
          required: ['v'],
          additionalProperties: false,
        },
      },
    };
    for (const seed of [7, 8, 9]) {
      const request = {
        model: 'tiny-chat',
        messages: [{ role: 'user' as const, content: 'Rate it' }],
        max_tokens: 400,
        temperature: 1,
        seed,
        response_format: { type: 'json_schema' as const, json_schema: { name: 'rating', schema } },
      };
      const completion = await openai.chat.completions.create(request);
      expect(completion.choices[0]?.finish_reason).toBe('stop');
      const value = JSON.parse(completion.choices[0]?.message.content ?? '');
      expect(Number.isInteger(value.score) && value.score >= 1 && value.score <= 10).toBe(true);
      expect(value.ratio >= 0 && value.ratio < 1).toBe(true);
      expect(Number.isNaN(Date.parse(value.when))).toBe(false);
      expect([1, 2]).toContain(value.tree.v);
      verifyChatCompletion(request, completion, trust);
    }
  });
});
