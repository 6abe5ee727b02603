import type { ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConfigInput, loadConfig, parsePrices, startNode, type VerityNode } from '@verity/node';
import { createClient, localDeploymentFile } from '@verity/sdk';
import { dataDirOf, removeNodeRecord, writeNodeRecord } from '../data-dir.js';
import { type LocalChain, type NodeProcess, spawnNode, startLocalChain } from '../network.js';
import { parseFlags, UsageError } from '../usage.js';
import { GATEWAY_PORT, type GatewayServer } from './gateway.js';

const NODE_FLAGS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'log-level': { type: 'string' },
  rpc: { type: 'string' },
  deployment: { type: 'string' },
  // Prices (issue 15): MODEL=AMOUNT per request or MODEL=INPUT/OUTPUT per token, as VERITY_PRICES.
  price: { type: 'string', multiple: true },
  json: { type: 'boolean', default: false },
} as const;

const UP_FLAGS = {
  ...NODE_FLAGS,
  nodes: { type: 'string' },
  'no-chain': { type: 'boolean', default: false },
  ptau: { type: 'string' },
  'phase1-power': { type: 'string' },
} as const;

/**
 * The prices `verity up` sets (issue 15), in the test token's atomic units (6 decimals): one ONNX
 * example per request (x402 `exact`) and the chat model per token (`metered`), published under a
 * name of its own (`tiny-chat-paid`, the same weights) so `tiny-chat` stays free. Every other example is free.
 */
export const UP_PRICES = {
  'forecast@1.0.0': { request: '10000' },
  'tiny-chat-paid@1.0.0': { inputToken: '10', outputToken: '100' },
} as const;

/** The example models shipped in the repository (built by the scripts in examples/). */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../../../examples/models/', import.meta.url));

type NodeFlags = {
  [K in Exclude<keyof typeof NODE_FLAGS, 'price'>]?: (typeof NODE_FLAGS)[K]['type'] extends 'boolean'
    ? boolean
    : string | undefined;
} & { price?: string[] | undefined };

async function start(
  values: NodeFlags,
  defaults: ConfigInput,
  // `verity up` stops its nodes and then its chain itself (a node anchors once more as it stops).
  options: { readonly onSignal?: boolean } = {},
): Promise<{ node: VerityNode; json: boolean }> {
  if (values.port !== undefined && !/^\d+$/.test(values.port)) throw new UsageError('--port must be a number');
  if ((values.rpc === undefined) !== (values.deployment === undefined)) {
    throw new UsageError('--rpc and --deployment go together');
  }
  // --price adds to (and overrides, model by model) the prices of the file, VERITY_PRICES and `verity up`.
  const prices = values.price === undefined ? undefined : parsePrices(values.price.join(','));
  const overrides: ConfigInput = {
    ...defaults,
    ...(prices === undefined
      ? {}
      : { payments: { ...defaults.payments, prices: { ...defaults.payments?.prices, ...prices } } }),
    ...(values.rpc === undefined ? {} : { chain: { rpcUrl: values.rpc, deploymentFile: values.deployment as string } }),
    ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(values.port === undefined ? {} : { port: Number(values.port) }),
    ...(values['log-level'] === undefined ? {} : { logLevel: values['log-level'] }),
  };
  const config = loadConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    env: process.env,
    overrides,
  });
  const node = await startNode(config);
  // The data dir records its node's URL and chain: client commands send the data dir's API key
  // only there, and verify against that chain.
  writeNodeRecord(node.context.config.dataDir, {
    url: node.url,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    pid: process.pid,
    ...(node.context.config.chain
      ? {
          chain: { rpcUrl: node.context.config.chain.rpcUrl, deploymentFile: node.context.config.chain.deploymentFile },
        }
      : {}),
  });
  process.once('exit', () => removeNodeRecord(node.context.config.dataDir));
  // Settle the LLM execution profile its records will carry (GET /v1/node shows it), in the
  // background: loading llama.cpp and probing GPU backends takes 0.3–2 s.
  node.context.llm.ready().catch(() => undefined);
  // Stop in reverse order on SIGINT/SIGTERM: finish requests in flight, flush the log.
  const stop = () => {
    void node.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  if (options.onSignal !== false) onStopSignal(stop);
  return { node, json: values.json === true };
}

