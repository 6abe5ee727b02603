import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getZkBinding } from '@verity/contracts';
import {
  encodeTensors,
  fail,
  type InferenceRecord,
  paramsDigest,
  peekCheckpoint,
  type TensorMap,
  tensorsFromJson,
  tensorsToExactJson,
  ZK_RUNTIME,
  type ZkBinding,
  zkBindingMismatch,
  zkFacts,
} from '@verity/protocol';
import type { FastifyInstance } from 'fastify';
import {
  chooseProfile,
  type NodeContext,
  type OnnxLane,
  onnxExecutorKey,
  onnxLane,
  servedProfiles,
} from '../context.js';

import { receiptJson } from '../log/index.js';
import { resolveOrFetch } from '../peers/model-source.js';
import type { StoredModel } from '../store/index.js';
import { runZkTask } from '../zk-lane.js';
import { appendAudited } from './audited.js';
import { answerForm, inputTensors, readInferBody, registerInferWire, sendAnswer } from './infer-wire.js';
import { coordinateQuorum, QUORUM_MEMBER_HEADER } from './quorum.js';
import { NONCE, REQUEST_ID, requestIdFor } from './request-ids.js';

const FIELDS = new Set(['model', 'input', 'mode', 'k', 'block', 'requestId', 'clientNonce', 'profile']);
const MODES = ['signed', 'quorum', 'audited', 'zk'] as const;
/** A profile name as manifests write them (docs/protocol.md §4.1). */
const PROFILE = /^[a-z][a-z0-9-]{0,31}$/;

/** A validated `POST /v1/infer` body. */
interface InferRequest {
  readonly model: string;
  readonly mode: (typeof MODES)[number];
  /** Quorum size (mode `quorum`), default 3. */
  readonly k: number;
  /** Mode `quorum`: the block whose registry and hash seed the selection (default: the head). */
  readonly block?: number;
  /** The caller's request id, unchecked (see `requestIdFor`). */
  readonly requestId?: unknown;
  readonly clientNonce?: string;
  /** The execution profile to run under (docs/design.md §2.6); default: the manifest's first this node runs. */
  readonly profile?: string;
}

function parseInferRequest(body: unknown): InferRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    fail('INVALID_ARGUMENT', 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!FIELDS.has(k)) fail('INVALID_ARGUMENT', `unknown field "${k}"`, { field: k });
  if (typeof b.model !== 'string' || b.model === '')
    fail('INVALID_ARGUMENT', 'model (a CID or name@version) is required');
  if (b.mode !== undefined && !(MODES as readonly unknown[]).includes(b.mode)) {
    fail('INVALID_ARGUMENT', 'mode must be "signed", "quorum", "audited" or "zk"', { mode: b.mode, supported: MODES });
  }
  if (b.k !== undefined && (!Number.isSafeInteger(b.k) || (b.k as number) < 1 || (b.k as number) > 16)) {
    fail('INVALID_ARGUMENT', 'k (the quorum size) must be an integer from 1 to 16');
  }
  if (b.k !== undefined && b.mode !== 'quorum') fail('INVALID_ARGUMENT', 'k is for mode "quorum"');
  if (b.block !== undefined && (!Number.isSafeInteger(b.block) || (b.block as number) < 0 || b.mode !== 'quorum')) {
    fail('INVALID_ARGUMENT', 'block (a block number) is for mode "quorum"');
  }
  if (b.clientNonce !== undefined && (typeof b.clientNonce !== 'string' || !NONCE.test(b.clientNonce))) {
    fail('INVALID_ARGUMENT', 'clientNonce must be 1–64 bytes of lower-case hex');
  }
  if (b.profile !== undefined && (typeof b.profile !== 'string' || !PROFILE.test(b.profile))) {
    fail('INVALID_ARGUMENT', 'profile must be an execution profile name such as "native" or "portable"');
  }
  if (b.profile !== undefined && b.mode === 'zk') fail('INVALID_ARGUMENT', 'profile is for ONNX runs, not mode "zk"');
  return {
    model: b.model,
    mode: (b.mode as InferRequest['mode'] | undefined) ?? 'signed',
    k: (b.k as number | undefined) ?? 3,
    ...(b.block === undefined ? {} : { block: b.block as number }),
    ...(b.requestId === undefined ? {} : { requestId: b.requestId }),
    ...(b.clientNonce === undefined ? {} : { clientNonce: b.clientNonce as string }),
    ...(b.profile === undefined ? {} : { profile: b.profile as string }),
  };
}

