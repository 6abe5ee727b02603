/**
 * A zk model's **binding** on chain (docs/protocol.md §12 "The zk binding"): what
 * `ZkVerifierRegistry` stores for a manifest digest so that a contract can read a proof as a
 * statement about a record — the verification key's id (`vkKey`) and the circuit's public layout
 * with its fixed-point parameters, in a compact byte form the contract parses (the **binding
 * layout**, {@link zkBindingLayout}). The layout lists exactly the output tensors
 * {@link zkOutputTensors} makes, in their `VTN1` order, so the contract re-encodes a proof's output
 * signals into the bytes whose SHA-256 is a zk record's `outputDigest`.
 *
 * A node checks a binding against the manifest it serves ({@link zkBindingMismatch}) before it
 * answers in mode zk: a binding that says another key or layout would let a proof about another
 * circuit, or another reading of its signals, settle a dispute over its records. Pure and
 * browser-safe.
 */
import { utf8 } from './bytes.js';
import { fail } from './errors.js';
import type { Manifest } from './manifest.js';
import { isTensorName, MAX_TENSOR_NAME_BYTES } from './tensor.js';
import { type ZkIo, zkFacts, zkVkDigest } from './zk.js';
import { zkVkKey } from './zk-verifier.js';

/** Version byte of the binding layout. */
export const ZK_BINDING_LAYOUT_VERSION = 1;

/** A model's binding as `ZkVerifierRegistry.bindingOf` returns it. */
export interface ZkBinding {
  /** SHA-256 of the key's on-chain encoding (`zkVkKey`). */
  readonly vkKey: `0x${string}`;
  /** The account that bound it: the publisher of the `ModelRegistry` version. */
  readonly publisher: string;
  /** Block time of the binding, Unix seconds. */
  readonly boundAt: number;
  /** The binding layout ({@link zkBindingLayout}). */
  readonly layout: Uint8Array;
}

interface LayoutTensor {
  readonly name: Uint8Array;
  /** 0: proved output, float64; 1: ArgMax head, int64. */
  readonly kind: 0 | 1;
  readonly offset: number;
  readonly size: number;
  /** ArgMax: the length of the rows it takes the maximum of; 0 for a proved output. */
  readonly last: number;
  readonly shape: readonly number[];
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function name(text: string): Uint8Array {
  const bytes = utf8(text);
  if (!isTensorName(text) || bytes.length > MAX_TENSOR_NAME_BYTES) {
    fail('INVALID_ARGUMENT', 'a zk tensor name cannot be bound', { name: text });
  }
  return bytes;
}

/**
 * The binding layout of a circuit's public layout: all integers big-endian,
 *
 * ```text
 * u8 version (1) ‖ u8 fracBits ‖ u8 valueBits ‖ u32 nOut ‖ u32 nIn ‖ u16 len ‖ input name ‖ u8 count ‖
 * count × ( u16 len ‖ name ‖ u8 kind ‖ u32 offset ‖ u32 size ‖ u32 last ‖ u8 rank ‖ rank × u32 dim )
 * ```
 *
 * where the tensors are those of {@link zkOutputTensors} (a proved output: kind 0, float64, shape
 * `[1, ...shape]`, signals [offset, offset + size); an ArgMax head: kind 1, int64, over rows of
 * `last` signals of its proved output, shape `[1, ...outer]` (+ `[1]` with keepdims)), sorted by
 * UTF-8 name as `VTN1` sorts them. nOut is the number of output signals. `INVALID_ARGUMENT` for a
 * layout that cannot be written this way (a name that is not a tensor name).
 *
 * @example
 * ```ts
 * const layout = zkBindingLayout(zkFacts(manifest).io); // what bindModel stores
 * ```
 */
export function zkBindingLayout(io: ZkIo): Uint8Array {
  // Exactly zkOutputTensors' map: a later tensor of the same name replaces an earlier one.
  const tensors = new Map<string, LayoutTensor>();
  const proved = new Map<string, { offset: number; size: number; shape: readonly number[] }>();
  let nOut = 0;
  for (const o of io.outputs) {
    proved.set(o.name, { offset: o.offset, size: o.size, shape: o.shape });
    tensors.set(o.name, {
      name: name(o.name),
      kind: 0,
      offset: o.offset,
      size: o.size,
      last: 0,
      shape: [1, ...o.shape],
    });
    nOut += o.size;
  }
  const source = new Map<string, string>();
  for (const h of io.head) source.set(h.output, source.get(h.input) ?? h.input);
  for (const h of io.head) {
    if (h.kind !== 'argmax') continue;
    const logits = proved.get(source.get(h.output) ?? '');
    if (logits === undefined) continue;
    const last = logits.shape.at(-1) ?? 1;
    const shape = [1, ...logits.shape.slice(0, -1), ...(h.keepdims ? [1] : [])];
    tensors.set(h.output, { name: name(h.output), kind: 1, offset: logits.offset, size: logits.size, last, shape });
  }
  const list = [...tensors.values()].sort((a, b) => compareBytes(a.name, b.name));
  const inputName = name(io.input.name);
  if (list.length > 255) fail('INVALID_ARGUMENT', 'a zk binding holds at most 255 output tensors');
  const bytes: number[] = [];
  const u = (v: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) bytes.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
  };
  u(ZK_BINDING_LAYOUT_VERSION, 1);
  u(io.fracBits, 1);
  u(io.valueBits, 1);
  u(nOut, 4);
  u(io.input.size, 4);
  u(inputName.length, 2);
  bytes.push(...inputName);
  u(list.length, 1);
  for (const t of list) {
    u(t.name.length, 2);
    bytes.push(...t.name);
    u(t.kind, 1);
    u(t.offset, 4);
    u(t.size, 4);
    u(t.last, 4);
    u(t.shape.length, 1);
    for (const d of t.shape) u(d, 4);
  }
  return Uint8Array.from(bytes);
}

