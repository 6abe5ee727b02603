/**
 * ONNX → {@link IrGraph}: the documented subset of ONNX that the zk compiler accepts (README
 * "Supported ONNX"). Every node is checked; all problems are reported at once, in one
 * `VerityError` whose `details.unsupported` lists each offending node (index, name, op, reason),
 * so a publisher sees the whole list at push time.
 */
import { VerityError } from '@verity/protocol';
import onnxProto from 'onnx-proto';
import type { HeadOp, IrGraph, IrOp, IrTensor } from './ir.js';
import { SUPPORTED_OPS } from './ir.js';
import {
  attributesOf,
  broadcastTo,
  type Constant,
  constantOf,
  floatAttr,
  intAttr,
  intsAttr,
  NodeProblem,
  problem,
  stringAttr,
  toInt,
} from './onnx-values.js';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;

/** One node the compiler cannot turn into a circuit, and why. */
export interface UnsupportedNode {
  /** Position of the node in the graph (0-based). */
  index: number;
  /** The node's name (or `<opType>_<index>` where it has none). */
  node: string;
  opType: string;
  reason: string;
}

type Value =
  | { kind: 'act'; tensor: number }
  | { kind: 'const'; value: Constant }
  | { kind: 'head'; root: string }
  | { kind: 'unknown' };

const HEAD_OPS: Record<string, HeadOp['kind']> = { Softmax: 'softmax', LogSoftmax: 'logSoftmax', ArgMax: 'argmax' };

/**
 * Decodes `.onnx` bytes and lowers them to the IR, or throws `MODEL_INVALID` with every
 * unsupported node listed in `details.unsupported`.
 *
 * @example
 * ```ts
 * const graph = importOnnx(readFileSync('examples/models/iris.onnx'));
 * graph.ops.map((op) => op.kind); // ['linear', 'relu', 'linear']
 * graph.head.map((h) => h.kind); // ['softmax', 'argmax']
 * ```
 */
export function importOnnx(bytes: Uint8Array): IrGraph {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new VerityError('MODEL_INVALID', 'not an ONNX model (protobuf decoding failed)', {
      details: { size: bytes.byteLength },
      cause,
    });
  }
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) {
    throw new VerityError('MODEL_INVALID', 'the ONNX model has no graph or no nodes', { details: {} });
  }
  return new Importer(graph).run();
}

class Importer {
  private readonly tensors: IrTensor[] = [];
  private readonly ops: IrOp[] = [];
  private readonly head: HeadOp[] = [];
  private readonly values = new Map<string, Value>();
  private readonly problems: UnsupportedNode[] = [];
  /** How many nodes read each value (and +1 for graph outputs): Add is folded into a bias only when it is the only reader. */
  private readonly readers = new Map<string, number>();
  private batched = false;

  constructor(private readonly graph: onnxProto.onnx.IGraphProto) {}

  run(): IrGraph {
    const g = this.graph;
    for (const t of g.initializer ?? []) {
      if (t.name) this.values.set(t.name, { kind: 'const', value: constantOf(t) });
    }
    for (const n of g.node ?? []) for (const name of n.input ?? []) this.countReader(name);
    for (const o of g.output ?? []) if (o.name) this.countReader(o.name);

    const input = this.importInput();
    for (const [index, node] of (g.node ?? []).entries()) this.importNode(node, index);
    const outputs = this.importOutputs();

    if (this.problems.length > 0 || input === undefined) {
      const list = this.problems.map((p) => `${p.opType} (node ${p.node}: ${p.reason})`).join('; ');
      throw new VerityError('MODEL_INVALID', `the zk compiler cannot build a circuit for this model: ${list}`, {
        details: { unsupported: this.problems, supportedOps: [...SUPPORTED_OPS] },
      });
    }
    return {
      name: g.name || 'model',
      input,
      tensors: this.tensors,
      ops: fuseBiases(this.ops, this.tensors, this.readers),
      outputs,
      head: this.head,
      batched: this.batched,
    };
  }

  private countReader(name: string): void {
    if (name !== '') this.readers.set(name, (this.readers.get(name) ?? 0) + 1);
  }

  private addProblem(index: number, node: string, opType: string, reason: string): void {
    this.problems.push({ index, node, opType, reason });
  }

  private newTensor(name: string, shape: readonly number[]): number {
    const id = this.tensors.length;
    this.tensors.push({ id, name, shape: [...shape], size: shape.reduce((a, b) => a * b, 1) });
    return id;
  }

