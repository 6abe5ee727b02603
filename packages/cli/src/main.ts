#!/usr/bin/env node
/**
 * The `verity` command: parses flags, runs one command, maps errors to exit codes.
 * Commands hold no protocol logic; they call `@verity/protocol`. Each command's module is
 * imported when it runs, so `help`, `verify` and the client commands never load the node (ONNX,
 * llama.cpp) that `up` and `node start` need.
 *
 * @packageDocumentation
 */
import { COMMAND_HELP, wantsHelp } from './help.js';
import { UsageError } from './usage.js';

const HELP = `verity — verifiable AI inference

Usage:
  verity up [--data-dir DIR] [--port N]     start a node with the example models loaded
      [--nodes N] [--ptau FILE | --phase1-power P]   N nodes on a local chain; with a phase-1 file
                                            (or a 2^P phase-1 ceremony among the nodes, run now), zk
                                            pushes make their keys in a multi-party phase 2 among them
  verity gateway [--data-dir DIR | --rpc URL --deployment FILE] [--port N]
                                            one local endpoint for the whole network (OpenAI routes,
                                            /v1/infer): routes to the best node, fails over, returns
                                            only verified answers (\`verity up\` starts one)
  verity node start [--config FILE] [--data-dir DIR] [--host H] [--port N]
  verity model push FILE [--name N] [--version V]   upload an ONNX or GGUF model (needs the API key)
      --zk [--zk-frac-bits S --zk-value-bits B | --zk-input-range R]   also prepare it for mode zk
  verity model ls | show MODEL
  verity infer MODEL --input JSON|@file [--out bundle.json]   run, verify, save the bundle
      --mode signed|quorum|audited|zk [--k N] [--accept-local-dev-setup] [--zk-audit FILE|DIR] [--zk-auditor ADDRESS]
  verity chat MODEL [--message TEXT] [--system TEXT] [--seed N] [--temperature T] [--max-tokens N] [--mode signed|audited] [--out bundle.json]
                                            talk to a language model; every answer streams, then is verified
  verity log checkpoint | proof --index N [--size M] | proof --from M [--to N]
  verity demo [--out DIR] [--json]          the protocol alone: log, bundle, verify, tamper
  verity ceremony init|contribute|close|finalize|verify|import …
                                            a powers-of-tau ceremony recorded on chain, or a public
                                            ceremony file checked (verity ceremony --help)
  verity zk audit MODEL [--url URL] [--data-dir DIR] [--rpc URL --deployment FILE] [--ptau FILE | --ptau-dir DIR]
                                            check from the artifact and the public transcripts that the
                                            model's verification key belongs to its circuit; writes
                                            <data-dir>/zk/audits/<cid>.json
      --attest [--account-key HEX]          also attest it on chain (ZkVerifierRegistry)
  verity verify FILE [options] [--json]     verify a bundle offline (exit 0 valid, 1 invalid)
                                            by default against the chain registry of the local
                                            \`verity up\` in the data dir (--data-dir DIR)
      --rpc URL --deployment FILE           against the registry of this chain
      --block NUMBER:HASH --deployment FILE   offline, from the registry proofs the bundle carries
      --node ADDRESS --key VERIFIER_KEY     trust this node's log key (repeatable, in pairs)
      --insecure-trust-bundle-nodes         also trust the node keys the bundle carries (anyone can write them)
      --input-digest HEX --output-digest HEX   require these digests
      --accept-local-dev-setup              accept zk proofs from a local-dev setup
      --zk-audit FILE|DIR                   accept a zk key this audit vouches for (repeatable;
                                            a DIR holds <manifestCid>.json, as \`verity zk audit\` writes;
                                            the data dir's zk/audits is read too)
      --zk-auditor ADDRESS                  accept a zk key this auditor attested on chain (repeatable)
      --witness KEY [--witness-threshold M]   require cosignatures of M (default: all) of these
                                            witnesses (C2SP cosignature/v1 keys, repeatable)
  verity monitor [--rpc URL --deployment FILE] [--witness URL]... [--interval MS] [--once] [--state FILE]
                                            follow every registered node's heads (its own, its
                                            witnesses', its anchors); a split view is a JSON line
                                            with both signed heads (exit 1 with --once); --state
                                            keeps the heads seen across runs
  verity audit [--rpc URL --deployment FILE] [--rate PPM] [--account-key HEX] [--local-network]
                                            sample every registered node's audited records in their
                                            challenge window (default 10000 ppm = 1 %), re-execute them
                                            here, challenge the lies with the key's bond (exit 1 on a
                                            lie or a payload not served)
  Client commands take --url URL (default $VERITY_URL, or the node of --data-dir, or
  http://127.0.0.1:8700), --api-key KEY (default $VERITY_API_KEY, or the key in --data-dir's
  keystore, sent only to that data dir's node), and verify against the chain of --data-dir (or
  --rpc URL --deployment FILE; --insecure-trust-node trusts the key the node reports). --json everywhere.
  verity help [COMMAND], verity COMMAND --help   a command's flags and examples
`;

