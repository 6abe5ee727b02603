import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { VerityError } from '@verity/protocol';
import type { ModelInfo, PushModelParams } from '@verity/sdk';
import { CLIENT_FLAGS, clientFor, print } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';

function describe(m: ModelInfo): string {
  const sig = (list: readonly { name: string; dtype: string; shape: readonly (number | string)[] }[]) =>
    list.map((t) => `${t.name}: ${t.dtype}[${t.shape.join(', ')}]`).join('; ');
  const meta = m.manifest.metadata ?? {};
  const facts =
    m.manifest.format === 'gguf'
      ? [
          `  llm      ${meta['general.architecture'] ?? '?'}, ${meta.parameter_count ?? '?'} parameters, ` +
            `${meta['general.file_type'] ?? '?'}, context ${meta.context_length ?? '?'}` +
            `${meta['tokenizer.chat_template'] ? ', chat template' : ''}`,
        ]
      : [`  inputs   ${sig(m.manifest.inputs)}`, `  outputs  ${sig(m.manifest.outputs)}`];
  return [
    `${m.ref}  ${m.id}`,
    `  artifact ${m.manifest.artifact.cid} (${m.manifest.artifact.size} bytes, ${m.manifest.format})`,
    ...facts,
    `  publisher ${m.manifest.publisher}, created ${m.manifest.createdAt}`,
  ].join('\n');
}

async function isGguf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    return head.toString('latin1') === 'GGUF';
  } finally {
    await fh.close();
  }
}

function progressBar(name: string): (sent: number, total: number | undefined) => void {
  if (!process.stderr.isTTY) return () => {};
  let last = -1;
  return (sent, total) => {
    const pct = total ? Math.floor((sent / total) * 100) : 0;
    if (pct === last && sent !== total) return;
    last = pct;
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    process.stderr.write(
      `\r${name} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${(sent / 1048576).toFixed(1)} MiB`,
    );
    if (total !== undefined && sent >= total) process.stderr.write('\n');
  };
}

/** `--zk [--zk-frac-bits S --zk-value-bits B | --zk-input-range R]` as the SDK's `zk` option. */
function zkOption(values: {
  zk?: boolean;
  'zk-frac-bits'?: string;
  'zk-value-bits'?: string;
  'zk-input-range'?: string;
}): PushModelParams['zk'] {
  const frac = values['zk-frac-bits'];
  const bits = values['zk-value-bits'];
  const range = values['zk-input-range'];
  if (values.zk !== true) {
    if (frac !== undefined || bits !== undefined || range !== undefined)
      throw new UsageError('--zk-* options need --zk');
    return undefined;
  }
  if ((frac === undefined) !== (bits === undefined))
    throw new UsageError('give --zk-frac-bits and --zk-value-bits together');
  if (frac !== undefined && bits !== undefined) {
    if (!/^[0-9]{1,3}$/.test(frac) || !/^[0-9]{1,3}$/.test(bits)) throw new UsageError('--zk-*-bits must be integers');
    return { fracBits: Number(frac), valueBits: Number(bits) };
  }
  if (range !== undefined) {
    const r = Number(range);
    if (!(r > 0)) throw new UsageError('--zk-input-range must be a positive number');
    return { inputRange: r };
  }
  return true;
}

/** `verity model push|ls|show`. */
export async function runModel(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags({
    args: rest,
    allowPositionals: true,
    options: {
      ...CLIENT_FLAGS,
      name: { type: 'string' },
      version: { type: 'string' },
      license: { type: 'string' },
      description: { type: 'string' },
      profiles: { type: 'string' },
      zk: { type: 'boolean', default: false },
      'zk-frac-bits': { type: 'string' },
      'zk-value-bits': { type: 'string' },
      'zk-input-range': { type: 'string' },
    },
  });
  const client = await clientFor(values, { verifies: false });
  switch (sub) {
    case 'push': {
      const file = positionals[0];
      if (file === undefined || positionals.length !== 1) throw new UsageError('model push takes one FILE');
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch (e) {
        throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`, { showHelp: false });
      }
      // The format is the file's own: GGUF files start with the magic "GGUF".
      const format = (await isGguf(file)) ? 'gguf' : 'onnx';
      const name =
        values.name ??
        basename(file)
          .replace(/\.(onnx|gguf)$/i, '')
          .toLowerCase()
          .replace(/[^a-z0-9._-]/g, '-');
      const zk = zkOption(values);
      if (client.base.apiKey === undefined) {
        // The data dir's key goes only to the data dir's own node: say so rather than send it.
        throw new VerityError(
          'UNAUTHORIZED',
          `no API key for ${client.base.url}: a data dir's key is sent only to its own node; give --api-key KEY`,
        );
      }
      const model = await client.pushModel({
        name,
        format,
        ...(zk === undefined ? {} : { zk }),
        ...(values.version === undefined ? {} : { version: values.version }),
        ...(values.license === undefined ? {} : { license: values.license }),
        ...(values.description === undefined ? {} : { description: values.description }),
        ...(values.profiles === undefined ? {} : { profiles: values.profiles.split(',') }),
        data: createReadStream(file) as AsyncIterable<Uint8Array>,
        size,
        ...(values.json ? {} : { onProgress: progressBar(basename(file)) }),
      });
      print(values.json, model, `pushed ${describe(model)}`);
      return 0;
    }
    case 'ls': {
      const models = await client.models();
      print(values.json, models, models.length === 0 ? 'no models' : models.map((m) => `${m.ref}  ${m.id}`).join('\n'));
      return 0;
    }
    case 'show': {
      if (positionals.length !== 1) throw new UsageError('model show takes one MODEL (CID, name@version or name)');
      const model = await client.model(positionals[0] as string);
      print(values.json, model, describe(model));
      return 0;
    }
    default:
      throw new UsageError('model takes push, ls or show');
  }
}
