/**
 * The JSON text of a log receipt, assembled from strings: byte for byte `JSON.stringify(receipt)`,
 * at a fraction of its cost on the `/v1/infer` hot path. Every receipt of a batch carries the same
 * signed checkpoint (a ~250-byte note that needs escaping) and, on one node, the same runtime,
 * model and node address: their JSON is produced once and reused while they stay the same. The
 * other fields are, by `parseRecord`'s checks, digits, hex, base32 or `[A-Za-z0-9._:-]` text that
 * JSON writes as is.
 *
 * For receipts the log returns: their record came from `parseRecord` (checked: anything else goes
 * through `JSON.stringify`) and their proof hashes are hex. Tests check it against
 * `JSON.stringify` on generated records, runtimes with quotes and backslashes included.
 */
import { parseRecord, type Receipt, type RuntimeInfo } from '@verity/protocol';

let lastNote: string | undefined;
let lastNoteJson = '';
let lastRuntime: RuntimeInfo | undefined;
let lastRuntimeJson = '';
let lastModel: string | undefined;
let lastModelJson = '';

/** Whether `r` is a record `parseRecord` returned (it returns those as they are, at the cost of one lookup). */
function isParsed(r: unknown): boolean {
  try {
    return parseRecord(r) === r;
  } catch {
    return false;
  }
}

/** `JSON.stringify(receipt)` for a receipt of the log (its record validated by `parseRecord`). */
export function receiptJson(receipt: Receipt): string {
  const r = receipt.record;
  const { checkpoint, inclusionProof, leafIndex } = receipt;
  // Anything not made as the log makes it (a record that skipped parseRecord) takes the slow path.
  // A paid record, or a receipt carrying a payment, is rare next to free ones: the slow path too.
  if (
    !isParsed(r) ||
    typeof checkpoint !== 'string' ||
    !Number.isSafeInteger(leafIndex) ||
    r.payment !== undefined ||
    receipt.payment !== undefined
  ) {
    return JSON.stringify(receipt);
  }
  if (checkpoint !== lastNote) {
    lastNote = checkpoint;
    lastNoteJson = JSON.stringify(checkpoint);
  }
  if (r.runtime !== lastRuntime) {
    lastRuntime = r.runtime;
    lastRuntimeJson = JSON.stringify(r.runtime);
  }
  if (r.model !== lastModel) {
    lastModel = r.model;
    lastModelJson = JSON.stringify(r.model);
  }
  const proof = inclusionProof.length === 0 ? '[]' : `["${inclusionProof.join('","')}"]`;
  const nonce = r.clientNonce === undefined ? '' : `,"clientNonce":"${r.clientNonce}"`;
  return (
    `{"record":{"version":${r.version},"kind":"${r.kind}","mode":"${r.mode}","model":${lastModelJson},` +
    `"runtime":${lastRuntimeJson},"inputDigest":"${r.inputDigest}","outputDigest":"${r.outputDigest}",` +
    `"paramsDigest":"${r.paramsDigest}","requestId":"${r.requestId}"${nonce},"timestamp":${r.timestamp},` +
    `"node":"${r.node}"},"leafIndex":${leafIndex},"inclusionProof":${proof},"checkpoint":${lastNoteJson}}`
  );
}
