/**
 * Opening the log (node-log.ts, "At open"): lock the directory, read the journal's frames
 * (journal.ts) and verify the newest, find the sync point (a verified `checkpoint` copy), write
 * the records of the write-ahead frames above it back to `records` (the write-ahead rule), cut the
 * files back and replay the records against the signed roots (records-file.ts), drop a newest
 * note frame of an older version whose records a power loss took, and start the journal of a new
 * or older-version log.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import {
  EMPTY_ROOT,
  isVerityError,
  type NoteSigner,
  type NoteVerifier,
  openCheckpoint,
  signCheckpoint,
} from '@verity/protocol';
import { lockDir } from './dir-lock.js';
import { openReadWrite, readAt, replaceFileSync, writeAtSync } from './files.js';
import { HashStore } from './hash-store.js';
import { CHECKPOINT, type Frame, frameOf, frameSize, JOURNAL, JOURNAL_NEW, readFrames } from './journal.js';
import { corrupt, invalid, ioError } from './log-errors.js';
import { DEFAULT_JOURNAL_LIMIT, DEFAULT_MAX_BATCH, DurableLog, type NodeLog, type OpenLogOptions } from './node-log.js';
import { loadRecords, recordsEndAt } from './records-file.js';

function selfVerifier(signer: NoteSigner): NoteVerifier {
  return {
    name: signer.name,
    keyId: signer.keyId,
    verify: (message, signature) => Buffer.from(signer.sign(message)).equals(signature),
  };
}

function fileSize(path: string): number {
  try {
    return fs.statSync(path).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

/**
 * Writes the records of the journal's write-ahead frames beyond the sync point `durable` back to
 * `records`, each batch at its place. `LOG_CORRUPT` when those frames do not follow each other
 * (each starts at the size, and the byte of `records`, where the one before it ends), or when the
 * first of them does not start where `records` holds the sync point's records to end (exactly,
 * when it starts at that size; not below it, when older note frames come between): checked
 * before anything is written, so damage never overwrites records below the sync point.
 */
function writeAhead(recordsFd: number, offsetsFd: number, frames: Frame[], durable: number): void {
  let first = frames.length;
  while (
    first > 0 &&
    (frames[first - 1] as Frame).records !== undefined &&
    frameSize(frames[first - 1] as Frame) > durable
  ) {
    first--;
  }
  if (first < frames.length) {
    const frame = frames[first] as Frame;
    const records = frame.records as NonNullable<Frame['records']>;
    const start = frameSize(frame) - records.count;
    const durableEnd = recordsEndAt(recordsFd, offsetsFd, durable);
    if ((start === durable && records.at !== durableEnd) || (start > durable && records.at < durableEnd)) {
      corrupt('the checkpoint journal frames do not follow the records of the sync point', {
        size: durable,
        at: records.at,
        end: durableEnd,
      });
    }
  }
  let size = -1;
  let end = -1;
  for (let i = first; i < frames.length; i++) {
    const frame = frames[i] as Frame;
    const records = frame.records as NonNullable<Frame['records']>;
    const frameEnd = frameSize(frame);
    if (i > 0 && size < 0) size = frameSize(frames[i - 1] as Frame);
    if ((size >= 0 && frameEnd - records.count !== size) || (end >= 0 && records.at !== end)) {
      corrupt('the checkpoint journal frames do not follow each other', { size: frameEnd });
    }
    writeAtSync(recordsFd, records.bytes, records.at);
    size = frameEnd;
    end = records.at + records.bytes.length;
  }
}

/**
 * Opens (or creates) the durable log in `options.dir`: verifies the newest checkpoint of the
 * journal with the signer's key (migrating a journal-less directory from its `checkpoint`), cuts
 * off anything written beyond it, replays and checks the records and tree
 * levels against it. Throws `LOG_CORRUPT` when the files do not back the checkpoint, and
 * `CONFIG_INVALID` when another process holds the directory.
 *
 * @example
 * ```ts
 * const log = await openLog({ dir: 'data/log', signer: parseSignerKey(logKey) });
 * const receipt = await log.append(record);
 * await log.close();
 * ```
 */
