/**
 * Fixed-point graph → circom source. The text is a pure function of the quantized graph (and the
 * header facts passed in): the same model bytes and parameters give byte-identical circuits.
 *
 * Layout: the gadget templates, then `template Model()` with one public input array `in` (the
 * quantized input row) and one output array `out` (the proved tensors, concatenated in
 * `graph.outputs` order), then `component main {public [in]} = Model();`. Public signals are
 * therefore `[...out, ...in]` (circom puts outputs first).
 *
 * Weights are constants in the linear combinations: a dense layer costs no constraints, only
 * its `Rescale` does (s + b bit constraints per output); a ReLU right after a rescale reuses the
 * rescale's sign (one multiplication).
 */
import type { FixedGraph } from './fixed-point.js';
import { CIRCOM_PRAGMA, GADGETS } from './gadgets.js';
import type { IrTensor } from './ir.js';

/** Facts written into the header comment (not part of the constraints). */
export interface CircomHeader {
  /** SHA-256 (hex) of the model bytes. */
  modelSha256: string;
  /** Generator id and version, e.g. `@verity/zk 0.1.0`. */
  generator: string;
}

/**
 * The circom source of a fixed-point graph.
 *
 * @example
 * ```ts
 * const text = generateCircom(fixed, { modelSha256, generator: '@verity/zk 0.1.0' });
 * ```
 */
export function generateCircom(fixed: FixedGraph, header: CircomHeader): string {
  const { graph, params } = fixed;
  const { fracBits: s, valueBits: b } = params;
  const tensor = (id: number) => graph.tensors[id] as IrTensor;
  const outSize = graph.outputs.reduce((n, id) => n + tensor(id).size, 0);

  /** The signal array holding a tensor (Reshape and friends alias their input's array). */
  const arrays = new Map<number, string>([[graph.input.id, 'in']]);
  /** Tensors produced by a Rescale: their sign is already known. */
  const rescaled = new Map<number, string>();
  const array = (id: number) => arrays.get(id) as string;

  const body: string[] = [];
  const line = (text = '') => body.push(text ? `    ${text}` : '');
  line(`signal input in[${graph.input.size}];`);
  line(`signal output out[${outSize}];`);

  for (const f of fixed.ops) {
    const op = f.op;
    const out = tensor(op.output);
    const name = `t${op.output}`;
    line();
    switch (f.kind) {
      case 'linear': {
        const x = array(f.op.input);
        const k = tensor(f.op.input).size;
        const n = out.size;
        line(
          `// ${name} = ${comment(out.name)} (${comment(op.node)}): ${n} outputs of ${k} inputs, rescaled by 2^-${s}`,
        );
        line(`component ${name}r[${n}];`);
        line(`for (var i = 0; i < ${n}; i++) ${name}r[i] = Rescale(${s}, ${b});`);
        for (let j = 0; j < n; j++) {
          const terms: [bigint, string][] = [];
          for (let i = 0; i < k; i++) terms.push([f.weights[j * k + i] as bigint, `${x}[${i}]`]);
          line(`${name}r[${j}].in <== ${linearCombination(terms, f.bias[j] as bigint)};`);
        }
        line(`signal ${name}[${n}];`);
        line(`for (var i = 0; i < ${n}; i++) ${name}[i] <== ${name}r[i].out;`);
        arrays.set(op.output, name);
        rescaled.set(op.output, `${name}r`);
        break;
      }
      case 'relu': {
        const x = array(f.op.input);
        const n = out.size;
        const sign = rescaled.get(f.op.input);
        line(`// ${name} = ${comment(out.name)} (${comment(op.node)}): ReLU`);
        line(`signal ${name}[${n}];`);
        if (sign !== undefined) {
          line(`for (var i = 0; i < ${n}; i++) ${name}[i] <== ${sign}[i].out * ${sign}[i].nonNegative;`);
        } else {
          line(`component ${name}g[${n}];`);
          line(`for (var i = 0; i < ${n}; i++) {`);
          line(`    ${name}g[i] = Relu(${b});`);
          line(`    ${name}g[i].in <== ${x}[i];`);
          line(`    ${name}[i] <== ${name}g[i].out;`);
          line('}');
        }
        arrays.set(op.output, name);
        break;
      }
      case 'reshape': {
        line(
          `// ${comment(out.name)} (${comment(op.node)}): reshape to [${out.shape}], same signals as ${array(f.op.input)}`,
        );
        arrays.set(op.output, array(f.op.input));
        const source = rescaled.get(f.op.input);
        if (source !== undefined) rescaled.set(op.output, source);
        break;
      }
      case 'add': {
        const [a, c] = f.op.inputs;
        line(`// ${name} = ${comment(out.name)} (${comment(op.node)}): ${array(a)} + ${array(c)}`);
        line(`signal ${name}[${out.size}];`);
        line(`for (var i = 0; i < ${out.size}; i++) ${name}[i] <== ${array(a)}[i] + ${array(c)}[i];`);
        arrays.set(op.output, name);
        break;
      }
      case 'addConst': {
        const x = array(f.op.input);
        line(`// ${name} = ${comment(out.name)} (${comment(op.node)}): ${x} + constant`);
        line(`signal ${name}[${out.size}];`);
        f.values.forEach((v, i) => {
          line(`${name}[${i}] <== ${linearCombination([[1n, `${x}[${i}]`]], v)};`);
        });
        arrays.set(op.output, name);
        break;
      }
    }
  }

  line();
  line('// public outputs');
  let offset = 0;
  for (const id of graph.outputs) {
    const t = tensor(id);
    line(`// out[${offset}..${offset + t.size}) = ${comment(t.name)} [${t.shape}]`);
    line(`for (var i = 0; i < ${t.size}; i++) out[${offset} + i] <== ${array(id)}[i];`);
    offset += t.size;
  }

  const outputs = graph.outputs.map((id) => `${comment(tensor(id).name)} [${tensor(id).shape}]`).join(', ');
  const head = graph.head.map((h) => `${h.output} = ${h.kind}(${h.input})`).join(', ');
  return [
    `// Generated by ${header.generator} from an ONNX model: regenerate it, do not edit it.`,
    `// model: ${comment(graph.name)}, sha256 ${header.modelSha256}`,
    `// fixed point: values are round(v * 2^${s}); range-checked values lie in [-2^${b - 1}, 2^${b - 1})`,
    `// public input: in = ${comment(graph.input.name)} [${graph.input.shape}] * 2^${s}`,
    `// public output: out = ${outputs} * 2^${s}`,
    head ? `// computed by the verifier from the outputs (not proved): ${comment(head)}` : '// no head',
    CIRCOM_PRAGMA,
    '',
    GADGETS,
    'template Model() {',
    ...body,
    '}',
    '',
    'component main {public [in]} = Model();',
    '',
  ].join('\n');
}

/** `w0 * x0 + w1 * x1 - … + c`, skipping zero weights. */
function linearCombination(terms: readonly [bigint, string][], constant: bigint): string {
  let text = '';
  for (const [w, x] of terms) {
    if (w === 0n) continue;
    const mag = w < 0n ? -w : w;
    if (text === '') text = `${w < 0n ? '-' : ''}${mag} * ${x}`;
    else text += ` ${w < 0n ? '-' : '+'} ${mag} * ${x}`;
  }
  if (constant !== 0n || text === '') {
    const mag = constant < 0n ? -constant : constant;
    if (text === '') text = constant.toString();
    else text += ` ${constant < 0n ? '-' : '+'} ${mag}`;
  }
  return text;
}

/** ONNX names are free text: keep them on one comment line. */
function comment(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').replace(/\*\//g, '* /');
}
