import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlmParams } from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { buildTinyLlama } from '../../../../examples/llm/tiny-llama.js';
import { codeOf } from '../../../protocol/src/test-support/errors.js';
import { checkJsonSchema, createLlmRuntime, describeGguf, type LlmJob } from './llm.js';
import { describeRuntimeBasics } from './test-support/runtime-basics.js';

// The LLM runtime on the repo's tiny random-weight llama GGUF (examples/llm/tiny-llama.ts).
const GGUF = fileURLToPath(new URL('../../../../examples/models/tiny-chat.gguf', import.meta.url));
// The same model with its end-of-turn token pushed far down: it talks until max_tokens.
const ENDLESS = join(mkdtempSync(join(tmpdir(), 'verity-llm-')), 'tiny-endless.gguf');
writeFileSync(ENDLESS, buildTinyLlama({ endOfTurnBias: -30 }));

const params: LlmParams = {
  temperature: 0.8,
  top_p: 1,
  top_k: 0,
  min_p: 0,
  presence_penalty: 0,
  frequency_penalty: 0,
  seed: 3,
  max_tokens: 24,
  stop: [],
  logit_bias: {},
};
const job: LlmJob = {
  endpoint: 'chat.completions',
  messages: [{ role: 'user', content: 'Hello there' }],
  params,
  maxTokensGiven: true,
};

describeRuntimeBasics('node-llama-cpp', () => createLlmRuntime({ gpu: false, sequences: 2 }), {
  modelPath: GGUF,
  profiles: ['cpu'],
  job,
});

describe('LLM runtime', () => {
  it('reads the manifest facts from the GGUF header', async () => {
    const { inputs, outputs, metadata } = await describeGguf(GGUF);
    expect(inputs).toEqual([]);
    expect(outputs).toEqual([]);
    expect(metadata).toMatchObject({
      'general.architecture': 'llama',
      'general.file_type': 'ALL_F32',
      context_length: '2048',
      block_count: '2',
      'tokenizer.model': 'gpt2',
    });
    expect(metadata?.['tokenizer.chat_template']).toContain('<|im_start|>');
    // Every tensor's elements counted: the writer's defaults give this many parameters.
    expect(Number(metadata?.parameter_count)).toBeGreaterThan(100_000);
  });

  it('runs chats side by side on its sequences and gives each back', async () => {
    const model = await createLlmRuntime({ gpu: false, sequences: 2 }).load(GGUF);
    try {
      expect(model.concurrency).toBe(2);
      const alone = await model.run(job);
      const [a, b] = await Promise.all([model.run(job), model.run({ ...job, params: { ...params, seed: 4 } })]);
      expect(a?.text).toBe(alone.text);
      expect(b).toBeDefined();
      expect(model.sequencesLeft()).toBe(2);
    } finally {
      await model.close();
    }
  });

  it('honours max_tokens, stop sequences and logit_bias; refuses biasing the end token', async () => {
    const model = await createLlmRuntime({ gpu: false }).load(ENDLESS);
    try {
      const long = await model.run({ ...job, params: { ...params, max_tokens: 50 } });
      expect(long.completionTokens).toBe(50);
      expect(long.finishReason).toBe('length');
      // Stop at the first character the free run produced: the answer ends before it.
      const first = long.text.slice(0, 1);
      const stopped = await model.run({ ...job, params: { ...params, max_tokens: 50, stop: [first] } });
      expect(stopped.text).toBe('');
      expect(stopped.finishReason).toBe('stop');
      // Ban every byte token of the first character (ids = bytes in the tiny vocabulary): it changes.
      const banned = Object.fromEntries([...new TextEncoder().encode(first)].map((b) => [String(b), -100]));
      const other = await model.run({ ...job, params: { ...params, max_tokens: 50, logit_bias: banned } });
      expect(other.text.startsWith(first)).toBe(false);

      const { metadata } = await describeGguf(ENDLESS);
      const eos = metadata?.['tokenizer.eos_token_id'] as string;
      await expect(model.run({ ...job, params: { ...params, logit_bias: { [eos]: -100 } } })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(model.run({ ...job, params: { ...params, logit_bias: { '999999': 1 } } })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(model.run({ ...job, params: { ...params, max_tokens: 5000 } })).rejects.toMatchObject({
        code: 'CONTEXT_LENGTH_EXCEEDED',
      });
      expect(codeOf(() => checkJsonSchema({ type: 'object', properties: { a: { not: {} } } }))).toBe(
        'JSON_SCHEMA_UNSUPPORTED',
      );
      expect(model.sequencesLeft()).toBe(2);
    } finally {
      await model.close();
    }
  });

  it('stops when its signal aborts and frees the sequence', async () => {
    const model = await createLlmRuntime({ gpu: false }).load(ENDLESS);
    try {
      const controller = new AbortController();
      let chunks = 0;
      const run = model.run({
        ...job,
        params: { ...params, max_tokens: 1900 },
        signal: controller.signal,
        onText: () => {
          if (++chunks === 5) controller.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ code: 'INFERENCE_FAILED' });
      expect(chunks).toBeLessThan(50);
      expect(model.sequencesLeft()).toBe(2);
    } finally {
      await model.close();
    }
  });
});
