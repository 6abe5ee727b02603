/** Where the example scripts write, and how they tell they were run directly. */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The `examples/` folder: the nearest folder above this file whose package.json is
 * `@verity/examples` (this file runs from `examples/` in tests and from `examples/dist/` when built).
 */
export function examplesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === '@verity/examples') return dir;
    } catch {
      // no package.json here: go up
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the @verity/examples folder');
    dir = parent;
  }
}

/** `examples/models/`, where the committed models and samples live. */
export function modelsDir(): string {
  return join(examplesDir(), 'models');
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * JSON with two-space indentation, except that each element of a `samples` array stays on one
 * line, so `{"x": [[5.1, 3.5, 1.4, 0.2]]}` reads as it would in a request body.
 */
export function samplesJson(value: { samples: unknown[] } & Record<string, unknown>): string {
  const { samples, ...rest } = value;
  const head = JSON.stringify(rest, null, 2).slice(0, -2);
  const lines = samples.map((s) => `    ${JSON.stringify(s)}`);
  return `${head},\n  "samples": [\n${lines.join(',\n')}\n  ]\n}\n`;
}
