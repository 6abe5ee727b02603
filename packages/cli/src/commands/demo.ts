import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addressFromPrivateKey,
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  createMemoryLog,
  createTensor,
  generateNoteKey,
  type Manifest,
  manifestCid,
  paramsDigest,
  parseSignerKey,
  signManifest,
  type TensorMap,
  tensorsDigest,
  tensorsToJson,
  toHex,
  unixfsCidOf,
  verifyBundle,
} from '@verity/protocol';
import { parseFlags, UsageError } from '../usage.js';

// A small linear classifier over the four Iris measurements (sepal length/width, petal
// length/width → setosa, versicolor, virginica): fixed weights, evaluated in float32.
const WEIGHTS = new Float32Array([0.42, 0.97, -2.4, -1.05, 0.5, -0.35, -0.2, -0.95, -0.92, -0.62, 2.6, 2.0]);
const BIAS = new Float32Array([0.26, 1.1, -1.36]);

function classify(x: Float32Array): Float32Array {
  const logits = new Float32Array(3);
  for (let c = 0; c < 3; c++) {
    let s = BIAS[c] as number;
    for (let i = 0; i < 4; i++) s = Math.fround(s + Math.fround((WEIGHTS[c * 4 + i] as number) * (x[i] as number)));
    logits[c] = s;
  }
  return logits;
}

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** `verity demo`: the protocol end to end, in one process, with real keys, logs and proofs. */
export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseFlags({
    args,
    options: { out: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const lines: string[] = [];
  const say = (s: string) => {
    if (!values.json) process.stdout.write(`${s}\n`);
    lines.push(s);
  };

  // 1. A publisher publishes the model: artifact CID (UnixFS, as `ipfs add` computes it) and a
  //    signed manifest whose CID names the model everywhere.
  const publisherKey = randomKey();
  const artifact = new Uint8Array(new Float32Array([...WEIGHTS, ...BIAS]).buffer);
  const { cid: artifactCid } = await unixfsCidOf(artifact);
  const manifest: Manifest = {
    schema: 'verity.manifest/v1',
    name: 'iris-linear',
    version: '1.0.0',
    format: 'onnx',
    artifact: { cid: artifactCid, size: artifact.length },
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 3] }],
    profiles: ['native'],
    license: 'CC0-1.0',
    description: 'Demo linear classifier over the four Iris measurements',
    publisher: addressFromPrivateKey(publisherKey),
    createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  const signed = signManifest(manifest, publisherKey);
  const model = manifestCid(manifest);
  say(`1. publisher ${manifest.publisher} signed ${manifest.name}@${manifest.version} → model ${model}`);

  // 2. A node with an Ethereum account and an Ed25519 log key serves three inferences and logs
  //    one record for each.
  const account = addressFromPrivateKey(randomKey());
  const origin = `demo.verity.local/log/${account.toLowerCase()}`;
  const { signerKey, verifierKey } = generateNoteKey(origin, randomKey());
  const log = createMemoryLog(parseSignerKey(signerKey));
  const samples = [
    [5.1, 3.5, 1.4, 0.2],
    [6.4, 3.2, 4.5, 1.5],
    [6.3, 3.3, 6.0, 2.5],
  ];
  const runs = samples.map((row, i) => {
    const input: TensorMap = { x: createTensor('float32', [1, 4], new Float32Array(row)) };
    const output: TensorMap = { logits: createTensor('float32', [1, 3], classify(new Float32Array(row))) };
    const index = log.append({
      version: 1,
      kind: 'onnx',
      mode: 'signed',
      model,
      runtime: { id: 'verity-demo', version: '0.1.0', profile: 'native' },
      inputDigest: toHex(tensorsDigest(input)),
      outputDigest: toHex(tensorsDigest(output)),
      paramsDigest: paramsDigest({}),
      requestId: `demo-${i + 1}`,
      timestamp: Date.now(),
      node: account,
    });
    return { index, input, output };
  });
  say(`2. node ${account} ran ${runs.length} inferences and logged them (log ${origin})`);

  // 3. The caller's answer for the second inference, as a self-contained bundle.
  const run = runs[1] as (typeof runs)[number];
  const bundle: Bundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipts: [log.receipt(run.index)],
    nodes: [{ address: account, logKey: verifierKey }],
    input: tensorsToJson(run.input),
    output: tensorsToJson(run.output),
  };
  const dir = values.out ?? (await mkdtemp(join(tmpdir(), 'verity-demo-')));
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      showHelp: false,
    });
  }
  const bundlePath = join(dir, 'bundle.json');
  await writeFile(bundlePath, `${JSON.stringify(bundle, null, 2)}\n`);
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(signed, null, 2)}\n`);
  say(`3. checkpoint: tree size ${log.size}; bundle written to ${bundlePath}`);

  // 4. Verify offline, then tamper and watch verification fail with a stable code.
  const trust = { nodes: [{ address: account, logKey: verifierKey }] };
  const outcomes: Record<string, string> = {};
  const check = (label: string, candidate: unknown) => {
    const r = verifyBundle(candidate, trust);
    outcomes[label] = r.ok ? 'ok' : r.code;
    say(`   ${r.ok ? '✓' : '✗'} ${label}: ${r.ok ? 'valid' : r.code}`);
  };
  say('4. verification (pure, offline; trust = the node’s log key):');
  check('bundle as received', bundle);
  const forged = structuredClone(bundle) as unknown as { output: { logits: { data: number[] } } };
  forged.output.logits.data[0] = 9.99;
  check('output changed after the fact', forged);
  const resigned = structuredClone(bundle) as unknown as { receipts: { checkpoint: string }[] };
  const receipt = resigned.receipts[0] as { checkpoint: string };
  receipt.checkpoint = receipt.checkpoint.replace(`\n${log.size}\n`, `\n${log.size + 1}\n`);
  check('checkpoint tree size changed', resigned);

  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ model, node: account, logKey: verifierKey, bundle: bundlePath, outcomes })}\n`,
    );
  } else {
    say(`\nTry it yourself:\n  npm run verity -- verify ${bundlePath} --node ${account} --key ${verifierKey}`);
  }
  return outcomes['bundle as received'] === 'ok' ? 0 : 1;
}
