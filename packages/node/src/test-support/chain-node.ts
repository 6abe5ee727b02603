/**
 * A real node on a test chain (anvil), for tests: its data dir made, its account funded so it
 * can stake and register, started on port 0 with fsync and anchoring off. One helper for every
 * test that needs a registered node, so each says only what differs (`overrides`).
 *
 * ```ts
 * const node = await startChainNode(chain, { dataDir, deploymentFile, overrides: { peers: { localNetwork: true } } });
 * ```
 */
import { mkdirSync } from 'node:fs';
import { type ConfigInput, loadConfig } from '../config.js';
import { openKeystore } from '../keys.js';
import { type StartNodeOptions, startNode, type VerityNode } from '../node.js';

/** What the helper needs of a test chain (`startTestChain` in @verity/contracts test-support). */
export interface FundingChain {
  readonly anvil: { readonly rpcUrl: string };
  readonly testClient: {
    setBalance(args: { address: `0x${string}`; value: bigint }): Promise<unknown>;
  };
}

/** Parameters of {@link startChainNode}. */
export interface ChainNodeParams {
  /** The node's data dir (made if missing). */
  readonly dataDir: string;
  /** The deployment file of the contracts on `chain`. */
  readonly deploymentFile: string;
  /** Config that differs from the defaults here (merged over them). */
  readonly overrides?: ConfigInput;
  /** Wei given to the node's account before it starts (default 10 ether). */
  readonly balance?: bigint;
  /** Passed to `startNode` (test hooks such as `paymentSettler`). */
  readonly options?: StartNodeOptions;
}

/** Starts a node registered on `chain` (see the module comment). */
export async function startChainNode(chain: FundingChain, params: ChainNodeParams): Promise<VerityNode> {
  mkdirSync(params.dataDir, { recursive: true, mode: 0o700 });
  const { address } = openKeystore(params.dataDir);
  await chain.testClient.setBalance({ address: address as `0x${string}`, value: params.balance ?? 10n ** 19n });
  const { chain: chainOverrides, ...rest } = params.overrides ?? {};
  return startNode(
    loadConfig({
      overrides: {
        dataDir: params.dataDir,
        port: 0,
        logLevel: 'silent',
        fsync: false,
        ...rest,
        chain: {
          rpcUrl: chain.anvil.rpcUrl,
          deploymentFile: params.deploymentFile,
          anchorIntervalMs: 0,
          ...(chainOverrides ?? {}),
        },
      },
    }),
    params.options,
  );
}
