import { Readable } from 'node:stream';
import { CAR_CONTENT_TYPE, CAR_CONTENT_TYPE_DUPS, fail, personalSign } from '@verity/protocol';
import type { FastifyInstance } from 'fastify';
import { type NodeContext, onnxLane, servedProfiles } from '../context.js';
import { type PriceView, priceView } from '../payments/index.js';
import { resolveHere } from '../peers/model-source.js';
import type { ArtifactDescription, StoredModel } from '../store/index.js';
import { runPushPhase2 } from '../zk-ceremony.js';
import { isZkManifest, type ZkPushOptions, type ZkVerifierInfo } from '../zk-service.js';
import { requireApiKey } from './auth.js';

/**
 * The public view of a stored model: an OpenAI model object (`id`, `object`, `created`,
 * `owned_by`) with Verity's facts beside it. `id` is the manifest CID, which every route accepts
 * as a model name; `ref` is its `name@version`.
 */
export function modelView(m: StoredModel, verifier?: ZkVerifierInfo, price?: PriceView) {
  return {
    id: m.manifestCid,
    object: 'model' as const,
    created: Math.floor(Date.parse(m.manifest.createdAt) / 1000),
    owned_by: m.manifest.publisher,
    ref: `${m.manifest.name}@${m.manifest.version}`,
    manifest: m.manifest,
    signature: m.signature,
    // A paid model's price (docs/api.md "Payments"); absent: free.
    ...(price === undefined ? {} : { price }),
    // zk models on a chain: the verifier ZkVerifierRegistry files under the model's key (clients
    // look it up there by vkKey themselves: this is for information).
    ...(verifier === undefined
      ? {}
      : {
          zk: {
            verifier: {
              chainId: verifier.chainId,
              address: verifier.address,
              vkKey: verifier.vkKey,
              registry: verifier.registry,
              deployGas: verifier.deployGas,
            },
          },
        }),
  };
}

function str(query: Record<string, unknown>, key: string): string | undefined {
  const v = query[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail('INVALID_ARGUMENT', `query parameter ${key} must be given once`);
  return v;
}

function intParam(query: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = str(query, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^[0-9]{1,3}$/.test(v) || n < min || n > max)
    fail('INVALID_ARGUMENT', `${key} must be an integer in ${min}..${max}`);
  return n;
}

/**
 * The zk options of a push (`zk=1`): fixed-point parameters given as `zkFracBits` + `zkValueBits`,
 * or chosen for inputs within ±`zkInputRange` (default 10). Undefined without `zk=1`.
 */
function zkPushOptions(q: Record<string, unknown>, format: string): ZkPushOptions | undefined {
  const zk = str(q, 'zk');
  if (zk === undefined || zk === '0' || zk === 'false') {
    for (const k of ['zkFracBits', 'zkValueBits', 'zkInputRange']) {
      if (q[k] !== undefined) fail('INVALID_ARGUMENT', `${k} is for zk=1`);
    }
    return undefined;
  }
  if (zk !== '1' && zk !== 'true') fail('INVALID_ARGUMENT', 'zk must be 1 or 0');
  if (format !== 'onnx') fail('ZK_MODEL_UNSUPPORTED', 'zk mode is for ONNX models');
  const fracBits = intParam(q, 'zkFracBits', 1, 32);
  const valueBits = intParam(q, 'zkValueBits', 2, 120);
  if ((fracBits === undefined) !== (valueBits === undefined)) {
    fail('INVALID_ARGUMENT', 'give zkFracBits and zkValueBits together');
  }
  const rangeText = str(q, 'zkInputRange');
  let inputRange: number | undefined;
  if (rangeText !== undefined) {
    inputRange = Number(rangeText);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(rangeText) || !(inputRange > 0 && inputRange <= 1e6)) {
      fail('INVALID_ARGUMENT', 'zkInputRange must be a positive number up to 1e6');
    }
  }
  return {
    ...(fracBits === undefined || valueBits === undefined ? {} : { params: { fracBits, valueBits } }),
    ...(inputRange === undefined ? {} : { inputRange }),
  };
}

