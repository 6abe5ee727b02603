import { fail, peekCheckpoint, type Receipt, type RegistryNode, tensorsFromJson, zkFacts } from '@verity/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { chooseProfile, type NodeContext } from '../context.js';
import { receiptJson } from '../log/index.js';
import {
  commitmentOf,
  paymentFor,
  receiptPaymentFor,
  releasePayment,
  sendReplay,
  settleAnswer,
} from '../payments/http.js';
import type { PaymentCheck } from '../payments/index.js';
import { resolveOrFetch } from '../peers/model-source.js';
import type { StoredModel } from '../store/index.js';
import {
  answerForm,
  inputTensors,
  readInferBody,
  registerInferWire,
  sendAnswer,
  type WireInput,
} from './infer-wire.js';
import { coordinateQuorum, coordinatesQuorum } from './quorum.js';
import { type QuorumQuote, quorumQuote } from './quorum-payments.js';
import { NONCE, REQUEST_ID, requestIdFor } from './request-ids.js';
import { onnxRunner } from './run-onnx.js';
import { zkRunner } from './run-zk.js';

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

/** An ONNX model by the name the caller gave: resolved (fetched from a peer when missing). */
async function onnxModel(ctx: NodeContext, ref: string): Promise<StoredModel> {
  const stored = await resolveOrFetch(ctx, ref);
  if (stored.manifest.format !== 'onnx') {
    fail('INVALID_ARGUMENT', `${ref} is a ${stored.manifest.format} model; use the OpenAI routes`, {
      format: stored.manifest.format,
    });
  }
  return stored;
}

/**
 * `POST /v1/infer` (every mode) and `GET /v1/receipts/:requestId`: the request path of
 * docs/architecture.md §2, route → resolve model → executor → runtime → log → receipt. The run
 * (executor, runtime, log) is `run-onnx.ts` / `run-zk.ts`; a quorum is coordinated by `quorum.ts`.
 */
