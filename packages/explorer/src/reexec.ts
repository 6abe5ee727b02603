/**
 * Re-execution in the page (docs/design.md §2.6, docs/protocol.md §5.5): a record made under the
 * `portable` ONNX profile is re-run here, in the visitor's browser, with the same onnxruntime-web
 * version and the profile's settings (`portableSessionOptions`, shared with the node so they
 * cannot drift), and the SHA-256 of the output's canonical encoding is compared with the record's
 * `outputDigest`. Nothing is taken on trust from the node: the manifest must hash to the record's
 * model CID and the model file to the manifest's artifact CID. onnxruntime-web (its JS and its
 * WebAssembly binary, the plain SIMD build the node runs) is loaded only when the visitor asks.
 */
import {
  CODEC_RAW,
  concatBytes,
  decodeTensors,
  encodeTensors,
  fromBase64,
  type InferenceRecord,
  type Manifest,
  manifestCid,
  PORTABLE_RUNTIME,
  parseCid,
  portableSessionOptions,
  readCar,
  sha256,
  type TensorMap,
  tensorsFromJson,
  toHex,
  UNIXFS_CHUNK_SIZE,
  unixfsCidOf,
} from '@verity/protocol';
import type { Row } from './checks.js';
import { errorText, h } from './ui.js';

/** The row's label. */
export const REEXEC_LABEL = 'Re-execution';

/**
 * Explorer-side codes of the re-execution row (the protocol's codes where one fits:
 * `RECEIPT_INPUT_DIGEST_MISMATCH`, `RECEIPT_OUTPUT_DIGEST_MISMATCH`).
 */
export const REEXEC_CODES = {
  /** The node's manifest does not hash to the record's model CID. */
  manifest: 'REEXEC_MANIFEST_MISMATCH',
  /** The model file does not hash to the manifest's artifact CID. */
  artifact: 'REEXEC_ARTIFACT_MISMATCH',
  /** The manifest or the model file could not be fetched, or the model did not run. */
  failed: 'REEXEC_FAILED',
} as const;

interface BundleLike {
  readonly receipts?: readonly { readonly record: InferenceRecord }[];
  readonly input?: unknown;
}

/** The largest model file the page fetches and runs (its bytes are held in memory, twice at most). */
export const MAX_PAGE_MODEL = 256 * 1024 * 1024;

/**
 * A model file from the node by its UnixFS CID: one raw block when it fits one (up to 1 MiB),
 * else the DAG as a CAR with every block in walk order (`dups=y`), each block checked against its
 * CID as it arrives (`readCar`), the file being the raw leaves in that order. The caller checks
 * the whole file's CID too.
 */
