/**
 * Mode zk over HTTP, end to end: push iris with zk (circuit, local-dev keys, manifest
 * commitments), infer in mode zk, verify the bundle offline; every tampering is refused with its
 * code, and local-dev setups only when accepted. The powers of tau come from the zk tests' cache
 * (`$VERITY_ZK_TEST_CACHE` or `<tmp>/verity-zk-test-ptau`; generated there on first use).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import {
  type Bundle,
  manifestCid,
  type SignedManifest,
  type Trust,
  verifySignedManifest,
  ZK_FIELD_PRIME,
  zkFacts,
} from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, releaseZk, verifyZkBundle } from './index.js';

const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');

let node: VerityNode;
let trust: Trust;
let bundle: Bundle;

const input = { x: [[5.1, 3.5, 1.4, 0.2]] };

beforeAll(async () => {
  node = await startNode(
    loadConfig({
      overrides: {
        dataDir: await mkdtemp(join(tmpdir(), 'verity-sdk-zk-')),
        port: 0,
        logLevel: 'silent',
        zk: { ptauDir: PTAU_DIR },
      },
    }),
  );
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  await admin.pushModel({ name: 'iris-zk', data: new Uint8Array(readFileSync(IRIS)), zk: true });
  const client = createClient({ url: node.url, insecureTrustNode: true });
  trust = await client.trust();
  const result = await client.infer({ model: 'iris-zk', input, mode: 'zk', acceptLocalDevSetup: true });
  bundle = result.bundle();
}, 600_000);

afterAll(async () => {
  await node?.stop();
  await releaseZk();
});

/** A deep copy of the bundle, changed by `fn`. */
function tampered(fn: (b: { zk: Record<string, unknown> } & Record<string, unknown>) => void): unknown {
  const copy = JSON.parse(JSON.stringify(bundle)) as { zk: Record<string, unknown> } & Record<string, unknown>;
  fn(copy);
  return copy;
}

const accept = { acceptLocalDevSetup: true };

