/**
 * `verity <command> --help` (and `verity help <command>`): each command's usage, what it does, and
 * examples that work as written against `verity up` (issue 13.4). The overview is `HELP` in
 * main.ts; `verity ceremony --help` is the ceremony command's own.
 */

const CLIENT = `Client flags: --url URL (default $VERITY_URL, or the node of --data-dir, or
http://127.0.0.1:8700), --api-key KEY (default $VERITY_API_KEY, or the key in --data-dir's
keystore, sent only to that data dir's node), --data-dir DIR (default ~/.verity), and the trust
to verify with: the chain of --data-dir's \`verity up\` by default, or --rpc URL --deployment FILE,
or --insecure-trust-node (trust the key the node reports). --json prints JSON.`;

const PAYMENT = `Paying (models with a price, x402; GET /v1/models shows it): --max-price N pays a node's
402 by itself, up to N of the token's atomic units per request (a 6-decimal stablecoin: 10000 =
0.01), signed by --payer-key HEX (default $VERITY_PAYER_KEY; \`verity up\` prints a funded demo
payer). --budget N caps the total. A price above the cap is PAYMENT_OVER_BUDGET, nothing signed;
without --max-price a paid model answers PAYMENT_REQUIRED. It pays only in the token of the
chain's deployment, on that chain (--rpc/--deployment or the data dir's): without a chain, or
for another token, PAYMENT_ASSET_NOT_PINNED, nothing signed. The receipt's record must commit to
the payment made (its authorization digest and amount), else PAYMENT_NOT_COMMITTED, and the
payment must be settled on the chain, else PAYMENT_NOT_SETTLED.`;

