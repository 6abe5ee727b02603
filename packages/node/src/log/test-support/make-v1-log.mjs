/**
 * Writes `v1-log/`, the fixture of a log directory in the format before write-ahead frames (a
 * journal of note frames, `records` fsynced per batch), with the log code of main at 435ab91:
 *
 *   git worktree add /tmp/v1 435ab91 && (cd /tmp/v1 && npm ci && npx tsc -b packages/node)
 *   node packages/node/src/log/test-support/make-v1-log.mjs /tmp/v1
 *
 * Three batches (5, 7 and 9 records of `makeRecord(i, 'v1')`), closed: 21 records.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const checkout = process.argv[2];
const { openLog } = await import(join(checkout, 'packages/node/dist/log/index.js'));
const { createEd25519Signer } = await import(join(checkout, 'packages/protocol/dist/index.js'));
// As log-fixtures.ts (signer, makeRecord).
const signer = createEd25519Signer('log-test.verity.local/log', new Uint8Array(32).fill(7));
const digest = (text) => createHash('sha256').update(text).digest('hex');
const makeRecord = (i, prefix) => ({
  version: 1,
  kind: 'onnx',
  mode: 'signed',
  model: 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
  runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
  inputDigest: digest(`in-${prefix}-${i}`),
  outputDigest: digest(`out-${prefix}-${i}`),
  paramsDigest: digest('{}'),
  requestId: `${prefix}-${i}`,
  ...(i % 3 === 0 ? { clientNonce: (i % 256).toString(16).padStart(2, '0') } : {}),
  timestamp: 1_764_000_000_000 + i,
  node: '0x9858EfFD232B4033E47d90003D41EC34EcaEda94',
});
const dir = join(dirname(fileURLToPath(import.meta.url)), 'v1-log');
fs.rmSync(dir, { recursive: true, force: true });
const log = await openLog({ dir, signer });
let i = 0;
for (const n of [5, 7, 9]) {
  await Promise.all(Array.from({ length: n }, () => log.append(makeRecord(i++, 'v1'))));
}
await log.close();
fs.rmSync(join(dir, 'lock'), { force: true });