export function registerInferRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const limits = { maxElements: ctx.config.limits.maxElements, maxStringBytes: ctx.config.limits.maxStringBytes };
  const onnx = onnxRunner(ctx);
  const runZk = zkRunner(ctx);
  registerInferWire(app);
  let lastModel = '';
  let lastModelJson = '""';

  app.post('/v1/infer', async (request, reply) => {
    // The wire form (JSON or a binary frame, infer-wire.ts) is settled first: a 406 runs nothing.
    const form = answerForm(request.headers.accept);
    reply.header('vary', 'accept');
    const { fields, input } = readInferBody(request.headers['content-type'], request.body);
    const req = parseInferRequest(fields);
    const stored = await onnxModel(ctx, req.model);
    const priced = { cid: stored.manifestCid, name: stored.manifest.name, version: stored.manifest.version };
    // A quorum of a priced model costs this node's price plus its members' (quorum-payments.ts).
    const quote = coordinatesQuorum(req.mode, request.headers)
      ? await quorumQuote(ctx, {
          model: priced,
          clientNonce: req.clientNonce,
          k: req.k,
          ...(req.block === undefined ? {} : { block: req.block }),
        })
      : undefined;
    // A paid model (docs/api.md "Payments"): 402 unless paid; the same payment retried for the
    // same request gets its answer again (so before the request id check, which a retry repeats).
    const paid = await paymentFor(ctx, request, priced, quote === undefined ? {} : { amount: quote.total });
    if (paid.kind === 'replay') return sendReplay(reply, paid);
    try {
      return await answer(request, reply, form, req, stored, input, paid, quote);
    } catch (e) {
      releasePayment(ctx, paid);
      throw e;
    }
  });

  /** The rest of `POST /v1/infer`, its payment (if any) verified: run, log, answer, settle. */
  const answer = async (
    request: FastifyRequest,
    reply: FastifyReply,
    form: 'json' | 'binary',
    req: InferRequest,
    stored: StoredModel,
    input: WireInput,
    paid: PaymentCheck,
    quote: QuorumQuote | undefined,
  ) => {
    const payment = commitmentOf(ctx, paid);
    const receiptPayment = receiptPaymentFor(paid);
    const paidReceipt = (receipt: Receipt): Receipt =>
      receiptPayment === undefined ? receipt : { ...receipt, payment: receiptPayment };
    // Checked before anything runs: a taken id is refused, never run and logged a second time.
    const requestId = requestIdFor(ctx.log, req.requestId, 'requestId');
    const { inputs, inputBytes } = inputTensors(input, stored.manifest.inputs, limits);

    if (req.mode === 'zk') {
      zkFacts(stored.manifest); // ZK_MODEL_UNSUPPORTED unless pushed with zk
      const { receipt, zk } = await runZk(stored, inputs, requestId, req.clientNonce, payment);
      const evidence = { proof: zk.proof, publicSignals: zk.publicSignals, vk: zk.vk, setup: zk.setup };
      const body = sendAnswer(
        reply,
        form,
        [
          ['requestId', JSON.stringify(requestId)],
          ['model', JSON.stringify(stored.manifestCid)],
          ['output', ''],
          ['receipt', receiptJson(paidReceipt(receipt))],
          ['zk', JSON.stringify(evidence)],
        ],
        zk.output,
      );
      return settleAnswer(ctx, reply, paid, body);
    }

    const { profile } = chooseProfile(ctx, stored.manifest, req.profile);
    if (coordinatesQuorum(req.mode, request.headers)) {
      // A priced model: each member is paid its share by this node, the caller's payment is
      // committed to by this node's record and settled once the quorum answer is made.
      const block = quote?.block ?? req.block;
      const coordinated = await coordinateQuorum(ctx, onnx, {
        stored,
        inputs,
        inputBytes,
        requestId,
        k: req.k,
        clientNonce: req.clientNonce,
        ...(block === undefined ? {} : { block }),
        profile,
        ...(payment === undefined ? {} : { payment }),
        ...(quote === undefined ? {} : { payMember: (node: RegistryNode) => quote.payMember(node) }),
      });
      // This node's receipt (when it is a member) carries the caller's payment.
      const self = ctx.keys.address.toLowerCase();
      const answer =
        receiptPayment === undefined
          ? coordinated
          : {
              ...coordinated,
              receipts: coordinated.receipts.map((r) => (r.record.node.toLowerCase() === self ? paidReceipt(r) : r)),
              quorum: {
                ...coordinated.quorum,
                dissent: coordinated.quorum.dissent.map((r) =>
                  r.record.node.toLowerCase() === self ? paidReceipt(r) : r,
                ),
              },
            };
      if (form === 'json') {
        if (paid.kind !== 'paid') return answer;
        reply.header('content-type', 'application/json; charset=utf-8');
        return settleAnswer(ctx, reply, paid, JSON.stringify(answer));
      }
      // The agreed output is the members' exact JSON form: it reads back to the digested bits.
      const output = tensorsFromJson(answer.output);
      const entries = Object.entries(answer).map(([k, v]) => [k, k === 'output' ? '' : JSON.stringify(v)] as const);
      return settleAnswer(ctx, reply, paid, sendAnswer(reply, form, entries, output));
    }

    const { receipt, output, outputBytes, audit } = await onnx.run({
      stored,
      inputs,
      mode: req.mode,
      requestId,
      clientNonce: req.clientNonce,
      profile,
      receivedBytes: inputBytes,
      payment,
    });
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
      ['receipt', receiptJson(paidReceipt(receipt))],
    ];
    // Mode audited: when the challenge window closes, and where auditors read the payload.
    if (audit !== undefined) fieldsOut.push(['audit', JSON.stringify(audit)]);
    return settleAnswer(ctx, reply, paid, sendAnswer(reply, form, fieldsOut, output, outputBytes));
  };

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
    const logged = ctx.log.receiptByRequestId(requestId);
    // A paid record's receipt carries its payment (the journal keeps it by the record's digest).
    const payment = logged.record.payment && ctx.payments?.payment(logged.record.payment.digest);
    const receipt = payment ? { ...logged, payment } : logged;
    // Against the latest checkpoint the node's witnesses cosigned, when it covers the record (the
    // cosignatures ride on its note, docs/protocol.md §14.3); else against the latest checkpoint.
    const witnessed = ctx.witnessed();
    if (witnessed === undefined) return receipt;
    const { size } = peekCheckpoint(witnessed);
    if (receipt.leafIndex >= size) return receipt;
    return { ...receipt, inclusionProof: ctx.log.inclusionProof(receipt.leafIndex, size), checkpoint: witnessed };
  });
}