  /** The one non-initializer graph input: float32, static shape apart from a leading batch dim. */
  private importInput(): IrTensor | undefined {
    const inputs = (this.graph.input ?? []).filter((v) => v.name && !this.values.has(v.name));
    const fail = (reason: string): undefined => {
      this.addProblem(-1, inputs.map((v) => v.name).join(',') || '(none)', 'input', reason);
      // Nodes reading a rejected input are not listed again.
      for (const v of inputs) this.values.set(v.name as string, { kind: 'unknown' });
      return undefined;
    };
    if (inputs.length !== 1) return fail(`the circuit takes exactly one input tensor, the model has ${inputs.length}`);
    const v = inputs[0] as onnxProto.onnx.IValueInfoProto;
    const tt = v.type?.tensorType;
    if (!tt || tt.elemType !== onnx.TensorProto.DataType.FLOAT) return fail('the input must be a float32 tensor');
    const dims = (tt.shape?.dim ?? []).map((d) =>
      d.dimParam ? null : (d as { value?: string }).value === 'dimValue' ? toInt(d.dimValue) : null,
    );
    if (dims.length === 0) return fail('the input must have a static shape (a leading batch dim may be symbolic)');
    let shape = dims;
    if (dims.length >= 2 && (dims[0] === null || dims[0] === 1)) {
      this.batched = true;
      shape = dims.slice(1);
    } else if (dims.length >= 2) {
      return fail(`a batch of ${dims[0]} rows: the circuit proves one row, so the batch dim must be 1 or symbolic`);
    }
    if (shape.some((d) => d === null || d <= 0)) {
      return fail('the input must have a static shape (a leading batch dim may be symbolic)');
    }
    const id = this.newTensor(v.name as string, shape as number[]);
    this.values.set(v.name as string, { kind: 'act', tensor: id });
    return this.tensors[id];
  }

  private importNode(node: NodeProto, index: number): void {
    const opType = node.opType ?? '';
    const name = node.name || `${opType}_${index}`;
    const outputs = node.output ?? [];
    const setOutputs = (value: Value) => {
      for (const o of outputs) if (o !== '') this.values.set(o, value);
    };
    if (node.domain && node.domain !== 'ai.onnx') {
      this.addProblem(index, name, opType, `operator domain "${node.domain}" is not supported`);
      setOutputs({ kind: 'unknown' });
      return;
    }
    if (!SUPPORTED_OPS.includes(opType)) {
      this.addProblem(index, name, opType, 'operator not supported');
      setOutputs({ kind: 'unknown' });
      return;
    }
    const inputs = (node.input ?? []).map((n) => (n === '' ? undefined : this.values.get(n)));
    // An input that is unknown because an earlier node was rejected: that node is already listed.
    if (inputs.some((v) => v?.kind === 'unknown')) {
      setOutputs({ kind: 'unknown' });
      return;
    }
    const missing = (node.input ?? []).find((n, i) => n !== '' && inputs[i] === undefined);
    if (missing !== undefined) {
      this.addProblem(index, name, opType, `input "${missing}" is not produced by any earlier node`);
      setOutputs({ kind: 'unknown' });
      return;
    }
    const headReader = inputs.find((v) => v?.kind === 'head');
    if (headReader !== undefined && !(opType in HEAD_OPS)) {
      this.addProblem(index, name, opType, 'reads the output of a Softmax/ArgMax head: the head must end the graph');
      setOutputs({ kind: 'unknown' });
      return;
    }
    try {
      const value = this.lower(node, name, opType, inputs);
      if (outputs[0] !== undefined && outputs[0] !== '') this.values.set(outputs[0], value);
      // Dropout's optional mask output is not supported: fail if anything reads it.
      for (const o of outputs.slice(1)) if (o !== '') this.values.set(o, { kind: 'unknown' });
      if (outputs.slice(1).some((o) => o !== '' && (this.readers.get(o) ?? 0) > 0)) {
        problem('only the first output may be used');
      }
    } catch (e) {
      if (!(e instanceof NodeProblem)) throw e;
      this.addProblem(index, name, opType, e.message);
      setOutputs({ kind: 'unknown' });
    }
  }