/** Help per command (the first word; `node` means `node start`, `zk` means `zk audit`). */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  up: `verity up — a local Verity network: anvil, the contracts, N nodes, the example models

Usage:
  verity up [--data-dir DIR] [--port N] [--nodes N] [--ptau FILE | --phase1-power P] [--no-chain]

  --data-dir DIR      where the chain, the nodes' keys, logs and models live (default ~/.verity)
  --port N            the (first) node's port (default 8700)
  --nodes N           nodes on the local chain (default 1); they witness each other's logs and
                      sit on dispute juries
  --ptau FILE         a phase-1 (powers of tau) file: zk pushes make their keys in a multi-party
                      phase 2 among the nodes
  --phase1-power P    run a 2^P phase-1 ceremony among the nodes first, then as --ptau
  --no-chain          one node alone, no chain
  --rpc URL --deployment FILE   another EVM chain instead of the local one (accounts funded there)
  --price MODEL=AMOUNT | MODEL=INPUT/OUTPUT   price a model on every node (repeatable; also
                      VERITY_PRICES=iris@1.0.0=1000,tiny-chat@1.0.0=10/100): per request, or per
                      prompt/generated token, in the token's atomic units; on the local chain
                      they add to the prices \`verity up\` sets, with --rpc they are the only ones
                      (the token: the deployment file's payments.token or VERITY_PAYMENT_TOKEN)

It prints each node's URL, the deployment file and the accounts, and the URL of a gateway that
routes across all the nodes (port 8780, any free one if taken or with --port 0; see verity
gateway --help); Ctrl-C stops everything (the chain is kept in the data dir).

Examples:
  verity up
  verity up --nodes 3 --data-dir /tmp/verity-net
  verity up --rpc https://rpc.example --deployment deployment.json --price iris@1.0.0=1000
`,
  gateway: `verity gateway — one local endpoint for the whole network

Usage:
  verity gateway [--network local] [--data-dir DIR | --rpc URL --deployment FILE] [--host H] [--port N] [--json]

  --data-dir DIR      the chain of this data dir's \`verity up\` (default ~/.verity)
  --network local     the local \`verity up\` network (its deployment file in the data dir), as
                      the SDK's createClient({ network: 'local' }) finds it
  --rpc URL --deployment FILE   the chain whose NodeRegistry lists the nodes
  --host H            the address to listen on (default 127.0.0.1)
  --port N            the port (default 8780; 0 picks a free one)

The gateway finds the registered, active nodes on the chain, probes them (latency, the models
they hold), and sends each request to the best one for its model; a node that cannot be reached,
fails or times out is passed over for the next. Every answer is verified against the node's key
in NodeRegistry before it is returned; one that does not verify is refused, counted against its
node, and asked of another node. Streams pass tokens through as they come and end with the
verified receipt (\`verity\` member of the last chunk), or with an error event
(ANSWER_UNVERIFIED) when it does not verify. Each answer names its node and why: the
x-verity-node and x-verity-route headers, and \`verity.gateway\` (\`gateway\` on /v1/infer).
GET /v1/network lists the nodes and their state; GET /metrics counts routing, failovers and
verification failures per node. \`verity up\` starts one and prints its URL.

Examples:
  verity gateway
  verity gateway --data-dir /tmp/verity-net --port 0 --json
  verity gateway --network local
  curl -s http://127.0.0.1:8780/v1/network
  curl -s http://127.0.0.1:8780/v1/infer -H 'content-type: application/json' \\
    -d '{"model":"iris@1.0.0","input":{"x":[[5.1,3.5,1.4,0.2]]}}'
  any OpenAI client: base URL http://127.0.0.1:8780/v1
`,
  node: `verity node start — run one node

Usage:
  verity node start [--config FILE] [--data-dir DIR] [--host H] [--port N]
                    [--rpc URL --deployment FILE] [--price MODEL=AMOUNT | MODEL=INPUT/OUTPUT]...

  --config FILE       a JSON configuration (every setting: docs/api.md "Limits"); VERITY_*
                      environment variables and these flags override it
  --rpc URL --deployment FILE   register on this chain, anchor the log, serve quorum; without
                      them the node runs alone
  --price MODEL=AMOUNT | MODEL=INPUT/OUTPUT   a model's price (x402, needs a chain): per request,
                      or per prompt/generated token, in the token's atomic units (repeatable;
                      as VERITY_PRICES, comma-separated, and payments.prices in --config)

Examples:
  verity node start --data-dir ./node1 --port 8701
  verity node start --config node.json --rpc http://127.0.0.1:8545 --deployment deployment.json
`,
  model: `verity model — upload and list models

Usage:
  verity model push FILE [--name N] [--version V] [--license L] [--description TEXT]
                    [--profiles native,portable]
                    [--zk [--zk-frac-bits S --zk-value-bits B | --zk-input-range R]]
  verity model ls
  verity model show MODEL

push uploads an ONNX or GGUF file (needs the node's API key); the node signs its manifest as the
publisher and, on a chain, registers the name in ModelRegistry. --zk also compiles an ONNX model
to a circuit and sets up its Groth16 keys (mode zk).

${CLIENT}

Examples:
  verity model push examples/models/iris.onnx --name iris --version 1.0.0
  verity model push examples/models/iris.onnx --name iris-zk --zk
  verity model push examples/models/digits.onnx --name digits --profiles native,portable
  verity model ls
  verity model show iris@1.0.0
`,
  infer: `verity infer — run a model, verify the answer, save its bundle

Usage:
  verity infer MODEL --input JSON|@FILE [--out BUNDLE] [--mode signed|quorum|audited|zk] [--k N]
               [--profile native|portable] [--nonce HEX] [--accept-local-dev-setup]
               [--zk-audit FILE|DIR] [--zk-auditor ADDRESS] [--max-price N [--payer-key HEX] [--budget N]]

  MODEL               a manifest CID, name@version, or name (latest)
  --mode              signed (default): one node's signed, logged answer; quorum: k registered
                      nodes must agree; audited: the node keeps the payload for auditors until the
                      challenge window closes; zk: a Groth16 proof of the output
  --profile           the execution profile (ONNX): native (onnxruntime-node, fastest) or portable
                      (onnxruntime-web WASM: the same bits on every host and in browsers); one the
                      model was pushed for (--profiles); default: the first it lists
  --out BUNDLE        write the self-contained bundle for \`verity verify\`
  --max-price N       pay a priced model up to N atomic token units (--budget: in all; default N)

${PAYMENT}

${CLIENT}

Examples:
  verity infer iris --input '{"x": [[5.1, 3.5, 1.4, 0.2]]}' --out /tmp/iris.json
  VERITY_PAYER_KEY=0x… verity infer forecast@1.0.0 --max-price 10000 --input @window.json
  verity infer iris --mode audited --input '{"x": [[5.1, 3.5, 1.4, 0.2]]}'
  verity infer iris --mode quorum --k 3 --input @input.json
  verity infer digits --mode quorum --profile portable --input @digit.json
`,
  chat: `verity chat — talk to a language model; each answer streams, then is verified

Usage:
  verity chat MODEL [--message TEXT] [--system TEXT] [--seed N] [--temperature T]
              [--max-tokens N] [--mode signed|audited] [--out BUNDLE]
              [--max-price N [--payer-key HEX] [--budget N]]

Without --message it reads turns from standard input, one per line. --mode audited: the node
keeps each answer's input and output for the challenge window, for auditors and jurors.
A priced language model is metered: each turn authorizes the most it can cost (the context's
input tokens and --max-tokens output tokens at the node's prices; it must be within --max-price)
and is charged for the tokens served, the rest never leaves the payer. --budget caps all turns together (default: no total cap).

${PAYMENT}

${CLIENT}

Examples:
  verity chat tiny-chat --message 'Hello!' --seed 7 --out /tmp/chat.json
  printf 'Hi\\nAnd again\\n' | verity chat tiny-chat
  verity chat tiny-chat --message 'Hello!' --mode audited
  verity chat tiny-chat-paid@1.0.0 --message 'Hello!' --max-tokens 16 --max-price 25000 --payer-key 0x…
`,
  log: `verity log — the node's transparency log

Usage:
  verity log checkpoint
  verity log proof --index N [--size M]      inclusion proof of entry N in the tree of size M
  verity log proof --from M [--to N]         consistency proof between two sizes

${CLIENT}

Examples:
  verity log checkpoint
  verity log proof --index 0
`,
  demo: `verity demo — the protocol alone: a log, a bundle, verification, tampering

Usage:
  verity demo [--out DIR] [--json]

Signs records into an in-memory log, writes a bundle, verifies it, then tampers with it and shows
each refusal's code. No node, no chain.

Example:
  verity demo --out /tmp/verity-demo
`,
  verify: `verity verify — verify a bundle offline (exit 0 valid, 1 invalid)

Usage:
  verity verify FILE [--json] [trust] [checks]

Trust (default: the chain registry of the local \`verity up\` in --data-dir):
  --rpc URL --deployment FILE           the registry of this chain
  --block NUMBER:HASH --deployment FILE offline, from the registry proofs the bundle carries
  --node ADDRESS --key VERIFIER_KEY     trust this node's log key (repeatable, in pairs)
  --insecure-trust-bundle-nodes         also trust the node keys the bundle carries
Checks:
  --input-digest HEX --output-digest HEX   require these digests
  --witness KEY [--witness-threshold M]    require cosignatures of M of these witnesses
  --accept-local-dev-setup                 accept zk proofs from a local-dev setup
  --zk-audit FILE|DIR, --zk-auditor ADDRESS   accept a zk key this audit / auditor vouches for

An audited bundle also shows its status on the chain (pending, final, disputed, refuted).

Examples:
  verity verify /tmp/iris.json
  verity verify /tmp/iris.json --json --rpc http://127.0.0.1:8545 --deployment deployment.json
`,
  zk: `verity zk audit — check that a zk model's verification key belongs to its circuit

Usage:
  verity zk audit MODEL [--url URL] [--data-dir DIR] [--rpc URL --deployment FILE]
                  [--ptau FILE | --ptau-dir DIR] [--attest [--account-key HEX]] [--json]

Fetches the model by CID (manifest hash, publisher signature, every artifact block), recompiles
its circuit, checks the R1CS hash, the proving key against the phase 1 and the phase-2
transcript on chain, and the vk digest; writes <data-dir>/zk/audits/<cid>.json. --attest also
records it on chain (ZkVerifierRegistry.attest).

Example:
  verity zk audit <manifestCid> --data-dir /tmp/audit --ptau phase1.ptau --rpc URL --deployment FILE
`,
  monitor: `verity monitor — watch every registered node for a split view

Usage:
  verity monitor [--rpc URL --deployment FILE | --data-dir DIR] [--witness URL]...
                 [--interval MS] [--once] [--state FILE]

Follows each registered node's own heads, its witnesses' and its anchors; a split view (two
signed heads that cannot both be its history) is printed as a JSON line with both notes (exit 1
with --once). --state keeps the heads seen across runs (for cron).

Examples:
  verity monitor --data-dir /tmp/verity-net --once
  verity monitor --rpc http://127.0.0.1:8545 --deployment deployment.json --state seen.json
`,
  audit: `verity audit — sample, re-execute and challenge audited records

Usage:
  verity audit [--rpc URL --deployment FILE | --data-dir DIR] [--rate PPM] [--account-key HEX]
               [--local-network] [--json]

For every registered node: the audited records still in their challenge window, sampled at
the rate Disputes fixes on chain (auditRatePpm; 10000 ppm = 1 % under verity up) from a block
hash the node could not predict; --rate PPM samples more (never less: its sample contains the
chain's); each payload is fetched, checked against the record and re-executed here; a
different output is challenged on chain from --account-key's account (with the bond). Exit 1
on a lie or a payload not served.

Example:
  verity audit --data-dir /tmp/verity-net --rate 1000000 --account-key 0x…
`,
};

/** True when `args` ask for help (before a `--` that ends the flags). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