/** Models: streamed upload, listing, lookup, and blocks by CID (IPFS trustless gateway). */
export function registerModelRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const view = (m: StoredModel) =>
    modelView(
      m,
      ctx.chain && isZkManifest(m.manifest)
        ? ctx.zk.recordedVerifier(m.manifest, ctx.chain.deployment.chainId)
        : undefined,
      priceView(ctx.config.payments, ctx.payments, {
        cid: m.manifestCid,
        name: m.manifest.name,
        version: m.manifest.version,
      }),
    );
  // Upload bodies are streamed straight into the store (never buffered whole); the store
  // enforces the size limit as bytes arrive.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.post('/v1/models', async (request, reply) => {
    requireApiKey(request, ctx.keys.apiKey);
    const q = request.query as Record<string, unknown>;
    const name = str(q, 'name');
    const version = str(q, 'version') ?? '1.0.0';
    const format = str(q, 'format') ?? 'onnx';
    if (name === undefined) fail('INVALID_ARGUMENT', 'query parameter name is required');
    if (format !== 'onnx' && format !== 'gguf') {
      fail('INVALID_ARGUMENT', 'this node hosts formats onnx and gguf', { format });
    }
    if (!(request.body instanceof Readable))
      fail('UNSUPPORTED_MEDIA_TYPE', 'send the model as application/octet-stream');
    // The declared size: `size` (what browsers can send), else Content-Length.
    const sizeText = str(q, 'size') ?? request.headers['content-length'];
    if (sizeText !== undefined && !/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) {
      fail('INVALID_ARGUMENT', 'size must be a non-negative integer');
    }
    const declaredSize = sizeText === undefined ? undefined : Number(sizeText);
    const license = str(q, 'license');
    const description = str(q, 'description');
    const zk = zkPushOptions(q, format);
    const profiles = pushProfiles(ctx, str(q, 'profiles'), format);
    const stored = await ctx.store.putArtifact(request.body, {
      name,
      version,
      format,
      maxSize: ctx.config.limits.modelBytes,
      ...(declaredSize === undefined ? {} : { declaredSize }),
      publisher: ctx.keys.address,
      profiles: profiles ?? [await ctx.llm.ready()],
      ...(license === undefined ? {} : { license }),
      ...(description === undefined ? {} : { description }),
      sign: (cid) => personalSign(cid, ctx.keys.accountKey),
      describe: async (path) => {
        if (format === 'gguf') {
          // The header gives the manifest's facts; a trial load (mmap, cheap) proves llama.cpp
          // can run the file, so a truncated or corrupt model is refused now, not at first use.
          const description = await ctx.llm.describe(path);
          await (await ctx.llm.load(path)).close();
          return description;
        }
        // A trial load in every profile listed: a model one runtime cannot run (an operator
        // onnxruntime-web lacks) is refused now, not at its first request.
        let described: ArtifactDescription | undefined;
        for (const profile of profiles ?? []) {
          const model = await (onnxLane(ctx, profile) as NonNullable<ReturnType<typeof onnxLane>>).runtime.load(path);
          try {
            described ??= { inputs: [...model.inputs], outputs: [...model.outputs] };
          } finally {
            await model.close();
          }
        }
        if (described === undefined) return fail('INTERNAL', 'no profile to describe the model with');
        // zk: compile the circuit and make (or reuse) its keys now, so that no request waits for a setup.
        // On a chain with other nodes (and a phase 1 no single party made), the keys come from a
        // multi-party phase 2 run now, before the manifest is signed (zk-ceremony.ts).
        if (zk !== undefined) {
          described.metadata = await ctx.zk.prepare(path, zk, (circuit) => runPushPhase2(ctx, circuit));
        }
        return described;
      },
    });
    // On a chain, the model is published in ModelRegistry (name@version → manifest CID), so other
    // nodes can find and fetch it; a re-push retries a publish that failed.
    if (ctx.chain) {
      await ctx.chain.publish(stored.manifest.name, stored.manifest.version, stored.manifestCid);
      // zk: the model's Solidity verifier, deployed once per key and chain (a re-push reuses it).
      if (isZkManifest(stored.manifest)) {
        await ctx.zk.verifier(stored.manifestCid, stored.manifest, stored.artifactPath, ctx.chain);
        // Bound to its key and layout (this node published it): disputes over its zk records are
        // then settled by a proof (docs/protocol.md §12 "The zk binding").
        await ctx.zk.bind(stored.manifestCid, stored.manifest, stored.artifactPath, ctx.chain);
      }
    }
    return reply.status(201).send(view(stored));
  });

  app.get('/v1/models', async () => ({ object: 'list', data: ctx.store.list().map(view) }));
  // A name resolves through ModelRegistry on a node with a chain (peers/model-source.ts).
  app.get('/v1/models/:ref', async (request) => view(await resolveHere(ctx, (request.params as { ref: string }).ref)));

  // IPFS trustless gateway (raw blocks and CARs): any IPFS client can fetch and check Verity models.
  app.get('/ipfs/:cid', async (request, reply) => {
    const { cid } = request.params as { cid: string };
    const format = str(request.query as Record<string, unknown>, 'format');
    const accept = request.headers.accept ?? '';
    const wantsCar = format === 'car' || accept.includes('application/vnd.ipld.car');
    const wantsRaw = format === 'raw' || accept.includes('application/vnd.ipld.raw');
    if (!wantsCar && !wantsRaw) {
      fail('NOT_ACCEPTABLE', 'ask for application/vnd.ipld.raw or application/vnd.ipld.car (or ?format=raw|car)');
    }
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'public, max-age=29030400, immutable');
    reply.header('x-ipfs-roots', cid);
    if (wantsRaw && !wantsCar) {
      const block = await ctx.store.getBlock(cid);
      return reply.type('application/vnd.ipld.raw').send(Buffer.from(block.buffer, block.byteOffset, block.byteLength));
    }
    await ctx.store.getBlock(cid); // 404 before streaming starts
    // `dups=y` (IPIP-0412, in Accept or the query): every block each time the walk meets it, so a
    // client can rebuild a file from the leaves in order without keeping blocks.
    const dups = str(request.query as Record<string, unknown>, 'dups') === 'y' || /dups=y/.test(accept);
    return reply
      .type(dups ? CAR_CONTENT_TYPE_DUPS : CAR_CONTENT_TYPE)
      .send(Readable.from(ctx.store.car(cid, { dups })));
  });
}

/**
 * The execution profiles an ONNX push lists (`profiles=native,portable`, in preference order;
 * default `native`), each one this node runs (else `PROFILE_UNSUPPORTED`); undefined for GGUF.
 */
function pushProfiles(ctx: NodeContext, text: string | undefined, format: string): string[] | undefined {
  if (format !== 'onnx') {
    if (text !== undefined) fail('INVALID_ARGUMENT', 'profiles is for ONNX models', { format });
    return undefined;
  }
  if (text === undefined) return [ctx.runtime.profile];
  const profiles = text.split(',');
  for (const profile of profiles) {
    if (onnxLane(ctx, profile) === undefined) {
      fail('PROFILE_UNSUPPORTED', `this node does not run profile "${profile}"`, {
        profile: profile.slice(0, 64),
        supported: servedProfiles(ctx),
      });
    }
  }
  if (new Set(profiles).size !== profiles.length) fail('INVALID_ARGUMENT', 'profiles must not repeat a profile');
  return profiles;
}