  private lower(node: NodeProto, name: string, opType: string, inputs: (Value | undefined)[]): Value {
    const out = (node.output ?? [])[0] ?? '';
    const attrs = attributesOf(node.attribute ?? []);
    switch (opType) {
      case 'Constant': {
        const t = attrs.get('value');
        if (t?.t === undefined || t.t === null) problem('only the "value" attribute (a tensor) is supported');
        return { kind: 'const', value: constantOf(t.t) };
      }
      case 'Gemm':
        return this.lowerGemm(name, out, inputs, attrs);
      case 'MatMul': {
        const [a, b] = inputs;
        const x = this.activation(a, 'A');
        const w = this.constant(b, 'B');
        const k = this.tensors[x]?.size ?? 0;
        if (this.tensors[x]?.shape.length !== 1) problem('A must be a vector per row ([batch, K] or [K])');
        if (w.dims.length !== 2 || w.dims[0] !== k) problem(`B must be a constant [${k}, N], got [${w.dims}]`);
        const n = w.dims[1] as number;
        const weights = new Float64Array(n * k);
        for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) weights[j * k + i] = w.data[i * n + j] as number;
        return this.emitLinear(name, x, out, [n], weights, new Float64Array(n), w.data.length);
      }
      case 'Add':
      case 'Sub': {
        const [a, b] = inputs;
        if (a?.kind === 'act' && b?.kind === 'act') {
          if (opType === 'Sub') problem('subtracting two activations is not supported');
          const ta = this.tensors[a.tensor] as IrTensor;
          const tb = this.tensors[b.tensor] as IrTensor;
          if (ta.shape.join() !== tb.shape.join()) problem('both activations must have the same shape');
          const y = this.newTensor(out, ta.shape);
          this.ops.push({ kind: 'add', node: name, inputs: [a.tensor, b.tensor], output: y });
          return { kind: 'act', tensor: y };
        }
        if (a?.kind !== 'act') problem(`${opType} needs an activation as its first input`);
        const x = a.tensor;
        const c = this.constant(b, 'B');
        const t = this.tensors[x] as IrTensor;
        const values = broadcastTo(c, this.batched ? [1, ...t.shape] : t.shape);
        if (values === undefined) problem(`constant [${c.dims}] does not broadcast to the activation [${t.shape}]`);
        if (opType === 'Sub') for (let i = 0; i < values.length; i++) values[i] = -(values[i] as number);
        const y = this.newTensor(out, t.shape);
        this.ops.push({ kind: 'addConst', node: name, input: x, output: y, values, parameters: c.data.length });
        return { kind: 'act', tensor: y };
      }
      case 'Relu': {
        const x = this.activation(inputs[0], 'X');
        const y = this.newTensor(out, (this.tensors[x] as IrTensor).shape);
        this.ops.push({ kind: 'relu', node: name, input: x, output: y });
        return { kind: 'act', tensor: y };
      }
      case 'Identity':
      case 'Dropout': {
        const x = this.activation(inputs[0], 'input');
        return this.emitReshape(name, x, out, (this.tensors[x] as IrTensor).shape);
      }
      case 'Flatten': {
        const x = this.activation(inputs[0], 'input');
        const axis = intAttr(attrs, 'axis', 1);
        if (!this.batched || axis !== 1) problem('only Flatten with axis 1 after a batch dim is supported');
        return this.emitReshape(name, x, out, [(this.tensors[x] as IrTensor).size]);
      }
      case 'Reshape':
        return this.lowerReshape(name, out, inputs, attrs);
      case 'Conv':
        return this.lowerConv(name, out, inputs, attrs);
      default:
        return this.lowerHead(node, name, opType, inputs, attrs);
    }
  }

  private lowerGemm(
    name: string,
    out: string,
    inputs: (Value | undefined)[],
    attrs: Map<string, AttributeProto>,
  ): Value {
    const [a, b, c] = inputs;
    const x = this.activation(a, 'A');
    const w = this.constant(b, 'B');
    if (intAttr(attrs, 'transA', 0) !== 0) problem('transA = 1 is not supported');
    const transB = intAttr(attrs, 'transB', 0) !== 0;
    const alpha = floatAttr(attrs, 'alpha', 1);
    const beta = floatAttr(attrs, 'beta', 1);
    const t = this.tensors[x] as IrTensor;
    if (t.shape.length !== 1) problem('A must be [batch, K]');
    const k = t.size;
    if (w.dims.length !== 2) problem('B must be a 2-D constant');
    const [r0, r1] = w.dims as [number, number];
    const n = transB ? r0 : r1;
    if ((transB ? r1 : r0) !== k) problem(`B [${w.dims}] does not match A's ${k} columns (transB ${Number(transB)})`);
    const weights = new Float64Array(n * k);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < k; i++) weights[j * k + i] = alpha * (w.data[transB ? j * k + i : i * n + j] as number);
    }
    let bias: Float64Array = new Float64Array(n);
    let parameters = w.data.length;
    if (c !== undefined) {
      const constant = this.constant(c, 'C');
      const cv = broadcastTo(constant, [1, n]);
      if (cv === undefined) problem(`C does not broadcast to [1, ${n}]`);
      bias = cv.map((v) => beta * v);
      parameters += constant.data.length;
    }
    return this.emitLinear(name, x, out, [n], weights, bias, parameters);
  }

  private lowerReshape(
    name: string,
    out: string,
    inputs: (Value | undefined)[],
    attrs: Map<string, AttributeProto>,
  ): Value {
    const x = this.activation(inputs[0], 'data');
    const s = this.constant(inputs[1], 'shape');
    if (intAttr(attrs, 'allowzero', 0) !== 0) problem('allowzero = 1 is not supported');
    const t = this.tensors[x] as IrTensor;
    const full = this.batched ? [1, ...t.shape] : [...t.shape];
    const target = Array.from(s.data, (v, i) => (v === 0 ? (full[i] ?? -2) : v));
    if (target.some((d) => d < -1 || !Number.isInteger(d))) problem(`shape [${Array.from(s.data)}] is not valid here`);
    const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    const free = target.filter((d) => d === -1).length;
    if (free > 1 || known === 0 || (free === 0 && known !== t.size) || t.size % known !== 0) {
      problem(`cannot reshape ${t.size} values to [${Array.from(s.data)}]`);
    }
    const dims = target.map((d) => (d === -1 ? t.size / known : d));
    if (this.batched && dims[0] !== 1) problem('the first dim of the new shape must stay the batch dim (0, 1 or -1)');
    return this.emitReshape(name, x, out, this.batched ? dims.slice(1) : dims);
  }

  private lowerConv(
    name: string,
    out: string,
    inputs: (Value | undefined)[],
    attrs: Map<string, AttributeProto>,
  ): Value {
    const x = this.activation(inputs[0], 'X');
    const w = this.constant(inputs[1], 'W');
    const t = this.tensors[x] as IrTensor;
    if (!this.batched || t.shape.length !== 3) problem('only 2-D convolution of a [batch, C, H, W] input is supported');
    if (w.dims.length !== 4) problem('W must be a constant [M, C, kH, kW]');
    const [c, h, wd] = t.shape as [number, number, number];
    const [m, wc, kh, kw] = w.dims as [number, number, number, number];
    if (intAttr(attrs, 'group', 1) !== 1 || wc !== c) problem('only group = 1 is supported');
    const autoPad = stringAttr(attrs, 'auto_pad', 'NOTSET');
    if (autoPad !== 'NOTSET' && autoPad !== 'VALID') problem(`auto_pad ${autoPad} is not supported`);
    const kernel = intsAttr(attrs, 'kernel_shape', [kh, kw]);
    if (kernel.join() !== [kh, kw].join()) problem('kernel_shape does not match W');
    const [sh, sw] = intsAttr(attrs, 'strides', [1, 1]) as [number, number];
    const [dh, dw] = intsAttr(attrs, 'dilations', [1, 1]) as [number, number];
    const [pt, pl, pb, pr] = intsAttr(attrs, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
    if ([sh, sw, dh, dw].some((v) => !(v >= 1)) || [pt, pl, pb, pr].some((v) => !(v >= 0))) {
      problem('strides and dilations must be ≥ 1, pads ≥ 0 (2-D)');
    }
    const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
    const ow = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
    if (oh <= 0 || ow <= 0) problem('the kernel is larger than the padded input');
    let bias: Float64Array = new Float64Array(m);
    if (inputs[2] !== undefined) {
      const b = this.constant(inputs[2], 'B');
      if (b.data.length !== m) problem(`B must have ${m} values`);
      bias = b.data;
    }
    // The convolution as a (sparse, stored dense) matrix: output (o, y, x) reads input (ci, y·s + ky·d − p, …).
    const inSize = c * h * wd;
    const outSize = m * oh * ow;
    const weights = new Float64Array(outSize * inSize);
    const fullBias = new Float64Array(outSize);
    for (let o = 0; o < m; o++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const row = (o * oh + oy) * ow + ox;
          fullBias[row] = bias[o] as number;
          for (let ci = 0; ci < c; ci++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh + ky * dh - pt;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw + kx * dw - pl;
                if (ix < 0 || ix >= wd) continue;
                weights[row * inSize + (ci * h + iy) * wd + ix] = w.data[((o * c + ci) * kh + ky) * kw + kx] as number;
              }
            }
          }
        }
      }
    }
    return this.emitLinear(
      name,
      x,
      out,
      [m, oh, ow],
      weights,
      fullBias,
      w.data.length + (inputs[2] === undefined ? 0 : m),
    );
  }

  private lowerHead(
    node: NodeProto,
    name: string,
    opType: string,
    inputs: (Value | undefined)[],
    attrs: Map<string, AttributeProto>,
  ): Value {
    const kind = HEAD_OPS[opType];
    if (kind === undefined) problem('operator not supported');
    const source = inputs[0];
    const inputName = (node.input ?? [])[0] as string;
    let root: string;
    if (source?.kind === 'act') {
      if ((this.tensors[source.tensor] as IrTensor).shape.length !== 1)
        problem('the head input must be [batch, classes]');
      root = inputName;
    } else if (source?.kind === 'head') {
      root = source.root;
    } else {
      problem('the head input must be computed by the circuit');
    }
    const rank = this.batched ? 2 : 1;
    const axis = intAttr(attrs, 'axis', kind === 'argmax' ? 0 : -1);
    if (axis !== -1 && axis !== rank - 1) problem(`only axis ${rank - 1} (the last) is supported, got ${axis}`);
    if (kind === 'argmax' && intAttr(attrs, 'select_last_index', 0) !== 0) problem('select_last_index must be 0');
    if (kind === 'argmax' && source.kind === 'head') {
      // argmax(softmax(z)) = argmax(z); argmax of an argmax is not a head.
      const previous = this.head.find((h) => h.output === inputName);
      if (previous?.kind === 'argmax') problem('ArgMax of an ArgMax is not supported');
    } else if (source.kind === 'head') {
      problem(`${opType} of another head output is not supported`);
    }
    const keepdims = kind === 'argmax' && intAttr(attrs, 'keepdims', 1) !== 0;
    this.head.push({ kind, node: name, input: inputName, output: (node.output ?? [])[0] ?? '', keepdims });
    return { kind: 'head', root };
  }

  private importOutputs(): number[] {
    const proved: number[] = [];
    const prove = (tensor: number) => {
      if (!proved.includes(tensor)) proved.push(tensor);
    };
    for (const o of this.graph.output ?? []) {
      const v = o.name ? this.values.get(o.name) : undefined;
      if (v?.kind === 'act') prove(v.tensor);
      else if (v?.kind === 'head') {
        const root = this.values.get(v.root);
        if (root?.kind === 'act') prove(root.tensor);
      } else if (v?.kind !== 'unknown') {
        this.addProblem(-1, o.name ?? '', 'output', 'graph output is not computed from the input');
      }
    }
    if (proved.length === 0 && this.problems.length === 0) {
      this.addProblem(-1, '', 'output', 'the graph has no output computed from the input');
    }
    return proved;
  }

  private activation(v: Value | undefined, role: string): number {
    if (v?.kind !== 'act') problem(`input ${role} must be computed from the model input`);
    return v.tensor;
  }

  private constant(v: Value | undefined, role: string): Constant {
    if (v?.kind !== 'const') problem(`input ${role} must be a constant (initializer)`);
    if (v.value.error !== undefined) problem(`constant ${role}: ${v.value.error}`);
    if (v.value.data.some((x) => !Number.isFinite(x))) problem(`constant ${role} has non-finite values`);
    return v.value;
  }

  private emitLinear(
    node: string,
    input: number,
    out: string,
    shape: number[],
    weights: Float64Array,
    bias: Float64Array,
    parameters: number,
  ): Value {
    const output = this.newTensor(out, shape);
    this.ops.push({ kind: 'linear', node, input, output, weights, bias, parameters });
    return { kind: 'act', tensor: output };
  }

  private emitReshape(node: string, input: number, out: string, shape: readonly number[]): Value {
    const output = this.newTensor(out, shape);
    this.ops.push({ kind: 'reshape', node, input, output });
    return { kind: 'act', tensor: output };
  }
}

/**
 * Folds `addConst` into the `linear` op right before it (MatMul + Add → one dense layer with a
 * bias), when nothing else reads the linear op's output: the bias then gets the finer scale of
 * the accumulator.
 */
function fuseBiases(ops: IrOp[], tensors: IrTensor[], readers: Map<string, number>): IrOp[] {
  const result: IrOp[] = [];
  for (const op of ops) {
    const previous = result[result.length - 1];
    if (
      op.kind === 'addConst' &&
      previous?.kind === 'linear' &&
      previous.output === op.input &&
      readers.get((tensors[op.input] as IrTensor).name) === 1
    ) {
      const bias = previous.bias.map((b, i) => b + (op.values[i] as number));
      result[result.length - 1] = {
        ...previous,
        node: `${previous.node}+${op.node}`,
        output: op.output,
        bias,
        parameters: previous.parameters + op.parameters,
      };
      continue;
    }
    result.push(op);
  }
  return result;
}
