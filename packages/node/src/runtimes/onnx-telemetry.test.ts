import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

// A process that runs a model through the node's ONNX runtime leaves nothing in the temp
// directory: onnxruntime's telemetry (mat-debug-<pid>.log, .ses) is off unless the operator
// turns it on. In its own process, with the telemetry variable unset, as a node starts.
const RUNTIME = fileURLToPath(new URL('../../dist/runtimes/onnx.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'verity-ort-telemetry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('leaves no onnxruntime telemetry files in the temp directory', async () => {
  if (!existsSync(RUNTIME)) throw new Error('run `npm run build` first: packages/node/dist is missing');
  const script = `const { createOnnxRuntime } = await import(${JSON.stringify(RUNTIME)});
    const model = await createOnnxRuntime().load(${JSON.stringify(IRIS)});
    await model.close();`;
  const { ORT_DISABLE_TELEMETRY: _, ...env } = process.env;
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { env: { ...env, TMPDIR: dir }, timeout: 60_000 },
      (error, _stdout, stderr) => (error ? reject(new Error(stderr || String(error))) : resolve()),
    );
  });
  expect(readdirSync(dir)).toEqual([]);
}, 90_000);
