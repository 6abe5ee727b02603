/**
 * The binary record encoding (docs/protocol.md §5.2) of a record that `parseRecord` already
 * validated: the protocol's `encodeRecord` on Node's `Buffer`, several times faster. The append
 * path of a loaded node encodes every record once, and the portable encoder (CID parsing, varints,
 * per-character copies) was a third of its CPU time. The model CID and node address bytes are
 * memoised: a node logs few distinct models under one address. Tests check this byte for byte
 * against `encodeRecord`; a record version other than 1, or a paid record, falls back to it.
 *
 * It returns the leaf hash input, `0x00 ‖ record` (RFC 6962 §2.1), so the leaf is hashed
 * without another copy; the record bytes are its `subarray(1)`.
 */
import { cidToBytes, encodeRecord, type InferenceRecord, parseCid, RECORD_KINDS, RECORD_MODES } from '@verity/protocol';

/** Fixed part of a version-1 record (§5.2). */
const FIXED = 131;
const MAGIC = Buffer.from('VREC', 'latin1');
const MAX_CACHED = 256;
const models = new Map<string, Buffer>();
const nodes = new Map<string, Buffer>();

function memo(cache: Map<string, Buffer>, key: string, make: () => Uint8Array): Buffer {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size >= MAX_CACHED) cache.clear();
    v = Buffer.from(make());
    cache.set(key, v);
  }
  return v;
}

function text(out: Buffer, at: number, s: string): number {
  out[at] = s.length;
  out.write(s, at + 1, 'latin1');
  return at + 1 + s.length;
}

/** `0x00 ‖ encodeRecord(record)` for a record returned by `parseRecord` (not checked again). */
export function encodeLeafData(r: InferenceRecord): Buffer {
  // Another version, or a paid record (its seventh field; rare next to free ones): the portable encoder.
  if (r.version !== 1 || r.payment !== undefined) {
    const bytes = encodeRecord(r);
    const out = Buffer.allocUnsafe(1 + bytes.length);
    out[0] = 0;
    out.set(bytes, 1);
    return out;
  }
  const model = memo(models, r.model, () => cidToBytes(parseCid(r.model)));
  const node = memo(nodes, r.node, () => Buffer.from(r.node.slice(2), 'hex'));
  const nonce = r.clientNonce === undefined ? 0 : r.clientNonce.length / 2;
  const { id, version, profile } = r.runtime;
  const leaf = Buffer.allocUnsafe(
    1 + FIXED + 6 + r.requestId.length + model.length + id.length + version.length + profile.length + nonce,
  );
  leaf[0] = 0;
  const out = leaf.subarray(1);
  MAGIC.copy(out, 0);
  out[4] = 1;
  out[5] = RECORD_KINDS.indexOf(r.kind);
  out[6] = RECORD_MODES.indexOf(r.mode);
  out.writeUInt32BE(Math.floor(r.timestamp / 2 ** 32), 7);
  out.writeUInt32BE(r.timestamp >>> 0, 11);
  node.copy(out, 15);
  out.write(r.inputDigest, 35, 'hex');
  out.write(r.outputDigest, 67, 'hex');
  out.write(r.paramsDigest, 99, 'hex');
  let o = text(out, FIXED, r.requestId);
  out[o] = model.length;
  model.copy(out, o + 1);
  o += 1 + model.length;
  o = text(out, o, id);
  o = text(out, o, version);
  o = text(out, o, profile);
  out[o] = nonce;
  if (r.clientNonce !== undefined) out.write(r.clientNonce, o + 1, 'hex');
  return leaf;
}
