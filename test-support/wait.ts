/**
 * Waiting in tests that start processes or nodes: on readiness, never on a fixed sleep. The bounds
 * only catch a hang; a busy 2-core machine may be slow to get there.
 */
import type { ChildProcess } from 'node:child_process';

/** Polls `check` every 50 ms until it gives a value. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first line a child process prints on stdout, parsed as JSON (`--json` output). */
export function firstJsonLine<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n')) return;
      child.stdout?.off('data', onData);
      const line = out.split('\n')[0] as string;
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new Error(`${what} printed ${JSON.stringify(line)}, not JSON`));
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (c, signal) => reject(new Error(`${what} exited ${signal ?? c}`)));
  });
}

/** SIGTERM, then waits for the exit (a node finishes its requests and flushes its log). */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