async function fetchArtifact(base: string, cid: string, size: number): Promise<Uint8Array> {
  if (size <= UNIXFS_CHUNK_SIZE) {
    const r = await fetch(`${base}/ipfs/${cid}?format=raw`);
    if (!r.ok) throw new Error(`GET /ipfs/${cid}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  }
  const r = await fetch(`${base}/ipfs/${cid}?format=car&dups=y`);
  if (!r.ok || r.body === null) throw new Error(`GET /ipfs/${cid}: HTTP ${r.status}`);
  const reader = r.body.getReader();
  const chunks = async function* () {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  };
  const leaves: Uint8Array[] = [];
  let total = 0;
  for await (const block of readCar(chunks(), cid)) {
    if (parseCid(block.cid).codec !== CODEC_RAW) continue;
    total += block.bytes.length;
    if (total > size) throw new Error(`the CAR holds more than the manifest's ${size} bytes`);
    leaves.push(block.bytes);
  }
  return concatBytes(...leaves);
}

/** What the page can do with a bundle: re-execute it, or why not (a grey row). */
export type Plan =
  | { readonly kind: 'run'; readonly record: InferenceRecord; readonly input: Input }
  | { readonly kind: 'skip'; readonly row: Row };

/**
 * Where the input comes from: the bundle's (JSON, §2.2), or for a lone receipt of an `audited`
 * record, the node's public payload (`GET /v1/payloads/:requestId`, the canonical bytes).
 */
export type Input = { readonly json: unknown } | { readonly payloadFrom: string };

const skip = (message: string): Plan => ({ kind: 'skip', row: { label: REEXEC_LABEL, status: 'skip', message } });

/**
 * Whether `value` (a bundle, a receipt) can be re-executed here. `payloadFrom`: the node a lone
 * receipt came from, whose payload of an audited record gives the input.
 */
export function planReexec(value: unknown, payloadFrom?: string): Plan | undefined {
  const b = value as BundleLike | undefined;
  const record = b?.receipts?.[0]?.record;
  if (record === undefined || typeof record !== 'object' || record.runtime === undefined) return undefined;
  if (record.kind !== 'onnx') return skip(`a ${record.kind} ${record.mode} record: not re-executed in the page`);
  if (record.runtime.profile !== PORTABLE_RUNTIME.profile || record.runtime.id !== PORTABLE_RUNTIME.id) {
    return skip(`${record.runtime.profile} profile: re-execute on a node with the same hardware`);
  }
  if (b?.input !== undefined) return { kind: 'run', record, input: { json: b.input } };
  if (record.mode === 'audited' && payloadFrom !== undefined) return { kind: 'run', record, input: { payloadFrom } };
  return skip('a receipt carries digests, not the input: re-execute from the bundle on the Verify page');
}

/**
 * Re-executes a portable record: fetches the manifest and the model file from `base` (this node,
 * by CID), checks both, runs the model with onnxruntime-web, and compares digests.
 */
export async function reexecute(base: string, record: InferenceRecord, input: Input): Promise<Row> {
  const row = (status: Row['status'], message: string, code?: string): Row => ({
    label: REEXEC_LABEL,
    status,
    message,
    ...(code === undefined ? {} : { code }),
  });
  let manifest: Manifest;
  let bytes: Uint8Array;
  try {
    const r = await fetch(`${base}/v1/models/${encodeURIComponent(record.model)}`);
    if (!r.ok) throw new Error(`GET /v1/models/${record.model}: HTTP ${r.status}`);
    manifest = ((await r.json()) as { manifest: Manifest }).manifest;
  } catch (e) {
    return row('fail', `the model's manifest could not be fetched: ${errorText(e)}`, REEXEC_CODES.failed);
  }
  if (manifestCid(manifest) !== record.model) {
    return row(
      'fail',
      `the node's manifest does not hash to the record's model ${record.model}`,
      REEXEC_CODES.manifest,
    );
  }
  if (manifest.artifact.size > MAX_PAGE_MODEL) {
    return row(
      'skip',
      `too large to re-execute in the page: the model file is ${manifest.artifact.size} bytes (the page takes up to ${MAX_PAGE_MODEL}); re-execute on a node (\`verity infer --profile portable\`)`,
    );
  }
  try {
    bytes = await fetchArtifact(base, manifest.artifact.cid, manifest.artifact.size);
  } catch (e) {
    // A block that is not its CID's, or a CAR that does not name the file's root: not the file.
    const code = (e as { code?: string }).code;
    const wrong = code === 'CID_INVALID' || code === 'ENCODING_INVALID';
    return row(
      'fail',
      `the model file could not be fetched: ${errorText(e)}`,
      wrong ? REEXEC_CODES.artifact : REEXEC_CODES.failed,
    );
  }
  if ((await unixfsCidOf(bytes)).cid !== manifest.artifact.cid) {
    return row(
      'fail',
      `the model file does not hash to the manifest's artifact ${manifest.artifact.cid}`,
      REEXEC_CODES.artifact,
    );
  }
  let inputs: TensorMap;
  const whose = 'json' in input ? "the bundle's input" : "the node's payload";
  try {
    if ('json' in input) {
      inputs = tensorsFromJson(input.json, manifest.inputs);
    } else {
      const r = await fetch(`${input.payloadFrom}/v1/payloads/${encodeURIComponent(record.requestId)}`);
      if (!r.ok)
        throw new Error(`GET /v1/payloads/${record.requestId}: HTTP ${r.status} (kept until the audit window closes)`);
      inputs = decodeTensors(fromBase64(((await r.json()) as { input: string }).input));
    }
  } catch (e) {
    return row('fail', `${whose} could not be read: ${errorText(e)}`, 'RECEIPT_INPUT_DIGEST_MISMATCH');
  }
  if (toHex(sha256(encodeTensors(inputs))) !== record.inputDigest) {
    return row('fail', `${whose} is not the record's input (inputDigest)`, 'RECEIPT_INPUT_DIGEST_MISMATCH');
  }
  // Loaded now, not with the page: onnxruntime-web's WASM-only build (the plain SIMD binary the node runs).
  const ort = await import('onnxruntime-web/wasm');
  const { sessionOptions, version } = portableSessionOptions(ort.env);
  if (version !== record.runtime.version) {
    return row(
      'skip',
      `the record ran on onnxruntime-web ${record.runtime.version}, this page has ${version}: bits are only promised on the same version`,
    );
  }
  const t0 = performance.now();
  let digest: string;
  try {
    const session = await ort.InferenceSession.create(bytes, sessionOptions as never);
    try {
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.dtype, t.data as never, t.shape);
      const out = await session.run(feeds);
      const outputs: TensorMap = Object.create(null);
      for (const sig of manifest.outputs) {
        const t = out[sig.name];
        if (t === undefined) throw new Error(`the model gave no output ${sig.name}`);
        outputs[sig.name] = { dtype: sig.dtype, shape: [...t.dims], data: t.data } as never;
      }
      digest = toHex(sha256(encodeTensors(outputs)));
    } finally {
      await session.release();
    }
  } catch (e) {
    return row('fail', `the model did not run here: ${errorText(e)}`, REEXEC_CODES.failed);
  }
  const ms = Math.round(performance.now() - t0);
  if (digest !== record.outputDigest) {
    return row(
      'fail',
      `re-executed here (onnxruntime-web ${version}, portable, ${ms} ms): the output's digest ${digest} is not the record's ${record.outputDigest}: the node signed an output this model does not give`,
      'RECEIPT_OUTPUT_DIGEST_MISMATCH',
    );
  }
  return row(
    'pass',
    `re-executed here (onnxruntime-web ${version}, portable, ${ms} ms): the output's digest equals the record's, bit for bit`,
  );
}

