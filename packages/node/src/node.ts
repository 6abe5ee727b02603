/**
 * A Verity node: opens its keystore, model store and log, starts the runtime, the executor and
 * the HTTP API; stops in reverse order, finishing requests in flight and flushing the log
 * (docs/architecture.md §8).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getDisputeRules } from '@verity/contracts';
import { readDeploymentFile } from '@verity/contracts/node';
import { encodeVerifierKey, fromHex } from '@verity/protocol';
import type { FastifyInstance } from 'fastify';
import { servedModes } from './api/routes-node.js';
import { createApi } from './api/server.js';
import { startChainService } from './chain/chain-service.js';
import type { NodeConfig } from './config.js';
import { AUDIT_ANCHOR_MARGIN_SECONDS, contextErrors, type NodeContext } from './context.js';
import { type JurorService, startJuror } from './disputes/juror.js';
import { createExecutor, type ExecutableModel, type Task } from './executor.js';
import { openKeystore } from './keys.js';
import { openLog } from './log/index.js';
import { createMetrics } from './metrics.js';
import { createModelCache } from './model-cache.js';
import { createChainSettler } from './payments/chain-settler.js';
import { createPaymentService, openPaymentJournal, type PaymentSettler } from './payments/index.js';
import { peerZkeys } from './peers/fetch-zkey.js';
import { peerFetch } from './peers/url-policy.js';
import { runBatched } from './runtimes/batch.js';
import { createLlmRuntime, type LlmRuntime, type LoadedLlm } from './runtimes/llm.js';
import { createOnnxRuntime } from './runtimes/onnx.js';
import { createPortableRuntime } from './runtimes/portable.js';
import type { LoadedModel, Runtime } from './runtimes/runtime.js';
import { openModelStore, openPayloadStore } from './store/index.js';
import { createRegisteredWitnesses, startWitnessClient, type WitnessClient } from './witness/witness-client.js';
import { createNodeCosigner, createWitnessService, logKeysByOrigin } from './witness/witness-service.js';
import { readCeremonyRecord } from './zk-ceremony.js';
import { createZkService } from './zk-service.js';

/** A started node. */
export interface VerityNode {
  /** Base URL it listens on, e.g. `http://127.0.0.1:8700`. */
  readonly url: string;
  readonly context: NodeContext;
  readonly app: FastifyInstance;
  /** Graceful stop: refuse new requests, finish those in flight, flush and close the log. */
  stop(): Promise<void>;
}

/**
 * What a node is built from beyond its config: the runtimes it runs ONNX and GGUF models on
 * (default: the native ONNX runtime and the llama.cpp runtime, set up from `config`). Tests hand
 * in wrapped runtimes to make a node lie (`test-support/lying-node.ts`); the shipped entry points
 * never pass any.
 */
export interface StartNodeOptions {
  readonly runtime?: Runtime;
  /** The `portable` ONNX runtime (default: onnxruntime-web, `runtimes/portable.ts`). */
  readonly portable?: Runtime;
  readonly llm?: LlmRuntime;
  /**
   * Wraps the node's payment settler (tests only: `test-support/payment-crash-main.ts` dies
   * between an answer and its settlement to show the journal settles it on restart).
   */
  readonly paymentSettler?: (settler: PaymentSettler) => PaymentSettler;
}

/**
 * The runtimes a node runs on unless given others, set up from `config` (neither loads anything
 * before its first model).
 *
 * @example
 * ```ts
 * const { runtime, portable, llm } = createRuntimes(config);
 * ```
 */
export function createRuntimes(config: NodeConfig): { runtime: Runtime; portable: Runtime; llm: LlmRuntime } {
  return {
    runtime: createOnnxRuntime(config.threads > 0 ? { intraOpThreads: config.threads } : {}),
    portable: createPortableRuntime(),
    llm: createLlmRuntime({
      gpu: config.llm.gpu === 'cpu' ? false : 'auto',
      sequences: config.llm.sequences,
      contextSize: config.llm.contextSize,
      threads: config.llm.threads,
    }),
  };
}

