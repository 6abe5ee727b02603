/**
 * The node's durable, crash-safe signed log (docs/design.md §2.4, §6; docs/protocol.md §6–§8): the
 * same receipts as the protocol's in-memory reference (`memory-log.ts`), kept on disk. Its place on
 * the request path and beside the anchoring and witness services: docs/architecture.md §2–§5.
 *
 * Files in `dir`, all append-only except `checkpoint`:
 *
 * | file          | content                                                          |
 * |---------------|------------------------------------------------------------------|
 * | `checkpoints` | the journal (`journal.ts`): one write-ahead frame per batch, holding the batch's signed checkpoint note **and its records**; the only file fsynced per batch |
 * | `records`     | u32 BE length ‖ record bytes (docs/protocol.md §5.2), concatenated |
 * | `offsets`     | u64 BE offset in `records` of each record's length prefix         |
 * | `level-<L>`   | the 32-byte complete-subtree hashes of tree level L (`hash-store.ts`) |
 * | `checkpoint`  | a copy of a recent signed checkpoint (C2SP signed note), for people and tools; also the sync point of the other files (below) |
 * | `lock`        | pid of the process holding the log (`dir-lock.ts`)               |
 *
 * Why: appends are sequential writes at the end of each file (the cheapest thing a disk does);
 * record i is found with one read of `offsets` and one of `records`; proof hashes and tlog tiles
 * are byte ranges of the level files, so nothing is rehashed to serve them; and a batch is durable
 * with **one fsync of one file**: **the log is exactly the first `size` records of the newest
 * whole journal frame**. Bytes beyond that in any file were never acknowledged (a crash mid-batch,
 * a torn frame) and are cut off at open. A batch commits by appending one frame to the journal
 * (one positioned write to a file held open: no file is created or renamed per batch, which cost
 * ~200 µs of main-thread time per batch).
 *
 * **Write-ahead rule (one fsync per batch).** A batch signs its checkpoint, then writes one frame
 * holding the note and the batch's records (with a SHA-256 of the frame) to the journal and
 * fsyncs the journal alone; it is acknowledged — receipts returned, the note shown by
 * `checkpoint()`, given to witnesses or copied to `checkpoint` — only once that fsync has
 * returned. The same record bytes go to `records` (and their offsets and hashes to `offsets` and
 * the level files) in the page cache meanwhile, fsynced only at sync points. Why one file: no file
 * system orders the blocks of two files and one fsync cannot cover both, so a commit that needs
 * records and note both durable costs two concurrent fsyncs (the log did that before: a lone
 * append measured 2.0–2.6× one fdatasync, two fsync rounds ~2.5–3×); with both in one frame of one
 * file, one fdatasync covers the batch (`bench:log-idle` with `LOG_BASELINE`, same runs, load
 * average ~9: 1.8–2.0× one fdatasync against 2.3–2.75× for the two-file commit; what remains is
 * CPU before the fsync, mostly the checkpoint's Ed25519 signature, ~50 µs idle and ~0.3 ms under
 * that load, which cannot overlap the fsync: the frame must hold the signed note, see below). The
 * digest makes a frame self-checking: after a power loss
 * the newest frame may be cut, zeros or stale bytes anywhere (records hold any byte, so the "a note
 * has no NUL" test of note frames cannot tell), and only a frame whose digest matches is whole. So
 * a crash leaves:
 * - kill -9: the page cache survives; the newest frame is absent, torn (cut, as before), or whole,
 *   and `records` may lack any part of the batches since the last sync point;
 * - power loss: the newest frame may also be whole-length with damaged bytes (digest mismatch: a
 *   torn frame, never acknowledged since its fsync had not returned), and `records`, `offsets` and
 *   the level files may hold anything above the sync point.
 * In both cases the journal holds every acknowledged record above the sync point, and open writes
 * them back. A torn newest frame was never acknowledged nor shown to anyone: open cuts it, and the
 * next batch signs that size afresh — no fork, since no signed head of that size was ever seen.
 * Anything else wrong with the journal is `LOG_CORRUPT`: a frame that is not the newest failing its
 * digest (the tail is more than one torn frame), a whole frame anywhere after a torn one (a batch
 * writes its frame only once the one before is durable, so that is an acknowledged frame whose
 * length word was damaged, not a crash), a whole frame whose records do not parse, frames that do
 * not follow each other (each starts at the size, and the byte of `records`, where the one before
 * it ends; the first above the sync point, where the sync point's records end), or a whole newest
 * frame that does not parse or verify with the signer's key —
 * never a silent fall back to an older frame (which would drop acknowledged records, and fork the
 * log once new ones are appended). The note in the frame is signed before the frame is written, so
 * open never signs anything the journal holds: bytes put there by someone without the key are
 * refused, not certified.
 *
 * **Durability rule — the journal is authoritative, `records`, `offsets` and `level-*` are
 * derived.** Above the sync point `records` is a copy of the journal's frames, and `offsets` and
 * the level files are pure functions of the records (record boundaries, and the RFC 6962 hashes of
 * the records), so a batch writes them (to the page cache) but does not fsync them (each
 * fdatasync on ext4 costs ~40 µs of CPU and a journal commit, and they were most of a small
 * batch's cost). They are made durable at *sync points*: before `checkpoint` (the copy below) is
 * written for a note of size S, `records`, `offsets` and every level file written since the last
 * sync point are fsynced (and the directory, if a level file was created since), so **a
 * `checkpoint` copy that verifies with the signer's key marks every data file durable through its
 * size S**. At open, with N the newest frame's size and S that of a verified copy (0 if it is
 * missing or does not verify; S > N is `LOG_CORRUPT`): the records of every write-ahead frame of
 * size above S are written back to `records` at their place; data below S must be on disk and
 * match exactly (anything else is `LOG_CORRUPT`, as before), while the derived data of records
 * S…N−1 is recomputed from those records and rewritten, whatever state the crash left it in. The
 * records are then checked against the signed root of N (and of the copy) as before, so what is
 * rewritten is exactly what was acknowledged: nothing acknowledged is lost and nothing can fork. A
 * copy whose root differs from the records' root at its size is `LOG_CORRUPT` too (two signed
 * heads of one size).
 *
 * `checkpoint` is not authoritative for the log's size: it is rewritten atomically (sync point,
 * temp file, fsync, rename, directory fsync) in the background at most once a second, and at close.
 * **Compaction** keeps the journal short: when it passes `journalLimit` bytes (64 MiB: ~100 k lone
 * batches, or ~50 full ones of small records), between two batches, the copy of the newest note is
 * written first (a sync point: every record so far is durable in `records`), and only if that
 * succeeded is a journal holding that note alone, as a *note frame* (no records: they are durable
 * in `records`), written to `checkpoints.new`, fsynced and renamed over `checkpoints`, and the
 * directory fsynced. So a journal only ever drops frames whose records a sync point covers. A
 * crash before the rename leaves the old journal, which open keeps (the leftover
 * `checkpoints.new` is deleted); after it, the note frame's records are durable in `records`.
 *
 * **Older versions.** A journal written before write-ahead frames holds note frames only, and its
 * `records` was fsynced with each batch, together with the frame (two fsyncs in one round): open
 * reads both kinds, and new batches append write-ahead frames after the old ones. For such a
 * journal the old one-round rule still holds at open: its newest note frame may be whole while a
 * power loss took its records; if so (the records do not reproduce its root), it is the newest
 * frame, a note frame before it exists, and the copy is not beyond that frame's size, it was never
 * acknowledged and is dropped like a torn frame; otherwise `LOG_CORRUPT`. A directory of a still
 * older version, with `checkpoint` but no journal, is migrated at open: its verified `checkpoint`
 * becomes the journal's first (note) frame. `test-support/v1-log/` is such a journal written by
 * the code before write-ahead frames (`test-support/make-v1-log.mjs`).
 *
 * Group commit (docs/design.md §2.4): `append` validates and encodes the record and hashes its leaf at
 * once (a bad record fails alone), then queues it. A batch starts on the next microtask (no
 * timer: an idle append commits immediately, and appends issued in the same tick share a batch)
 * and takes up to `maxBatch` queued records: compute the new root, sign one checkpoint, write its
 * frame and start the journal's fsync, then write `records`, `offsets` and the level files and
 * compute the receipts' proofs while the fsync runs on the libuv pool; once it has returned,
 * resolve every append of the batch with its receipt. Appends arriving meanwhile wait for the next
 * batch, so under load one signature and one fsync cover thousands of records. Batches run one at
 * a time and each extends the tree of the last checkpoint, so checkpoints never fork. A failed
 * write fails its whole batch: its appends reject, memory rolls back to the last checkpoint, and
 * the files (the journal included) are truncated back to it before the next batch writes, or at
 * close. (A failed batch whose frame was written but whose fsync failed may still surface after a
 * crash, so the log then holds records whose appends were rejected, as when a process dies after
 * committing and before answering. It never forks.)
 *
 * At open: read the journal's frames, verify the newest one's signature (origin = signer name),
 * write the records of the frames above the sync point back to `records`, replay the records
 * through its size: recompute every leaf, offset and level hash, compare them with the files
 * below the sync point and rewrite them above it (see the durability rule), and compare the
 * recomputed root with the checkpoint's; then cut the journal after the frame and every data file
 * back to its size. Any difference, or data missing below the checkpointed size, is
 * `LOG_CORRUPT`, unless the older versions' rule drops a newest note frame (then the same is done
 * for the frame before it). The replay also rebuilds the requestId index. It costs ~2 SHA-256 and
 * a few reads per record, ~2 µs: about 2 s per million records at startup (measured by
 * bench/log.ts), the price of never serving a proof from a damaged file.
 *
 * Memory per record: the requestId index, 11–23 bytes (`request-index.ts`), plus the upper tree
 * levels, ≤ 0.5 bytes (`hash-store.ts`): 17 bytes measured at 1 M records, so 10 M ≈ 170 MB.
 * Records and low tree levels stay in the files (the OS page cache keeps the hot ones); the queue
 * holds each pending record's bytes and leaf hash until its batch commits.
 *
 * The code, by concern: this file, the appends (group commit, the copy, compaction) and reads of
 * an open log; `open-log.ts`, open and recovery; `journal.ts`, the journal's two kinds of frame;
 * `records-file.ts`, the `records` and `offsets` files and their replay; `hash-store.ts`, the
 * tree levels; `request-index.ts`, the requestId index; `files.ts`, positional I/O.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import {
  decodeRecord,
  type InferenceRecord,
  isVerityError,
  type NoteSigner,
  type NoteVerifier,
  parseRecord,
  type Receipt,
  signCheckpoint,
  VerityError,
} from '@verity/protocol';
import { sha256 } from './fast-hash.js';
import { datasync, fsyncFd, settleAll, truncateFd, writeAtSync } from './files.js';
import type { HashStore } from './hash-store.js';
import { CHECKPOINT, frameOf, JOURNAL, JOURNAL_NEW, sealFrame, walFrame } from './journal.js';
import { corrupt, invalid, ioError } from './log-errors.js';
import { encodeLeafData } from './record-bytes.js';
import { entryBundleAt, type RecordFiles, recordAt, requestIdOf, writeU64 } from './records-file.js';
import { MAX_INDEXED, type RequestIdIndex } from './request-index.js';
import { MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH } from './tile-path.js';

/** A durable signed log of inference records. */
export interface NodeLog {
  /** The log origin: the signer's key name. */
  readonly origin: string;
  /** Committed size: the records covered by the latest checkpoint. */
  readonly size: number;
  /**
   * Appends a record. Resolves once it is durable (fsynced) and covered by a signed checkpoint,
   * with a receipt whose proof is against that checkpoint. Rejects with `RECORD_INVALID` for an
   * invalid record, `REQUEST_ID_TAKEN` for a requestId already in the log, `SHUTTING_DOWN` after
   * {@link close}, and `INTERNAL` (cause: the I/O error) when its batch could not be written.
   */
  append(record: InferenceRecord): Promise<Receipt>;
  /** The receipt of the record at `index`, against the latest checkpoint. */
  receiptByIndex(index: number): Receipt;
  /** The receipt of the record with this requestId (`RECEIPT_NOT_FOUND` if none is committed). */
  receiptByRequestId(requestId: string): Receipt;
  /** Whether a record with this requestId is committed or waiting to be (its id is taken). */
  hasRequestId(requestId: string): boolean;
  /** The latest signed checkpoint note (C2SP tlog-checkpoint in a signed note). */
  checkpoint(): string;
  /** RFC 9162 inclusion proof (hex) of leaf `index` in the tree of `size` (default: committed). */
  inclusionProof(index: number, size?: number): string[];
  /** RFC 9162 consistency proof (hex) from `size1` to `size2` (default: committed). */
  consistencyProof(size1: number, size2?: number): string[];
  /**
   * C2SP tlog-tiles hash tile: `width` (1–256, default 256 = full) hashes of tree level 8·level
   * starting at 256·index. `NOT_FOUND` when the committed tree does not have them (yet).
   */
  tile(level: number, index: number, width?: number): Uint8Array;
  /** C2SP tlog-tiles entry bundle: u16 BE length ‖ record bytes for records 256·index onwards. */
  entryBundle(index: number, width?: number): Uint8Array;
  /** Commits everything already appended, then closes the files. Later calls fail `SHUTTING_DOWN`. */
  close(): Promise<void>;
}

