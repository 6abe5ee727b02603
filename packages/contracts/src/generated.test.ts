import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/compile.mjs', import.meta.url));

describe('src/generated', () => {
  // The ABIs and bytecode are committed; this fails when contracts/*.sol changed without
  // `npm run compile -w @verity/contracts`.
  it('equals a fresh solc compile of contracts/*.sol', async () => {
    const result = await promisify(execFile)(process.execPath, [script, '--check']).then(
      () => ({ ok: true, stderr: '' }),
      (e: { stderr?: string }) => ({ ok: false, stderr: e.stderr ?? String(e) }),
    );
    expect(result).toEqual({ ok: true, stderr: '' });
  }, 300_000); // solc-js compiles every contract: ~10 s idle, 30+ s on a busy machine
});
