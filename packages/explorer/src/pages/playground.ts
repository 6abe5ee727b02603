/**
 * Playground: chat with a hosted language model (streamed; the OpenAI request shown as sent), or
 * run an ONNX model from a form built from its input signature. Every answer is verified here by
 * the SDK before it is shown, and carries a badge that opens its receipt.
 */
import type { ModelInfo } from '@verity/sdk';
import { env } from '../env.js';
import { errorText, h, show } from '../ui.js';
import { HANDOFF_KEY } from './verify.js';

type Verified = { record: { requestId: string }; bundle(): unknown };

/** The verified badge: opens the receipt; the bundle goes to the Verify page. */
function badge(answer: Verified): HTMLElement {
  const id = answer.record.requestId;
  return h(
    'p',
    null,
    h('a', { class: 'badge ok', id: 'badge', href: `#/receipt/${encodeURIComponent(id)}` }, '✓ verified'),
    ' ',
    h(
      'a',
      {
        href: '#/verify',
        onclick: () => sessionStorage.setItem(HANDOFF_KEY, JSON.stringify(answer.bundle(), null, 2)),
      },
      'every check of its bundle',
    ),
  );
}

const failed = (e: unknown) =>
  h(
    'p',
    null,
    h('span', { class: 'badge bad', id: 'badge', 'data-code': (e as { code?: string }).code }, '✗ not verified'),
    ' ',
    h('span', { class: 'err' }, errorText(e)),
  );

export async function render([ref]: string[]): Promise<void> {
  const e = await env();
  show(h('h1', null, 'Playground'), h('p', { class: 'mut' }, 'Loading models…'));
  let models: ModelInfo[];
  try {
    models = await e.client.models();
  } catch (err) {
    show(h('h1', null, 'Playground'), h('p', { class: 'err' }, errorText(err)));
    return;
  }
  const pick = h(
    'select',
    { id: 'model', onchange: () => (location.hash = `#/playground/${encodeURIComponent(pick.value)}`) },
    ...models.map((m) => h('option', { value: m.ref, selected: m.ref === ref }, `${m.ref} (${m.manifest.format})`)),
  );
  const model = models.find((m) => m.ref === ref) ?? models[0];
  const body = h('div', { id: 'play' });
  show(h('h1', null, 'Playground'), h('p', null, pick), body);
  if (!model) body.append(h('p', null, 'This node holds no model.'));
  else if (model.manifest.format === 'gguf') chatForm(model, body);
  else onnxForm(model, body, e.chain !== undefined);
}

function chatForm(model: ModelInfo, out: HTMLElement): void {
  const prompt = h('textarea', { id: 'prompt', placeholder: 'Say something…' }, 'Hello!');
  const seed = h('input', { id: 'seed', type: 'number', value: 7, size: 6 });
  const maxTokens = h('input', { id: 'max-tokens', type: 'number', value: 32, size: 6 });
  // Modes a chat can ask for on the OpenAI routes (docs/api.md: `x-verity-mode`).
  const mode = h('select', { id: 'chat-mode' }, ...['signed', 'audited'].map((m) => h('option', { value: m }, m)));
  const shown = h('pre', { id: 'request' });
  const answer = h('div', { id: 'answer', class: 'mono' });
  const result = h('div', { id: 'result' });
  const send = async () => {
    const request = {
      model: model.ref,
      messages: [{ role: 'user', content: prompt.value }],
      max_tokens: Number(maxTokens.value),
      seed: Number(seed.value),
      stream: true,
    };
    const chosen = mode.value as 'signed' | 'audited';
    const header = chosen === 'signed' ? '' : `x-verity-mode: ${chosen}\n`;
    shown.textContent = `POST /v1/chat/completions\n${header}${JSON.stringify(request, null, 2)}`;
    answer.textContent = '';
    result.replaceChildren(h('p', { class: 'mut' }, 'Streaming…'));
    try {
      const e = await env();
      const verified = await e.client.chat({ request, mode: chosen, onText: (t) => answer.append(t) });
      result.replaceChildren(badge(verified));
    } catch (err) {
      result.replaceChildren(failed(err));
    }
  };
  out.append(
    prompt,
    h(
      'p',
      null,
      'seed ',
      seed,
      ' max tokens ',
      maxTokens,
      ' mode ',
      mode,
      ' ',
      h('button', { id: 'send', onclick: () => void send() }, 'Send'),
    ),
    h('h2', null, 'Answer'),
    answer,
    result,
    h('h2', null, 'The OpenAI request'),
    shown,
  );
}

/** A short-form value for a signature: zeros, symbolic dimensions taken as 1. */
function zeros(shape: readonly (number | string)[]): unknown {
  if (shape.length === 0) return 0;
  const [n, ...rest] = shape;
  return Array.from({ length: typeof n === 'number' ? n : 1 }, () => zeros(rest));
}

function onnxForm(model: ModelInfo, out: HTMLElement, onChain: boolean): void {
  const fields = model.manifest.inputs.map((t) => ({
    name: t.name,
    el: h('textarea', { 'data-input': t.name, rows: 3 }, JSON.stringify(zeros(t.shape))),
    label: `${t.name}: ${t.dtype} [${t.shape.join(', ')}]`,
  }));
  const modes = [
    'signed',
    'audited',
    ...(onChain ? ['quorum'] : []),
    ...(model.manifest.metadata?.['zk.vk'] ? ['zk'] : []),
  ];
  const mode = h('select', { id: 'mode' }, ...modes.map((m) => h('option', { value: m }, m)));
  const output = h('pre', { id: 'output' });
  const result = h('div', { id: 'result' });
  const run = async () => {
    result.replaceChildren(h('p', { class: 'mut' }, 'Running…'));
    output.textContent = '';
    try {
      const input = Object.fromEntries(fields.map((f) => [f.name, JSON.parse(f.el.value) as unknown]));
      const e = await env();
      const answer = await e.client.infer({
        model: model.ref,
        input,
        mode: mode.value as 'signed',
        ...(mode.value === 'quorum' ? { k: 1 } : {}),
      });
      output.textContent = JSON.stringify(answer.outputJson, null, 2);
      result.replaceChildren(badge(answer));
    } catch (err) {
      result.replaceChildren(failed(err));
    }
  };
  out.append(
    ...fields.map((f) => h('label', null, h('span', { class: 'mut' }, f.label), f.el)),
    h('p', null, 'mode ', mode, ' ', h('button', { id: 'run', onclick: () => void run() }, 'Run')),
    result,
    h('h2', null, 'Output'),
    output,
  );
}
