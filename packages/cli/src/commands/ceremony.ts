/**
 * `verity ceremony …`: a phase-1 (powers of tau) ceremony that no single party controls
 * (docs/design.md §2.6). Files by path; each step is signed by the account of `--account-key`
 * (or `$VERITY_ACCOUNT_KEY`) on the chain of `--rpc URL --deployment FILE` (default: the local
 * `verity up` chain of the data directory). The file operations and the transcript check are
 * @verity/zk's; the chain calls are @verity/contracts'. Nothing else lives here.
 */
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { VerityError } from '@verity/protocol';
import { dataDirOf, localChain } from '../data-dir.js';
import { parseFlags, UsageError } from '../usage.js';

export const CEREMONY_HELP = `verity ceremony — a powers-of-tau (phase 1) ceremony recorded on chain

Usage:
  verity ceremony init --power N --out FILE [--contributors ADDR,ADDR,…] [--id HEX]
        a fresh accumulator of 2^N in FILE; opens the ceremony on chain (you close it); prints its id
  verity ceremony contribute --id HEX --in FILE --out FILE [--name LABEL] [--entropy TEXT]
        adds your contribution (fresh random secrets) and records its hash from your account
  verity ceremony close --id HEX
        ends the contributions (opener only); the next block's hash will be the beacon
  verity ceremony finalize --id HEX --in FILE --out FILE [--no-prepare]
        applies the beacon (the hash of the block the close fixed), records the final hash,
        checks the result against the chain and writes it, prepared for phase 2
  verity ceremony verify FILE --id HEX [--r1cs FILE --ptau FILE]
        checks a final file against the chain: snarkjs verification, the contributions recorded
        in order by the accounts they name, the beacon from the recorded block hash, the final hash
        (with --r1cs and --ptau: a phase-2 zkey)
  verity ceremony import FILE [--out FILE]
        checks a public ceremony's ptau file (e.g. Hermez / PPoT) with every contribution, prints
        its SHA-256 (zk.phase1 {"kind":"file","sha256":…}) and transcript

Options:
  --account-key HEX      the signing account (default $VERITY_ACCOUNT_KEY)
  --rpc URL --deployment FILE   the chain and its contracts (default: the local \`verity up\` of --data-dir)
  --data-dir DIR         default $VERITY_DATA_DIR or ~/.verity
  --json                 machine-readable output

Example (three parties, each with its own key):
  verity ceremony init --power 12 --out p0.ptau --contributors 0xA…,0xB…,0xC…   # prints --id
  VERITY_ACCOUNT_KEY=$KEY_A verity ceremony contribute --id $ID --in p0.ptau --out p1.ptau --name alice
  VERITY_ACCOUNT_KEY=$KEY_B verity ceremony contribute --id $ID --in p1.ptau --out p2.ptau --name bob
  VERITY_ACCOUNT_KEY=$KEY_C verity ceremony contribute --id $ID --in p2.ptau --out p3.ptau --name carol
  verity ceremony close --id $ID
  verity ceremony finalize --id $ID --in p3.ptau --out final.ptau
  verity ceremony verify final.ptau --id $ID      # anyone, from the file and the chain alone
`;

const FLAGS = {
  power: { type: 'string' },
  out: { type: 'string' },
  in: { type: 'string' },
  id: { type: 'string' },
  name: { type: 'string' },
  entropy: { type: 'string' },
  contributors: { type: 'string' },
  r1cs: { type: 'string' },
  ptau: { type: 'string' },
  'no-prepare': { type: 'boolean', default: false },
  'account-key': { type: 'string' },
  rpc: { type: 'string' },
  deployment: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Flags = ReturnType<typeof parseFlags<{ args: string[]; options: typeof FLAGS; allowPositionals: true }>>['values'];

/** Where output goes (tests pass their own). */
export interface Output {
  write(text: string): unknown;
}

function need(flags: Flags, name: 'power' | 'out' | 'in' | 'id'): string {
  const v = flags[name];
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

function hex32(value: string, what: string): `0x${string}` {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new UsageError(`${what} must be 32 bytes of hex (0x + 64 digits)`);
  return value.toLowerCase() as `0x${string}`;
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`, { showHelp: false });
  }
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** The chain (viem clients, the Ceremony address); signing only where a key is given. */
async function chainOf(flags: Flags, signing: boolean) {
  if ((flags.rpc === undefined) !== (flags.deployment === undefined)) {
    throw new UsageError('--rpc and --deployment go together');
  }
  const found =
    flags.rpc !== undefined
      ? { rpcUrl: flags.rpc, deploymentFile: flags.deployment as string }
      : localChain(dataDirOf(flags));
  if (found === undefined) {
    throw new UsageError('no chain: run `verity up`, or give --rpc URL --deployment FILE', { showHelp: false });
  }
  const { readDeploymentFile } = await import('@verity/contracts/node');
  const deployment = await readDeploymentFile(found.deploymentFile);
  const ceremony = deployment.contracts.ceremony;
  if (ceremony === undefined) {
    throw new VerityError('CONFIG_INVALID', 'the deployment has no Ceremony contract (deployed before it existed)', {
      details: { deploymentFile: found.deploymentFile },
    });
  }
  const { createPublicClient, createWalletClient, defineChain, http } = await import('viem');
  const { privateKeyToAccount } = await import('viem/accounts');
  const chain = defineChain({
    id: deployment.chainId,
    name: `chain ${deployment.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [found.rpcUrl] } },
  });
  const transport = http(found.rpcUrl);
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 250 });
  let walletClient: ReturnType<typeof createWalletClient> | undefined;
  if (signing) {
    const key = flags['account-key'] ?? process.env.VERITY_ACCOUNT_KEY;
    if (key === undefined) throw new UsageError('give the signing account: --account-key HEX or $VERITY_ACCOUNT_KEY');
    if (!/^0x[0-9a-fA-F]{64}$/.test(key))
      throw new UsageError('--account-key must be a private key (0x + 64 hex digits)');
    walletClient = createWalletClient({ account: privateKeyToAccount(key as `0x${string}`), chain, transport });
  }
  return { publicClient, walletClient, ceremony };
}