/** Options of {@link openLog}. */
export interface OpenLogOptions {
  /** Directory of the log's files (created if missing). */
  readonly dir: string;
  /** Signs checkpoints; its key name is the log origin. */
  readonly signer: NoteSigner;
  /** fsync data and checkpoint before acknowledging (default true). Off only for tests and benches. */
  readonly fsync?: boolean;
  /** Most records per batch, i.e. per checkpoint (default 4096). */
  readonly maxBatch?: number;
  /**
   * Verifier of the signer's key, to check the stored checkpoint at open. Default: sign the
   * checkpoint text again and compare, valid for deterministic signatures such as Ed25519
   * (RFC 8032 §5.1.6), which every Verity note key is.
   */
  readonly verifier?: NoteVerifier;
  /**
   * Test hook: called before each file write of a batch (`'checkpoint'` for its journal frame);
   * throwing fails the batch like an I/O error.
   */
  readonly beforeWrite?: (file: string) => void;
  /** Size in bytes past which the checkpoint journal is compacted (default 64 MiB). */
  readonly journalLimit?: number;
}

/** Default {@link OpenLogOptions.maxBatch}. */
export const DEFAULT_MAX_BATCH = 4096;
/** Default {@link OpenLogOptions.journalLimit}. */
export const DEFAULT_JOURNAL_LIMIT = 64 * 1024 * 1024;

