/**
 * A record made by the node under the `portable` profile re-executes bit for bit in a real
 * browser (headless Chromium, the `browser` project): the page verifies the bundle against the
 * node's pinned key, checks the model file is the manifest's artifact and the manifest the
 * record's model, runs the model with onnxruntime-web (the same version the record names, with
 * the profile's settings from @verity/protocol), and compares the SHA-256 of the output's
 * canonical encoding with the record's outputDigest. The bundles are made by a real node for
 * this run, in the browser project's global setup (`test-support/portable-records.ts`); the models
 * are the repository's examples, the convolutional digits model among them.
 */
import {
  encodeTensors,
  manifestCid,
  portableSessionOptions,
  sha256,
  type TensorMap,
  tensorsFromJson,
  toHex,
  unixfsCidOf,
  verifyBundle,
} from '@verity/protocol';
// The WASM-only build: the same plain SIMD binary as the node (the default browser build is JSEP's).
import * as ort from 'onnxruntime-web/wasm';
import { describe, expect, inject, it } from 'vitest';
import type { PortableRecords } from './test-support/portable-records.js';

const fx = inject('portableRecords');
const modelUrls = import.meta.glob<string>('../../../../examples/models/*.onnx', {
  eager: true,
  query: '?url',
  import: 'default',
});

const { sessionOptions, version } = portableSessionOptions(ort.env);

async function modelBytes(file: string): Promise<Uint8Array> {
  const url = modelUrls[`../../../../${file}`];
  if (url === undefined) throw new Error(`no model file ${file}`);
  return new Uint8Array(await (await fetch(url)).arrayBuffer());
}

describe('portable records re-executed in the browser', () => {
  it('runs in a browser, on the onnxruntime-web version the records name', () => {
    expect(typeof window).toBe('object');
    const runtimes = fx.models.flatMap((m) => m.bundles.map((b) => b.receipts[0]?.record.runtime));
    expect(new Set(runtimes.map((r) => JSON.stringify(r)))).toEqual(
      new Set([JSON.stringify({ id: 'onnxruntime-web', version, profile: 'portable' })]),
    );
  });

  it.each(fx.models.map((m) => [m.name, m] as const))(
    '%s: every record verifies and re-executes to its outputDigest, bit for bit',
    async (_, m) => {
      const bytes = await modelBytes(m.file);
      // The file is the manifest's artifact, and the manifest is the records' model.
      expect((await unixfsCidOf(bytes)).cid).toBe(m.manifest.artifact.cid);
      const session = await ort.InferenceSession.create(bytes, sessionOptions);
      try {
        for (const bundle of m.bundles) {
          const verified = verifyBundle(bundle, { nodes: [fx.node] });
          expect(verified.ok, JSON.stringify(verified)).toBe(true);
          const record = bundle.receipts[0]?.record as NonNullable<(typeof bundle.receipts)[0]>['record'];
          expect(record.model).toBe(manifestCid(m.manifest));
          const inputs = tensorsFromJson(bundle.input, m.manifest.inputs);
          expect(toHex(sha256(encodeTensors(inputs)))).toBe(record.inputDigest);
          const feeds: Record<string, ort.Tensor> = {};
          for (const [name, t] of Object.entries(inputs))
            feeds[name] = new ort.Tensor(t.dtype, t.data as never, t.shape);
          const out = await session.run(feeds);
          const outputs: TensorMap = Object.create(null);
          for (const sig of m.manifest.outputs) {
            const t = out[sig.name] as ort.Tensor;
            outputs[sig.name] = { dtype: sig.dtype, shape: [...t.dims], data: t.data } as never;
          }
          expect(toHex(sha256(encodeTensors(outputs)))).toBe(record.outputDigest);
        }
      } finally {
        await session.release();
      }
    },
  );

  it('ran the WebAssembly binary the node runs: the plain SIMD build (not JSEP, JSPI or Asyncify)', () => {
    const wasm = performance
      .getEntriesByType('resource')
      .map((e) => new URL(e.name).pathname.split('/').pop() as string)
      .filter((name) => name.endsWith('.wasm'));
    expect([...new Set(wasm)]).toEqual(['ort-wasm-simd-threaded.wasm']);
  });

  it('a tampered output digest does not match the re-execution', async () => {
    const m = fx.models.find((x) => x.name === 'digits') as PortableRecords['models'][number];
    const bundle = m.bundles[0] as (typeof m.bundles)[0];
    const session = await ort.InferenceSession.create(await modelBytes(m.file), sessionOptions);
    try {
      const inputs = tensorsFromJson(bundle.input, m.manifest.inputs);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.dtype, t.data as never, t.shape);
      const out = await session.run(feeds);
      const probabilities = (out.probabilities as ort.Tensor).data as Float32Array;
      // One ulp off in one probability: another digest (what a node lying by a hair would sign).
      const nudged = new Float32Array(probabilities);
      new Uint32Array(nudged.buffer)[0] = (new Uint32Array(nudged.buffer)[0] as number) + 1;
      const outputs: TensorMap = Object.create(null);
      outputs.probabilities = { dtype: 'float32', shape: [...(out.probabilities as ort.Tensor).dims], data: nudged };
      outputs.label = {
        dtype: 'int64',
        shape: [...(out.label as ort.Tensor).dims],
        data: (out.label as ort.Tensor).data,
      } as never;
      expect(toHex(sha256(encodeTensors(outputs)))).not.toBe(bundle.receipts[0]?.record.outputDigest);
    } finally {
      await session.release();
    }
  });
});