function clientsOf(c: Awaited<ReturnType<typeof chainOf>>) {
  if (c.walletClient === undefined) throw new Error('a signing command without a wallet');
  return { publicClient: c.publicClient, walletClient: c.walletClient } as never;
}

/**
 * Build only on the file whose last contribution is the chain's head: else a contribution would
 * be recorded in an order that is not the file's, or the final hash of another file (for good:
 * `finalize` happens once).
 */
async function atHead(file: Uint8Array, record: { head: string; initialHash: string }): Promise<void> {
  const { ptauTranscript } = await import('@verity/zk');
  const t = await ptauTranscript(file);
  const last = t.beacon ?? t.contributions[t.contributions.length - 1];
  const fileHead = last === undefined ? record.initialHash : last.hash;
  if (fileHead.toLowerCase() !== record.head.toLowerCase() || t.beacon !== undefined) {
    throw new VerityError('ZK_TRANSCRIPT_MISMATCH', 'the input file is not the ceremony head on chain', {
      details: { head: record.head, file: fileHead },
    });
  }
}

function print(out: Output, flags: Flags, json: Record<string, unknown>, lines: string[]): void {
  out.write(flags.json ? `${JSON.stringify(json, null, 2)}\n` : `${lines.join('\n')}\n`);
}

/** `verity ceremony SUBCOMMAND …`; returns the exit code. */
export async function runCeremony(args: string[], out: Output = process.stdout): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    out.write(CEREMONY_HELP);
    return 0;
  }
  const { values: flags, positionals } = parseFlags({ args: rest, options: FLAGS, allowPositionals: true });
  if (flags.help) {
    out.write(CEREMONY_HELP);
    return 0;
  }
  const zk = await import('@verity/zk');
  const contracts = await import('@verity/contracts');
  try {
    switch (sub) {
      case 'init': {
        const power = Number(need(flags, 'power'));
        if (!Number.isInteger(power) || power < 1 || power > 28) throw new UsageError('--power must be 1 to 28');
        const outPath = need(flags, 'out');
        const c = await chainOf(flags, true);
        const id =
          flags.id === undefined
            ? (`0x${(await import('node:crypto')).randomBytes(32).toString('hex')}` as const)
            : hex32(flags.id, '--id');
        const contributors = (flags.contributors ?? '').split(',').filter((a) => a !== '');
        const file = await zk.newPtau(power);
        const initialHash = await zk.ptauInitialHash(power);
        await contracts.openCeremony(clientsOf(c), {
          ceremony: c.ceremony,
          id,
          kind: 1,
          subject: zk.phase1Subject(power),
          initialHash,
          contributors: contributors as `0x${string}`[],
        });
        await writeAtomic(outPath, file);
        print(out, flags, { id, kind: 1, power, initialHash, contributors, file: outPath }, [
          `opened ceremony ${id} (phase 1, 2^${power}); ${contributors.length === 0 ? 'anyone may contribute' : `contributors: ${contributors.join(', ')}`}`,
          `fresh accumulator: ${outPath}`,
        ]);
        return 0;
      }
      case 'contribute': {
        const id = hex32(need(flags, 'id'), '--id');
        const input = await readBytes(need(flags, 'in'));
        const outPath = need(flags, 'out');
        const c = await chainOf(flags, true);
        const record = await contracts.readCeremony(c.publicClient, c.ceremony, id);
        if (record.kind !== 1) throw new UsageError('this command runs phase-1 ceremonies only', { showHelp: false });
        await atHead(input, record);
        const account = (c.walletClient as { account: { address: string } }).account.address;
        const step = await zk.contributePtau(input, {
          name: zk.contributionName(account, flags.name ?? ''),
          ...(flags.entropy === undefined ? {} : { entropy: flags.entropy }),
        });
        const receipt = await contracts.contributeToCeremony(clientsOf(c), {
          ceremony: c.ceremony,
          id,
          prevHash: record.head,
          newHash: step.hash,
        });
        await writeAtomic(outPath, step.file);
        print(out, flags, { id, account, hash: step.hash, block: Number(receipt.blockNumber), file: outPath }, [
          `contribution ${record.contributions.length + 1} by ${account}: ${step.hash} (block ${receipt.blockNumber})`,
          `written to ${outPath}`,
        ]);
        return 0;
      }
      case 'close': {
        const id = hex32(need(flags, 'id'), '--id');
        const c = await chainOf(flags, true);
        const receipt = await contracts.closeCeremony(clientsOf(c), { ceremony: c.ceremony, id });
        const beaconBlock = receipt.blockNumber + 1n;
        print(out, flags, { id, beaconBlock: Number(beaconBlock) }, [
          `closed; the beacon is the hash of block ${beaconBlock}: finalize once it is mined (within 256 blocks)`,
        ]);
        return 0;
      }
      case 'finalize': {
        const id = hex32(need(flags, 'id'), '--id');
        const input = await readBytes(need(flags, 'in'));
        const outPath = need(flags, 'out');
        const c = await chainOf(flags, true);
        const record = await contracts.readCeremony(c.publicClient, c.ceremony, id);
        if (record.beaconBlock === 0n) {
          throw new VerityError('ZK_CEREMONY_UNFINISHED', 'the ceremony is not closed yet', { details: { id } });
        }
        const beacon = await contracts.readBeaconHash(c.publicClient, record.beaconBlock);
        if (beacon === undefined) {
          throw new VerityError('ZK_CEREMONY_UNFINISHED', `the beacon block ${record.beaconBlock} is not mined yet`, {
            details: { beaconBlock: record.beaconBlock.toString() },
          });
        }
        await atHead(input, record);
        const step = await zk.beaconPtau(input, beacon);
        await contracts.finalizeCeremony(clientsOf(c), { ceremony: c.ceremony, id, finalHash: step.hash });
        const finalRecord = await contracts.readCeremony(c.publicClient, c.ceremony, id);
        const result = flags['no-prepare'] ? step.file : await zk.preparePtau(step.file);
        const t = await zk.verifyTranscript(1, result, finalRecord);
        await writeAtomic(outPath, result);
        print(out, flags, { id, beacon, finalHash: step.hash, contributions: t.contributions.length, file: outPath }, [
          `finalized: beacon ${beacon}, final hash ${step.hash}`,
          `${t.contributions.length} contributions and the beacon verified; written to ${outPath}`,
        ]);
        return 0;
      }
      case 'verify': {
        const path = positionals[0];
        if (path === undefined) throw new UsageError('verify takes the final file');
        const id = hex32(need(flags, 'id'), '--id');
        if ((flags.r1cs === undefined) !== (flags.ptau === undefined))
          throw new UsageError('--r1cs and --ptau go together');
        const file = await readBytes(path);
        const c = await chainOf(flags, false);
        const record = await contracts.readCeremony(c.publicClient, c.ceremony, id);
        const t =
          flags.r1cs === undefined
            ? await zk.verifyTranscript(1, file, record)
            : await zk.verifyTranscript(2, file, record, {
                r1cs: await readBytes(flags.r1cs),
                ptau: await readBytes(flags.ptau as string),
              });
        const contributors = record.contributions.map((x) => x.contributor);
        print(
          out,
          flags,
          { ok: true, id, kind: record.kind, contributors, beacon: record.beacon, finalHash: record.finalHash },
          [
            `ok: ceremony ${id} (phase ${record.kind}) — ${contributors.length} contributions, in order:`,
            ...t.contributions.map((s, i) => `  ${i + 1}. ${s.name}  ${s.hash}`),
            `  beacon: block ${record.beaconBlock} hash ${record.beacon}; final hash ${record.finalHash}`,
          ],
        );
        return 0;
      }
      case 'import': {
        const path = positionals[0];
        if (path === undefined) throw new UsageError('import takes the ptau file');
        const file = await readBytes(path);
        await zk.verifyPowersOfTau(path);
        const t = await zk.ptauTranscript(file);
        const { createHash } = await import('node:crypto');
        const sha256 = createHash('sha256').update(file).digest('hex');
        if (flags.out !== undefined) await copyFile(path, flags.out);
        const phase1 = { kind: 'file', sha256 };
        print(
          out,
          flags,
          {
            phase1,
            power: t.power,
            ceremonyPower: t.ceremonyPower,
            contributions: t.contributions,
            beacon: t.beacon ?? null,
          },
          [
            `ok: ${path} verifies (every contribution); power 2^${t.power} of a 2^${t.ceremonyPower} ceremony`,
            `  ${t.contributions.length} contributions${t.beacon ? `, beacon ${t.beacon.beacon?.hash}` : ', no final beacon'}`,
            `  zk.phase1: ${JSON.stringify(phase1)}`,
          ],
        );
        return 0;
      }
      default:
        throw new UsageError(`unknown ceremony command "${sub}"`);
    }
  } finally {
    await zk.releaseCurves();
  }
}
