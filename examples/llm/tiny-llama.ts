/**
 * A tiny llama-architecture chat model with random weights, written as GGUF v3: small enough to
 * commit (`examples/models/tiny-chat.gguf`, ~0.5 MB) and fast enough for tests, yet a real model
 * for llama.cpp / node-llama-cpp: it loads, tokenizes any UTF-8 text, renders a ChatML chat
 * template and generates (nonsense) text, deterministically.
 *
 * - Tokenizer: GPT-2 style byte-level BPE (`tokenizer.ggml.model = "gpt2"`): the 256 byte tokens
 *   (ids 0–255, in GPT-2's bytes-to-unicode spelling) can spell any byte string, so every UTF-8
 *   text tokenizes and a grammar (JSON, JSON schema) always has tokens to choose from; a few merges
 *   for common English and JSON pairs; then the control tokens `<|endoftext|>`, `<|im_start|>`,
 *   `<|im_end|>`.
 * - Chat template: plain ChatML, which node-llama-cpp recognises as its `ChatMLChatWrapper`.
 * - Weights: from the seeded PRNG in `deterministic.ts`, uniform with the variance of a
 *   1/√fan_in init (Q and K twice that), residual projections scaled by 1/√(2·layers), norms 1:
 *   activations stay O(1).
 * - Channel 0 of the residual stream is a constant "bias channel" (every token embeds it as 1, no
 *   layer reads or writes it), so column 0 of `output.weight` acts as a per-token logit bias (llama
 *   has no `output.bias`): `<|im_end|>` is favoured so that free generation ends now and then,
 *   bytes outside printable ASCII and the other control tokens are disfavoured so that sampled
 *   text is mostly readable (a grammar can still pick them).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRandom } from '../deterministic.js';
import { isMain, modelsDir } from '../files.js';
import { type GgufTensor, type GgufTensorType, type GgufValue, gguf, writeGguf } from './gguf-writer.js';

export interface TinyLlamaOptions {
  /** `llama.block_count` (default 2). */
  readonly layers?: number;
  /** `llama.embedding_length` (default 64). */
  readonly embedding?: number;
  /** `llama.attention.head_count` (default 4); must divide `embedding`. */
  readonly heads?: number;
  /** `llama.attention.head_count_kv` (default 2); must divide `heads`. */
  readonly kvHeads?: number;
  /** `llama.feed_forward_length` (default 128). */
  readonly feedForward?: number;
  /** `llama.context_length`, the training context (default 2048). */
  readonly contextLength?: number;
  /** PRNG seed for the weights (default 1). */
  readonly seed?: number;
  /** Storage type of the matrices (default `f32`); norms stay f32. */
  readonly tensorType?: GgufTensorType;
  /**
   * Logit bias (roughly, in logits) of `<|im_end|>`, the end of a turn. The default 1 ends a turn
   * after a few dozen tokens (greedy or sampled at temperature 1, for most prompts); a large
   * negative value (say −30) keeps generation going to the token limit, e.g. for benchmarks.
   */
  readonly endOfTurnBias?: number;
  /** `general.name` (default `verity-tiny-chat`). */
  readonly name?: string;
}

export const TINY_LLAMA_DEFAULTS = {
  layers: 2,
  embedding: 64,
  heads: 4,
  kvHeads: 2,
  feedForward: 128,
  contextLength: 2048,
  seed: 1,
  tensorType: 'f32',
  endOfTurnBias: 1,
  name: 'verity-tiny-chat',
} as const satisfies Required<TinyLlamaOptions>;

/** ChatML, as in the ChatML spec and many models' `tokenizer_config.json`. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/**
 * Texts whose byte-level BPE merges (left to right, each one a new token) join the vocabulary:
 * a few frequent English words and JSON punctuation, so that common text takes fewer tokens.
 */
const MERGE_WORDS = [
  ' the',
  ' a',
  ' to',
  ' of',
  ' and',
  ' in',
  ' is',
  ' it',
  ' you',
  ' I',
  'ing',
  ' Hello',
  ' world',
  'true',
  'false',
  'null',
  '{"',
  '":',
  '",',
  '"}',
  ' "',
  '\n\n',
];

// llama.cpp token types (llama_token_type / tokenizer.ggml.token_type)
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;

/**
 * GPT-2's bytes-to-unicode table: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * (controls, space, 0x7f–0xa0, 0xad) for U+0100 onwards, in byte order, so that every byte is one
 * visible character (space is `Ġ`, newline `Ċ`).
 */
export function byteToUnicode(): string[] {
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.push(String.fromCodePoint(printable ? b : next++));
  }
  return table;
}