/** A row as shown: a check's, or one still running. */
type Shown = Omit<Row, 'status'> & { readonly status: Row['status'] | 'running' };

/** One row as an element (the look of the check rows). */
export function rowElement(r: Shown): HTMLElement {
  return h(
    'div',
    { class: `row ${r.status}`, 'data-check': r.label, 'data-status': r.status, 'data-code': r.code },
    h('span', { class: 'st' }, r.status === 'pass' ? '✓' : r.status === 'fail' ? '✗' : r.status === 'skip' ? '–' : '…'),
    h('span', null, r.label),
    h('span', { class: 'msg' }, r.code && h('span', { class: 'code' }, r.code, ' '), r.message),
  );
}

/**
 * The re-execution section of the Verify and Receipt pages: a grey row where the record cannot be
 * re-executed here, else a button that runs it (and the row it gives). Nothing for what is not a
 * record.
 */
export function reexecSection(base: string, value: unknown, payloadFrom?: string): HTMLElement | undefined {
  const plan = planReexec(value, payloadFrom);
  if (plan === undefined) return undefined;
  const section = h('section', { id: 'reexec' });
  if (plan.kind === 'skip') {
    section.append(rowElement(plan.row));
    return section;
  }
  const slot = h('div', null);
  const button = h(
    'button',
    {
      id: 'reexec-run',
      onclick: async () => {
        button.setAttribute('disabled', '');
        slot.replaceChildren(
          rowElement({ label: REEXEC_LABEL, status: 'running', message: 'loading onnxruntime-web and the model…' }),
        );
        let r: Row;
        try {
          r = await reexecute(base, plan.record, plan.input);
        } catch (e) {
          r = { label: REEXEC_LABEL, status: 'fail', code: REEXEC_CODES.failed, message: errorText(e) };
        }
        slot.replaceChildren(rowElement(r));
        button.removeAttribute('disabled');
        // The checks above passed on the node's word about its output; the re-execution refutes it.
        const verdict = section.parentElement?.querySelector('[data-verdict]');
        if (r.status === 'fail' && r.code !== undefined && verdict) {
          verdict.className = 'verdict fail';
          verdict.setAttribute('data-verdict', r.code);
          verdict.textContent = `✗ Invalid: ${r.code} (re-executed in this page)`;
        }
      },
    },
    'Re-execute in this page',
  );
  section.append(
    h(
      'p',
      { class: 'mut' },
      `Made under the portable profile (onnxruntime-web ${plan.record.runtime.version}): run the model here${'json' in plan.input ? '' : " on the input the node keeps public while the record's audit window is open"} and compare the output bit for bit. `,
      button,
    ),
    slot,
  );
  return section;
}
