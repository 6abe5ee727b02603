/**
 * A zk bundle verifies in a real browser (headless Chromium, the `browser` project) with the same
 * codes as in Node: snarkjs' browser build checks the Groth16 proof. The bundles are the
 * committed fixture `packages/sdk/fixtures/zk-iris.json` (real iris proofs; see
 * test-support/zk-fixture.ts, rewritten by zk-trust.test.ts under VERITY_WRITE_ZK_FIXTURE=1).
 */
import { type Bundle, type SignedManifest, verifyBundle } from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { verifyZkBundle } from './actions/zk.js';
import type { ZkFixture } from './test-support/zk-fixture.js';

const files = import.meta.glob<{ default: ZkFixture }>('../fixtures/zk-iris.json', { eager: true });
const fx = Object.values(files)[0]?.default as ZkFixture;
const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const audited = { zk: { audits: [fx.genuine.audit] } };

describe('zk bundles in the browser', () => {
  it('runs in a browser', () => {
    expect(typeof window).toBe('object');
  });

  it('verifies the genuine bundle with its audit', async () => {
    const start = performance.now();
    const result = await verifyZkBundle(fx.genuine.bundle, fx.trust, audited);
    const ms = performance.now() - start;
    expect(result, JSON.stringify(result)).toMatchObject({ ok: true, zkTrust: { vk: 'audit', model: 'unchecked' } });
    // A second verification: the curve is built once (what a page verifying many answers sees).
    const warm = performance.now();
    expect(await verifyZkBundle(fx.genuine.bundle, fx.trust, audited)).toMatchObject({ ok: true });
    console.log(`browser zk verify: first ${ms.toFixed(0)} ms, warm ${(performance.now() - warm).toFixed(0)} ms`);
  });

  it('refuses a tampered proof (ZK_PROOF_INVALID)', async () => {
    const b = copy(fx.genuine.bundle) as Bundle & { zk: { proof: { pi_a: string[]; pi_c: string[] } } };
    b.zk.proof.pi_a = [...b.zk.proof.pi_c];
    expect(await verifyZkBundle(b, fx.trust, audited)).toMatchObject({ ok: false, code: 'ZK_PROOF_INVALID' });
  });

  it('refuses the bundle stripped of its zk member (ZK_EVIDENCE_MISSING), in verifyBundle too', async () => {
    const { zk: _dropped, ...stripped } = copy(fx.genuine.bundle);
    expect(verifyBundle(stripped, fx.trust)).toMatchObject({ ok: false, code: 'ZK_EVIDENCE_MISSING' });
    expect(await verifyZkBundle(stripped, fx.trust, audited)).toMatchObject({ ok: false, code: 'ZK_EVIDENCE_MISSING' });
  });

  it('refuses the node’s own keys and own circuit (ZK_VK_UNAUDITED), and an unsigned manifest', async () => {
    expect(await verifyZkBundle(fx.ownKeys.bundle, fx.trust, audited)).toMatchObject({
      ok: false,
      code: 'ZK_VK_UNAUDITED',
    });
    const own = await verifyZkBundle(fx.ownCircuit.bundle, fx.trust, { zk: { audits: [fx.ownCircuit.audit] } });
    expect(own).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
    expect(await verifyZkBundle(fx.genuine.bundle, fx.trust)).toMatchObject({ ok: false, code: 'ZK_VK_UNAUDITED' });
    const bare = copy(fx.genuine.bundle) as Bundle & { zk: { manifest: unknown } };
    bare.zk.manifest = (bare.zk.manifest as SignedManifest).manifest;
    expect(await verifyZkBundle(bare, fx.trust, audited)).toMatchObject({ ok: false, code: 'ZK_MANIFEST_UNSIGNED' });
  });
});
