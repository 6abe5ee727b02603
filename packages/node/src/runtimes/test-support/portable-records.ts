/**
 * Records a real node makes under the `portable` profile, for the browser re-execution test
 * (`runtimes/portable.browser.test.ts`): the browser project's global setup starts a node in
 * Node.js, pushes the example models (the convolutional digits model among them) for both
 * profiles, asks for portable answers over HTTP through the SDK, and hands the page the bundles
 * (`provide('portableRecords', …)`; the page reads them with `inject`). Every run makes them
 * anew: nothing stale is re-executed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bundle, Manifest } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { loadConfig } from '../../config.js';
import { startNode } from '../../node.js';

/** What the page receives: the node to pin, and per model its file, manifest and portable bundles. */
export interface PortableRecords {
  /** The node that made the records, as a verifier pins it. */
  readonly node: { readonly address: string; readonly logKey: string };
  readonly models: readonly {
    readonly name: string;
    /** The model file, relative to the repository root. */
    readonly file: string;
    readonly manifest: Manifest;
    /** One bundle per sample, and one for the samples stacked into a batch. */
    readonly bundles: readonly Bundle[];
  }[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    portableRecords: PortableRecords;
  }
}

const MODELS = fileURLToPath(new URL('../../../../../examples/models/', import.meta.url));
/** The example models and how many of their samples are asked for. */
const EXAMPLES = [
  { name: 'iris', samples: 3 },
  { name: 'forecast', samples: 2 },
  { name: 'digits', samples: 3 },
] as const;

/** Starts a node, makes the records, stops the node. */
export async function makePortableRecords(): Promise<PortableRecords> {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-portable-records-'));
  const node = await startNode(loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', fsync: false } }));
  try {
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const models: PortableRecords['models'][number][] = [];
    for (const { name, samples } of EXAMPLES) {
      const data = new Uint8Array(await readFile(join(MODELS, `${name}.onnx`)));
      const { manifest } = await admin.pushModel({ name, data, profiles: ['native', 'portable'] });
      const file = JSON.parse(await readFile(join(MODELS, `${name}.samples.json`), 'utf8')) as {
        samples: { inputs: Record<string, unknown[]> }[];
      };
      const inputs = file.samples.slice(0, samples).map((s) => s.inputs);
      const stacked: Record<string, unknown[]> = {};
      for (const key of Object.keys(inputs[0] as object)) stacked[key] = inputs.flatMap((i) => i[key] as unknown[]);
      const bundles: Bundle[] = [];
      for (const input of [...inputs, stacked]) {
        bundles.push((await client.infer({ model: name, input, profile: 'portable' })).bundle());
      }
      models.push({ name, file: `examples/models/${name}.onnx`, manifest, bundles });
    }
    return { node: { address: node.context.keys.address, logKey: node.context.keys.logKey }, models };
  } finally {
    await node.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Vitest global setup of the browser project. */
export default async function setup(project: {
  provide(key: 'portableRecords', value: PortableRecords): void;
}): Promise<void> {
  project.provide('portableRecords', await makePortableRecords());
}
