import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { CLIENT_FLAGS, clientFor, PAYMENT_FLAGS, paymentFrom, paymentLines, print } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';

function number(flag: string, v: string | undefined, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'}`, { showHelp: false });
  }
  return n;
}

/**
 * `verity chat MODEL`: talk to a language model. Each answer streams as it is generated, then is
 * verified (receipt, input, output and parameter digests) before the next prompt. One-shot with
 * `--message`; otherwise each line of standard input is a user turn (`/exit` or end of input stops).
 * `--mode audited`: the node keeps each turn's payload for the challenge window (docs/api.md).
 */
export async function runChat(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      ...CLIENT_FLAGS,
      ...PAYMENT_FLAGS,
      system: { type: 'string' },
      message: { type: 'string' },
      temperature: { type: 'string' },
      seed: { type: 'string' },
      'max-tokens': { type: 'string' },
      mode: { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values.mode !== undefined && values.mode !== 'signed' && values.mode !== 'audited') {
    throw new UsageError('--mode is signed or audited (a quorum: the SDK chatQuorum)');
  }
  const mode = (values.mode ?? 'signed') as 'signed' | 'audited';
  if (positionals.length !== 1) throw new UsageError('chat takes one MODEL');
  const model = positionals[0] as string;
  const sampling = {
    ...(values.temperature === undefined ? {} : { temperature: number('temperature', values.temperature, false) }),
    ...(values.seed === undefined ? {} : { seed: number('seed', values.seed, true) }),
    ...(values['max-tokens'] === undefined ? {} : { max_tokens: number('max-tokens', values['max-tokens'], true) }),
  };
  const payment = paymentFrom(values, 'per-request');
  const client = await clientFor(values, { verifies: true, payment });
  const messages: { role: string; content: string | null; tool_calls?: unknown }[] = [];
  if (values.system !== undefined) messages.push({ role: 'system', content: values.system });
  const interactive = values.message === undefined && process.stdin.isTTY === true && !values.json;

  const turn = async (text: string) => {
    messages.push({ role: 'user', content: text });
    const answer = await client.chat({
      request: { model, messages, ...sampling },
      mode,
      ...(values.json ? {} : { onText: (t: string) => process.stdout.write(t) }),
    });
    messages.push({ ...answer.message });
    if (values.out !== undefined) await writeFile(values.out, `${JSON.stringify(answer.bundle(), null, 2)}\n`);
    const r = answer.record;
    print(
      values.json,
      {
        message: answer.message,
        requestId: r.requestId,
        params: answer.verity.params,
        record: r,
        ...(answer.verity.audit ? { audit: answer.verity.audit } : {}),
        ...(answer.payment === undefined ? {} : { payment: answer.payment }),
        verified: true,
      },
      [
        '',
        `✓ verified: record ${r.requestId} is entry ${answer.verity.receipt.leafIndex} of ${r.node}'s log`,
        `  model ${r.model}, seed ${answer.verity.params.seed}, temperature ${answer.verity.params.temperature}`,
        `  input ${r.inputDigest}  output ${r.outputDigest}`,
        ...(answer.verity.audit
          ? [
              `  audited: payload at ${answer.verity.audit.payload} until ${new Date(answer.verity.audit.windowClosesAt).toISOString()}`,
            ]
          : []),
        ...paymentLines(answer.payment),
        ...(values.out === undefined ? [] : [`  bundle written to ${values.out}`]),
      ].join('\n'),
    );
  };

  if (values.message !== undefined) {
    await turn(values.message);
    return 0;
  }
  const rl = createInterface({ input: process.stdin, terminal: interactive });
  if (interactive) process.stdout.write(`chatting with ${model} (/exit to leave)\n> `);
  for await (const line of rl) {
    const text = line.trim();
    if (text === '/exit') break;
    if (text !== '') await turn(text);
    if (interactive) process.stdout.write('> ');
  }
  rl.close();
  return 0;
}
