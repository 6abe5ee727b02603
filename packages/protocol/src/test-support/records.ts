/** fast-check arbitraries for inference records, shared by the protocol's and the node's tests. */
import fc from 'fast-check';
import { toHex } from '../bytes.js';
import { type InferenceRecord, parseRecord, RECORD_KINDS, RECORD_MODES } from '../record.js';

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex);
const ascii = (max: number) => fc.stringMatching(new RegExp(`^[\\x21-\\x7e]{1,${max}}$`));

/** Valid records over every kind, mode and field range (manifest CIDs drawn from `models`). */
export function recordArb(
  models: readonly string[] = [
    'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
    'bagaaierah4ejbfw4cszcqwlwkh5wp4ojvd4wdfo5hgoraqpd6ibakfl5fqnq',
  ],
): fc.Arbitrary<InferenceRecord> {
  return fc
    .record({
      kind: fc.constantFrom(...RECORD_KINDS),
      mode: fc.constantFrom(...RECORD_MODES),
      model: fc.constantFrom(...models),
      runtime: fc.record({ id: ascii(64), version: ascii(64), profile: ascii(32) }),
      inputDigest: hex32,
      outputDigest: hex32,
      paramsDigest: hex32,
      requestId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/),
      nonce: fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }).map(toHex), { nil: undefined }),
      timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      node: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${toHex(b)}`),
      payment: fc.option(
        fc.record({ digest: hex32, amount: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }).map(String) }),
        { nil: undefined },
      ),
    })
    .map(({ nonce, payment, ...r }) =>
      parseRecord({
        version: 1,
        ...r,
        ...(nonce === undefined ? {} : { clientNonce: nonce }),
        ...(payment === undefined ? {} : { payment }),
      }),
    );
}