/**
 * Zeros written ahead of the end of the journal (when fsync is on): a batch then writes into
 * blocks that already exist, so its fdatasync does not change the file's size and needs no
 * file-system journal commit for it (measured ~20–30% less time and CPU per fdatasync on ext4).
 * Open and close cut the zeros off; open takes zeros after the newest frame for free space.
 */
const JOURNAL_AHEAD = 256 * 1024;
const ZEROS = Buffer.alloc(JOURNAL_AHEAD);
/** Least time between two background rewrites of `checkpoint`. */
const COPY_INTERVAL_MS = 1000;

interface Pending {
  readonly record: InferenceRecord;
  readonly bytes: Uint8Array;
  readonly leaf: Uint8Array;
  readonly resolve: (receipt: Receipt) => void;
  readonly reject: (error: unknown) => void;
}

function checkIndexWidth(index: number, width: number | undefined): number {
  if (!Number.isSafeInteger(index) || index < 0) invalid('index must be a non-negative safe integer', { index });
  const w = width ?? TILE_WIDTH;
  if (!Number.isInteger(w) || w < 1 || w > TILE_WIDTH) invalid('width must be 1–256', { width });
  return w;
}

/**
 * An open log (made by `openLog`, open-log.ts, once the files are recovered): appends in group
 * commits, the background checkpoint copy, journal compaction, and reads of committed records,
 * proofs and tiles.
 */
