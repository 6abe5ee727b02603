/**
 * Re-executing a record (docs/protocol.md §15.8): what a juror votes and what an auditor compares,
 * one function per record kind. Each takes the canonical input bytes (the `Challenged` event's, or
 * a payload's: they hash to the record's `inputDigest`), runs them, and gives the SHA-256 of the
 * canonical output bytes — the `outputDigest` an honest node would have logged — or says why it
 * abstains.
 *
 * - `onnx`: the tensors of §2.3, run on the model; the digest of their canonical encoding.
 * - `llm`: the RFC 8785 JSON of §10.2, turned back into the job the OpenAI route would give the
 *   runtime (the same parsers), run with its params (seed and effective `max_tokens` included);
 *   the digest of the §10.3 output (tool call ids from the input digest, as the node makes them).
 *
 * **The profile rule for `llm`** (§10.4): the tokens reproduce only on the same runtime, version
 * and execution profile. A re-execution that gives the record's digest proves the record right
 * whatever ran it, so it is voted. One that gives another digest proves a lie only when the
 * record's `runtime` (id, version, profile) is this node's: otherwise the difference may be
 * the other build's or device's floating point, and voting it could slash an honest node, so the
 * juror abstains (a silent juror loses its deposit; if every juror abstains the dispute is
 * undecided and the challenger gets its bond back).
 */
import {
  canonicalJsonBytes,
  decodeTensors,
  encodeTensors,
  type InferenceRecord,
  isVerityError,
  type LlmInput,
  parseLlmInput,
  sha256,
  type TensorMap,
  toHex,
  VerityError,
} from '@verity/protocol';
import type { Hex } from 'viem';
import { chatParts, llmOutputOf } from '../api/llm-request.js';
import type { LlmJob, LlmResult } from '../runtimes/llm.js';

/** A re-execution's verdict: the output digest computed (`0x` hex), or why there is none. */
export type Reexecution = { readonly outputDigest: Hex } | { readonly abstain: string };

const digestOf = (bytes: Uint8Array): Hex => `0x${toHex(sha256(bytes))}`;

/**
 * An `onnx` record: its input tensors run by `run`.
 *
 * @example
 * ```ts
 * const { outputDigest } = await reexecuteOnnx(input, (tensors) => model.run(tensors));
 * ```
 */
export async function reexecuteOnnx(
  input: Uint8Array,
  run: (inputs: TensorMap) => Promise<TensorMap>,
): Promise<{ outputDigest: Hex }> {
  return { outputDigest: digestOf(encodeTensors(await run(decodeTensors(input)))) };
}

/** Where an `llm` record is re-executed: the runtime it runs on, and how to run a job there. */
export interface LlmHost {
  /** The runtime's id, version and (settled) execution profile, as records carry them. */
  readonly runtime: () => InferenceRecord['runtime'];
  /** The route's limits on messages (the same checks as for a request). */
  readonly limits: { readonly maxMessages: number; readonly maxPromptChars: number };
  run(job: Omit<LlmJob, 'onText' | 'signal'>): Promise<LlmResult>;
}

/** Errors that say the input itself cannot run (not a passing failure): abstain, do not retry. */
const INPUT_ERRORS = new Set([
  'LLM_INPUT_INVALID',
  'INVALID_ARGUMENT',
  'JSON_SCHEMA_INVALID',
  'JSON_SCHEMA_UNSUPPORTED',
  'CONTEXT_LENGTH_EXCEEDED',
]);

/** The canonical LLM input (§10.2) from its bytes; `LLM_INPUT_INVALID` when they are not one. */
export function decodeLlmInput(bytes: Uint8Array): LlmInput {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new VerityError('LLM_INPUT_INVALID', 'the input bytes are not JSON text', { cause: e });
  }
  return parseLlmInput(value);
}

/**
 * An `llm` record: its canonical input run on `host` with the record's params; the profile rule
 * above decides between the digest and an abstention.
 *
 * @example
 * ```ts
 * const verdict = await reexecuteLlm(record, input, { runtime, limits, run: (job) => model.run(job) });
 * ```
 */
export async function reexecuteLlm(record: InferenceRecord, input: Uint8Array, host: LlmHost): Promise<Reexecution> {
  let result: LlmResult;
  let parsed: LlmInput;
  try {
    parsed = decodeLlmInput(input);
    // The job the route gives the runtime for this request; max_tokens is the effective one the
    // record's params hold, so it is "given" (the same limit as the run that logged it).
    const job: Omit<LlmJob, 'onText' | 'signal'> =
      parsed.endpoint === 'completions'
        ? { endpoint: 'completions', prompt: parsed.prompt, params: parsed.params, maxTokensGiven: true }
        : {
            endpoint: 'chat.completions',
            ...chatParts(parsed as unknown as Record<string, unknown>, host.limits),
            params: parsed.params,
            maxTokensGiven: true,
          };
    result = await host.run(job);
  } catch (e) {
    if (isVerityError(e) && INPUT_ERRORS.has(e.code)) return { abstain: `the input does not run: ${e.code}` };
    throw e;
  }
  const outputDigest = digestOf(canonicalJsonBytes(llmOutputOf(parsed.endpoint, result, toHex(sha256(input)))));
  if (outputDigest.slice(2) === record.outputDigest.replace(/^0x/, '').toLowerCase()) return { outputDigest };
  const mine = host.runtime();
  const theirs = record.runtime;
  if (mine.id === theirs.id && mine.version === theirs.version && mine.profile === theirs.profile) {
    return { outputDigest };
  }
  return {
    abstain: `another output on another runtime (record ${theirs.id} ${theirs.version} ${theirs.profile}, here ${mine.id} ${mine.version} ${mine.profile}): not evidence of a lie (docs/protocol.md §10.4)`,
  };
}
