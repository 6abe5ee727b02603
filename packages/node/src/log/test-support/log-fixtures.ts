/**
 * Shared test material for the log tests and the kill -9 child process: a fixed log key, the
 * node account its records name, and a record factory.
 */
import { createHash } from 'node:crypto';
import {
  createEd25519Signer,
  generateNoteKey,
  type InferenceRecord,
  type NoteSigner,
  type Trust,
} from '@verity/protocol';

export const ORIGIN = 'log-test.verity.local/log';
/** The seed of the test log key. */
export const SEED = new Uint8Array(32).fill(7);

export const signer: NoteSigner = createEd25519Signer(ORIGIN, SEED);
/** The C2SP verifier key of {@link signer}. */
export const VERIFIER_KEY: string = generateNoteKey(ORIGIN, SEED).verifierKey;
/** The node account the test records name (EIP-55). */
export const NODE = '0x9858EfFD232B4033E47d90003D41EC34EcaEda94';
/** Trust material under which the test receipts verify. */
export const TRUST: Trust = { nodes: [{ address: NODE, logKey: VERIFIER_KEY }] };

const MODEL = 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea';

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A valid record whose requestId is `${prefix}-${i}`. */
export function makeRecord(i: number, prefix = 'req'): InferenceRecord {
  return {
    version: 1,
    kind: 'onnx',
    mode: 'signed',
    model: MODEL,
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest: digest(`in-${prefix}-${i}`),
    outputDigest: digest(`out-${prefix}-${i}`),
    paramsDigest: digest('{}'),
    requestId: `${prefix}-${i}`,
    ...(i % 3 === 0 ? { clientNonce: (i % 256).toString(16).padStart(2, '0') } : {}),
    timestamp: 1_764_000_000_000 + i,
    node: NODE,
  };
}

/** The VerityError code `fn` throws (or its promise rejects with), `undefined` if it succeeds. */
export async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    const code = (e as { name?: unknown; code?: unknown }).code;
    if ((e as { name?: unknown }).name !== 'VerityError' || typeof code !== 'string') throw e;
    return code;
  }
}