export class DurableLog implements NodeLog {
  readonly origin: string;
  private committedSize: number;
  private recordsEnd: number;
  private note: string;
  private readonly queue: Pending[] = [];
  private readonly pendingIds = new Set<string>();
  private running = false;
  private dirty = false;
  private closing: Promise<void> | undefined;
  private closed = false;
  private idle: (() => void)[] = [];
  /** Where the next journal frame goes: the end of the newest committed frame. */
  private journalEnd: number;
  /** Where the zeros written ahead end in the journal (see `JOURNAL_AHEAD`). */
  private journalAhead: number;
  /** The directory needs an fsync before the next frame (a journal compaction's rename). */
  private dirPending = false;
  /**
   * A level file was created since the last sync point (or maybe at open, by the replay): the
   * directory needs an fsync before the next copy.
   */
  private levelDirPending = true;
  /** The note last written to `checkpoint`, and when a background rewrite last started. */
  private copiedNote: string;
  private lastCopy = Date.now();
  private copying: Promise<void> = Promise.resolve();
  private copyTimer: ReturnType<typeof setTimeout> | undefined;
  /** Derived files written since the last sync point (at open: all, the replay may have written them). */
  private readonly dirtyFds: Set<number>;

  constructor(
    private readonly dir: string,
    private readonly dirFd: number,
    private journalFd: number,
    private readonly recordsFd: number,
    private readonly offsetsFd: number,
    private readonly store: HashStore,
    private readonly index: RequestIdIndex,
    private readonly signer: NoteSigner,
    private readonly sync: boolean,
    private readonly maxBatch: number,
    private readonly beforeWrite: ((file: string) => void) | undefined,
    private readonly journalLimit: number,
    private readonly release: () => void,
    state: { size: number; recordsEnd: number; note: string; journalEnd: number; copiedNote: string },
  ) {
    this.origin = signer.name;
    this.committedSize = state.size;
    this.recordsEnd = state.recordsEnd;
    this.note = state.note;
    this.journalEnd = state.journalEnd;
    this.journalAhead = state.journalEnd;
    this.copiedNote = state.copiedNote;
    this.dirtyFds = new Set([recordsFd, offsetsFd, ...store.openFds()]);
  }

