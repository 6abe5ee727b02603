import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The real `verity` command in a child process, as a user runs it (built by `npm test`).
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('verity CLI', () => {
  let dir: string;
  let demo: { model: string; node: string; logKey: string; bundle: string; outcomes: Record<string, string> };

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error('run `npm run build` first: packages/cli/dist/main.js is missing');
    dir = await mkdtemp(join(tmpdir(), 'verity-cli-test-'));
    const r = await verity('demo', '--out', dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    demo = JSON.parse(r.stdout);
  });

  it('demo verifies the honest bundle and catches both tamperings', () => {
    expect(demo.outcomes).toEqual({
      'bundle as received': 'ok',
      'output changed after the fact': 'RECEIPT_OUTPUT_DIGEST_MISMATCH',
      'checkpoint tree size changed': 'NOTE_SIGNATURE_INVALID',
    });
  });

  it('verify exits 0 for a valid bundle, with the node trusted explicitly or from the bundle', async () => {
    const explicit = await verity('verify', demo.bundle, '--node', demo.node, '--key', demo.logKey, '--json');
    expect(explicit.code, explicit.stdout).toBe(0);
    expect(JSON.parse(explicit.stdout).receipts[0].record.model).toBe(demo.model);
    const human = await verity('verify', demo.bundle, '--trust-bundle-nodes');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('✓');
  });

  it('verify exits 1 with the code when the output was changed', async () => {
    const bundle = JSON.parse(await readFile(demo.bundle, 'utf8'));
    bundle.output.logits.data[1] = 0;
    const file = join(dir, 'tampered.json');
    await writeFile(file, JSON.stringify(bundle));
    const r = await verity('verify', file, '--node', demo.node, '--key', demo.logKey, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
  });

  it('verify says plainly that a deleted output was not verified (exit 0: its digest still is)', async () => {
    const bundle = JSON.parse(await readFile(demo.bundle, 'utf8'));
    delete bundle.output;
    const file = join(dir, 'no-output.json');
    await writeFile(file, JSON.stringify(bundle));
    const json = await verity('verify', file, '--trust-bundle-nodes', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).checked).toEqual({ input: true, output: false });
    const human = await verity('verify', file, '--trust-bundle-nodes');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/input +[0-9a-f]{64} +\(✓ the bundled input hashes to it\)/);
    expect(human.stdout).toMatch(/output +[0-9a-f]{64} +\(not checked: the output is not in the bundle/);
    expect(human.stdout).toContain('output not in the bundle: only its digest is vouched for');
    // Given the digest of the output the caller holds, the output is checked again.
    const digest = /output +([0-9a-f]{64})/.exec(human.stdout)?.[1] as string;
    const given = await verity('verify', file, '--trust-bundle-nodes', '--output-digest', digest, '--json');
    expect(JSON.parse(given.stdout).checked).toEqual({ input: true, output: true });
  }, 60_000);

  it('verify exits 1 when the trusted key is another one', async () => {
    const other = await verity('demo', '--out', await mkdtemp(join(tmpdir(), 'verity-cli-test-')), '--json');
    const otherKey = JSON.parse(other.stdout).logKey as string;
    const r = await verity('verify', demo.bundle, '--node', demo.node, '--key', otherKey, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('NOTE_UNKNOWN_KEY');
  });

  it('reports user mistakes in one line, without a stack trace', async () => {
    const notJson = join(dir, 'not.json');
    await writeFile(notJson, 'hello');
    const bad = await verity('verify', notJson, '--trust-bundle-nodes', '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).error.code).toBe('JSON_INVALID');
    for (const args of [
      ['verify', join(dir, 'missing.json'), '--trust-bundle-nodes'],
      ['verify', demo.bundle],
      ['verify', demo.bundle, '--node', demo.node],
      ['frobnicate'],
      ['verify', demo.bundle, '--bogus'],
    ]) {
      const r = await verity(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^verity: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