export interface TinyVocabulary {
  readonly tokens: string[];
  readonly types: number[];
  readonly merges: string[];
  /** Ids of `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`. */
  readonly special: { endOfText: number; imStart: number; imEnd: number };
}

/** The vocabulary: 256 byte tokens (id = byte), the merged tokens, then the control tokens. */
export function tinyVocabulary(): TinyVocabulary {
  const bytes = byteToUnicode();
  const tokens = [...bytes];
  const merges: string[] = [];
  const known = new Set(tokens);
  const utf8 = new TextEncoder();
  for (const word of MERGE_WORDS) {
    const symbols = Array.from(utf8.encode(word), (b) => bytes[b]!);
    let left = symbols[0]!;
    for (const right of symbols.slice(1)) {
      const merged = left + right;
      if (!known.has(merged)) {
        merges.push(`${left} ${right}`);
        tokens.push(merged);
        known.add(merged);
      }
      left = merged;
    }
  }
  const types = tokens.map(() => TOKEN_NORMAL);
  const first = tokens.length;
  for (const s of SPECIAL_TOKENS) {
    tokens.push(s);
    types.push(TOKEN_CONTROL);
  }
  return { tokens, types, merges, special: { endOfText: first, imStart: first + 1, imEnd: first + 2 } };
}

/**
 * The GGUF bytes of a tiny random-weight llama chat model. Same options, same bytes.
 *
 * @example
 * ```ts
 * writeFileSync('tiny-chat.gguf', buildTinyLlama());
 * const bench = buildTinyLlama({ layers: 8, embedding: 512, heads: 8, kvHeads: 4, feedForward: 1408 });
 * ```
 */