describe('zk mode over HTTP', () => {
  it('push commits to the circuit, keys and setup in the manifest', async () => {
    const m = await createClient({ url: node.url, insecureTrustNode: true }).model('iris-zk');
    const facts = zkFacts(m.manifest);
    expect(facts.setup).toBe('local-dev');
    expect(facts.r1cs).toMatch(/^[0-9a-f]{64}$/);
    expect(facts.vk).toMatch(/^[0-9a-f]{64}$/);
    expect(facts.io.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(m.manifest.metadata?.['zk.generator']).toMatch(/@verity\/zk .*circom/);
  });

  it('infers in mode zk: the output is the circuit’s, and the bundle verifies', async () => {
    expect(bundle.receipts[0]?.record.kind).toBe('zk');
    expect(bundle.receipts[0]?.record.mode).toBe('zk');
    expect(bundle.receipts[0]?.record.runtime).toMatchObject({ id: 'snarkjs', profile: 'groth16-bn128' });
    const output = bundle.output as Record<string, { dtype: string; shape: number[]; data: unknown[] }>;
    expect(output.label).toMatchObject({ dtype: 'int64', shape: [1] });
    expect(String(output.label?.data[0])).toBe('0'); // setosa
    expect(output.logits).toMatchObject({ dtype: 'float64', shape: [1, 3] });
    const result = await verifyZkBundle(bundle, trust, accept);
    expect(result.ok).toBe(true);
    // The bundle carries the manifest, signed by its publisher, whose CID is the record's model.
    const signed = bundle.zk?.manifest as SignedManifest;
    expect(manifestCid(signed.manifest)).toBe(bundle.receipts[0]?.record.model);
    expect(verifySignedManifest(signed)).toEqual(signed.manifest);
    expect(result).toMatchObject({ zkTrust: { vk: 'local-dev', model: 'unchecked' } });
  });

  it('proves inputs with negative values (signals p − |v|) and they verify', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const r = await client.infer({
      model: 'iris-zk',
      input: { x: [[-1.5, 2.25, -0.5, 0.1]] },
      mode: 'zk',
      acceptLocalDevSetup: true,
    });
    const signals = r.zk?.publicSignals ?? [];
    expect(signals.some((s) => BigInt(s) > ZK_FIELD_PRIME / 2n)).toBe(true);
    expect((await verifyZkBundle(r.bundle(), trust, accept)).ok).toBe(true);
  });

  it('refuses a local-dev setup unless told to accept it', async () => {
    expect(await verifyZkBundle(bundle, trust)).toMatchObject({ ok: false, code: 'ZK_SETUP_UNTRUSTED' });
    const client = createClient({ url: node.url, insecureTrustNode: true });
    await expect(client.infer({ model: 'iris-zk', input, mode: 'zk' })).rejects.toMatchObject({
      code: 'ZK_SETUP_UNTRUSTED',
    });
  });

  const cases: [string, Parameters<typeof tampered>[0], string][] = [
    [
      'a tampered proof',
      (b) => {
        const p = b.zk.proof as { pi_a: string[]; pi_c: string[] };
        p.pi_a = [...p.pi_c];
      },
      'ZK_PROOF_INVALID',
    ],
    [
      'a tampered public output signal',
      (b) => {
        const s = b.zk.publicSignals as string[];
        s[0] = (BigInt(s[0] as string) + 1n).toString();
      },
      'ZK_PUBLIC_INPUT_MISMATCH',
    ],
    [
      'a tampered public input signal',
      (b) => {
        const s = b.zk.publicSignals as string[];
        s[3] = (BigInt(s[3] as string) + 1n).toString();
      },
      'ZK_PUBLIC_INPUT_MISMATCH',
    ],
    [
      'a tampered input',
      (b) => {
        ((b.input as Record<string, { data: number[] }>).x as { data: number[] }).data[0] = 6;
      },
      'RECEIPT_INPUT_DIGEST_MISMATCH',
    ],
    [
      'a tampered output',
      (b) => {
        ((b.output as Record<string, { data: number[] }>).logits as { data: number[] }).data[0] = 9;
      },
      'RECEIPT_OUTPUT_DIGEST_MISMATCH',
    ],
    [
      'a tampered verification key',
      (b) => {
        const vk = b.zk.vk as { vk_alpha_1: string[] };
        vk.vk_alpha_1 = [...vk.vk_alpha_1].reverse();
      },
      'ZK_VK_MISMATCH',
    ],
    [
      'a manifest that is not the record’s model',
      (b) => {
        const m = (b.zk.manifest as { manifest: { metadata: Record<string, string> } }).manifest;
        m.metadata['zk.generator'] = 'another generator';
      },
      'MANIFEST_INVALID',
    ],
    [
      'a zk record stripped of its zk member',
      (b) => {
        delete (b as { zk?: unknown }).zk;
      },
      'ZK_EVIDENCE_MISSING',
    ],
    [
      'an unknown zk field',
      (b) => {
        b.zk.extra = 1;
      },
      'BUNDLE_MALFORMED',
    ],
  ];
  for (const [what, fn, code] of cases) {
    it(`refuses ${what} (${code})`, async () => {
      expect(await verifyZkBundle(tampered(fn), trust, accept)).toMatchObject({ ok: false, code });
    });
  }

  it('refuses zk for models not pushed with zk, and zk pushes of GGUF', async () => {
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey, insecureTrustNode: true });
    await admin.pushModel({ name: 'iris-plain', data: new Uint8Array(readFileSync(IRIS)) });
    await expect(admin.infer({ model: 'iris-plain', input, mode: 'zk' })).rejects.toMatchObject({
      code: 'ZK_MODEL_UNSUPPORTED',
    });
    await expect(
      admin.pushModel({ name: 'llm', format: 'gguf', data: new Uint8Array(8), zk: true }),
    ).rejects.toMatchObject({ code: 'ZK_MODEL_UNSUPPORTED' });
    // Signed mode still serves a zk model.
    const signed = await admin.infer({ model: 'iris-zk', input });
    expect(signed.record.kind).toBe('onnx');
  });
});
