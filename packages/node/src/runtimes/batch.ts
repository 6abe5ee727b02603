/**
 * Batching for the executor (docs/design.md §3): requests to one model are concatenated along dim 0, run
 * once, and the outputs split back. Quorum and audits compare output digests bit for bit
 * (docs/design.md §2.6), so a batched result must equal the result of running each request alone; the compliance
 * suite checks this for every runtime.
 */
import { createTensor, type Tensor, type TensorMap } from '@verity/protocol';
import type { LoadedModel } from './runtime.js';

/**
 * Runs `requests` (each already validated against `model.inputs`) with as few runs as possible
 * and returns one output map per request, in order. Requests whose inputs agree on every dim but
 * the first are concatenated along dim 0 and run together; the others, and every request of a
 * model that is not {@link LoadedModel.batchable}, run alone. When a batched run returns an output
 * whose first dim is not the total batch, that group is run again one request at a time, so the
 * result is always what running each request alone gives.
 *
 * A failing run rejects the whole call (the executor decides whether to retry requests alone).
 *
 * @example
 * ```ts
 * const [a, b] = await runBatched(model, [{ x: oneRow }, { x: threeRows }]); // one run of 4 rows
 * ```
 */
export async function runBatched(model: LoadedModel, requests: readonly TensorMap[]): Promise<TensorMap[]> {
  if (!model.batchable || requests.length < 2) return Promise.all(requests.map((r) => model.run(r)));
  const groups = new Map<string, number[]>();
  const alone: number[] = [];
  requests.forEach((request, index) => {
    const key = batchKey(model, request);
    if (key === undefined) alone.push(index);
    else {
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [index]);
      else group.push(index);
    }
  });
  const results: TensorMap[] = new Array(requests.length);
  const jobs: Promise<void>[] = alone.map(async (i) => {
    results[i] = await model.run(requests[i] as TensorMap);
  });
  for (const indices of groups.values()) {
    jobs.push(
      (async () => {
        const group = indices.map((i) => requests[i] as TensorMap);
        const outputs = group.length === 1 ? [await model.run(group[0] as TensorMap)] : await runGroup(model, group);
        indices.forEach((requestIndex, k) => {
          results[requestIndex] = outputs[k] as TensorMap;
        });
      })(),
    );
  }
  await Promise.all(jobs);
  return results;
}

/**
 * A key shared by requests that can be concatenated: every input's dtype and dims after the
 * first. `undefined` when the request cannot join a batch (an input missing or a scalar, or inputs
 * that disagree on their first dim).
 */
function batchKey(model: LoadedModel, request: TensorMap): string | undefined {
  let rows: number | undefined;
  const parts: string[] = [];
  for (const sig of model.inputs) {
    const t = Object.hasOwn(request, sig.name) ? request[sig.name] : undefined;
    if (t === undefined || t.shape.length === 0) return undefined;
    if (rows === undefined) rows = t.shape[0];
    else if (t.shape[0] !== rows) return undefined;
    parts.push(`${t.dtype}[${t.shape.slice(1).join(',')}]`);
  }
  return parts.join(';');
}

async function runGroup(model: LoadedModel, group: readonly TensorMap[]): Promise<TensorMap[]> {
  // batchKey checked that every input of a request has the same first dim: take the first input's.
  const first = (model.inputs[0] as { name: string }).name;
  const sizes = group.map((r) => (r[first] as Tensor).shape[0] as number);
  const total = sizes.reduce((a, b) => a + b, 0);
  const batch: TensorMap = Object.create(null);
  for (const sig of model.inputs) batch[sig.name] = concatRows(group.map((r) => r[sig.name] as Tensor));
  const outputs = await model.run(batch);
  const names = Object.keys(outputs);
  // An output whose first dim is not the batch (e.g. a count of detections) cannot be split.
  const splittable = names.every((name) => {
    const t = outputs[name] as Tensor;
    return t.shape.length > 0 && t.shape[0] === total;
  });
  if (!splittable) return Promise.all(group.map((r) => model.run(r)));
  const results = group.map(() => Object.create(null) as TensorMap);
  for (const name of names) {
    const parts = splitRows(outputs[name] as Tensor, sizes);
    parts.forEach((part, k) => {
      (results[k] as TensorMap)[name] = part;
    });
  }
  return results;
}

/**
 * Concatenates tensors of one dtype along dim 0; all must agree on the other dims.
 *
 * @example
 * ```ts
 * concatRows([createTensor('int32', [1, 2], new Int32Array([1, 2])), createTensor('int32', [2, 2], new Int32Array([3, 4, 5, 6]))]);
 * // { dtype: 'int32', shape: [3, 2], data: Int32Array [1, 2, 3, 4, 5, 6] }
 * ```
 */
export function concatRows(tensors: readonly Tensor[]): Tensor {
  const first = tensors[0];
  if (first === undefined) throw new RangeError('concatRows needs at least one tensor');
  const rows = tensors.reduce((n, t) => n + (t.shape[0] as number), 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (first.dtype === 'string') {
    return createTensor(
      'string',
      shape,
      tensors.flatMap((t) => t.data as string[]),
    );
  }
  const length = tensors.reduce((n, t) => n + t.data.length, 0);
  const Ctor = first.data.constructor as new (n: number) => Exclude<Tensor['data'], string[]>;
  const data = new Ctor(length);
  let offset = 0;
  for (const t of tensors) {
    // Same dtype, so the same typed-array class: `set` copies element for element, bits intact.
    (data as Float64Array).set(t.data as Float64Array, offset);
    offset += t.data.length;
  }
  return createTensor(first.dtype, shape, data as never) as Tensor;
}

/**
 * Splits a tensor along dim 0 into parts of `sizes` rows (which must add up to its first dim).
 * Each part owns a copy of its data.
 *
 * @example
 * ```ts
 * splitRows(createTensor('float32', [3], new Float32Array([1, 2, 3])), [1, 2]); // shapes [1] and [2]
 * ```
 */
export function splitRows(tensor: Tensor, sizes: readonly number[]): Tensor[] {
  const rowElements = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  const parts: Tensor[] = [];
  let row = 0;
  for (const size of sizes) {
    const start = row * rowElements;
    const end = (row + size) * rowElements;
    const shape = [size, ...tensor.shape.slice(1)];
    parts.push(createTensor(tensor.dtype, shape, tensor.data.slice(start, end) as never) as Tensor);
    row += size;
  }
  if (row !== tensor.shape[0]) throw new RangeError(`sizes add up to ${row} rows, tensor has ${tensor.shape[0]}`);
  return parts;
}
