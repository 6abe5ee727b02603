import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertParamsHonourRequest,
  type LlmParams,
  llmChatInput,
  llmCompletionInput,
  llmInputDigest,
  llmOutputDigest,
  llmParamsDigest,
  parseLlmInput,
  parseLlmOutput,
  parseLlmParams,
} from './llm.js';
import { codeOf } from './test-support/errors.js';

const params: LlmParams = {
  temperature: 0,
  top_p: 1,
  top_k: 0,
  min_p: 0,
  presence_penalty: 0,
  frequency_penalty: 0,
  seed: 7,
  max_tokens: 16,
  stop: [],
  logit_bias: {},
};

// Expected digests: the canonical JSON written out by hand (keys sorted, RFC 8785 numbers and
// strings) and hashed with coreutils `sha256sum` (docs/protocol.md §10).
describe('LLM digests (vectors)', () => {
  it('hashes a chat input as its RFC 8785 bytes', () => {
    // {"endpoint":"chat.completions","messages":[{"content":"Hi","role":"user"}],"model":"tiny-chat","params":{"frequency_penalty":0,"logit_bias":{},"max_tokens":16,"min_p":0,"presence_penalty":0,"seed":7,"stop":[],"temperature":0,"top_k":0,"top_p":1}}
    const input = llmChatInput(
      // Fields that do not decide the answer are left out; so are message fields the model never sees.
      { model: 'tiny-chat', messages: [{ role: 'user', content: 'Hi', extra: 1 }], stream: true, user: 'u1' },
      params,
    );
    expect(llmInputDigest(input)).toBe('9222ce83940f92adcca5ed12bcaa03ae7038de2ce7e39c170022838e91543ef9');
  });

  it('hashes params, outputs and completion inputs', () => {
    expect(llmParamsDigest(params)).toBe('268425e44d1bba3c69b2cad8c5b4f93aa73e2a59ee3e0cfeee6fe7431ef51c55');
    // {"endpoint":"chat.completions","finish_reason":"stop","message":{"content":"Hello!","role":"assistant"}}
    expect(
      llmOutputDigest({
        endpoint: 'chat.completions',
        message: { role: 'assistant', content: 'Hello!' },
        finish_reason: 'stop',
      }),
    ).toBe('e6e459b0c5cde19b4d103b39fb2ed94b315dad3b1669ea77a86199e88221e624');
    const unusual: LlmParams = {
      temperature: 1.25,
      top_p: 0.9,
      top_k: 40,
      min_p: 0.05,
      presence_penalty: -1,
      frequency_penalty: 0.5,
      seed: 4294967295,
      max_tokens: 1,
      stop: ['\n', 'END'],
      logit_bias: { '2': 1.5, '10': -100 },
    };
    expect(llmInputDigest(llmCompletionInput({ model: 'm', prompt: 'é ☃' }, unusual))).toBe(
      'd50fa0541dbca8a6a3c6881c467b83caf1419a39e7cdc91b0e59f3233891bcb1',
    );
  });
});

describe('LLM inputs and outputs', () => {
  it('round-trips a carried input and refuses one that is not canonical', () => {
    const input = llmChatInput(
      {
        model: 'tiny-chat',
        messages: [
          { role: 'system', content: 'Be brief' },
          { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
        ],
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
        tool_choice: 'auto',
        response_format: { type: 'json_object' },
      },
      params,
    );
    expect(parseLlmInput(JSON.parse(JSON.stringify(input)))).toEqual(input);
    const extraMessageField = structuredClone(input) as unknown as { messages: Record<string, unknown>[] };
    (extraMessageField.messages[0] as Record<string, unknown>).extra = 1;
    expect(codeOf(() => parseLlmInput(extraMessageField))).toBe('LLM_INPUT_INVALID');
    expect(codeOf(() => parseLlmInput({ ...input, stream: true }))).toBe('LLM_INPUT_INVALID');
    expect(codeOf(() => parseLlmInput({ ...input, endpoint: 'embeddings' }))).toBe('LLM_INPUT_INVALID');
    expect(codeOf(() => parseLlmInput({ ...input, params: { ...params, seed: -1 } }))).toBe('LLM_INPUT_INVALID');
  });

  it('checks params strictly', () => {
    expect(parseLlmParams(params)).toEqual(params);
    for (const bad of [
      { ...params, temperature: 3 },
      { ...params, top_p: Number.NaN },
      { ...params, max_tokens: 0 },
      { ...params, seed: 1.5 },
      { ...params, stop: [''] },
      { ...params, logit_bias: { x: 1 } },
      { ...params, logit_bias: { '1': 101 } },
      { ...params, extra: 1 },
      (({ seed: _, ...rest }) => rest)(params),
    ]) {
      expect(codeOf(() => parseLlmParams(bad))).toBe('LLM_INPUT_INVALID');
    }
  });

  it('parses outputs: messages with tool calls, completions; refuses the malformed', () => {
    const out = {
      endpoint: 'chat.completions',
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
      finish_reason: 'tool_calls',
    };
    expect(parseLlmOutput(out)).toEqual(out);
    expect(parseLlmOutput({ endpoint: 'completions', text: 'x', finish_reason: 'length' })).toEqual({
      endpoint: 'completions',
      text: 'x',
      finish_reason: 'length',
    });
    expect(codeOf(() => parseLlmOutput({ ...out, finish_reason: 'bored' }))).toBe('LLM_INPUT_INVALID');
    expect(codeOf(() => parseLlmOutput({ ...out, message: { role: 'user', content: 'x' } }))).toBe('LLM_INPUT_INVALID');
  });

  it('holds a node to the sampling settings asked for', () => {
    expect(() => assertParamsHonourRequest({ temperature: 0, seed: 7, stop: [] }, params)).not.toThrow();
    expect(() => assertParamsHonourRequest({ max_completion_tokens: 16 }, params)).not.toThrow();
    expect(codeOf(() => assertParamsHonourRequest({ temperature: 0.5 }, params))).toBe('RECEIPT_PARAMS_MISMATCH');
    expect(codeOf(() => assertParamsHonourRequest({ stop: 'END' }, params))).toBe('RECEIPT_PARAMS_MISMATCH');
    expect(codeOf(() => assertParamsHonourRequest({ max_tokens: 17 }, params))).toBe('RECEIPT_PARAMS_MISMATCH');
  });

  it('digests any chat request the same after a JSON round trip, and only raises typed errors on garbage', () => {
    const message = fc.record({
      role: fc.constantFrom('system', 'user', 'assistant'),
      content: fc.string(),
    });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), fc.string(), (messages, model) => {
        const input = llmChatInput({ model, messages }, params);
        expect(llmInputDigest(parseLlmInput(JSON.parse(JSON.stringify(input))))).toBe(llmInputDigest(input));
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (garbage) => {
        const code = codeOf(() => parseLlmInput(garbage));
        expect(code === 'LLM_INPUT_INVALID' || code === 'CANONICAL_JSON_INVALID').toBe(true);
      }),
    );
  });
});