/**
 * `toHex(tensorsDigest(map))` (docs/design.md §2.2): SHA-256 of the protocol's canonical encoding, on
 * `node:crypto` and hex-encoded by it (the portable SHA-256 and hex loop cost ~3× as much).
 */
function tensorsDigestHex(map: TensorMap): string {
  return hash('sha256', encodeTensors(map), 'hex');
}

/** The version of snarkjs that proves (the `zk` records' runtime version). */
let snarkjsVersionText: string | undefined;
function snarkjsVersion(): string {
  if (snarkjsVersionText === undefined) {
    const require = createRequire(import.meta.url);
    // snarkjs exports no ./package.json: walk up from its entry point to it.
    let dir = dirname(require.resolve('snarkjs'));
    for (let i = 0; i < 4 && snarkjsVersionText === undefined; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'snarkjs' && typeof pkg.version === 'string') snarkjsVersionText = pkg.version;
      } catch {
        // not here
      }
    }
    snarkjsVersionText ??= 'unknown';
  }
  return snarkjsVersionText;
}

/** The paramsDigest of every ONNX record (no parameters): a constant. */
const NO_PARAMS_DIGEST = paramsDigest({});

/**
 * `POST /v1/infer` (every mode) and `GET /v1/receipts/:requestId`: the request path of
 * docs/architecture.md §2, route → resolve model → executor → runtime → log → receipt.
 */
