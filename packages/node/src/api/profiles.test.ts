/**
 * Execution profiles on a real node over HTTP (docs/design.md §2.6, docs/api.md `POST /v1/infer`):
 * a model published for both `native` and `portable`, a request asking for one, the record naming
 * the runtime that ran it, and the refusals. That such a record re-executes bit for bit in a
 * browser is `runtimes/portable.browser.test.ts`.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  encodeTensors,
  fromBase64,
  portableSessionOptions,
  sha256,
  type TensorMap,
  tensorsFromJson,
  toHex,
} from '@verity/protocol';
import { createClient } from '@verity/sdk';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { localReexecutor } from '../disputes/auditor.js';
import { reexecute } from '../disputes/juror.js';
import { startNode, type VerityNode } from '../node.js';
import { createOnnxRuntime } from '../runtimes/onnx.js';
import { createPortableRuntime } from '../runtimes/portable.js';
import { openModelStore } from '../store/index.js';

const MODELS = fileURLToPath(new URL('../../../../examples/models/', import.meta.url));
/** The example models (digits: the convolutional one). */
const EXAMPLES = [{ name: 'iris' }, { name: 'forecast' }, { name: 'digits' }] as const;

let node: VerityNode;
let dataDir: string;
const client = () => createClient({ url: node.url, insecureTrustNode: true });
const samplesOf = (name: string) =>
  (JSON.parse(readFileSync(join(MODELS, `${name}.samples.json`), 'utf8')) as { samples: { inputs: unknown }[] })
    .samples;

async function post(body: Record<string, unknown>) {
  const r = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as { error?: { code: string } } & Record<string, unknown> };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-profiles-'));
  node = await startNode(loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', fsync: false } }));
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  for (const { name } of EXAMPLES) {
    const data = new Uint8Array(readFileSync(join(MODELS, `${name}.onnx`)));
    await admin.pushModel({ name, data, profiles: ['native', 'portable'] });
  }
  // Published for the native profile only (the default of a push).
  await admin.pushModel({ name: 'iris-native', data: new Uint8Array(readFileSync(join(MODELS, 'iris.onnx'))) });
}, 120_000);