/**
 * Starts a node with `config`.
 *
 * @example
 * ```ts
 * const node = await startNode(loadConfig({ overrides: { dataDir: './data', port: 0 } }));
 * console.log(node.url);
 * await node.stop();
 * ```
 */
export async function startNode(config: NodeConfig, options: StartNodeOptions = {}): Promise<VerityNode> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const keys = openKeystore(config.dataDir, config.origin === undefined ? {} : { origin: config.origin });
  const store = await openModelStore({ dir: join(config.dataDir, 'models') });
  const payloads = await openPayloadStore(join(config.dataDir, 'payloads'));
  const log = await openLog({ dir: join(config.dataDir, 'log'), signer: keys.signer, fsync: config.fsync });
  const { runtime, portable, llm } = { ...createRuntimes(config), ...options };
  // Only ONNX models are batchable, so only they ever reach the batch runner.
  const executor = createExecutor<LoadedModel | LoadedLlm>(config.executor, (model, requests) =>
    runBatched(model as LoadedModel, requests as never),
  );
  // zk work: one lane, never batched; its queue bounds are the zk settings'.
  const zkExecutor = createExecutor<ExecutableModel<Task, unknown>>(
    {
      concurrency: config.zk.concurrency,
      maxQueue: config.zk.maxQueue,
      // One lane: its queue is the bound (a full one answers 429 QUEUE_FULL).
      maxPending: Number.MAX_SAFE_INTEGER,
      maxBatch: 1,
      timeoutMs: config.zk.timeoutMs,
    },
    () => Promise.reject(new Error('zk tasks are never batched')),
  );
  const models = createModelCache(runtime);
  const portableModels = createModelCache(portable);
  const llms = createModelCache(llm, 4);
  const metrics = createMetrics(() => ({
    ...executor.stats(),
    logSize: log.size,
    models: models.size + portableModels.size + llms.size,
    zk: zkExecutor.stats(),
  }));
  let witnessClient: WitnessClient | undefined;
  const configuredLogs = logKeysByOrigin(config.witness.logs);
  const context: NodeContext = {
    config,
    witness: createWitnessService({
      dir: join(config.dataDir, 'witness'),
      cosigner: createNodeCosigner(keys.origin, keys.logSignerKey),
      // Configured keys, then the registered nodes' (read from the chain; cached for a second).
      logKeys: async (origin) => {
        const listed = configuredLogs.get(origin);
        if (listed !== undefined) return listed;
        if (context.chain === undefined) return undefined;
        const { nodes } = await context.chain.peers();
        const byOrigin = logKeysByOrigin(
          nodes.filter((n) => n.origin === origin).map((n) => encodeVerifierKey(n.origin, fromHex(n.logKey))),
        );
        return byOrigin.get(origin);
      },
    }),
    witnessed: () => witnessClient?.witnessed(),
    keys,
    store,
    log,
    runtime,
    models,
    portable: { runtime: portable, models: portableModels },
    llm,
    llms,
    executor,
    metrics,
    zk: createZkService(config.zk, config.dataDir, {
      // Bound late: the chain service starts after the context exists.
      peerZkeys: (cid, maxBytes) => peerZkeys(context, cid, maxBytes),
      ceremonyRecord: (ref) => readCeremonyRecord(context, ref),
      phase1Ceremony: () => {
        const ceremony = context.chain?.deployment.contracts.ceremony;
        return context.chain === undefined || ceremony === undefined || config.zk.phase1Ceremony === undefined
          ? undefined
          : { chainId: context.chain.deployment.chainId, address: ceremony, id: config.zk.phase1Ceremony };
      },
    }),
    zkExecutor,
    payloads,
    auditWindowSeconds: config.audit.windowSeconds,
    closing: false,
    ...contextErrors,
  };
  const app = createApi(context);
  // Payloads whose challenge window closed go; checked at start and then every minute.
  const prune = () => void payloads.prune().catch((e) => app.log.warn({ err: e }, 'pruning payloads failed'));
  prune();
  const pruning = setInterval(prune, 60_000);
  pruning.unref();
  let address: string;
  try {
    address = await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    clearInterval(pruning);
    await log.close();
    throw e;
  }
  const url = address.replace('[::1]', 'localhost');
  let juror: JurorService | undefined;
  if (config.chain) {
    try {
      context.chain = await startChainService(keys, log, {
        rpcUrl: config.chain.rpcUrl,
        deployment: await readDeploymentFile(config.chain.deploymentFile),
        stake: BigInt(config.chain.stakeWei),
        anchorIntervalMs: config.chain.anchorIntervalMs,
        endpoint: config.chain.endpoint ?? url,
        capabilities: [
          ...servedModes(true).map((m) => `mode:${m}` as const),
          'runtime:onnx-native',
          'runtime:onnx-portable',
          'runtime:llm',
        ],
        onError: (e) => app.log.warn({ code: e.code, err: e }, 'anchoring failed'),
      });
      // Audited payloads are kept for as long as the chain lets anyone challenge their record: its
      // window runs from the record's first anchor, so past the window from the record's time.
      const disputes = context.chain.deployment.contracts.disputes;
      if (disputes !== undefined) {
        context.auditWindowSeconds =
          (await getDisputeRules(context.chain.publicClient, { disputes })).challengeWindow +
          AUDIT_ANCHOR_MARGIN_SECONDS;
        if (config.disputes.juror) {
          juror = startJuror(context, {
            intervalMs: config.disputes.intervalMs,
            onEvent: (level, message, details) => app.log[level](details, message),
          });
        }
      }
      if (config.payments !== undefined) {
        const settler = await createChainSettler(context.chain, config.payments, keys.address);
        const journal = await openPaymentJournal(join(config.dataDir, 'payments'), { fsync: config.fsync });
        const payments = createPaymentService(config.payments, options.paymentSettler?.(settler) ?? settler, journal);
        // Payments accepted before a crash and not settled: settled now while still valid.
        const recovered = await payments.recover();
        if (recovered.settled + recovered.expired + recovered.failed > 0) {
          app.log.info(recovered, 'payments accepted before the last stop were settled');
        }
        context.payments = payments;
      }
    } catch (e) {
      clearInterval(pruning);
      await app.close();
      await context.payments?.close();
      await log.close();
      throw e;
    }
  }
  if (config.witness.submitTo.length > 0 || config.witness.peers) {
    const registeredWitnesses = createRegisteredWitnesses(context);
    witnessClient = startWitnessClient({
      log,
      witnesses: async () => [...config.witness.submitTo, ...(config.witness.peers ? await registeredWitnesses() : [])],
      // Configured witnesses are the operator's choice; registered endpoints pass the URL policy.
      fetch: (target, init) =>
        peerFetch(
          target,
          init,
          config.witness.submitTo.some((w) => target.startsWith(w.url.replace(/\/$/, '')))
            ? { localNetwork: true }
            : config.peers,
        ),
      intervalMs: config.witness.intervalMs,
      onError: (e, witness) => app.log.warn({ code: e.code, witness }, 'witness refused the checkpoint'),
    });
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    context,
    app,
    stop() {
      stopping ??= (async () => {
        context.closing = true;
        clearInterval(pruning);
        await app.close(); // waits for requests in flight
        await executor.idle();
        await zkExecutor.idle();
        await witnessClient?.stop();
        await juror?.stop();
        await context.payments?.close();
        if (context.chain) {
          // The last checkpoint goes on chain before the log closes (best effort: the chain may be gone).
          await context.chain.anchorNow().catch(() => undefined);
          await context.chain.stop();
        }
        await log.close();
        await models.closeAll();
        await portableModels.closeAll();
        await llms.closeAll();
        await context.zk.close();
      })();
      return stopping;
    },
  };
}
