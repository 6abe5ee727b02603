/**
 * A node that controls everything it is given still cannot pass a zk answer off (issue 11): it
 * swaps in its own keys, signs a manifest of its own, proves its own circuit, or drops the zk
 * member, and each is refused with its code. Real circuits, keys and proofs (snarkjs), a real
 * signed log, real manifest signatures, a real ModelRegistry on anvil. The powers of tau come
 * from the zk tests' cache (`$VERITY_ZK_TEST_CACHE` or `<tmp>/verity-zk-test-ptau`).
 *
 * `VERITY_WRITE_ZK_FIXTURE=1` also writes the bundles to `packages/sdk/fixtures/zk-iris.json`,
 * which the browser test (zk.browser.test.ts) and the CLI test read.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as contractsApi from '@verity/contracts';
import { publishModel } from '@verity/contracts';
import * as protocolApi from '@verity/protocol';
import {
  type Bundle,
  manifestCid,
  personalSign,
  type SignedManifest,
  verifyBundle,
  type ZkAudit,
} from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { createClient, releaseZk, type VerifyZkOptions, verifyZkBundle } from './index.js';
import { buildZkFixture, type ZkFixture } from './test-support/zk-fixture.js';

const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');
const FIXTURE = fileURLToPath(new URL('../fixtures/zk-iris.json', import.meta.url));

let chain: TestChain;
let fx: ZkFixture;
let chainOption: NonNullable<VerifyZkOptions['chain']>;
let dir: string;

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  const keys = chain.anvil.privateKeys;
  fx = await buildZkFixture(PTAU_DIR, {
    publisherKey: keys[1] as string,
    nodeKey: keys[2] as string,
    contributors: [chain.address(3), chain.address(4)],
    chainId: chain.anvil.chainId,
  });
  // The publisher registers the genuine manifest under its name: the name is the publisher's.
  const genuine = (fx.genuine.bundle.zk as { manifest: SignedManifest }).manifest.manifest;
  await publishModel(chain.clients(1), {
    modelRegistry: deployment.contracts.modelRegistry,
    name: genuine.name,
    version: genuine.version,
    manifestCid: manifestCid(genuine),
  });
  chainOption = { rpcUrl: chain.anvil.rpcUrl, deployment };
  dir = await mkdtemp(join(tmpdir(), 'verity-zk-trust-'));
  if (process.env.VERITY_WRITE_ZK_FIXTURE === '1') writeFileSync(FIXTURE, `${JSON.stringify(fx, null, 2)}\n`);
}, 600_000);

afterAll(async () => {
  await chain?.stop();
  await releaseZk();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const audited = (audit: ZkAudit = fx.genuine.audit): VerifyZkOptions => ({ zk: { audits: [audit] } });

describe('zk verification that trusts nothing the node says about its keys', () => {
  it('accepts the genuine bundle with its audit, and says why the key is trusted', async () => {
    const result = await verifyZkBundle(fx.genuine.bundle, fx.trust, audited());
    expect(result).toMatchObject({ ok: true, zkTrust: { vk: 'audit', model: 'unchecked' } });
    const onChain = await verifyZkBundle(fx.genuine.bundle, fx.trust, { ...audited(), chain: chainOption });
    expect(onChain).toMatchObject({ ok: true, zkTrust: { vk: 'audit', model: 'registered' } });
  });

  it('reads audits from a directory (<manifestCid>.json, as verity zk audit writes them)', async () => {
    const audits = join(dir, 'audits');
    await mkdir(audits, { recursive: true });
    expect(await verifyZkBundle(fx.genuine.bundle, fx.trust, { zk: { audits } })).toMatchObject({
      ok: false,
      code: 'ZK_VK_UNAUDITED',
    });
    await writeFile(join(audits, `${fx.genuine.audit.manifestCid}.json`), JSON.stringify(fx.genuine.audit));
    expect(await verifyZkBundle(fx.genuine.bundle, fx.trust, { zk: { audits } })).toMatchObject({ ok: true });
  });

  it('refuses a multi-party key nobody audited (ZK_VK_UNAUDITED), even when everything else holds', async () => {
    expect(await verifyZkBundle(fx.genuine.bundle, fx.trust)).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
    const few = await verifyZkBundle(fx.genuine.bundle, fx.trust, {
      zk: { audits: [fx.genuine.audit], minContributors: 3 },
    });
    expect(few).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
  });

  it('a mismatching audit is not an audit: another circuit, key, setup or ceremony (ZK_VK_UNAUDITED)', async () => {
    const changes: Partial<Record<keyof ZkAudit, unknown>>[] = [
      { r1cs: 'f'.repeat(64) },
      { vk: 'f'.repeat(64) },
      { phase1: { kind: 'file', sha256: 'f'.repeat(64) } },
      { phase2: { ...(fx.genuine.audit.phase2 as object), id: `0x${'ff'.repeat(32)}` } },
    ];
    for (const change of changes) {
      const result = await verifyZkBundle(
        fx.genuine.bundle,
        fx.trust,
        audited({ ...fx.genuine.audit, ...change } as ZkAudit),
      );
      expect(result).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
      if (!result.ok) expect(result.error.details.mismatches).toEqual([{ audit: 0, differs: Object.keys(change) }]);
    }
  });

  describe('attacks by the node', () => {
    it('swaps its own verification key into the bundle (ZK_VK_MISMATCH)', async () => {
      const b = copy(fx.genuine.bundle) as Bundle & { zk: { vk: unknown } };
      b.zk.vk = copy(fx.ownKeys.bundle.zk?.vk) as Record<string, unknown>;
      expect(await verifyZkBundle(b, fx.trust, audited())).toMatchObject({ ok: false, code: 'ZK_VK_MISMATCH' });
    });

    it('proves with its own keys under a manifest it signed itself: not audited (ZK_VK_UNAUDITED)', async () => {
      // The proof, the signature (the node as publisher), the CID and the key digest all check.
      expect(await verifyZkBundle(fx.ownKeys.bundle, fx.trust, audited())).toMatchObject({
        ok: false,
        code: 'ZK_VK_UNAUDITED',
      });
    });

    it('… and not what ModelRegistry lists for the name (MODEL_REGISTRY_MISMATCH)', async () => {
      const result = await verifyZkBundle(fx.ownKeys.bundle, fx.trust, { ...audited(), chain: chainOption });
      expect(result).toMatchObject({ ok: false, code: 'MODEL_REGISTRY_MISMATCH' });
    });

    it('proves its own circuit: the auditor’s recompiled R1CS differs (ZK_VK_UNAUDITED)', async () => {
      const result = await verifyZkBundle(fx.ownCircuit.bundle, fx.trust, audited(fx.ownCircuit.audit));
      expect(result).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
      if (!result.ok) expect(result.error.details.mismatches).toEqual([{ audit: 0, differs: ['r1cs'] }]);
    });

    it('drops the zk member: refused by verifyBundle, verifyZkBundle and the SDK’s verify (ZK_EVIDENCE_MISSING)', async () => {
      const { zk: _dropped, ...stripped } = copy(fx.genuine.bundle);
      expect(verifyBundle(stripped, fx.trust)).toMatchObject({ ok: false, code: 'ZK_EVIDENCE_MISSING' });
      expect(await verifyZkBundle(stripped, fx.trust, audited())).toMatchObject({
        ok: false,
        code: 'ZK_EVIDENCE_MISSING',
      });
      const client = createClient({ url: 'http://127.0.0.1:9', trust: fx.trust });
      expect(await client.verify(stripped, { trust: fx.trust })).toMatchObject({
        ok: false,
        code: 'ZK_EVIDENCE_MISSING',
      });
      // The SDK's verify checks the proof of a zk bundle too.
      expect(await client.verify(fx.genuine.bundle, { trust: fx.trust, ...audited() })).toMatchObject({ ok: true });
      expect(await client.verify(fx.ownKeys.bundle, { trust: fx.trust, ...audited() })).toMatchObject({
        ok: false,
        code: 'ZK_VK_UNAUDITED',
      });
    });

    it('drops the manifest’s signature (ZK_MANIFEST_UNSIGNED) or forges it (MANIFEST_SIGNATURE_INVALID)', async () => {
      const bare = copy(fx.genuine.bundle) as Bundle & { zk: { manifest: unknown } };
      bare.zk.manifest = (bare.zk.manifest as SignedManifest).manifest;
      expect(await verifyZkBundle(bare, fx.trust, audited())).toMatchObject({
        ok: false,
        code: 'ZK_MANIFEST_UNSIGNED',
      });
      const forged = copy(fx.genuine.bundle) as Bundle & { zk: { manifest: SignedManifest } };
      const m = forged.zk.manifest.manifest;
      forged.zk.manifest.signature = personalSign(manifestCid(m), chain.anvil.privateKeys[2] as string);
      expect(await verifyZkBundle(forged, fx.trust, audited())).toMatchObject({
        ok: false,
        code: 'MANIFEST_SIGNATURE_INVALID',
      });
      const none = copy(fx.genuine.bundle) as Bundle & { zk: { manifest?: unknown } };
      delete none.zk.manifest;
      expect(await verifyZkBundle(none, fx.trust, audited())).toMatchObject({ ok: false, code: 'ZK_EVIDENCE_MISSING' });
    });

    it('tampers with the proof (ZK_PROOF_INVALID)', async () => {
      const b = copy(fx.genuine.bundle) as Bundle & { zk: { proof: { pi_a: string[]; pi_c: string[] } } };
      b.zk.proof.pi_a = [...b.zk.proof.pi_c];
      expect(await verifyZkBundle(b, fx.trust, audited())).toMatchObject({ ok: false, code: 'ZK_PROOF_INVALID' });
    });
  });

  it('on-chain attestations need the chain, and one by the auditor named', async () => {
    const auditors = [chain.address(6)];
    expect(await verifyZkBundle(fx.genuine.bundle, fx.trust, { zk: { auditors } })).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
    });
    const onChain = await verifyZkBundle(fx.genuine.bundle, fx.trust, { zk: { auditors }, chain: chainOption });
    expect(onChain).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
  });

  // The verifier registry's attestations (helper onchain's ZkVerifierRegistry): runs where the
  // deployment has one and @verity/contracts and @verity/protocol offer its functions.
  const api = { ...protocolApi, ...contractsApi } as Partial<{
    attestZkAudit(
      clients: unknown,
      params: { zkVerifiers: string; manifestDigest: string; vkKey: string },
    ): Promise<unknown>;
    zkVkKey(vk: unknown): string;
    zkManifestDigest(cid: string): string;
  }>;
  it.skipIf(api.attestZkAudit === undefined || api.zkVkKey === undefined)(
    'accepts a key an auditor the caller names attested on chain, and no other auditor’s word',
    async () => {
      const deployment = (chainOption as { deployment: { contracts: { zkVerifiers?: string } } }).deployment;
      const zkVerifiers = deployment.contracts.zkVerifiers as string;
      const { attestZkAudit, zkManifestDigest, zkVkKey } = api as Required<typeof api>;
      const cid = fx.genuine.audit.manifestCid;
      await attestZkAudit(chain.clients(5), {
        zkVerifiers,
        manifestDigest: zkManifestDigest(cid),
        vkKey: zkVkKey(fx.genuine.bundle.zk?.vk),
      });
      const ok = await verifyZkBundle(fx.genuine.bundle, fx.trust, {
        zk: { auditors: [chain.address(7), chain.address(5)] },
        chain: chainOption,
      });
      expect(ok).toMatchObject({
        ok: true,
        zkTrust: { vk: 'attestation', auditor: chain.address(5), model: 'registered' },
      });
      const other = await verifyZkBundle(fx.genuine.bundle, fx.trust, {
        zk: { auditors: [chain.address(7)] },
        chain: chainOption,
      });
      expect(other).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
    },
  );

  it('the committed fixture (read by the browser test) verifies as it did when written', async () => {
    const committed = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ZkFixture;
    const ok = await verifyZkBundle(committed.genuine.bundle, committed.trust, audited(committed.genuine.audit));
    expect(ok).toMatchObject({ ok: true });
    expect(
      await verifyZkBundle(committed.ownKeys.bundle, committed.trust, audited(committed.genuine.audit)),
    ).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
  });
});