/**
 * What a binding on chain disagrees with, for a manifest and the verification key the node holds
 * for it (empty: it binds exactly this model's circuit): `unbound` (no binding: `boundAt` 0), `vk` (the key is not the manifest's:
 * its `zkVkDigest` is not `zk.vk`), `vkKey` (the binding names another key), `layout` (another
 * public layout or fixed-point parameters than the manifest's `zk.io`), `publisher` (bound by
 * another account than the manifest's publisher). A node serves a zk model on a chain with
 * disputes only when this is empty: any difference lets a proof settle a dispute over its records
 * by another reading than the one it answered with. Throws what {@link zkFacts} throws for a
 * manifest without valid zk facts.
 *
 * @example
 * ```ts
 * const differs = zkBindingMismatch(binding, manifest, vk);
 * if (differs.length > 0) throw new VerityError('ZK_BINDING_MISMATCH', `binding differs: ${differs}`);
 * ```
 */
export function zkBindingMismatch(binding: ZkBinding, manifest: Manifest, vk: unknown): string[] {
  const facts = zkFacts(manifest);
  if (binding.boundAt === 0) return ['unbound'];
  const differs: string[] = [];
  if (zkVkDigest(vk) !== facts.vk) differs.push('vk');
  let key: string | undefined;
  try {
    key = zkVkKey(vk);
  } catch {
    key = undefined;
  }
  if (key === undefined || key.toLowerCase() !== binding.vkKey.toLowerCase()) differs.push('vkKey');
  const layout = zkBindingLayout(facts.io);
  if (layout.length !== binding.layout.length || layout.some((b, i) => b !== binding.layout[i])) {
    differs.push('layout');
  }
  if (binding.publisher.toLowerCase() !== manifest.publisher.toLowerCase()) differs.push('publisher');
  return differs;
}

/**
 * Throws `ZK_BINDING_MISMATCH` (with `details.mismatches`, as {@link zkBindingMismatch} lists
 * them; `['unbound']` for no binding) unless the binding on chain is exactly the manifest's zk
 * facts and the node's key: the check a node makes before it answers in mode zk for a model on a
 * chain with disputes (docs/protocol.md §12 "The zk binding").
 *
 * @example
 * ```ts
 * checkZkBinding(await getZkBinding(publicClient, { zkVerifiers, manifestCid }), manifest, vk);
 * ```
 */
export function checkZkBinding(binding: ZkBinding | undefined, manifest: Manifest, vk: unknown): void {
  const mismatches = binding === undefined ? ['unbound'] : zkBindingMismatch(binding, manifest, vk);
  if (mismatches.length > 0) {
    fail('ZK_BINDING_MISMATCH', `the model's zk binding on chain differs from its manifest: ${mismatches.join(', ')}`, {
      mismatches,
    });
  }
}
