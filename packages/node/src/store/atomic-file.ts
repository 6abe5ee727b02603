/**
 * Crash-safe file writes: write a temporary file, fsync it, rename it over the target, fsync the
 * directory. POSIX rename within one file system is atomic, so a reader (or a node restarting
 * after `kill -9` or a power cut) sees the old file or the new one, never a torn one; the
 * directory fsync makes the rename itself durable.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A fresh name for a temporary file or directory: unguessable, so two writers never collide. */
export function tempName(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

/** Makes the entries of `dir` (renames, creations, removals) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (e) {
    // Some file systems refuse fsync on a directory; there is nothing more to do there.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw e;
  } finally {
    await handle.close();
  }
}

/** Writes all of `data` to an open file, looping over short writes. */
export async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  for (let o = 0; o < data.length; ) {
    const { bytesWritten } = await handle.write(data, o, data.length - o);
    o += bytesWritten;
  }
}

/**
 * Replaces `path` with `data` atomically and durably. The temporary file is made in `tempDir`,
 * which must be on the same file system as `path` (so the rename is atomic), and is removed on
 * failure.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, tempDir: string): Promise<void> {
  const temp = join(tempDir, tempName(basename(path)));
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      await writeAll(handle, data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}