afterAll(async () => {
  await node?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('execution profiles', () => {
  it('the node names both ONNX runtimes, and a manifest lists the profiles it was pushed for', async () => {
    const info = (await (await fetch(`${node.url}/v1/node`)).json()) as {
      runtimes: { id: string; version: string; profile: string; formats: string[] }[];
    };
    expect(info.runtimes.filter((r) => r.formats.includes('onnx'))).toEqual([
      { id: 'onnxruntime-node', version: node.context.runtime.version, profile: 'native', formats: ['onnx'] },
      { id: 'onnxruntime-web', version: ortWeb.env.versions.web, profile: 'portable', formats: ['onnx'] },
    ]);
    expect((await client().model('iris')).manifest.profiles).toEqual(['native', 'portable']);
    expect((await client().model('iris-native')).manifest.profiles).toEqual(['native']);
  });

  it('runs under the profile asked for; the record names the runtime, its exact version and the profile', async () => {
    const input = { x: [[5.1, 3.5, 1.4, 0.2]] };
    const byDefault = await client().infer({ model: 'iris', input });
    expect(byDefault.record.runtime).toEqual({
      id: 'onnxruntime-node',
      version: node.context.runtime.version,
      profile: 'native',
    });
    const portable = await client().infer({ model: 'iris', input, profile: 'portable' });
    expect(portable.record.runtime).toEqual({
      id: 'onnxruntime-web',
      version: ortWeb.env.versions.web,
      profile: 'portable',
    });
    const native = await client().infer({ model: 'iris', input, profile: 'native' });
    expect(native.record.runtime.profile).toBe('native');
    expect(native.record.outputDigest).toBe(byDefault.record.outputDigest);
    // Both verify as bundles; the profile is in the signed record, so no one can relabel it.
    expect((await client().verify(portable.bundle())).ok).toBe(true);
  });

  it('requests of both profiles at once never share a run or a batch: each runs on its own runtime', async () => {
    // Digits whose two profiles give different bits (most do): a request run on the other
    // profile's model would show the other digest. 32 rows a request, so runs overlap.
    const rows = samplesOf('digits').map((s) => (s.inputs as { x: unknown[] }).x[0]);
    const input = { x: Array.from({ length: 32 }, (_, i) => rows[i % rows.length]) };
    const digest = async (profile: string) => {
      const r = await post({ model: 'digits', input, profile });
      expect(r.status, JSON.stringify(r.body.error)).toBe(200);
      return (r.body.receipt as { record: { runtime: { profile: string }; outputDigest: string } }).record;
    };
    const alone = { native: (await digest('native')).outputDigest, portable: (await digest('portable')).outputDigest };
    expect(alone.native).not.toBe(alone.portable);
    const profiles = Array.from({ length: 48 }, (_, i): 'native' | 'portable' => (i % 2 === 0 ? 'native' : 'portable'));
    const records = await Promise.all(profiles.map(digest));
    records.forEach((record, i) => {
      const profile = profiles[i] as 'native' | 'portable';
      expect([record.runtime.profile, record.outputDigest]).toEqual([profile, alone[profile]]);
    });
  }, 120_000);

  it('a portable record equals a direct onnxruntime-web run, bit for bit, on every example model', async () => {
    const { sessionOptions } = portableSessionOptions(ortWeb.env);
    for (const { name } of EXAMPLES) {
      const model = await client().model(name);
      const session = await ortWeb.InferenceSession.create(
        new Uint8Array(readFileSync(join(MODELS, `${name}.onnx`))),
        sessionOptions,
      );
      try {
        for (const sample of samplesOf(name).slice(0, 3)) {
          const inputs = tensorsFromJson(sample.inputs, model.manifest.inputs);
          const result = await client().infer({ model: name, input: sample.inputs as never, profile: 'portable' });
          const feeds: Record<string, ortWeb.Tensor> = {};
          for (const [k, t] of Object.entries(inputs)) feeds[k] = new ortWeb.Tensor(t.dtype, t.data as never, t.shape);
          const out = await session.run(feeds);
          const direct: TensorMap = Object.create(null);
          for (const sig of model.manifest.outputs) {
            const t = out[sig.name] as ortWeb.Tensor;
            direct[sig.name] = { dtype: sig.dtype, shape: [...t.dims], data: t.data } as never;
          }
          expect(result.record.outputDigest, name).toBe(toHex(sha256(encodeTensors(direct))));
        }
      } finally {
        await session.release();
      }
    }
  }, 120_000);

  it('refuses a profile the model does not list (PROFILE_NOT_LISTED), or that no node runs (PROFILE_UNSUPPORTED)', async () => {
    const input = { x: [[5.1, 3.5, 1.4, 0.2]] };
    const notListed = await post({ model: 'iris-native', input, profile: 'portable' });
    expect([notListed.status, notListed.body.error?.code]).toEqual([400, 'PROFILE_NOT_LISTED']);
    const unknown = await post({ model: 'iris', input, profile: 'cuda' });
    expect([unknown.status, unknown.body.error?.code]).toEqual([400, 'PROFILE_NOT_LISTED']);
    for (const profile of ['Portable', '', 7, 'x'.repeat(33)]) {
      expect((await post({ model: 'iris', input, profile })).body.error?.code).toBe('INVALID_ARGUMENT');
    }
    expect((await post({ model: 'iris', input, mode: 'zk', profile: 'portable' })).body.error?.code).toBe(
      'INVALID_ARGUMENT',
    );
    // A push for a profile this node does not run is refused before anything is stored.
    const push = await fetch(`${node.url}/v1/models?name=iris-cuda&profiles=native,cuda`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
      body: readFileSync(join(MODELS, 'iris.onnx')),
    });
    expect([push.status, ((await push.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'PROFILE_UNSUPPORTED',
    ]);
    // Through the SDK: the node's refusal, with its code.
    await expect(client().infer({ model: 'iris-native', input, profile: 'portable' })).rejects.toMatchObject({
      code: 'PROFILE_NOT_LISTED',
    });
  });

  it('jurors and auditors re-execute a record under its own profile, and pass over one they do not run', async () => {
    const input = { x: [[6.7, 3.0, 5.2, 2.3]] };
    const store = await openModelStore({ dir: join(dataDir, 'auditor-models') });
    const auditor = localReexecutor([createOnnxRuntime(), createPortableRuntime()], store, { localNetwork: true });
    const nativeOnly = localReexecutor(createOnnxRuntime(), store, { localNetwork: true });
    for (const profile of ['native', 'portable']) {
      const answer = await client().infer({ model: 'iris', input, mode: 'audited', profile });
      const payload = (await (await fetch(`${node.url}/v1/payloads/${answer.requestId}`)).json()) as { input: string };
      const bytes = fromBase64(payload.input);
      const want = { outputDigest: `0x${answer.record.outputDigest}` };
      expect(await reexecute(node.context, answer.record, bytes), profile).toEqual(want);
      expect(await auditor(answer.record, bytes, node.url), profile).toEqual(want);
      expect(await nativeOnly(answer.record, bytes, node.url)).toEqual(
        profile === 'native' ? want : { abstain: 'profile portable is not run here' },
      );
      // A profile this node runs no runtime for: abstained on, never voted on.
      const other = { ...answer.record, runtime: { ...answer.record.runtime, profile: 'cuda' } };
      expect(await reexecute(node.context, other, bytes)).toEqual({ abstain: 'profile cuda is not run here' });
      expect(await auditor(other, bytes, node.url)).toEqual({ abstain: 'profile cuda is not run here' });
    }
  }, 120_000);
});
