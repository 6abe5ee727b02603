/**
 * Positional file I/O for the log: synchronous reads (proofs, tiles and receipts are served from
 * the page cache without a promise per hash) and asynchronous writes and syncs (a batch's I/O runs
 * on the libuv pool, so new appends keep arriving and queue up for the next batch meanwhile).
 */
import fs from 'node:fs';
import { join } from 'node:path';

/** Reads exactly `length` bytes at `position`, or fewer only at end of file. */
export function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) return buf.subarray(0, done);
    done += n;
  }
  return buf;
}

/** Writes all of `data` at `position` (synchronously). */
export function writeAtSync(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
}

/** Writes all of `data` at `position` on the libuv pool. */
export function writeAt(fd: number, data: Uint8Array, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done >= data.length) {
        resolve();
        return;
      }
      fs.write(fd, data, done, data.length - done, position + done, (err, n) => (err ? reject(err) : step(done + n)));
    };
    step(0);
  });
}

/** fdatasync(2): the data and the metadata needed to read it (the file size), not timestamps. */
export function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync(2), for directories (a rename or a new file is durable only once its directory is). */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

export function truncateFd(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve())));
}

/** Opens (creating if needed) a file for positional reads and writes; never O_APPEND, which ignores positions. */
export function openReadWrite(path: string): number {
  return fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
}

/**
 * Replaces `dir/name` atomically: write `name.tmp`, fsync it, rename over `name`, fsync the
 * directory. A crash leaves either the old or the new content, never a torn file.
 */
export function replaceFileSync(dir: string, dirFd: number, name: string, data: Uint8Array, sync: boolean): void {
  const tmp = join(dir, `${name}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    writeAtSync(fd, data, 0);
    if (sync) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, join(dir, name));
  if (sync) fs.fsyncSync(dirFd);
}

/** Waits for every promise to settle, then rejects with the first failure (if any). */
export async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
