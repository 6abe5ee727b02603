/**
 * An in-memory signed log: appends records, signs checkpoints, hands out receipts. It is the
 * reference for how a node assembles receipts (the node keeps the same tree durably on disk), and
 * what tests, fixtures, benchmarks and the demo use.
 */
import { toHex } from './bytes.js';
import { signCheckpoint } from './checkpoint.js';
import { fail } from './errors.js';
import { createMemoryTree } from './merkle.js';
import type { NoteSigner } from './note.js';
import type { Receipt } from './receipt.js';
import { type InferenceRecord, parseRecord, recordLeafHash } from './record.js';

/** A signed append-only log held in memory. */
export interface MemoryLog {
  /** The log origin: the signer's key name. */
  readonly origin: string;
  readonly size: number;
  /** Appends a record and returns its leaf index. */
  append(record: InferenceRecord): number;
  /** Signs and returns a checkpoint note for the current size (cached until the next append). */
  checkpoint(): string;
  /** A receipt for the record at `index`, against the current checkpoint. */
  receipt(index: number): Receipt;
  /** Consistency proof (hex) between two sizes. */
  consistencyProof(size1: number, size2?: number): string[];
}

/**
 * Creates a {@link MemoryLog} whose checkpoints are signed by `signer` (origin = key name).
 *
 * @example
 * ```ts
 * const log = createMemoryLog(createEd25519Signer('example.com/log', seed));
 * const i = log.append(record);
 * const receipt = log.receipt(i);
 * ```
 */
export function createMemoryLog(signer: NoteSigner): MemoryLog {
  const tree = createMemoryTree();
  const records: InferenceRecord[] = [];
  let note: { size: number; text: string } | undefined;
  const log: MemoryLog = {
    origin: signer.name,
    get size() {
      return tree.size;
    },
    append(record) {
      const r = parseRecord(record);
      records.push(r);
      return tree.append(recordLeafHash(r));
    },
    checkpoint() {
      if (note?.size !== tree.size) {
        note = {
          size: tree.size,
          text: signCheckpoint({ origin: signer.name, size: tree.size, rootHash: tree.root(), extensions: [] }, signer),
        };
      }
      return note.text;
    },
    receipt(index) {
      const record = records[index];
      if (record === undefined)
        fail('MERKLE_INDEX_OUT_OF_RANGE', 'no record at this index', { index, size: tree.size });
      return {
        record,
        leafIndex: index,
        inclusionProof: tree.inclusionProof(index).map(toHex),
        checkpoint: log.checkpoint(),
      };
    },
    consistencyProof(size1, size2 = tree.size) {
      return tree.consistencyProof(size1, size2).map(toHex);
    },
  };
  return log;
}
