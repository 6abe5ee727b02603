/**
 * The juror service (docs/protocol.md §15.8): a node on a chain whose deployment has `Disputes`
 * watches every open dispute. Where it was drawn, it re-executes the challenged record's input
 * (the `Challenged` event's bytes) on the model the record names, commits the output digest it
 * computed with a random salt, and reveals once the commit phase is over. Anyone may draw a jury
 * and resolve a dispute whose votes are in or whose reveal period passed: the service does both,
 * so a dispute never waits on the challenger.
 *
 * The salt is written durably (`<dataDir>/juror/<id>.json`) before the commitment is sent, so a
 * node that restarts between commit and reveal still reveals. ONNX and LLM records are re-executed
 * (`reexecute.ts`). A dispute over a `zk` record is first settled by a proof, if this node can make
 * one (it stores the model and its checked proving key; nothing is fetched for it): it proves the
 * challenged input and sends `settleByProof`, which resolves the dispute at once if the model is
 * bound on chain (docs/protocol.md §15.5). Where it cannot re-execute or prove (an unbound zk
 * record, an LLM record whose output differs on another runtime profile), the juror logs that it
 * abstains (and loses its deposit, as a silent juror).
 * Off the request path: every error is reported to `onError` and the next tick tries again
 * (docs/architecture.md §6).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  commitVote,
  disputesAbi,
  drawDisputeJury,
  getDispute,
  resolveDispute,
  revealVote,
  settleDisputeByProof,
} from '@verity/contracts';
import { decodeRecord, decodeTensors, fromHex, type InferenceRecord, toHex } from '@verity/protocol';
import type { Hex } from 'viem';
import { type NodeContext, onnxExecutorKey, onnxLane } from '../context.js';
import { resolveOrFetch } from '../peers/model-source.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { type Reexecution, reexecuteLlm, reexecuteOnnx } from './reexecute.js';

/**
/**
 * `record` re-executed here on `input` (docs/protocol.md §15.8, `reexecute.ts`): the output digest
 * an honest node would have logged, or why this node abstains. The model is taken by the record's
 * manifest CID, fetched from a registered peer if this node lacks it. `onnx` records are run under
 * the record's own execution profile (another may honestly give other bits: docs/design.md §2.6;
 * a profile this node does not run is abstained on), `llm` ones on this node's LLM runtime under
 * the profile rule; `zk` ones are not re-executed.
 */
export async function reexecute(ctx: NodeContext, record: InferenceRecord, input: Uint8Array): Promise<Reexecution> {
  if (record.kind !== 'onnx' && record.kind !== 'llm') return { abstain: `${record.kind} records are not re-executed` };
  if (record.kind === 'onnx') {
    const lane = onnxLane(ctx, record.runtime.profile);
    if (lane === undefined) return { abstain: `profile ${record.runtime.profile} is not run here` };
    const stored = await resolveOrFetch(ctx, record.model);
    const model = await lane.models.get(stored.manifestCid, stored.artifactPath);
    const key = onnxExecutorKey(stored.manifestCid, record.runtime.profile);
    return reexecuteOnnx(input, (inputs) => ctx.executor.run(key, model, inputs));
  }
  const stored = await resolveOrFetch(ctx, record.model);
  if (stored.manifest.format !== 'gguf')
    return { abstain: 'an llm record naming a model that is not a language model' };
  const model = await ctx.llms.get(stored.manifestCid, stored.artifactPath);
  return reexecuteLlm(record, input, {
    runtime: () => ({ id: ctx.llm.id, version: ctx.llm.version, profile: ctx.llm.profile }),
    limits: ctx.config.llm,
    run: (job) => ctx.executor.run(stored.manifestCid, model, job, { timeoutMs: ctx.config.llm.timeoutMs }),
  });
}

/** What a juror keeps between its commitment and its reveal. */
interface KeptVote {
  readonly outputDigest: Hex;
  readonly salt: Hex;
}

export interface JurorOptions {
  /** How often to read the chain, ms. */
  readonly intervalMs: number;
  /** Failures and abstentions (the service keeps going). */
  readonly onEvent: (level: 'info' | 'warn', message: string, details: Record<string, unknown>) => void;
}

