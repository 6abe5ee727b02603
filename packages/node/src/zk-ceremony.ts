/**
 * The node's side of phase-2 ceremonies (docs/design.md §2.6, issue 11.1).
 *
 * At push, a node on a chain with other registered nodes does not make a zk model's keys alone:
 * it opens a phase-2 ceremony on chain (`Ceremony`, subject the circuit's R1CS hash) listing
 * itself and up to `zk.phase2Contributors` other active nodes drawn stake-weighted from the latest
 * block's hash (`rankQuorum`, seeded with the R1CS hash), contributes, has each of the others
 * contribute through its `POST /v1/zk/ceremonies/:id/contribute` (each records its hash on chain
 * from its own account), closes, takes the beacon from the later block hash, finalizes, and
 * checks the final zkey against the record (`runPhase2` of @verity/zk). The manifest then says
 * `zk.setup: multi-party` and names the ceremony (`zk.phase2`). Sound if one contributor was
 * honest. No chain, no Ceremony contract, a local-dev phase 1 or no other node: local-dev keys.
 *
 * As a contributor, a node checks on chain that the ceremony is open, lists it and has not had
 * its contribution, and that the zkey it is sent extends the record exactly (same initial hash,
 * the recorded contributions in order, its last step the head); then it contributes with fresh
 * entropy, records the hash with its own account and answers the new zkey. Each refusal is
 * `ZK_CONTRIBUTION_REFUSED` (403).
 */
import {
  closeCeremony,
  contributeToCeremony,
  type Deployment,
  finalizeCeremony,
  mayContributeToCeremony,
  openCeremony,
  readBeaconHash,
  readCeremony,
} from '@verity/contracts';
import {
  fail,
  isVerityError,
  quorumSeed,
  type RegistryNode,
  rankQuorum,
  VerityError,
  type ZkPhase2,
} from '@verity/protocol';
import type { CeremonyChain, CeremonyParty, Hash32, VerificationKey } from '@verity/zk';
import type { Address, Hex, PublicClient } from 'viem';
import type { NodeContext } from './context.js';
import { readBounded } from './peers/fetch-zkey.js';
import { peerFetch } from './peers/url-policy.js';
import type { CeremonyRecordLike } from './zk-service.js';

/**
 * The on-chain record of the ceremony a manifest names. `ZK_SETUP_UNTRUSTED` when the node runs
 * on no chain or on another one than the ceremony's.
 *
 * @example
 * ```ts
 * const record = await readCeremonyRecord(ctx, zkFacts(manifest).phase2);
 * ```
 */
export async function readCeremonyRecord(ctx: NodeContext, ref: ZkPhase2): Promise<CeremonyRecordLike> {
  const chain = ctx.chain;
  if (chain === undefined || chain.deployment.chainId !== ref.chainId) {
    fail('ZK_SETUP_UNTRUSTED', 'the ceremony is on a chain this node does not run on', { ...ref });
  }
  return readTrustedCeremony(chain.publicClient, chain.deployment, ref);
}

/**
 * A ceremony's record, read only from the deployment's own `Ceremony` contract: a manifest naming
 * another contract (one its publisher deployed, that records whatever it is told) is refused,
 * `ZK_TRANSCRIPT_MISMATCH`.
 *
 * @example
 * ```ts
 * const record = await readTrustedCeremony(publicClient, deployment, facts.phase2);
 * ```
 */
export async function readTrustedCeremony(
  publicClient: PublicClient,
  deployment: Deployment,
  ref: ZkPhase2,
): Promise<CeremonyRecordLike> {
  const ceremony = deployment.contracts.ceremony;
  if (
    deployment.chainId !== ref.chainId ||
    ceremony === undefined ||
    ceremony.toLowerCase() !== ref.address.toLowerCase()
  ) {
    fail('ZK_TRANSCRIPT_MISMATCH', 'the manifest names a ceremony outside the deployment’s Ceremony contract', {
      ...ref,
      ...(ceremony === undefined ? {} : { deploymentCeremony: ceremony }),
    });
  }
  return readCeremony(publicClient, ceremony, ref.id as Hex);
}