export function registerInferRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const limits = { maxElements: ctx.config.limits.maxElements, maxStringBytes: ctx.config.limits.maxStringBytes };

  // What each ONNX profile's records carry as `runtime`, made once.
  const runtimes = new Map(
    servedProfiles(ctx).map((profile) => {
      const r = (onnxLane(ctx, profile) as OnnxLane).runtime;
      return [profile, Object.freeze({ id: r.id, version: r.version, profile: r.profile })] as const;
    }),
  );
  registerInferWire(app);
  let lastModel = '';
  let lastModelJson = '""';

  /**
   * Runs the request here and logs its record (mode `signed`, `audited`, or `quorum` as a member);
   * an audited one through `appendAudited`, which keeps its payload durably first.
   */
  const runHere = async (
    stored: StoredModel,
    inputs: TensorMap,
    mode: 'signed' | 'quorum' | 'audited',
    requestId: string,
    clientNonce: string | undefined,
    profile: string,
    receivedBytes?: Uint8Array,
  ) => {
    const lane = onnxLane(ctx, profile) as OnnxLane;
    const runtime = runtimes.get(profile) as InferenceRecord['runtime'];
    const model = await lane.models.get(stored.manifestCid, stored.artifactPath);
    const started = performance.now();
    const output = await ctx.executor.run(onnxExecutorKey(stored.manifestCid, profile), model, inputs);
    ctx.metrics.inferenceSeconds.observe({ model: stored.manifest.name }, (performance.now() - started) / 1000);
    const audited = mode === 'audited';
    // A binary request's tensors as received are canonical (docs/protocol.md §2.6): digested as they are.
    const inputBytes = receivedBytes ?? (audited ? encodeTensors(inputs) : undefined);
    const outputBytes = encodeTensors(output);
    const record: InferenceRecord & { kind: 'onnx' } = {
      version: 1,
      kind: 'onnx',
      mode,
      model: stored.manifestCid,
      runtime,
      inputDigest: inputBytes ? hash('sha256', inputBytes, 'hex') : tensorsDigestHex(inputs),
      outputDigest: hash('sha256', outputBytes, 'hex'),
      paramsDigest: NO_PARAMS_DIGEST,
      requestId,
      ...(clientNonce === undefined ? {} : { clientNonce }),
      timestamp: Date.now(),
      node: ctx.keys.address,
    };
    const appendStarted = performance.now();
    const logged =
      audited && inputBytes
        ? await appendAudited(ctx, record, inputBytes, outputBytes)
        : { receipt: await ctx.log.append(record), audit: undefined };
    ctx.metrics.logAppendSeconds.observe((performance.now() - appendStarted) / 1000);
    return { record, receipt: logged.receipt, output, outputBytes, audit: logged.audit };
  };

  /**
   * Mode `zk`: the circuit proves the inference; its output (decoded from the public signals) is
   * the answer, and the record's outputDigest is over it, so proof and logged output go together.
   */
  /** Bindings read from the chain (immutable once set, so kept; an unbound model is read again). */
  const bindings = new Map<string, ZkBinding>();
  /**
   * On a chain with `Disputes`, a dispute over a zk record is settled by a proof read through the
   * model's binding (docs/protocol.md §12 "The zk binding"): answer only when the binding is
   * exactly this manifest's facts and this node's key (`ZK_BINDING_MISMATCH` otherwise). An unbound
   * model is served: no proof can settle a dispute over its records, which go to the jury.
   */
  const checkBinding = async (stored: StoredModel, vk: unknown) => {
    const chain = ctx.chain;
    if (chain?.deployment.contracts.disputes === undefined) return;
    let binding = bindings.get(stored.manifestCid);
    if (binding === undefined) {
      const zkVerifiers = chain.deployment.contracts.zkVerifiers;
      binding = await getZkBinding(chain.publicClient, { zkVerifiers, manifestCid: stored.manifestCid });
      if (binding === undefined) return;
      bindings.set(stored.manifestCid, binding);
    }
    const mismatches = zkBindingMismatch(binding, stored.manifest, vk);
    if (mismatches.length > 0) {
      fail(
        'ZK_BINDING_MISMATCH',
        `the model's zk binding on chain differs from its manifest: ${mismatches.join(', ')}`,
        {
          mismatches,
        },
      );
    }
  };

  const runZk = async (stored: StoredModel, inputs: TensorMap, requestId: string, clientNonce: string | undefined) => {
    const started = performance.now();
    // Through the zk lane of the executor: one proof at a time, a bounded queue (429 QUEUE_FULL),
    // a timeout (504 INFERENCE_TIMEOUT).
    const zk = await runZkTask(ctx, async () => {
      const proving = performance.now();
      const out = await ctx.zk.prove(stored.manifestCid, stored.manifest, stored.artifactPath, inputs);
      ctx.metrics.zkProveSeconds.observe((performance.now() - proving) / 1000);
      ctx.metrics.zkProofs.inc();
      ctx.metrics.zkRssAfterProveBytes.set(process.memoryUsage.rss());
      return out;
    });
    ctx.metrics.inferenceSeconds.observe({ model: stored.manifest.name }, (performance.now() - started) / 1000);
    await checkBinding(stored, zk.vk);
    const record: InferenceRecord = {
      version: 1,
      kind: 'zk',
      mode: 'zk',
      model: stored.manifestCid,
      runtime: { id: ZK_RUNTIME.id, version: snarkjsVersion(), profile: ZK_RUNTIME.profile },
      inputDigest: tensorsDigestHex(inputs),
      outputDigest: tensorsDigestHex(zk.output),
      paramsDigest: NO_PARAMS_DIGEST,
      requestId,
      ...(clientNonce === undefined ? {} : { clientNonce }),
      timestamp: Date.now(),
      node: ctx.keys.address,
    };
    const receipt = await ctx.log.append(record);
    return { receipt, zk };
  };

  app.post('/v1/infer', async (request, reply) => {
    // The wire form (JSON or a binary frame, infer-wire.ts) is settled first: a 406 runs nothing.
    const form = answerForm(request.headers.accept);
    reply.header('vary', 'accept');
    const { fields, input } = readInferBody(request.headers['content-type'], request.body);
    const req = parseInferRequest(fields);
    // Checked before anything runs: a taken id is refused, never run and logged a second time.
    const requestId = requestIdFor(ctx.log, req.requestId, 'requestId');
    const stored = await resolveOrFetch(ctx, req.model);
    if (stored.manifest.format !== 'onnx') {
      fail('INVALID_ARGUMENT', `${req.model} is a ${stored.manifest.format} model; use the OpenAI routes`, {
        format: stored.manifest.format,
      });
    }
    const { inputs, inputBytes } = inputTensors(input, stored.manifest.inputs, limits);
    const profile = req.mode === 'zk' ? undefined : chooseProfile(ctx, stored.manifest, req.profile).profile;
    if (req.mode === 'quorum' && request.headers[QUORUM_MEMBER_HEADER] !== '1') {
      const answer = await coordinateQuorum(ctx, {
        stored,
        inputs,
        inputDigest: inputBytes ? hash('sha256', inputBytes, 'hex') : tensorsDigestHex(inputs),
        requestId,
        k: req.k,
        clientNonce: req.clientNonce,
        ...(req.block === undefined ? {} : { block: req.block }),
        profile: profile as string,
        runtime: runtimes.get(profile as string) as InferenceRecord['runtime'],
        runHere: async () => {
          const r = await runHere(stored, inputs, 'quorum', requestId, req.clientNonce, profile as string, inputBytes);
          return { node: ctx.keys.address, record: r.record, receipt: r.receipt, output: tensorsToExactJson(r.output) };
        },
      });
      if (form === 'json') return answer;
      // The agreed output is the members' exact JSON form: it reads back to the digested bits.
      const output = tensorsFromJson(answer.output);
      const entries = Object.entries(answer).map(([k, v]) => [k, k === 'output' ? '' : JSON.stringify(v)] as const);
      return sendAnswer(reply, form, entries, output);
    }
    if (req.mode === 'zk') {
      zkFacts(stored.manifest); // ZK_MODEL_UNSUPPORTED unless pushed with zk
      const { receipt, zk } = await runZk(stored, inputs, requestId, req.clientNonce);
      const evidence = { proof: zk.proof, publicSignals: zk.publicSignals, vk: zk.vk, setup: zk.setup };
      return sendAnswer(
        reply,
        form,
        [
          ['requestId', JSON.stringify(requestId)],
          ['model', JSON.stringify(stored.manifestCid)],
          ['output', ''],
          ['receipt', receiptJson(receipt)],
          ['zk', JSON.stringify(evidence)],
        ],
        zk.output,
      );
    }
    const { receipt, output, outputBytes, audit } = await runHere(
      stored,
      inputs,
      req.mode,
      requestId,
      req.clientNonce,
      profile as string,
      inputBytes,
    );
    // The body as text: JSON.stringify({ requestId, model, output, receipt }), with the receipt
    // assembled by receiptJson (its note, shared by the batch, is escaped once).
    if (stored.manifestCid !== lastModel) {
      lastModel = stored.manifestCid;
      lastModelJson = JSON.stringify(lastModel);
    }
    const fieldsOut: [string, string][] = [
      ['requestId', JSON.stringify(requestId)],
      ['model', lastModelJson],
      ['output', ''],
      ['receipt', receiptJson(receipt)],
    ];
    // Mode audited: when the challenge window closes, and where auditors read the payload.
    if (audit !== undefined) fieldsOut.push(['audit', JSON.stringify(audit)]);
    return sendAnswer(reply, form, fieldsOut, output, outputBytes);
  });

  /**
   * Mode audited: the kept payload of an audited request, public (the caller chose auditing) until
   * its window closes; any other request id, or a closed window, is 404 PAYLOAD_NOT_FOUND.
   */
  app.get('/v1/payloads/:requestId', async (request) => {
    const { requestId } = request.params as { requestId: string };
    const payload = await ctx.payloads.get(requestId);
    if (payload === undefined) fail('PAYLOAD_NOT_FOUND', 'no kept payload for this request id');
    return payload;
  });

  app.get('/v1/receipts/:requestId', async (request) => {
    const { requestId } = request.params as { requestId: string };
    if (!REQUEST_ID.test(requestId)) fail('RECEIPT_NOT_FOUND', 'no receipt for this request id');
    const receipt = ctx.log.receiptByRequestId(requestId);
    // Against the latest checkpoint the node's witnesses cosigned, when it covers the record (the
    // cosignatures ride on its note, docs/protocol.md §14.3); else against the latest checkpoint.
    const witnessed = ctx.witnessed();
    if (witnessed === undefined) return receipt;
    const { size } = peekCheckpoint(witnessed);
    if (receipt.leafIndex >= size) return receipt;
    return { ...receipt, inclusionProof: ctx.log.inclusionProof(receipt.leafIndex, size), checkpoint: witnessed };
  });
}
