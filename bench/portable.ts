/**
 * Portable vs native ONNX inference time per model, in one run (docs/design.md §2.6): the
 * `native` runtime (onnxruntime-node, 1 thread and its default thread count) against the
 * `portable` runtime (onnxruntime-web's WASM backend in Node, 1 thread, fixed SIMD), on the
 * example models (iris, forecast, the digits CNN), batch 1 and a larger batch, through the same
 * `Runtime` interface the node uses. Also: session create time, and whether the two profiles'
 * outputs are the same bits (they need not be: that is why the profile is in the record).
 *
 *   npm run bench:portable     (or: node bench/dist/portable.js [seconds per cell] [rounds])
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createOnnxRuntime, createPortableRuntime, type LoadedModel, type Runtime } from '@verity/node';
import { encodeTensors, type TensorMap, tensorsFromJson } from '@verity/protocol';
import { opsPerSecondAsync } from './measure.js';

const seconds = Number(process.argv[2] ?? 1);
const ROUNDS = Number(process.argv[3] ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const MODELS = fileURLToPath(new URL('../../examples/models/', import.meta.url));
const EXAMPLES = [
  { name: 'iris', batches: [1, 64] },
  { name: 'forecast', batches: [1, 64] },
  { name: 'digits', batches: [1, 16] },
];
const runtimes: [string, Runtime][] = [
  ['native 1 thread', createOnnxRuntime({ intraOpThreads: 1 })],
  ['native default threads', createOnnxRuntime()],
  ['portable (WASM, 1 thread)', createPortableRuntime()],
];

/** `rows` rows made by repeating the model's samples (short form, stacked along dim 0). */
function inputsOf(name: string, model: LoadedModel, rows: number): TensorMap {
  const { samples } = JSON.parse(readFileSync(`${MODELS}${name}.samples.json`, 'utf8')) as {
    samples: { inputs: Record<string, unknown[]> }[];
  };
  const stacked: Record<string, unknown[]> = {};
  for (const sig of model.inputs) {
    stacked[sig.name] = Array.from(
      { length: rows },
      (_, i) => (samples[i % samples.length] as (typeof samples)[number]).inputs[sig.name]?.[0],
    );
  }
  return tensorsFromJson(stacked, model.inputs);
}

const rows: string[] = [];
const same: string[] = [];
for (const { name, batches } of EXAMPLES) {
  const path = `${MODELS}${name}.onnx`;
  const loaded: LoadedModel[] = [];
  const create: number[] = [];
  for (const [, runtime] of runtimes) {
    const start = performance.now();
    loaded.push(await runtime.load(path));
    create.push(performance.now() - start);
  }
  for (const batch of batches) {
    const inputs = inputsOf(name, loaded[0] as LoadedModel, batch);
    // Rounds interleaved (runtime order reversed every other round); the median of each.
    const samples: number[][] = loaded.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      const order = loaded.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        const model = loaded[i] as LoadedModel;
        samples[i]?.push(await opsPerSecondAsync(() => model.run(inputs), seconds));
      }
    }
    const perSecond = samples.map(median);
    const [one, , portable] = perSecond as [number, number, number];
    rows.push(
      `| ${name} | ${batch} | ${perSecond.map((r) => `${Math.round(r).toLocaleString('en')}`).join(' | ')} | ${(portable / one).toFixed(2)}× |`,
    );
    const native = encodeTensors(await (loaded[0] as LoadedModel).run(inputs));
    const wasm = encodeTensors(await (loaded[2] as LoadedModel).run(inputs));
    const equal = native.length === wasm.length && native.every((b, i) => b === wasm[i]);
    same.push(`${name} batch ${batch}: ${equal ? 'same bits' : 'different bits'}`);
  }
  rows.push(`| ${name} | session create, ms | ${create.map((ms) => ms.toFixed(1)).join(' | ')} | |`);
  await Promise.all(loaded.map((m) => m.close()));
}

console.log(
  `# portable vs native ONNX inference (runs/s, one run at a time; median of ${ROUNDS} interleaved rounds of ${seconds} s)\n`,
);
console.log(`| model | batch | ${runtimes.map(([n]) => n).join(' | ')} | portable / native 1 thread |`);
console.log(`|---|---|${runtimes.map(() => '---:').join('|')}|---:|`);
for (const r of rows) console.log(r);
console.log('\n(portable session create on the first model includes starting the WebAssembly module)');
console.log(`native (1 thread) vs portable outputs: ${same.join('; ')}`);
