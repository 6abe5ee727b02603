/**
 * One writer per log directory. Two processes appending to the same files would interleave
 * records and fork the tree, so `openLog` takes a lock file holding its pid. A lock whose process
 * is gone (the node was killed) is stale and taken over; so is one naming our own pid that this
 * process does not hold (a container restarts its node as pid 1 again).
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { VerityError } from '@verity/protocol';

const held = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Locks `dir` (which must exist) for this process; returns the release function. */
export function lockDir(dir: string): () => void {
  const real = fs.realpathSync(dir);
  if (held.has(real)) {
    throw new VerityError('CONFIG_INVALID', 'the log directory is already open in this process', {
      details: { dir: real },
    });
  }
  const path = join(real, 'lock');
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      let pid = Number.NaN;
      try {
        pid = Number.parseInt(fs.readFileSync(path, 'utf8'), 10);
      } catch {
        // unreadable or just removed: treat as stale
      }
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new VerityError('CONFIG_INVALID', `the log directory is in use by process ${pid}`, {
          details: { dir: real, pid, lock: path },
        });
      }
      fs.rmSync(path, { force: true });
    }
  }
  held.add(real);
  return () => {
    held.delete(real);
    fs.rmSync(path, { force: true });
  };
}