  get size(): number {
    return this.committedSize;
  }

  append(record: InferenceRecord): Promise<Receipt> {
    if (this.closing) return Promise.reject(new VerityError('SHUTTING_DOWN', 'the log is closed'));
    let parsed: InferenceRecord;
    let leafData: Buffer;
    try {
      parsed = parseRecord(record);
      leafData = encodeLeafData(parsed);
      const id = parsed.requestId;
      if (this.pendingIds.has(id) || this.findCommitted(id) >= 0) {
        throw new VerityError('REQUEST_ID_TAKEN', 'a record with this requestId is already in the log', {
          details: { requestId: id },
        });
      }
      if (this.store.size + this.queue.length >= MAX_INDEXED) {
        throw new VerityError('INTERNAL', 'the log is full', { details: { max: MAX_INDEXED } });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this.pendingIds.add(parsed.requestId);
    const leaf = sha256(leafData);
    const bytes = leafData.subarray(1);
    return new Promise<Receipt>((resolve, reject) => {
      this.queue.push({ record: parsed, bytes, leaf, resolve, reject });
      if (!this.running) {
        this.running = true;
        queueMicrotask(() => void this.drain());
      }
    });
  }

  /** Commits batches until the queue is empty. Never throws: each batch settles its own appends. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.commitBatch(this.queue.splice(0, this.maxBatch));
      if (this.journalEnd > this.journalLimit && !this.dirty) await this.compactJournal();
    }
    this.running = false;
    for (const wake of this.idle.splice(0)) wake();
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    const n0 = this.committedSize;
    const end0 = this.recordsEnd;
    const n1 = n0 + batch.length;
    let committed = false;
    let proofs: string[][];
    let note: string;
    let frameLength = 0;
    try {
      if (this.dirty) {
        // A failed batch may have left bytes beyond the checkpoint: cut them before writing.
        await settleAll([
          truncateFd(this.recordsFd, end0),
          truncateFd(this.offsetsFd, n0 * 8),
          truncateFd(this.journalFd, this.journalEnd),
          this.store.truncateFiles(),
        ]);
        this.journalAhead = this.journalEnd;
        this.dirty = false;
      }
      let total = 0;
      for (const p of batch) {
        total += 4 + p.bytes.length;
        this.store.append(p.leaf);
      }
      this.dirty = true;
      note = signCheckpoint(
        { origin: this.origin, size: n1, rootHash: this.store.root(n1), extensions: [] },
        this.signer,
      );
      // The batch's write-ahead frame: its note and its records (see the write-ahead rule above).
      const { frame, records } = walFrame(note, end0, total);
      const offsets = Buffer.allocUnsafe(batch.length * 8);
      let o = 0;
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i] as Pending;
        writeU64(offsets, end0 + o, i * 8);
        records.writeUInt32BE(p.bytes.length, o);
        records.set(p.bytes, o + 4);
        o += 4 + p.bytes.length;
      }
      sealFrame(frame);
      // The frame goes to the OS synchronously (a small sequential write into the page cache costs
      // microseconds, far less than a round trip through the libuv pool), and its fsync, the only
      // one of the batch, starts at once on the pool; the derived files are written meanwhile.
      this.beforeWrite?.('checkpoint');
      writeAtSync(this.journalFd, frame, this.journalEnd);
      if (this.sync && this.journalEnd + frame.length > this.journalAhead) {
        writeAtSync(this.journalFd, ZEROS, this.journalEnd + frame.length);
        this.journalAhead = this.journalEnd + frame.length + ZEROS.length;
      }
      frameLength = frame.length;
      const dirSync = this.dirPending;
      let durable: Promise<void> = Promise.resolve();
      if (this.sync) {
        durable = dirSync
          ? // A compacted journal exists only once its directory entry is durable.
            settleAll([datasync(this.journalFd), fsyncFd(this.dirFd)])
          : datasync(this.journalFd);
      }
      try {
        // `records`, `offsets` and the level files are derived (the durability rule): page cache
        // only, made durable at the next sync point. A write error fails the batch like any other.
        this.beforeWrite?.('records');
        writeAtSync(this.recordsFd, records, end0);
        this.dirtyFds.add(this.recordsFd);
        this.beforeWrite?.('offsets');
        writeAtSync(this.offsetsFd, offsets, n0 * 8);
        this.dirtyFds.add(this.offsetsFd);
        for (const w of this.store.pending()) {
          this.beforeWrite?.(`level-${w.level}`);
          writeAtSync(w.fd, w.bytes, w.position);
          this.dirtyFds.add(w.fd);
        }
        // A new level file is derived data: its directory entry is made durable at the next sync point.
        if (this.store.createdFiles) this.levelDirPending = true;
        // Proofs while the fsync runs on the libuv pool, with the batch's low tree levels in memory.
        proofs = this.store.inclusionProofsHex(n0, batch.length, n1);
      } finally {
        // Never leave a sync in flight: the next batch may truncate these files.
        await durable;
      }
      if (dirSync) this.dirPending = false;
      committed = true;
      this.committedSize = n1;
      this.recordsEnd = end0 + total;
      this.journalEnd += frameLength;
      this.note = note;
      this.dirty = false;
      this.store.commit();
      for (let i = 0; i < batch.length; i++) {
        const id = (batch[i] as Pending).record.requestId;
        this.index.insert(id, n0 + i);
        this.pendingIds.delete(id);
      }
    } catch (e) {
      if (!committed) {
        this.store.rollback();
        for (const p of batch) this.pendingIds.delete(p.record.requestId);
      }
      // Not acknowledged: either not committed, or committed but possibly not durable.
      const error = ioError(e, 'the log could not write this batch');
      for (const p of batch) p.reject(error);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      p.resolve({ record: p.record, leafIndex: n0 + i, inclusionProof: proofs[i] as string[], checkpoint: note });
    }
    this.scheduleCopy();
  }

  /**
   * Rewrites the copy now if the last rewrite started at least `COPY_INTERVAL_MS` ago, else once
   * that much time has passed (a timer that does not keep the process alive): the copy of an
   * acknowledged note follows it within about a second even when no batch comes after it, which
   * bounds what open has to write back from the journal and recompute (the durability rule).
   */
  private scheduleCopy(): void {
    const wait = this.lastCopy + COPY_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.lastCopy = Date.now();
      void this.writeCopy();
    } else if (this.copyTimer === undefined) {
      this.copyTimer = setTimeout(() => {
        this.copyTimer = undefined;
        if (!this.closing) this.scheduleCopy();
      }, wait);
      this.copyTimer.unref();
    }
  }

  /**
   * The sync point (see the durability rule above): fsyncs `offsets` and every level file (and the
   * directory if a level file was created since the last one), then rewrites the copy `checkpoint`
   * with the latest note (temp file, fsync, rename, directory fsync), on the libuv pool, after any
   * rewrite already under way. Every derived byte of the note's records was written before the note
   * was committed, so once the copy is on disk they are durable through its size. Never rejects:
   * the journal is authoritative for the size, so a failed copy only leaves an older (still valid)
   * `checkpoint`, and open recomputes more derived data.
   */
  private writeCopy(): Promise<void> {
    this.copying = this.copying.then(async () => {
      const note = this.note;
      if (note === this.copiedNote) return;
      try {
        if (this.sync) {
          // One at a time, and only the files written since the last sync point: a sync point
          // that fsynced `offsets` and every level file at once held all four threads of the libuv
          // pool for as long as the disk took, and the next batch's fsyncs queued behind them.
          const dirty = [...this.dirtyFds];
          this.dirtyFds.clear();
          try {
            for (const fd of dirty) await datasync(fd);
          } catch (e) {
            for (const fd of dirty) this.dirtyFds.add(fd);
            throw e;
          }
          if (this.levelDirPending) {
            this.levelDirPending = false;
            try {
              await fsyncFd(this.dirFd);
            } catch (e) {
              this.levelDirPending = true;
              throw e;
            }
          }
        }
        const tmp = join(this.dir, `${CHECKPOINT}.tmp`);
        const fh = await fs.promises.open(tmp, 'w', 0o644);
        try {
          await fh.writeFile(note, 'utf8');
          if (this.sync) await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.promises.rename(tmp, join(this.dir, CHECKPOINT));
        if (this.sync) await fsyncFd(this.dirFd);
        this.copiedNote = note;
      } catch {
        // Retried at the next interval or at close.
      }
    });
    return this.copying;
  }

  /**
   * Starts a new journal holding only the newest frame (between batches, so no frame is being
   * written): `checkpoints.new`, fsync, rename over `checkpoints`, directory fsync. A failure
   * before the rename leaves the old journal in use; after it, the new one is in use and the
   * directory fsync is retried before the next frame.
   */
  private async compactJournal(): Promise<void> {
    // Only records covered by a sync point may leave the journal: the copy of the newest note must
    // be on disk first (it makes `records` durable through its size), else the journal stays.
    await this.writeCopy();
    if (this.copiedNote !== this.note) return;
    const frame = frameOf(this.note);
    const path = join(this.dir, JOURNAL_NEW);
    let fd: number | undefined;
    try {
      fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
      writeAtSync(fd, frame, 0);
      if (this.sync) await datasync(fd);
      fs.renameSync(path, join(this.dir, JOURNAL));
    } catch {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(path, { force: true });
      return;
    }
    fs.closeSync(this.journalFd);
    this.journalFd = fd;
    this.journalEnd = frame.length;
    this.journalAhead = frame.length;
    this.dirPending = true;
    try {
      if (this.sync) await fsyncFd(this.dirFd);
      this.dirPending = false;
    } catch {
      // Retried by the next batch, before its frame.
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new VerityError('SHUTTING_DOWN', 'the log is closed');
  }

  /** Where the committed records are (records-file.ts). */
  private files(): RecordFiles {
    return {
      recordsFd: this.recordsFd,
      offsetsFd: this.offsetsFd,
      size: this.committedSize,
      recordsEnd: this.recordsEnd,
    };
  }

  private findCommitted(requestId: string): number {
    return this.index.find(requestId, (i) => requestIdOf(recordAt(this.files(), i)) === requestId);
  }

  private assertIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.committedSize) {
      throw new VerityError('MERKLE_INDEX_OUT_OF_RANGE', 'no committed record at this index', {
        details: { index, size: this.committedSize },
      });
    }
  }

  receiptByIndex(index: number): Receipt {
    this.assertOpen();
    this.assertIndex(index);
    let record: InferenceRecord;
    try {
      record = decodeRecord(recordAt(this.files(), index));
    } catch (e) {
      if (isVerityError(e, 'LOG_CORRUPT')) throw e;
      corrupt('a committed record does not decode', { index }, e);
    }
    return {
      record,
      leafIndex: index,
      inclusionProof: this.store.inclusionProofHex(index, this.committedSize),
      checkpoint: this.note,
    };
  }

  hasRequestId(requestId: string): boolean {
    return this.pendingIds.has(requestId) || this.findCommitted(requestId) >= 0;
  }

  receiptByRequestId(requestId: string): Receipt {
    this.assertOpen();
    if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 64) {
      throw new VerityError('RECEIPT_NOT_FOUND', 'no receipt for this requestId', {
        details: { requestId: String(requestId).slice(0, 64) },
      });
    }
    const index = this.findCommitted(requestId);
    if (index < 0) {
      throw new VerityError('RECEIPT_NOT_FOUND', 'no receipt for this requestId', { details: { requestId } });
    }
    return this.receiptByIndex(index);
  }

