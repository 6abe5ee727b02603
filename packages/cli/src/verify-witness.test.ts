import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// `verity verify --witness KEY… --witness-threshold M` on the committed witness fixtures.
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'verity-verify-witness-'));
/** The bundle of a committed fixture, written to a file as a user would have it. */
const fixture = (name: string) => {
  const file = join(dir, `${name}.json`);
  const { bundle } = JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../protocol/fixtures/receipts/${name}.json`, import.meta.url)), 'utf8'),
  );
  writeFileSync(file, JSON.stringify(bundle));
  return file;
};
const fixtureFile = (name: string) =>
  fileURLToPath(new URL(`../../protocol/fixtures/receipts/${name}.json`, import.meta.url));

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

const { trust } = JSON.parse(readFileSync(fixtureFile('valid-witnessed'), 'utf8')) as {
  trust: { nodes: { address: string; logKey: string }[]; witnesses: { keys: string[] } };
};
const pinned = trust.nodes.flatMap((n) => ['--node', n.address, '--key', n.logKey]);
const witnesses = trust.witnesses.keys.flatMap((k) => ['--witness', k]);

describe('verity verify with a witness policy', () => {
  it('accepts 2 of 3 cosignatures and refuses 1 of 3 with WITNESS_QUORUM_UNMET', async () => {
    const ok = await verity(
      'verify',
      fixture('valid-witnessed'),
      ...pinned,
      ...witnesses,
      '--witness-threshold',
      '2',
      '--json',
    );
    expect(ok.code, ok.stderr).toBe(0);
    const unmet = await verity(
      'verify',
      fixture('witness-quorum-unmet'),
      ...pinned,
      ...witnesses,
      '--witness-threshold',
      '2',
      '--json',
    );
    expect([unmet.code, JSON.parse(unmet.stdout).error.code]).toEqual([1, 'WITNESS_QUORUM_UNMET']);
    // Without --witness-threshold every named witness must cosign.
    const all = await verity('verify', fixture('valid-witnessed'), ...pinned, ...witnesses, '--json');
    expect([all.code, JSON.parse(all.stdout).error.code]).toEqual([1, 'WITNESS_QUORUM_UNMET']);
    const bad = await verity(
      'verify',
      fixture('valid-witnessed'),
      ...pinned,
      '--witness',
      trust.nodes[0]?.logKey as string,
    );
    expect(bad.code).toBe(2);
  }, 120_000);
});
