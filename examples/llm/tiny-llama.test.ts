/**
 * The GGUF writer against the spec's layout, and the tiny random-weight llama against
 * node-llama-cpp: it reads the file back, loads it, tokenizes any text, picks the ChatML wrapper,
 * generates deterministically and follows a JSON-schema grammar.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ControlledEvaluateInputItem,
  GgmlType,
  getLlama,
  type Llama,
  LlamaChatSession,
  type LlamaContext,
  LlamaLogLevel,
  type LlamaModel,
  readGgufFileInfo,
  resolveChatWrapper,
  type Token,
} from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelsDir } from '../files.js';
import { f16Bits, gguf, writeGguf } from './gguf-writer.js';
import {
  buildTinyLlama,
  byteToUnicode,
  CHATML_TEMPLATE,
  TINY_CHAT_FILE,
  TINY_LLAMA_DEFAULTS,
  tinyVocabulary,
} from './tiny-llama.js';

const modelPath = join(modelsDir(), TINY_CHAT_FILE);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
/** Compares big byte arrays by digest: `toEqual` walks them element by element (seconds for 0.5 MB). */
const digest = (bytes: Uint8Array) => `${bytes.length}:${createHash('sha256').update(bytes).digest('hex')}`;

describe('writeGguf', () => {
  it('lays out a one-key, one-tensor file as the GGUF spec says', () => {
    const bytes = writeGguf({
      metadata: { a: gguf.u32(7) },
      tensors: [{ name: 'x', dims: [2], type: 'f32', data: Float32Array.of(1, -2) }],
    });
    const expected = [
      '47475546', // magic "GGUF"
      '03000000', // version 3 (u32)
      '0100000000000000', // tensor count (u64)
      '0100000000000000', // metadata kv count (u64)
      '0100000000000000', // key length (u64)
      '61', // "a"
      '04000000', // value type UINT32
      '07000000', // 7
      '0100000000000000', // tensor name length
      '78', // "x"
      '01000000', // n_dimensions (u32)
      '0200000000000000', // ne[0] = 2 (u64)
      '00000000', // ggml type F32
      '0000000000000000', // offset in the data section (u64)
      '00'.repeat(96 - 74), // padding: the 74-byte header up to the 32-byte alignment
      '0000803f', // 1.0f
      '000000c0', // -2.0f
      '00'.repeat(24), // the tensor padded to 32 bytes
    ].join('');
    expect(hex(bytes)).toBe(expected);
  });

  it('honours general.alignment and rejects mismatched data', () => {
    const bytes = writeGguf({
      metadata: { 'general.alignment': gguf.u32(64) },
      tensors: [
        { name: 'a', dims: [3], type: 'f32', data: new Float32Array(3) },
        { name: 'b', dims: [1], type: 'f16', data: Float32Array.of(1) },
      ],
    });
    expect(bytes.length % 64).toBe(0);
    expect(hex(bytes.subarray(-64, -62))).toBe('003c'); // b, f16 1.0, starts 64 bytes after a
    expect(() =>
      writeGguf({ metadata: {}, tensors: [{ name: 'a', dims: [2], type: 'f32', data: new Float32Array(3) }] }),
    ).toThrow(RangeError);
    expect(() => writeGguf({ metadata: { k: gguf.u32(-1) }, tensors: [] })).toThrow(RangeError);
  });

  it('rounds float32 to IEEE 754 binary16 to nearest, ties to even', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [65504, 0x7bff], // largest finite half
      [65520, 0x7c00], // halfway to 2^16: rounds (to even) up to infinity
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even (zero)
      [1.5 * 2 ** -25, 0x0001],
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: ties to even
      [1 + 3 * 2 ** -11, 0x3c02],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NaN, 0x7e00],
    ];
    for (const [value, bits] of cases) expect(f16Bits(value), String(value)).toBe(bits);
  });

  it('node-llama-cpp reads back typed metadata and tensor infos', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gguf-writer-'));
    try {
      const path = join(dir, 'kinds.gguf');
      writeFileSync(
        path,
        writeGguf({
          metadata: {
            'general.architecture': gguf.str('llama'),
            'test.u8': { type: 'uint8', value: 200 },
            'test.i16': { type: 'int16', value: -3 },
            'test.i32': gguf.i32(-70000),
            'test.f32': gguf.f32(0.5),
            'test.f64': { type: 'float64', value: 0.1 },
            'test.bool': gguf.bool(true),
            'test.str': gguf.str('héllo 🎉'),
            'test.strings': gguf.strings(['a', '', 'Ġb']),
            'test.ints': gguf.i32s([1, -2, 3]),
            'test.floats': gguf.f32s([0.25, -1]),
          },
          tensors: [
            { name: 'w', dims: [4, 3], type: 'f16', data: new Float32Array(12) },
            { name: 'v', dims: [5], type: 'f32', data: new Float32Array(5) },
          ],
        }),
      );
      const info = await readGgufFileInfo(path, { logWarnings: false });
      expect(info.version).toBe(3);
      const test = (info.metadata as unknown as { test: Record<string, unknown> }).test;
      expect(test).toEqual({
        u8: 200,
        i16: -3,
        i32: -70000,
        f32: 0.5,
        f64: 0.1,
        bool: true,
        str: 'héllo 🎉',
        strings: ['a', '', 'Ġb'],
        ints: [1, -2, 3],
        floats: [0.25, -1],
      });
      expect(info.tensorInfo?.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.offset)])).toEqual([
        ['w', [4, 3], GgmlType.F16, 0],
        ['v', [5], GgmlType.F32, 32],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('buildTinyLlama', () => {
  it('is deterministic, and the committed tiny-chat.gguf is the default build', () => {
    const a = buildTinyLlama();
    expect(digest(buildTinyLlama())).toBe(digest(a));
    expect(digest(readFileSync(modelPath))).toBe(digest(a));
    expect(a.length).toBeLessThan(1 << 20);
    expect(digest(buildTinyLlama({ seed: 2 }))).not.toBe(digest(a));
  });

  it('the vocabulary spells every byte in GPT-2 byte-level form, then the control tokens', () => {
    const table = byteToUnicode();
    expect(new Set(table).size).toBe(256);
    // GPT-2's encoder.json spellings: space, newline, "!" and the 0xff byte
    expect([table[0x20], table[0x0a], table[0x21], table[0xff]]).toEqual(['Ġ', 'Ċ', '!', 'ÿ']);
    const vocab = tinyVocabulary();
    expect(vocab.tokens.slice(0, 256)).toEqual(table);
    expect(vocab.tokens.slice(-3)).toEqual(['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
    for (const merge of vocab.merges) expect(vocab.tokens).toContain(merge.replace(' ', ''));
  });

  it('node-llama-cpp reads back the architecture, chat template and tensors', async () => {
    const info = await readGgufFileInfo(modelPath, { logWarnings: false });
    const { general, llama, tokenizer } = info.metadata as unknown as {
      general: Record<string, unknown>;
      llama: Record<string, unknown>;
      tokenizer: { chat_template: string; ggml: Record<string, unknown> };
    };
    expect(general.architecture).toBe('llama');
    expect(general.name).toBe('verity-tiny-chat');
    expect(general.file_type).toBe(0);
    expect(llama.context_length).toBe(TINY_LLAMA_DEFAULTS.contextLength);
    expect(llama.block_count).toBe(TINY_LLAMA_DEFAULTS.layers);
    expect(tokenizer.chat_template).toBe(CHATML_TEMPLATE);
    expect(tokenizer.ggml.model).toBe('gpt2');
    const n = tinyVocabulary().tokens.length;
    const { embedding: e, feedForward: ff, heads, kvHeads } = TINY_LLAMA_DEFAULTS;
    const kv = (e / heads) * kvHeads;
    const tensors = new Map(info.tensorInfo?.map((t) => [t.name, t.dimensions.map(Number)]));
    expect(tensors.size).toBe(3 + 9 * TINY_LLAMA_DEFAULTS.layers);
    expect(tensors.get('token_embd.weight')).toEqual([e, n]);
    expect(tensors.get('output.weight')).toEqual([e, n]);
    expect(tensors.get('blk.1.attn_k.weight')).toEqual([e, kv]);
    expect(tensors.get('blk.1.ffn_down.weight')).toEqual([ff, e]);
    expect(info.tensorInfo?.every((t) => Number(t.offset) % 32 === 0 && t.ggmlType === GgmlType.F32)).toBe(true);
  });
});

describe('tiny-chat.gguf in node-llama-cpp', () => {
  let llama: Llama;
  let model: LlamaModel;
  let context: LlamaContext;
  let session: LlamaChatSession;

  beforeAll(async () => {
    // maxThreads 1: node-llama-cpp's CPU default is at least 4 threads, which on a 2-core
    // machine makes every token ~50 times slower; one thread is plenty for this model.
    llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath });
    context = await model.createContext({ contextSize: 1024 });
    session = new LlamaChatSession({ contextSequence: context.getSequence() });
  });

  afterAll(async () => {
    session?.dispose();
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
  });

  it('tokenizes and detokenizes any text, and parses the control tokens', () => {
    const texts = [
      'Hello, world! The answer is 42.',
      '{"ok": true, "tag": "a", "n": [1, 2.5e-3, null]}',
      'naïve café – 日本語のテキスト, Ελληνικά, русский',
      'emoji 🎉👩🏽‍💻🇪🇺 and a\ttab\r\nCRLF',
      '\u0000\u0001\u007f control bytes and trailing spaces   ',
      '<|im_end|> as plain text',
    ];
    for (const text of texts) {
      const tokens = model.tokenize(text);
      expect(model.detokenize(tokens), text).toBe(text);
    }
    const { imStart, imEnd } = tinyVocabulary().special;
    expect(model.tokenize('<|im_start|>user\n', true)[0]).toBe(imStart);
    expect(model.tokenize('<|im_end|>', true)).toEqual([imEnd]);
    expect(model.tokenize('<|im_end|>', false)).not.toContain(imEnd);
    expect(model.tokens.eos).toBe(imEnd);
  });

  it('resolves the ChatML chat wrapper from the template', () => {
    expect(resolveChatWrapper(model).wrapperName).toBe('ChatML');
    expect(session.chatWrapper.wrapperName).toBe('ChatML');
  });

  it('keeps the logits finite, spread out, and biased as designed', async () => {
    const own = await model.createContext({ contextSize: 256 });
    try {
      const prompt = model.tokenize('<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\n', true);
      const input: ControlledEvaluateInputItem[] = prompt.map((token, i) =>
        i === prompt.length - 1 ? [token, { generateNext: { logits: true } }] : token,
      );
      const logits = (await own.getSequence().controlledEvaluate(input)).at(-1)?.next.logits;
      expect(logits?.size).toBe(tinyVocabulary().tokens.length);
      const values = [...(logits?.values() ?? [])];
      expect(values.every(Number.isFinite)).toBe(true);
      const printable = [...(logits?.entries() ?? [])].filter(([t]) => t >= 0x20 && t < 0x7f).map(([, v]) => v);
      const mean = printable.reduce((a, b) => a + b, 0) / printable.length;
      const sd = Math.sqrt(printable.reduce((a, b) => a + (b - mean) ** 2, 0) / printable.length);
      expect(sd).toBeGreaterThan(1); // random output weights give logits of sd ~2
      expect(sd).toBeLessThan(4);
      const { imStart } = tinyVocabulary().special;
      expect(logits?.get(0 as Token)).toBeLessThan(mean - 4); // the NUL byte: bias −8
      expect(logits?.get(imStart as Token)).toBeLessThan(mean - 4);
    } finally {
      await own.dispose();
    }
  });

  it('generates the same text twice, greedy or seeded, and streams it in chunks', async () => {
    const ask = async (prompt: string, options: { temperature: number; seed?: number }) => {
      session.resetChatHistory();
      const chunks: string[] = [];
      const text = await session.prompt(prompt, { maxTokens: 48, ...options, onTextChunk: (c) => chunks.push(c) });
      expect(chunks.join('')).toBe(text);
      return text;
    };
    const greedy = await ask('Write a haiku about the sea.', { temperature: 0 });
    expect(greedy.length).toBeGreaterThan(0);
    expect(await ask('Write a haiku about the sea.', { temperature: 0 })).toBe(greedy);
    const sampled = await ask('Write a haiku about the sea.', { temperature: 1, seed: 7 });
    expect(await ask('Write a haiku about the sea.', { temperature: 1, seed: 7 })).toBe(sampled);
  });

  it('free generation ends on its own with <|im_end|>', async () => {
    const reasons: string[] = [];
    for (const prompt of ['Hello!', 'What is 2+2?', 'Tell me a story']) {
      session.resetChatHistory();
      const { stopReason } = await session.promptWithMeta(prompt, { maxTokens: 200, temperature: 0 });
      reasons.push(stopReason);
    }
    expect(reasons).toContain('eogToken');
  });

  it('follows a JSON schema grammar', async () => {
    const grammar = await llama.createGrammarForJsonSchema({
      type: 'object',
      properties: { ok: { type: 'boolean' }, tag: { enum: ['a', 'b'] } },
      required: ['ok', 'tag'],
      additionalProperties: false,
    } as const);
    for (const options of [{ temperature: 0 }, { temperature: 1, seed: 1 }, { temperature: 1, seed: 2 }]) {
      session.resetChatHistory();
      const text = await session.prompt('Answer in JSON.', { grammar, maxTokens: 64, ...options });
      const value = grammar.parse(text);
      expect(JSON.parse(text)).toEqual(value);
      expect(Object.keys(value).sort()).toEqual(['ok', 'tag']);
      expect(typeof value.ok).toBe('boolean');
      expect(['a', 'b']).toContain(value.tag);
    }
  });
});