  checkpoint(): string {
    this.assertOpen();
    return this.note;
  }

  private assertSize(name: string, size: number): void {
    if (!Number.isSafeInteger(size) || size < 0)
      invalid(`${name} must be a non-negative safe integer`, { [name]: size });
    if (size > this.committedSize) {
      throw new VerityError('MERKLE_INDEX_OUT_OF_RANGE', `${name} is beyond the committed tree`, {
        details: { [name]: size, size: this.committedSize },
      });
    }
  }

  inclusionProof(index: number, size = this.committedSize): string[] {
    this.assertOpen();
    this.assertSize('size', size);
    return this.store.inclusionProofHex(index, size);
  }

  consistencyProof(size1: number, size2 = this.committedSize): string[] {
    this.assertOpen();
    this.assertSize('size2', size2);
    if (!Number.isSafeInteger(size1) || size1 < 0) invalid('size1 must be a non-negative safe integer', { size1 });
    return this.store.consistencyProofHex(size1, size2);
  }

  tile(level: number, index: number, width?: number): Uint8Array {
    this.assertOpen();
    if (!Number.isInteger(level) || level < 0 || level > MAX_TILE_LEVEL) invalid('tile level must be 0–63', { level });
    const w = checkIndexWidth(index, width);
    const treeLevel = TILE_HEIGHT * level;
    const available = Math.floor(this.committedSize / 2 ** treeLevel);
    if (index * TILE_WIDTH + w > available) {
      throw new VerityError('NOT_FOUND', 'the committed tree has no such tile', {
        details: { level, index, width: w, size: this.committedSize },
      });
    }
    return this.store.readHashes(treeLevel, index * TILE_WIDTH, w);
  }

