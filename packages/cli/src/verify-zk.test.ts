/**
 * `verity verify` on zk bundles (issue 11): the proof, the publisher-signed manifest and an audit
 * of the verification key (`--zk-audit FILE|DIR`), the trust basis said in words and in --json;
 * a zk record stripped of its zk member is refused (ZK_EVIDENCE_MISSING), not taken as a signed
 * answer; the node's own keys or circuit are refused (ZK_VK_UNAUDITED). The bundles are the SDK's
 * committed iris fixture (packages/sdk/fixtures/zk-iris.json: real proofs).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ZkFixture } from '../../sdk/src/test-support/zk-fixture.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../sdk/fixtures/zk-iris.json', import.meta.url));
const fx = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ZkFixture;

let dir: string;
let home: string;

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: 60_000, env: { ...process.env, VERITY_DATA_DIR: home } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const node = fx.trust.nodes[0] as { address: string; logKey: string };
const pin = ['--node', node.address, '--key', node.logKey];
const file = async (name: string, value: unknown) => {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(value));
  return path;
};

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error('run `npm run build` first: packages/cli/dist/main.js is missing');
  dir = await mkdtemp(join(tmpdir(), 'verity-cli-zk-'));
  home = join(dir, 'home');
  await mkdir(home);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('verity verify on zk bundles', () => {
  it('accepts the genuine bundle with its audit (file or directory) and says what trusted the key', async () => {
    const bundle = await file('genuine.json', fx.genuine.bundle);
    const audit = await file('audit.json', fx.genuine.audit);
    const human = await verity('verify', bundle, ...pin, '--zk-audit', audit);
    expect(human.code, human.stdout + human.stderr).toBe(0);
    expect(human.stdout).toContain('Groth16 proof valid (setup multi-party)');
    expect(human.stdout).toContain('verification key trusted by an audit you hold (--zk-audit');
    expect(human.stdout).toContain('not against ModelRegistry (no chain)');
    const audits = join(dir, 'audits');
    await mkdir(audits);
    await writeFile(join(audits, `${fx.genuine.audit.manifestCid}.json`), JSON.stringify(fx.genuine.audit));
    const json = await verity('verify', bundle, ...pin, '--zk-audit', audits, '--json');
    expect(json.code, json.stdout + json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).zk).toMatchObject({
      proof: 'valid',
      setup: 'multi-party',
      vk: 'audit',
      audit: { manifestCid: fx.genuine.audit.manifestCid, contributors: 2 },
      model: 'unchecked',
    });
  });

  it('refuses an unaudited key, the node’s own keys and its own circuit (ZK_VK_UNAUDITED)', async () => {
    const audit = await file('audit2.json', fx.genuine.audit);
    const cases: [unknown, string[]][] = [
      [fx.genuine.bundle, []],
      [fx.ownKeys.bundle, ['--zk-audit', audit]],
      [fx.ownCircuit.bundle, ['--zk-audit', await file('own-circuit-audit.json', fx.ownCircuit.audit)]],
    ];
    for (const [i, [bundle, extra]] of cases.entries()) {
      const r = await verity('verify', await file(`unaudited-${i}.json`, bundle), ...pin, ...extra, '--json');
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(JSON.parse(r.stdout).error.code).toBe('ZK_VK_UNAUDITED');
    }
  });

  it('refuses a zk record stripped of its zk member: no downgrade to a signed answer (ZK_EVIDENCE_MISSING)', async () => {
    const { zk: _dropped, ...stripped } = fx.genuine.bundle;
    const path = await file('stripped.json', stripped);
    const r = await verity('verify', path, ...pin, '--json');
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('ZK_EVIDENCE_MISSING');
    const human = await verity('verify', path, ...pin);
    expect(human.stdout).toContain('ZK_EVIDENCE_MISSING');
  });

  it('reads the audits `verity zk audit` left in the data dir (zk/audits) without a flag', async () => {
    const own = join(home, 'zk', 'audits');
    await mkdir(own, { recursive: true });
    await writeFile(join(own, `${fx.genuine.audit.manifestCid}.json`), JSON.stringify(fx.genuine.audit));
    try {
      const r = await verity('verify', await file('genuine3.json', fx.genuine.bundle), ...pin, '--json');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).zk).toMatchObject({ vk: 'audit' });
    } finally {
      await rm(join(home, 'zk'), { recursive: true, force: true });
    }
  });

  it('explains a malformed audit file in one line', async () => {
    const bundle = await file('genuine2.json', fx.genuine.bundle);
    const bad = await file('bad-audit.json', { ...fx.genuine.audit, version: 2 });
    const r = await verity('verify', bundle, ...pin, '--zk-audit', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--zk-audit');
  });
});
