/**
 * The node's keystore: its Ethereum account key (identity on chain, the records' `node`), its
 * Ed25519 log key (signs checkpoints), and the API key that guards writes. One JSON file, created
 * once with mode 0600 and never rewritten.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  addressFromPrivateKey,
  fail,
  generateNoteKey,
  type NoteSigner,
  parseVerifierKey,
  toHex,
  VerityError,
} from '@verity/protocol';
import { createFastSigner } from './fast-crypto.js';

/** What the keystore holds. */
export interface NodeKeys {
  /** Ethereum account private key, 0x-hex. */
  readonly accountKey: string;
  /** The account address (EIP-55). */
  readonly address: string;
  /** The log's origin, which is also the log key's name. */
  readonly origin: string;
  /** C2SP signer key string of the log key (`PRIVATE+KEY+…`). */
  readonly logSignerKey: string;
  /** C2SP verifier key string of the log key: what verifiers trust. */
  readonly logKey: string;
  /** Bearer token for writes (model uploads). */
  readonly apiKey: string;
  readonly signer: NoteSigner;
}

const FILE = 'keys.json';

/** The keystore path inside a data directory. */
export function keystorePath(dataDir: string): string {
  return join(dataDir, FILE);
}

function fromJson(text: string, path: string): NodeKeys {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new VerityError('KEYSTORE_INVALID', `${path} is not JSON`, { cause });
  }
  const s = (k: string) => {
    const x = v[k];
    if (typeof x !== 'string' || x === '') fail('KEYSTORE_INVALID', `${path}: missing ${k}`);
    return x;
  };
  try {
    const accountKey = s('accountKey');
    const signer = createFastSigner(s('logSignerKey'));
    const verifier = parseVerifierKey(s('logKey'));
    if (verifier.name !== signer.name || verifier.keyId !== signer.keyId)
      fail('KEYSTORE_INVALID', 'log keys do not match');
    return {
      accountKey,
      address: addressFromPrivateKey(accountKey),
      origin: signer.name,
      logSignerKey: s('logSignerKey'),
      logKey: s('logKey'),
      apiKey: s('apiKey'),
      signer,
    };
  } catch (cause) {
    if (cause instanceof VerityError && cause.code === 'KEYSTORE_INVALID') throw cause;
    throw new VerityError('KEYSTORE_INVALID', `${path} holds invalid keys`, { cause });
  }
}

function readKeystore(path: string, origin: string | undefined): NodeKeys {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    fail('KEYSTORE_INVALID', `${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
  }
  const keys = fromJson(readFileSync(path, 'utf8'), path);
  if (origin !== undefined && origin !== keys.origin) {
    fail('KEYSTORE_INVALID', `the keystore's log origin is ${keys.origin}, not ${origin}`);
  }
  return keys;
}

/**
 * Opens the keystore in `dataDir`, creating it with fresh keys when absent. Creation is atomic
 * and exclusive: the file is written and fsynced under a temporary name (mode 0600), then
 * hard-linked into place, which fails if another process got there first — so a crash never
 * leaves a half-written keystore and two starts never make two identities. A keystore readable
 * by others is refused.
 */
export function openKeystore(dataDir: string, options: { origin?: string } = {}): NodeKeys {
  const path = keystorePath(dataDir);
  if (existsSync(path)) return readKeystore(path, options.origin);
  const accountKey = `0x${toHex(randomBytes(32))}`;
  const address = addressFromPrivateKey(accountKey);
  const origin = options.origin ?? `verity.local/log/${address.toLowerCase()}`;
  const { signerKey, verifierKey } = generateNoteKey(origin, randomBytes(32));
  const body = {
    version: 1,
    address,
    accountKey,
    logSignerKey: signerKey,
    logKey: verifierKey,
    apiKey: `vk_${toHex(randomBytes(24))}`,
  };
  const tmp = `${path}.${process.pid}.${toHex(randomBytes(4))}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(body, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    unlinkSync(tmp);
  }
  return readKeystore(path, options.origin);
}
