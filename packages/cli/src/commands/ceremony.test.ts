/**
 * `verity ceremony` on a real anvil with the real contracts: three accounts run a 2^4 phase-1
 * ceremony through the command's own entry point (files by path, keys by flag), then anyone
 * verifies the final file from the chain; the final file is also imported as a public one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDeploymentFile } from '@verity/contracts/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { runCeremony } from './ceremony.js';

let chain: TestChain;
let dir: string;
let chainFlags: string[];

beforeAll(async () => {
  chain = await startTestChain();
  dir = await mkdtemp(join(tmpdir(), 'verity-ceremony-cli-'));
  const deployment = join(dir, 'deployment.json');
  await writeDeploymentFile(deployment, await chain.deploy());
  chainFlags = ['--rpc', chain.anvil.rpcUrl, '--deployment', deployment];
}, 120_000);
afterAll(async () => {
  await chain.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Runs `verity ceremony ARGS --json` as account `i`; its JSON output, or the error's code. */
async function ceremony(i: number | undefined, args: string[]): Promise<Record<string, unknown>> {
  let text = '';
  const key = i === undefined ? [] : ['--account-key', chain.anvil.privateKeys[i] as string];
  try {
    await runCeremony([...args, ...chainFlags, ...key, '--json'], { write: (t: string) => (text += t) });
  } catch (e) {
    return { code: (e as { code?: string }).code ?? String(e) };
  }
  return JSON.parse(text) as Record<string, unknown>;
}

describe('verity ceremony', () => {
  it('runs a phase-1 ceremony with three accounts and a beacon, then verifies it from the chain', async () => {
    const p = (n: number | string) => join(dir, `p${n}.ptau`);
    const listed = [1, 2, 3].map((i) => chain.address(i)).join(',');
    const init = await ceremony(0, ['init', '--power', '4', '--out', p(0), '--contributors', listed]);
    const id = init.id as string;
    expect(id).toMatch(/^0x[0-9a-f]{64}$/);
    for (const i of [1, 2, 3]) {
      const c = await ceremony(i, ['contribute', '--id', id, '--in', p(i - 1), '--out', p(i), '--name', `party-${i}`]);
      expect(c.account).toBe(chain.address(i));
    }
    // Building on a file that is not the head (p1 after p3 was recorded) is refused before anything is sent.
    expect(await ceremony(4, ['contribute', '--id', id, '--in', p(1), '--out', p('x')])).toEqual({
      code: 'ZK_TRANSCRIPT_MISMATCH',
    });
    expect(await ceremony(1, ['close', '--id', id])).toEqual({ code: 'UNAUTHORIZED' });
    const closed = await ceremony(0, ['close', '--id', id]);
    expect(typeof closed.beaconBlock).toBe('number');
    // The beacon block does not exist yet.
    expect(await ceremony(0, ['finalize', '--id', id, '--in', p(3), '--out', p('final')])).toEqual({
      code: 'ZK_CEREMONY_UNFINISHED',
    });
    await chain.testClient.mine({ blocks: 1 });
    // Finalizing another file than the head would record its hash for good: refused before sending.
    expect(await ceremony(5, ['finalize', '--id', id, '--in', p(2), '--out', p('final')])).toEqual({
      code: 'ZK_TRANSCRIPT_MISMATCH',
    });
    const fin = await ceremony(5, ['finalize', '--id', id, '--in', p(3), '--out', p('final')]);
    expect(fin.contributions).toBe(3);
    const v = await ceremony(undefined, ['verify', p('final'), '--id', id]);
    expect(v).toMatchObject({ ok: true, kind: 1, contributors: [1, 2, 3].map((i) => chain.address(i)) });
    // An intermediate file is not the ceremony's result.
    expect(await ceremony(undefined, ['verify', p(3), '--id', id])).toEqual({ code: 'ZK_TRANSCRIPT_MISMATCH' });
    // The final file, as a public ceremony file: every contribution checked.
    const imported = await ceremony(undefined, ['import', p('final')]);
    expect(imported).toMatchObject({ phase1: { kind: 'file' }, power: 4, ceremonyPower: 4 });
    await writeFile(p('junk'), 'not a ptau');
    expect(await ceremony(undefined, ['import', p('junk')])).toEqual({ code: 'ZK_SETUP_UNTRUSTED' });
  }, 300_000);

  it('prints its help', async () => {
    let text = '';
    expect(await runCeremony(['--help'], { write: (t: string) => (text += t) })).toBe(0);
    expect(text).toContain('verity ceremony contribute --id HEX --in FILE --out FILE');
  });
});