/** `verity node start`: runs a node until stopped. */
export async function runNodeStart(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: NODE_FLAGS, allowPositionals: false });
  const { node, json } = await start(values, {});
  const info = {
    url: node.url,
    explorer: `${node.url}/`,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    dataDir: node.context.config.dataDir,
  };
  process.stdout.write(
    json
      ? `${JSON.stringify(info)}\n`
      : `Verity node ${info.address} listening on ${info.url}\n  log key ${info.logKey}\n  data ${info.dataDir}\n`,
  );
  return new Promise(() => {}); // runs until a signal stops it
}

/**
 * Runs `stop` once on the first SIGINT or SIGTERM. The listeners stay registered (`on`, not
 * `once`): a library's exit hook (signal-exit, loaded by dependencies) re-raises a signal that no
 * other listener holds, which would kill the process before `stop` has stopped its children.
 */
function onStopSignal(stop: () => void): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/** Sends SIGTERM and waits for the exit; SIGKILL after `graceMs`. */
function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

interface Sample {
  readonly inputs: Record<string, unknown>;
}

/** `verity up`: a node with the example models loaded, and a copy-paste example. */
export async function runUp(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: UP_FLAGS, allowPositionals: false });
  const count = values.nodes === undefined ? 1 : Number(values.nodes);
  if (!Number.isSafeInteger(count) || count < 1 || count > 16) throw new UsageError('--nodes must be 1 to 16');
  if (values['no-chain'] && count > 1) throw new UsageError('--nodes needs a chain (drop --no-chain)');
  const dataDir = dataDirOf(values);
  const basePort = values.port === undefined ? 8700 : Number(values.port);
  // The chain: a local anvil kept in the data directory, unless --rpc names another or --no-chain.
  let local: LocalChain | undefined;
  let chainEnv: Record<string, string> = {};
  let chainOverrides: ConfigInput = {};
  if (!values['no-chain'] && values.rpc === undefined) {
    // Where the SDK's `network: 'local'` (and `verity gateway --network local`) finds it.
    const chainDir = dirname(localDeploymentFile(dataDir));
    mkdirSync(chainDir, { recursive: true, mode: 0o700 });
    local = await startLocalChain(chainDir);
    // The explorer's pages read the local chain too (a loopback URL with no key in it).
    chainOverrides = {
      chain: { rpcUrl: local.rpcUrl, deploymentFile: local.deploymentFile, anchorIntervalMs: 5_000 },
      explorer: { rpcUrl: local.rpcUrl },
    };
    chainEnv = {
      VERITY_EXPLORER_RPC_URL: local.rpcUrl,
      VERITY_RPC_URL: local.rpcUrl,
      VERITY_DEPLOYMENT: local.deploymentFile,
      VERITY_ANCHOR_INTERVAL_MS: '5000',
    };
  } else if (values.rpc !== undefined) {
    chainEnv = { VERITY_RPC_URL: values.rpc, VERITY_DEPLOYMENT: values.deployment ?? '' };
  }
  // Prices given as flags go to every node of the network: on the local chain with the examples'
  // prices (UP_PRICES, in the peers' config file), on another chain (--rpc) alone, to the peers
  // through the environment (`verity up` prices its examples on its own chain only).
  const flagPrices = values.price === undefined ? {} : parsePrices(values.price.join(','));
  if (local === undefined && values.price !== undefined) {
    chainEnv = { ...chainEnv, VERITY_PRICES: values.price.join(',') };
  }
  // Local mode: every node of `verity up` runs on this machine, so peers call each other on
  // loopback addresses, which a node refuses to call otherwise (peers/url-policy.ts).
  chainEnv = { ...chainEnv, VERITY_LOCAL_NETWORK: '1' };
  // Witnesses: on a chain, every node submits its checkpoints to the other registered nodes, which
  // cosign them (C2SP tlog-witness; docs/protocol.md §14), so receipts can meet a witness policy.
  const witnessPeers = values['no-chain'] !== true;
  if (witnessPeers) chainEnv = { ...chainEnv, VERITY_WITNESS_PEERS: '1' };
  // zk: with a phase-1 file (`--ptau`, e.g. from `verity ceremony`), a zk push on a network of
  // several nodes makes its keys in a multi-party phase 2 among them. `--phase1-power P` runs the
  // phase 1 itself, a ceremony among the network's nodes on its local chain (2^P; kept and reused).
  // Neither: the phase 1 is local-dev (a 3-party 2^12 phase 1 costs minutes on a small machine, too
  // slow for every fresh `up`), and so are the keys, labelled.
  let ptau = values.ptau === undefined ? undefined : resolve(values.ptau);
  let phase1Ceremony: string | undefined;
  const phase1Power = values['phase1-power'] === undefined ? undefined : Number(values['phase1-power']);
  if (phase1Power !== undefined) {
    if (!Number.isSafeInteger(phase1Power) || phase1Power < 8 || phase1Power > 16) {
      throw new UsageError('--phase1-power must be 8 to 16');
    }
    if (local === undefined || ptau !== undefined)
      throw new UsageError('--phase1-power needs the local chain and no --ptau');
  }
  if (ptau !== undefined) chainEnv = { ...chainEnv, VERITY_ZK_PTAU_PATH: ptau };
  let localMode: ConfigInput = { peers: { localNetwork: true }, ...(witnessPeers ? { witness: { peers: true } } : {}) };
  const peerDirs = Array.from({ length: count - 1 }, (_, i) => join(dataDir, 'peers', `node-${i + 2}`));
  // Prices on every node of the local network, paid in its test token (a peer reads them from a file).
  const payments =
    local === undefined
      ? undefined
      : {
          token: local.payments.token,
          meteredSettlement: local.payments.meteredSettlement,
          prices: { ...UP_PRICES, ...flagPrices },
        };
  let peerConfig: string | undefined;
  if (local) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    for (const dir of [dataDir, ...peerDirs]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      await local.fund(dir);
    }
    if (phase1Power !== undefined) {
      const phase1 = await local.phase1([dataDir, ...peerDirs], phase1Power).catch(async (e: unknown) => {
        await local?.stop();
        throw e;
      });
      ptau = phase1.path;
      phase1Ceremony = phase1.id;
      chainEnv = { ...chainEnv, VERITY_ZK_PTAU_PATH: ptau, VERITY_ZK_PHASE1_CEREMONY: phase1.id };
    }
  }
  if (ptau !== undefined) {
    localMode = {
      ...localMode,
      zk: { ptauPath: ptau, ...(phase1Ceremony === undefined ? {} : { phase1Ceremony }) },
    };
  }
  if (payments !== undefined) {
    localMode = { ...localMode, payments } as ConfigInput;
    if (peerDirs.length > 0) {
      peerConfig = join(dataDir, 'peers', 'payments.json');
      await writeFile(peerConfig, `${JSON.stringify({ payments }, null, 2)}\n`);
    }
  }
  const peers: NodeProcess[] = [];
  let started: { node: VerityNode; json: boolean } | undefined;
  let gateway: GatewayServer | undefined;
  // Reverse order: the nodes first (each finishes its requests, flushes its log and anchors once
  // more, which needs the chain), then the chain. A peer that does not exit in time is killed.
  const stopAll = async () => {
    await gateway?.close();
    await Promise.all([...peers.map((p) => stopChild(p.child, 30_000)), started?.node.stop().catch(() => undefined)]);
    await local?.stop();
  };
  try {
    started = await start(
      { ...values, 'data-dir': dataDir },
      { logLevel: 'warn', ...chainOverrides, ...localMode },
      { onSignal: false },
    );
    const bin = process.argv[1] as string;
    for (const [i, dir] of peerDirs.entries()) {
      peers.push(await spawnNode(bin, dir, basePort === 0 ? 0 : basePort + i + 1, chainEnv, peerConfig));
    }
    // The gateway: one endpoint for the network's nodes (lazy: it reads the registry on first use).
    const chainFile = local?.deploymentFile ?? values.deployment;
    const rpcUrl = local?.rpcUrl ?? values.rpc;
    // A gateway that cannot start leaves the network up without it (said on stderr).
    if (chainFile !== undefined && rpcUrl !== undefined) {
      try {
        const { startGateway } = await import('./gateway.js');
        const deployment = JSON.parse(await readFile(chainFile, 'utf8')) as unknown;
        gateway = await startGateway(
          { rpcUrl, deployment },
          { port: basePort === 0 ? 0 : GATEWAY_PORT, fallbackPort: true },
        );
      } catch (e) {
        process.stderr.write(`verity: the gateway did not start: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  process.once('exit', () => {
    for (const p of peers) p.child.kill('SIGTERM');
  });
  const onSignal = () =>
    void stopAll().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  onStopSignal(onSignal);
  const { node, json } = started;
  const client = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  const loaded: { ref: string; id: string; profiles?: string[]; sample?: Sample }[] = [];
  const files = existsSync(EXAMPLES_DIR)
    ? (await readdir(EXAMPLES_DIR)).filter((f) => f.endsWith('.onnx') || f.endsWith('.gguf')).sort()
    : [];
  // Every example at 1.0.0 (ONNX ones for the native profile), and iris once more at 1.1.0 for
  // both ONNX profiles: its `portable` records re-execute anywhere, in the explorer's page too. A
  // version of its own, since a published name@version never changes its manifest (data dirs
  // made before keep their iris@1.0.0).
  const pushes = files.map((file) => ({
    file,
    name: file.replace(/\.(onnx|gguf)$/, ''),
    version: '1.0.0',
    profiles: undefined as string[] | undefined,
  }));
  if (files.includes('iris.onnx'))
    pushes.push({ file: 'iris.onnx', name: 'iris', version: '1.1.0', profiles: ['native', 'portable'] });
  // The priced chat model (UP_PRICES): tiny-chat's weights under a name of its own, so that
  // `tiny-chat` (its latest version) stays free as the README's tour has it.
  if (payments !== undefined && files.includes('tiny-chat.gguf'))
    pushes.push({ file: 'tiny-chat.gguf', name: 'tiny-chat-paid', version: '1.0.0', profiles: undefined });
  for (const { file, name, version, profiles } of pushes) {
    const path = join(EXAMPLES_DIR, file);
    const model = await client.pushModel({
      name,
      version,
      format: file.endsWith('.gguf') ? 'gguf' : 'onnx',
      data: createReadStream(path) as AsyncIterable<Uint8Array>,
      size: statSync(path).size,
      description: `Verity example model ${name}`,
      ...(profiles === undefined ? {} : { profiles }),
    });
    let sample: Sample | undefined;
    const samplesPath = join(EXAMPLES_DIR, `${name}.samples.json`);
    if (existsSync(samplesPath)) {
      const parsed = JSON.parse(await readFile(samplesPath, 'utf8')) as unknown;
      const first = (parsed as { samples?: unknown[] }).samples?.[0];
      if (first && typeof first === 'object' && 'inputs' in first) sample = first as Sample;
    }
    loaded.push({
      ref: model.ref,
      id: model.id,
      ...(profiles === undefined ? {} : { profiles }),
      ...(sample === undefined ? {} : { sample }),
    });
  }
  const info = {
    url: node.url,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    dataDir: node.context.config.dataDir,
    models: loaded.map(({ ref, id }) => ({ ref, id })),
    peers: peers.map((p) => ({ url: p.url, address: p.address, pid: p.child.pid })),
    ...(gateway === undefined ? {} : { gateway: gateway.url }),
    ...(local === undefined || payments === undefined
      ? {}
      : {
          payments: {
            token: payments.token,
            meteredSettlement: payments.meteredSettlement,
            prices: payments.prices,
            payer: { address: local.payer.address, key: local.payer.key, balance: local.payer.balance.toString() },
          },
        }),
    ...(node.context.chain
      ? {
          chain: {
            rpcUrl: node.context.config.chain?.rpcUrl,
            deploymentFile: node.context.config.chain?.deploymentFile,
          },
        }
      : {}),
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(info)}\n`);
  } else {
    const lines = [
      `Verity is up at ${node.url}`,
      `  explorer ${node.url}/   (network, models, log, receipts, verify in the browser)`,
      `  node ${info.address}`,
      `  log key ${info.logKey}`,
      ...loaded.map((m) => `  model ${m.ref}  ${m.id}${m.profiles ? `  (profiles ${m.profiles.join(', ')})` : ''}`),
      ...peers.map((p, i) => `  peer node ${i + 2} ${p.address} at ${p.url}`),
      ...(info.chain ? [`  chain ${info.chain.rpcUrl} (contracts in ${info.chain.deploymentFile})`] : []),
      ...(gateway === undefined
        ? []
        : [
            `  gateway ${gateway.url}  one endpoint for all ${peers.length + 1} node(s): routed, failed over, verified (OpenAI base URL ${gateway.url}/v1)`,
          ]),
      ...(info.payments === undefined
        ? []
        : [
            `  paid (x402, test token ${info.payments.token}, 6 decimals): ${priceLines(info.payments.prices)}; the other models are free`,
            `  demo payer ${info.payments.payer.address} holds ${Number(info.payments.payer.balance) / 1e6} test USD; its key (anvil's dev account 9, public): ${info.payments.payer.key}`,
          ]),
      // Another chain (--rpc): the prices of --price / VERITY_PRICES / the config file, if any.
      ...(info.payments !== undefined || Object.keys(node.context.config.payments?.prices ?? {}).length === 0
        ? []
        : [
            `  paid (x402, atomic units of the chain's payment token): ${priceLines(node.context.config.payments?.prices ?? {})}; the other models are free`,
          ]),
    ];
    const example = loaded.find((m) => m.sample && m.ref.startsWith('iris@')) ?? loaded.find((m) => m.sample);
    // Client commands find this node, its key and its chain through the data dir.
    const dirFlag =
      values['data-dir'] === undefined && process.env.VERITY_DATA_DIR === undefined ? '' : ` --data-dir ${dataDir}`;
    if (example?.sample) {
      const input = JSON.stringify(example.sample.inputs);
      lines.push(
        '',
        'Try it (in another terminal):',
        `  npm run verity -- infer ${example.ref}${dirFlag} --input '${input}' --out bundle.json`,
        `  npm run verity -- verify bundle.json${dirFlag}   # against the registry on the chain`,
        ...(peers.length >= 2
          ? [
              `  npm run verity -- infer ${example.ref}${dirFlag} --mode quorum --k 3 --input '${input}' --out quorum.json`,
              `  npm run verity -- verify quorum.json${dirFlag}`,
            ]
          : []),
        `  curl -s ${node.url}/v1/infer -H 'content-type: application/json' -d '${JSON.stringify({ model: example.ref, input: example.sample.inputs })}'`,
      );
      const portable = loaded.find(
        (m) => m.profiles?.includes('portable') && m.ref.startsWith(`${example.ref.split('@')[0]}@`),
      );
      if (portable) {
        lines.push(
          `  npm run verity -- infer ${portable.ref} --profile portable${dirFlag} --input '${input}' --out portable.json   # then Re-execute it on the explorer's Verify page`,
        );
      }
    }
    const forecast = loaded.find((m) => m.ref === 'forecast@1.0.0');
    if (info.payments !== undefined && forecast?.sample) {
      lines.push(
        `  npm run verity -- infer forecast@1.0.0${dirFlag} --max-price ${UP_PRICES['forecast@1.0.0'].request} --payer-key ${info.payments.payer.key} --input '${JSON.stringify(forecast.sample.inputs)}'   # paid: the receipt commits to the payment`,
      );
    }
    const llm = loaded.find((m) => m.ref.startsWith('tiny-chat@'));
    if (llm) {
      lines.push(
        `  npm run verity -- chat ${llm.ref}${dirFlag} --message 'Hello!' --seed 7   # a tiny random-weight LLM: gibberish, verified`,
        `  any OpenAI client: base URL ${node.url}/v1, model "${llm.ref}"`,
      );
    }
    if (info.payments !== undefined && loaded.some((m) => m.ref === 'tiny-chat-paid@1.0.0')) {
      lines.push(
        `  npm run verity -- chat tiny-chat-paid@1.0.0${dirFlag} --message 'Hello!' --max-tokens 16 --max-price 25000 --payer-key ${info.payments.payer.key}   # metered: at most context × 10 + 16 × 100 authorized, the tokens served charged`,
        `  the openai client pays through the SDK: new OpenAI({ baseURL: '${node.url}/v1', apiKey: 'unused', fetch: payingFetch({ account: key, budget: 1_000_000n, networks: ['eip155:${node.context.chain?.deployment.chainId}'], assets: ['${info.payments.token}'], settlements: ['${info.payments.meteredSettlement}'] }) })`,
      );
    }
    lines.push('', 'Ctrl-C stops the node (requests in flight finish, the log is flushed).');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return new Promise(() => {});
}

/** Prices in words: `forecast@1.0.0 10000 per request; tiny-chat-paid@1.0.0 10 per input token, 100 per output token`. */
function priceLines(
  prices: Readonly<Record<string, { request: string } | { inputToken: string; outputToken: string }>>,
) {
  return Object.entries(prices)
    .map(([model, p]) =>
      'request' in p
        ? `${model} ${p.request} per request`
        : `${model} ${p.inputToken} per input token, ${p.outputToken} per output token`,
    )
    .join('; ');
}