export interface JurorService {
  /** One pass over the open disputes now (the timer does this every `intervalMs`). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the juror service of a node on a chain with `Disputes` (`ctx.chain` set).
 *
 * @example
 * ```ts
 * const juror = startJuror(ctx, { intervalMs: 5000, onEvent: (l, m, d) => log[l](d, m) });
 * ```
 */
export function startJuror(ctx: NodeContext, options: JurorOptions): JurorService {
  const chain = ctx.chain;
  const disputes = chain?.deployment.contracts.disputes;
  if (chain === undefined || disputes === undefined) throw new Error('startJuror needs a chain with Disputes');
  const me = ctx.keys.address.toLowerCase();
  const dir = join(ctx.config.dataDir, 'juror');
  const { publicClient } = chain;
  /** Disputes not yet seen resolved; ids above `seen` are read from `disputeCount`. */
  const open = new Set<bigint>();
  let seen = 0n;
  /** Disputes whose record this node does not vote on (logged once, not re-executed again). */
  const abstained = new Set<bigint>();
  /** Disputes this node tried to settle by a zk proof (once each). */
  const proofTried = new Set<bigint>();

  const keptPath = (id: bigint) => join(dir, `${id}.json`);
  const readKept = async (id: bigint): Promise<KeptVote | undefined> => {
    try {
      return JSON.parse(await readFile(keptPath(id), 'utf8')) as KeptVote;
    } catch {
      return undefined;
    }
  };

  const challenged = async (id: bigint) => {
    const [log] = await publicClient.getContractEvents({
      address: disputes,
      abi: disputesAbi,
      eventName: 'Challenged',
      args: { id },
      fromBlock: chain.deployment.block,
      strict: true,
    });
    if (log === undefined) throw new Error(`no Challenged event for dispute ${id}`);
    const bytes = hexBytes(log.args.record);
    return { record: decodeRecord(bytes), bytes, input: hexBytes(log.args.input) };
  };

  /** Proves a zk record's challenged input and settles the dispute with it; false if it cannot. */
  const settleByProof = async (id: bigint): Promise<boolean> => {
    const { record, bytes, input } = await challenged(id);
    if (record.kind !== 'zk') return false;
    // Only a model this node stores with its own checked proving key: nothing is fetched or set up
    // for a dispute (a node without it leaves the proof to one that has it).
    let stored: ReturnType<typeof ctx.store.resolve>;
    try {
      stored = ctx.store.resolve(record.model);
      if ((await ctx.zk.storedZkey(stored.manifest)) === undefined) return false;
    } catch {
      return false;
    }
    try {
      const p = await ctx.zk.prove(stored.manifestCid, stored.manifest, stored.artifactPath, decodeTensors(input));
      const proof = await ctx.zk.callArgs(p.proof, p.publicSignals);
      const r = await chain.transact((c) => settleDisputeByProof(c, { disputes, id, record: bytes, input, proof }));
      options.onEvent('info', 'dispute settled by a zk proof', { id, outcome: r.outcome });
      return true;
    } catch (e) {
      options.onEvent('warn', 'no zk proof settled the dispute: left to the jury', { id, err: e });
      return false;
    }
  };

  const step = async (id: bigint, now: bigint, head: bigint) => {
    const d = await getDispute(publicClient, { disputes, id });
    if (d.phase === 'resolved') {
      open.delete(id);
      await rm(keptPath(id), { force: true });
      return;
    }
    // A zk record's dispute: settled by a proof before any draw or vote, if this node can prove it.
    if (!proofTried.has(id)) {
      proofTried.add(id);
      if (await settleByProof(id)) return;
    }
    if (d.phase === 'awaiting-draw') {
      // The draw lands in a block after the head, so the head only has to be the draw block.
      if (head >= d.drawBlock)
        await chain.transact((c) => drawDisputeJury(c, { disputes, id, fromBlock: chain.deployment.block }));
      return;
    }
    const jurors = d.jurors;
    const mine = jurors.find((j) => j.account.toLowerCase() === me);
    const allCommitted = jurors.every((j) => j.committed);
    if (mine !== undefined && !mine.committed && now <= d.commitDeadline) {
      let kept = await readKept(id);
      if (kept === undefined) {
        if (abstained.has(id)) return; // decided once: a re-execution is not repeated every tick
        const { record, input } = await challenged(id);
        const verdict = await reexecute(ctx, record, input);
        if ('abstain' in verdict) {
          abstained.add(id);
          options.onEvent('warn', 'juror abstains', { id, kind: record.kind, reason: verdict.abstain });
          return;
        }
        kept = { outputDigest: verdict.outputDigest, salt: `0x${toHex(crypto.getRandomValues(new Uint8Array(32)))}` };
        // Durable before the commitment exists: a restart must still be able to reveal.
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await writeFileAtomic(keptPath(id), new TextEncoder().encode(JSON.stringify(kept)), dir);
      }
      const vote = kept;
      await chain.transact((c) => commitVote(c, { disputes, id, ...vote }));
      options.onEvent('info', 'juror committed its vote', { id });
      return;
    }
    if (mine?.committed && !mine.revealed && now <= d.revealDeadline && (allCommitted || now > d.commitDeadline)) {
      const kept = await readKept(id);
      if (kept === undefined) {
        options.onEvent('warn', 'juror cannot reveal: its vote file is gone', { id });
        return;
      }
      await chain.transact((c) => revealVote(c, { disputes, id, ...kept }));
      options.onEvent('info', 'juror revealed its vote', { id, outputDigest: kept.outputDigest });
      return;
    }
    if (now > d.revealDeadline || jurors.every((j) => j.revealed)) {
      const r = await chain.transact((c) => resolveDispute(c, { disputes, id }));
      options.onEvent('info', 'dispute resolved', { id, outcome: r.outcome, slashed: r.slashed.toString() });
    }
  };

  const tick = async () => {
    const count = await publicClient.readContract({
      address: disputes,
      abi: disputesAbi,
      functionName: 'disputeCount',
    });
    for (let id = seen + 1n; id <= count; id++) open.add(id);
    seen = count;
    if (open.size === 0) return;
    const block = await publicClient.getBlock({ blockTag: 'latest' });
    for (const id of [...open]) {
      if (ctx.closing) return;
      try {
        await step(id, block.timestamp, block.number);
      } catch (e) {
        // Another node may have drawn or resolved first: the next tick reads the new phase.
        options.onEvent('warn', 'juror step failed', { id, err: e });
      }
    }
  };

  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running !== undefined || stopped) return;
    running = tick()
      .catch((e) => options.onEvent('warn', 'juror tick failed', { err: e }))
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs);
  timer.unref();
  return {
    tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

const hexBytes = (hex: Hex): Uint8Array => fromHex(hex.slice(2));