  entryBundle(index: number, width?: number): Uint8Array {
    this.assertOpen();
    const w = checkIndexWidth(index, width);
    const first = index * TILE_WIDTH;
    const size = this.committedSize;
    if (first + w > size) {
      throw new VerityError('NOT_FOUND', 'the committed log has no such entry bundle', {
        details: { index, width: w, size },
      });
    }
    return entryBundleAt(this.files(), first, w);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.running) await new Promise<void>((resolve) => this.idle.push(resolve));
      this.closed = true;
      clearTimeout(this.copyTimer);
      await this.writeCopy();
      // Cut the zeros written ahead, and what a failed last batch left: a closed log's files end
      // where its committed data ends.
      try {
        if (this.dirty) {
          await settleAll([
            truncateFd(this.recordsFd, this.recordsEnd),
            truncateFd(this.offsetsFd, this.committedSize * 8),
            this.store.truncateFiles(),
          ]);
        }
        if (this.dirty || this.journalAhead > this.journalEnd) fs.ftruncateSync(this.journalFd, this.journalEnd);
      } catch {
        // Harmless: open cuts them too.
      }
      this.store.close();
      for (const fd of [this.journalFd, this.recordsFd, this.offsetsFd, this.dirFd]) fs.closeSync(fd);
      this.release();
    })();
    return this.closing;
  }
}
