/** Shared timing loop of the benchmarks: warm up, then count calls for `seconds`. */
export function opsPerSecond(fn: () => void, seconds = 1): number {
  for (let i = 0; i < 200; i++) fn();
  let ops = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 100; i++) fn();
    ops += 100;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

/** {@link opsPerSecond} for an asynchronous operation, awaited one call at a time. */
export async function opsPerSecondAsync(fn: () => Promise<unknown>, seconds = 1): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  let ops = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 10; i++) await fn();
    ops += 10;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}