export function buildTinyLlama(options: TinyLlamaOptions = {}): Uint8Array {
  const o = { ...TINY_LLAMA_DEFAULTS, ...options };
  const { layers, embedding, heads, kvHeads, feedForward, contextLength } = o;
  for (const [key, value] of Object.entries({ layers, embedding, heads, kvHeads, feedForward, contextLength })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${key} must be a positive integer`);
  }
  if (embedding % heads !== 0) throw new RangeError('heads must divide embedding');
  if (heads % kvHeads !== 0) throw new RangeError('kvHeads must divide heads');
  const headDim = embedding / heads;
  if (headDim % 2 !== 0) throw new RangeError('embedding / heads must be even (RoPE rotates pairs)');
  const kvDim = headDim * kvHeads;

  const vocab = tinyVocabulary();
  const nVocab = vocab.tokens.length;
  const random = createRandom(o.seed);
  const SQRT3 = Math.sqrt(3);

  /** Uniform weights with standard deviation `std` (a uniform on [−√3·std, √3·std]). */
  const uniform = (count: number, std: number): Float32Array => {
    const out = new Float32Array(count);
    const a = SQRT3 * std;
    for (let i = 0; i < count; i++) out[i] = (2 * random() - 1) * a;
    return out;
  };
  const ones = (count: number) => new Float32Array(count).fill(1);
  const tensor = (name: string, dims: number[], data: Float32Array, type: GgufTensorType = o.tensorType) =>
    ({ name, dims, type, data }) satisfies GgufTensor;

  /**
   * A [rows = out, cols = in] matrix (ggml dims [in, out]) with std scale/√in. The bias channel 0
   * is never read (a reader's input column 0 is zero) nor written (a writer's output row 0 is zero).
   */
  const matrix = (inputs: number, outputs: number, scale: number, residual: 'reads' | 'writes'): Float32Array => {
    const m = uniform(inputs * outputs, scale / Math.sqrt(inputs));
    if (residual === 'reads') for (let r = 0; r < outputs; r++) m[r * inputs] = 0;
    else m.fill(0, 0, inputs);
    return m;
  };

  // Token embeddings: std 1 with channel 0 fixed at 1.
  const embd = uniform(nVocab * embedding, 1);
  for (let t = 0; t < nVocab; t++) embd[t * embedding] = 1;

  // Q and K at twice the usual scale: attention scores of std ~4 instead of ~1, so attention is
  // peaked rather than a near-uniform average and the output depends on the prompt.
  const QK_SCALE = 2;
  const residualScale = 1 / Math.sqrt(2 * layers);
  const blocks: GgufTensor[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `blk.${i}.`;
    blocks.push(
      tensor(`${p}attn_norm.weight`, [embedding], ones(embedding), 'f32'),
      tensor(`${p}attn_q.weight`, [embedding, embedding], matrix(embedding, embedding, QK_SCALE, 'reads')),
      tensor(`${p}attn_k.weight`, [embedding, kvDim], matrix(embedding, kvDim, QK_SCALE, 'reads')),
      tensor(`${p}attn_v.weight`, [embedding, kvDim], matrix(embedding, kvDim, 1, 'reads')),
      tensor(`${p}attn_output.weight`, [embedding, embedding], matrix(embedding, embedding, residualScale, 'writes')),
      tensor(`${p}ffn_norm.weight`, [embedding], ones(embedding), 'f32'),
      tensor(`${p}ffn_gate.weight`, [embedding, feedForward], matrix(embedding, feedForward, 1, 'reads')),
      tensor(`${p}ffn_up.weight`, [embedding, feedForward], matrix(embedding, feedForward, 1, 'reads')),
      tensor(
        `${p}ffn_down.weight`,
        [feedForward, embedding],
        matrix(feedForward, embedding, 2 * residualScale, 'writes'),
      ),
    );
  }

  // Output: random logits of std ~2, plus per-token biases through the bias channel. After the
  // final RMS norm, channel 0 holds 1/rms(residual) ≈ 1/√(1 + 1 − 1/n): the residual is the
  // embedding (rms 1) plus the blocks' writes (rms ~1 in total, by the residual scaling).
  const output = uniform(nVocab * embedding, 2 / Math.sqrt(embedding));
  const channel = 1 / Math.sqrt(2 - 1 / embedding);
  const bias = (token: number, logits: number) => {
    output[token * embedding] = logits / channel;
  };
  for (let t = 0; t < nVocab; t++) bias(t, 0);
  for (let b = 0; b < 256; b++) if (b < 0x20 || b > 0x7e) bias(b, b === 0x0a ? 0 : -8);
  bias(vocab.special.endOfText, -8);
  bias(vocab.special.imStart, -8);
  bias(vocab.special.imEnd, o.endOfTurnBias);

  const metadata: Record<string, GgufValue> = {
    'general.architecture': gguf.str('llama'),
    'general.type': gguf.str('model'),
    'general.name': gguf.str(o.name),
    'general.description': gguf.str(
      'Random weights for testing: a tiny llama-architecture chat model (ChatML, byte-level BPE). It generates nonsense.',
    ),
    'general.license': gguf.str('Apache-2.0'),
    'general.file_type': gguf.u32(o.tensorType === 'f32' ? 0 : 1), // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16
    'general.alignment': gguf.u32(32),
    'llama.vocab_size': gguf.u32(nVocab),
    'llama.context_length': gguf.u32(contextLength),
    'llama.embedding_length': gguf.u32(embedding),
    'llama.block_count': gguf.u32(layers),
    'llama.feed_forward_length': gguf.u32(feedForward),
    'llama.rope.dimension_count': gguf.u32(headDim),
    'llama.rope.freq_base': gguf.f32(10000),
    'llama.attention.head_count': gguf.u32(heads),
    'llama.attention.head_count_kv': gguf.u32(kvHeads),
    'llama.attention.layer_norm_rms_epsilon': gguf.f32(1e-5),
    'tokenizer.ggml.model': gguf.str('gpt2'),
    'tokenizer.ggml.pre': gguf.str('gpt-2'),
    'tokenizer.ggml.tokens': gguf.strings(vocab.tokens),
    'tokenizer.ggml.token_type': gguf.i32s(vocab.types),
    'tokenizer.ggml.merges': gguf.strings(vocab.merges),
    'tokenizer.ggml.bos_token_id': gguf.u32(vocab.special.endOfText),
    'tokenizer.ggml.eos_token_id': gguf.u32(vocab.special.imEnd),
    'tokenizer.ggml.eot_token_id': gguf.u32(vocab.special.imEnd),
    'tokenizer.ggml.padding_token_id': gguf.u32(vocab.special.endOfText),
    'tokenizer.ggml.add_bos_token': gguf.bool(false),
    'tokenizer.ggml.add_eos_token': gguf.bool(false),
    'tokenizer.chat_template': gguf.str(CHATML_TEMPLATE),
  };

  return writeGguf({
    metadata,
    tensors: [
      tensor('token_embd.weight', [embedding, nVocab], embd),
      tensor('output_norm.weight', [embedding], ones(embedding), 'f32'),
      tensor('output.weight', [embedding, nVocab], output),
      ...blocks,
    ],
  });
}

/** The committed model's file name in `examples/models/`. */
export const TINY_CHAT_FILE = 'tiny-chat.gguf';

/** Writes `tiny-chat.gguf` (the default options) into `dir` and returns its bytes. */
export function writeTinyChat(dir: string = modelsDir()): Uint8Array {
  const bytes = buildTinyLlama();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, TINY_CHAT_FILE), bytes);
  console.log(`tiny-chat: random-weight llama (ChatML), ${bytes.length} bytes -> ${join(dir, TINY_CHAT_FILE)}`);
  return bytes;
}

if (isMain(import.meta.url)) writeTinyChat();