export async function openLog(options: OpenLogOptions): Promise<NodeLog> {
  const { dir, signer } = options;
  if (typeof dir !== 'string' || dir.length === 0) invalid('dir must be a non-empty path');
  if (typeof signer?.sign !== 'function' || typeof signer.name !== 'string') invalid('signer must be a NoteSigner');
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) invalid('maxBatch must be a positive integer', { maxBatch });
  const sync = options.fsync ?? true;
  const journalLimit = options.journalLimit ?? DEFAULT_JOURNAL_LIMIT;
  if (!Number.isSafeInteger(journalLimit) || journalLimit < 0) {
    invalid('journalLimit must be a non-negative integer', { journalLimit });
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw ioError(e, 'cannot create the log directory');
  }
  let release: () => void;
  try {
    release = lockDir(dir);
  } catch (e) {
    throw ioError(e, 'cannot lock the log directory');
  }
  const fds: number[] = [];
  let store: HashStore | undefined;
  try {
    const dirFd = fs.openSync(dir, 'r');
    fds.push(dirFd);
    // Leftovers of an interrupted rewrite of `checkpoint` or compaction of the journal: the files
    // they were to replace are still whole.
    fs.rmSync(join(dir, `${CHECKPOINT}.tmp`), { force: true });
    fs.rmSync(join(dir, JOURNAL_NEW), { force: true });
    fs.rmSync(join(dir, `${JOURNAL}.tmp`), { force: true });
    const checkpointPath = join(dir, CHECKPOINT);
    const journalPath = join(dir, JOURNAL);
    const verifier = options.verifier ?? selfVerifier(signer);
    /** The journal's complete frames, oldest first. */
    let frames: Frame[] = [];
    /** The newest frame (or the note that starts the journal), and the one before it, if any. */
    let newest: Frame;
    let previous: Frame | undefined;
    let journalFd: number | undefined;
    let fresh = false;
    if (fs.existsSync(journalPath)) {
      journalFd = openReadWrite(journalPath);
      fds.push(journalFd);
      frames = readFrames(readAt(journalFd, 0, fs.fstatSync(journalFd).size));
      newest = frames.at(-1) as Frame;
      previous = frames.at(-2);
    } else if (fs.existsSync(checkpointPath)) {
      // A log of an older version: its `checkpoint` starts the journal (once verified, below).
      newest = { note: fs.readFileSync(checkpointPath, 'utf8'), end: -1 };
    } else {
      const data = fs.readdirSync(dir).filter((f) => f === 'records' || f === 'offsets' || f.startsWith('level-'));
      if (data.some((f) => fileSize(join(dir, f)) > 0)) {
        corrupt('the log has data but no checkpoint', { files: data });
      }
      // A new log starts with a signed checkpoint of the empty tree, written before any data, so
      // that data without a checkpoint always means damage.
      newest = {
        note: signCheckpoint({ origin: signer.name, size: 0, rootHash: EMPTY_ROOT, extensions: [] }, signer),
        end: -1,
      };
      fresh = true;
    }
    const opened = (frame: Frame) => {
      try {
        return openCheckpoint(frame.note, [verifier], signer.name).checkpoint;
      } catch (e) {
        corrupt("the stored checkpoint does not verify with the signer's key", {}, e);
      }
    };
    const { size: newestSize } = opened(newest);
    let copiedNote = '';
    try {
      copiedNote = fs.readFileSync(checkpointPath, 'utf8');
    } catch {
      // Missing: written at the next copy.
    }
    // The sync point (see the durability rule): a verified copy of size `durable` means `records`,
    // `offsets` and the level files are durable through record `durable`; above it the records
    // come from the journal and the rest is recomputed. It also marks its size acknowledged.
    let durable = 0;
    let durableRoot: Uint8Array | undefined;
    if (copiedNote !== '') {
      try {
        const { checkpoint } = openCheckpoint(copiedNote, [verifier], signer.name);
        durable = checkpoint.size;
        durableRoot = checkpoint.rootHash;
      } catch {
        // Not a sync point (damaged or foreign): every derived byte is recomputed.
      }
    }
    // The copy is written only for acknowledged notes: one ahead of the journal means lost frames.
    if (durable > newestSize) {
      corrupt('the checkpoint copy is ahead of the checkpoint journal', { size: newestSize, copy: durable });
    }
    const recordsFd = openReadWrite(join(dir, 'records'));
    fds.push(recordsFd);
    const offsetsFd = openReadWrite(join(dir, 'offsets'));
    fds.push(offsetsFd);
    // Make the files' directory entries durable before any checkpoint can cover their data.
    if (sync) fs.fsyncSync(dirFd);
    // The write-ahead rule: `records` is durable only through the sync point; the records of every
    // batch since are in the journal's write-ahead frames. Put them back, whatever state the crash
    // left `records` in (the replay below checks them against the signed roots).
    writeAhead(recordsFd, offsetsFd, frames, durable);
    const load = (frame: Frame) => {
      const { size, rootHash } = opened(frame);
      store = new HashStore(dir);
      const loaded = loadRecords(store, recordsFd, offsetsFd, size, rootHash, durable, durableRoot);
      return { ...loaded, size, note: frame.note, store };
    };
    let state: ReturnType<typeof load>;
    try {
      state = load(newest);
    } catch (e) {
      // Older versions (node-log.ts): a note frame was written in the same fsync round as its
      // records, so after a power loss it may be on disk without them. Then (and only for the
      // newest frame, only above the copy's size, and only when the previous frame's records are
      // all intact) it was never acknowledged nor shown to anyone: it is dropped. A write-ahead
      // frame holds its own records: it is never dropped.
      const rollback =
        isVerityError(e, 'LOG_CORRUPT') &&
        newest.records === undefined &&
        previous !== undefined &&
        durable <= opened(previous).size;
      if (!rollback || previous === undefined) throw e;
      (store as HashStore | undefined)?.close();
      store = undefined;
      try {
        state = load(previous);
      } catch {
        throw e;
      }
      newest = previous;
    }
    let journalEnd = newest.end;
    if (journalFd === undefined || journalEnd < 0) {
      // Start the journal with this checkpoint (atomically: a crash leaves no journal, or a whole one).
      const frame = frameOf(newest.note);
      if (fresh) replaceFileSync(dir, dirFd, CHECKPOINT, Buffer.from(newest.note, 'utf8'), sync);
      replaceFileSync(dir, dirFd, JOURNAL, frame, sync);
      journalFd = openReadWrite(journalPath);
      fds.push(journalFd);
      journalEnd = frame.length;
    } else if (fs.fstatSync(journalFd).size > journalEnd) {
      // A torn frame after the newest complete one, or a dropped one: never acknowledged.
      fs.ftruncateSync(journalFd, journalEnd);
      if (sync) fs.fsyncSync(journalFd);
    }
    return new DurableLog(
      dir,
      dirFd,
      journalFd,
      recordsFd,
      offsetsFd,
      state.store,
      state.index,
      signer,
      sync,
      maxBatch,
      options.beforeWrite,
      journalLimit,
      release,
      { size: state.size, recordsEnd: state.recordsEnd, note: state.note, journalEnd, copiedNote },
    );
  } catch (e) {
    (store as HashStore | undefined)?.close();
    for (const fd of fds) fs.closeSync(fd);
    release();
    throw ioError(e, 'cannot open the log');
  }
}