/** A finished phase 2: the final zkey, its verification key, and the ceremony on chain. */
export interface Phase2Keys {
  readonly zkey: Uint8Array;
  readonly verificationKey: VerificationKey;
  readonly ceremony: ZkPhase2;
  /** The contributors' accounts, in order. */
  readonly contributors: readonly string[];
}

/** The largest zkey a node sends or takes in a ceremony: what zk.maxProvingBytes lets it prove with. */
export function maxZkeyBytes(ctx: NodeContext): number {
  return Math.floor(ctx.config.zk.maxProvingBytes / 2);
}

/**
 * Runs a phase-2 ceremony for a circuit at push (see the module comment), or answers undefined
 * when there is no one to run it with (the keys then stay local-dev).
 *
 * @example
 * ```ts
 * const keys = await runPushPhase2(ctx, { r1cs: circuit.r1cs, r1csHash: circuit.r1csHash, ptau });
 * ```
 */
export async function runPushPhase2(
  ctx: NodeContext,
  circuit: { readonly r1cs: Uint8Array; readonly r1csHash: string; readonly ptau: Uint8Array },
): Promise<Phase2Keys | undefined> {
  const chain = ctx.chain;
  const address = chain?.deployment.contracts.ceremony;
  if (chain === undefined || address === undefined || ctx.config.zk.phase2Contributors === 0) return undefined;
  const zk = await import('@verity/zk');
  const snapshot = await chain.registry(await chain.head(true));
  const self = ctx.keys.address.toLowerCase();
  // In the order drawn, the first that answer (a node that is down is passed over before the
  // ceremony opens: once open, its list of contributors is fixed).
  const drawn: RegistryNode[] = [];
  for (const n of rankQuorum(snapshot, quorumSeed(snapshot.block.hash, circuit.r1csHash))) {
    if (drawn.length >= ctx.config.zk.phase2Contributors) break;
    if (n.address.toLowerCase() === self) continue;
    const up = await peerFetch(
      `${n.endpoint.replace(/\/+$/, '')}/healthz`,
      { signal: AbortSignal.timeout(10_000) },
      ctx.config.peers,
    ).then(
      async (r) => {
        await r.text(); // read to the end: the connection is reused
        return r.ok;
      },
      () => false,
    );
    if (up) drawn.push(n);
  }
  if (drawn.length === 0) return undefined;
  const own = zk.localParty({
    account: ctx.keys.address,
    label: 'publisher',
    record: ({ id, prevHash, newHash }) =>
      chain.transact((clients) => contributeToCeremony(clients, { ceremony: address, id, prevHash, newHash })),
  });
  const remote = drawn.map(
    (n): CeremonyParty => ({
      account: n.address,
      async contribute({ id, file }) {
        const response = await peerFetch(
          `${n.endpoint.replace(/\/+$/, '')}/v1/zk/ceremonies/${id}/contribute`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body: file,
            signal: AbortSignal.timeout(ctx.config.zk.timeoutMs + 60_000),
          },
          ctx.config.peers,
        );
        if (!response.ok || response.body === null) {
          const text = await response.text().catch(() => '');
          throw new VerityError(
            'ZK_CONTRIBUTION_REFUSED',
            `a contributor refused or failed (HTTP ${response.status})`,
            {
              details: { contributor: n.address, endpoint: n.endpoint, body: text.slice(0, 500) },
            },
          );
        }
        return readBounded(response.body as unknown as AsyncIterable<Uint8Array>, maxZkeyBytes(ctx));
      },
    }),
  );
  const ceremonyChain: CeremonyChain = {
    async open(p) {
      await chain.transact((clients) =>
        openCeremony(clients, { ceremony: address, ...p, contributors: p.contributors as Address[] }),
      );
    },
    async close(id) {
      const receipt = await chain.transact((clients) => closeCeremony(clients, { ceremony: address, id }));
      return { beaconBlock: receipt.blockNumber + 1n };
    },
    async blockHash(block) {
      // The beacon block is one not yet mined when the ceremony closed: wait for it.
      for (;;) {
        const hash = await readBeaconHash(chain.publicClient, block);
        if (hash !== undefined) return hash as Hash32;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async finalize(id, finalHash) {
      await chain.transact((clients) => finalizeCeremony(clients, { ceremony: address, id, finalHash }));
    },
    read: (id) => readCeremony(chain.publicClient, address, id),
  };
  const result = await zk.runPhase2({
    r1cs: circuit.r1cs,
    ptau: circuit.ptau,
    parties: [own, ...remote],
    chain: ceremonyChain,
  });
  return {
    zkey: result.zkey,
    verificationKey: result.verificationKey,
    ceremony: { chainId: chain.deployment.chainId, address, id: result.id },
    contributors: result.record.contributions.map((c) => c.contributor),
  };
}

/**
 * This node's contribution to a phase-2 ceremony it was drawn for (see the module comment):
 * checks, contributes, records its hash with its own account, answers the new zkey.
 *
 * @example
 * ```ts
 * const next = await contributeToPhase2(ctx, id, zkey);
 * ```
 */
export async function contributeToPhase2(ctx: NodeContext, id: string, zkey: Uint8Array): Promise<Uint8Array> {
  const refuse = (message: string, details: Record<string, unknown> = {}): never =>
    fail('ZK_CONTRIBUTION_REFUSED', message, { id, ...details });
  const chain = ctx.chain;
  const address = chain?.deployment.contracts.ceremony;
  if (chain === undefined || address === undefined)
    return refuse('this node runs on no chain with a Ceremony contract');
  if (!/^0x[0-9a-f]{64}$/.test(id)) return refuse('a ceremony id is 0x and 64 lower-case hex digits');
  let record: Awaited<ReturnType<typeof readCeremony>>;
  try {
    record = await readCeremony(chain.publicClient, address, id as Hex);
  } catch (e) {
    if (isVerityError(e, 'NOT_FOUND')) return refuse('no such ceremony on chain');
    throw e;
  }
  if (record.kind !== 2) refuse('not a phase-2 ceremony');
  if (record.beaconBlock !== 0n) refuse('the ceremony is closed');
  const account = ctx.keys.address as Address;
  if (!record.restricted) refuse('the ceremony does not list its contributors');
  if (!(await mayContributeToCeremony(chain.publicClient, { ceremony: address, id: id as Hex, account }))) {
    refuse('this node is not a contributor of this ceremony, or has contributed already');
  }
  const zk = await import('@verity/zk');
  let transcript: Awaited<ReturnType<typeof zk.zkeyTranscript>>;
  try {
    transcript = await zk.zkeyTranscript(zkey);
  } catch {
    return refuse('the body is not a zkey');
  }
  const steps = transcript.contributions;
  const extendsRecord =
    transcript.beacon === undefined &&
    transcript.initialHash?.toLowerCase() === record.initialHash.toLowerCase() &&
    steps.length === record.contributions.length &&
    steps.every((s, i) => s.hash.toLowerCase() === record.contributions[i]?.hash.toLowerCase()) &&
    (steps.at(-1)?.hash ?? transcript.initialHash).toLowerCase() === record.head.toLowerCase();
  if (!extendsRecord) refuse('the zkey is not the ceremony’s head on chain');
  const step = await zk.contributeZkey(zkey, { name: zk.contributionName(account, 'node') });
  await chain.transact((clients) =>
    contributeToCeremony(clients, { ceremony: address, id: id as Hex, prevHash: record.head, newHash: step.hash }),
  );
  return step.file;
}
