import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localPowersOfTau, releaseCurves, verifyPowersOfTau } from './index.js';

// A ceremony file is verified before any key is made from it; a damaged one is refused.
afterAll(async () => {
  await releaseCurves();
});

describe('powers-of-tau files from elsewhere', () => {
  it('accepts a valid file and refuses one with a changed byte', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verity-ptau-'));
    const { path } = await localPowersOfTau(4, { cacheDir: dir, entropy: 'ptau-test' });
    await expect(verifyPowersOfTau(path)).resolves.toBeUndefined();
    const bytes = readFileSync(path);
    bytes[bytes.length - 40] = (bytes[bytes.length - 40] as number) ^ 0xff;
    const bad = join(dir, 'damaged.ptau');
    writeFileSync(bad, bytes);
    await expect(verifyPowersOfTau(bad)).rejects.toMatchObject({ code: 'ZK_SETUP_UNTRUSTED' });
    writeFileSync(join(dir, 'junk.ptau'), 'not a ptau file');
    await expect(verifyPowersOfTau(join(dir, 'junk.ptau'))).rejects.toMatchObject({ code: 'ZK_SETUP_UNTRUSTED' });
  }, 120_000);
});