/** What to do about a payment refusal (`verity infer --help`, "Paying"). */
const PAYMENT_HINTS: Partial<Record<string, string>> = {
  PAYMENT_REQUIRED:
    'verity: this model has a price (GET /v1/models shows it): pay with --max-price N and --payer-key HEX (or VERITY_PAYER_KEY)\n',
  PAYMENT_OVER_BUDGET: 'verity: raise --max-price (per request) or --budget (in all) to pay it\n',
  PAYMENT_ASSET_NOT_PINNED:
    "verity: the CLI pays only in the token of a chain's deployment: give --rpc URL --deployment FILE (or the --data-dir of a verity up)\n",
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `verity COMMAND --help` and `verity help COMMAND`; ceremony answers its own --help.
  const asked = command === 'help' ? rest[0] : command !== 'ceremony' && wantsHelp(rest) ? command : undefined;
  if (asked !== undefined) {
    const text = COMMAND_HELP[asked];
    if (asked === 'ceremony') return (await import('./commands/ceremony.js')).runCeremony(['--help']);
    if (text === undefined) throw new UsageError(`unknown command "${asked}"`);
    process.stdout.write(text);
    return 0;
  }
  switch (command) {
    case 'up':
      return (await import('./commands/node.js')).runUp(rest);
    case 'gateway':
      return (await import('./commands/gateway.js')).runGateway(rest);
    case 'node':
      if (rest[0] !== 'start') throw new UsageError('node takes start');
      return (await import('./commands/node.js')).runNodeStart(rest.slice(1));
    case 'model':
      return (await import('./commands/model.js')).runModel(rest);
    case 'infer':
      return (await import('./commands/infer.js')).runInfer(rest);
    case 'chat':
      return (await import('./commands/chat.js')).runChat(rest);
    case 'log':
      return (await import('./commands/log.js')).runLog(rest);
    case 'demo':
      return (await import('./commands/demo.js')).runDemo(rest);
    case 'verify':
      return (await import('./commands/verify.js')).runVerify(rest);
    case 'ceremony':
      return (await import('./commands/ceremony.js')).runCeremony(rest);
    case 'zk':
      return (await import('./commands/zk.js')).runZk(rest);
    case 'monitor':
      return (await import('./commands/monitor.js')).runMonitor(rest);
    case 'audit':
      return (await import('./commands/audit.js')).runAudit(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

// Output piped into a reader that stops early (`| head`): stop quietly, as Unix tools do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    const { isVerityError } = await import('@verity/protocol');
    // A user mistake gets a one-line message, never a stack trace.
    if (error instanceof UsageError) {
      process.stderr.write(`verity: ${error.message}\n${error.showHelp ? `\n${HELP}` : ''}`);
      process.exitCode = 2;
    } else if (isVerityError(error)) {
      process.stderr.write(`verity: ${error.code}: ${error.message}\n${PAYMENT_HINTS[error.code] ?? ''}`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `verity: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 70;
    }
  },
);
