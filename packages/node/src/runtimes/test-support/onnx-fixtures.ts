/**
 * ONNX models for the runtime compliance suite: small graphs written here with `onnx-proto`
 * (Identity over every dtype, shapes with named, unnamed and fixed dims, scalars, failure cases),
 * and the committed example models of `examples/models/` (trained by `examples/`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DTYPE_CODES, DTYPES, type DType, type TensorSignature } from '@verity/protocol';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** A graph input or output: number = fixed dim, string = `dim_param`, null = unnamed dynamic dim. */
export interface FixtureValue {
  name: string;
  /** A Verity dtype, or an ONNX type number for types Verity lacks (10 = float16). */
  dtype: DType | number;
  shape: (number | string | null)[] | undefined;
}

/** One node: op type, inputs, outputs, int attributes. */
export interface FixtureNode {
  op: string;
  inputs: string[];
  outputs: string[];
  ints?: Record<string, number>;
}

/**
 * Encodes a model (IR version 8, opset 17, no initializers).
 *
 * @example
 * ```ts
 * const bytes = fixtureModel([{ name: 'x', dtype: 'int8', shape: [2] }], [{ name: 'y', dtype: 'int8', shape: [2] }], [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }]);
 * ```
 */
export function fixtureModel(inputs: FixtureValue[], outputs: FixtureValue[], nodes: FixtureNode[]): Uint8Array {
  const value = (v: FixtureValue): onnxProto.onnx.IValueInfoProto => ({
    name: v.name,
    type: {
      tensorType: {
        elemType: typeof v.dtype === 'number' ? v.dtype : DTYPE_CODES[v.dtype],
        ...(v.shape === undefined
          ? {}
          : {
              shape: {
                dim: v.shape.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
              },
            }),
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'verity-runtime-compliance',
    graph: {
      name: 'fixture',
      node: nodes.map((n, i) => ({
        name: `n${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.ints ?? {}).map(([name, i]) => ({
          name,
          type: onnx.AttributeProto.AttributeType.INT,
          i,
        })),
      })),
      input: inputs.map(value),
      output: outputs.map(value),
    },
  });
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}

/** Every dtype of docs/design.md §2.2. */
export const ALL_DTYPES: readonly DType[] = DTYPES;

/**
 * Identity over one input per dtype, `in_<dtype>` → `out_<dtype>`, shaped [batch, unnamed, 3].
 * Its signatures read back as [batch, dim1, 3].
 */
export function identityAllDtypesModel(): { bytes: Uint8Array; inputs: TensorSignature[]; outputs: TensorSignature[] } {
  const shape = ['batch', null, 3];
  const bytes = fixtureModel(
    ALL_DTYPES.map((d) => ({ name: `in_${d}`, dtype: d, shape })),
    ALL_DTYPES.map((d) => ({ name: `out_${d}`, dtype: d, shape })),
    ALL_DTYPES.map((d) => ({ op: 'Identity', inputs: [`in_${d}`], outputs: [`out_${d}`] })),
  );
  const sig = (prefix: string) =>
    ALL_DTYPES.map((d) => ({ name: `${prefix}_${d}`, dtype: d, shape: ['batch', 'dim1', 3] }));
  return { bytes, inputs: sig('in'), outputs: sig('out') };
}

/** `y = x + x` on a fixed [2, 3] float32 shape: loads, runs, is not batchable. */
export function fixedShapeModel(): Uint8Array {
  return fixtureModel(
    [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
    [{ name: 'y', dtype: 'float32', shape: [2, 3] }],
    [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
  );
}

/** Identity on a float64 scalar (rank 0). */
export function scalarModel(): Uint8Array {
  return fixtureModel(
    [{ name: 's', dtype: 'float64', shape: [] }],
    [{ name: 't', dtype: 'float64', shape: [] }],
    [{ op: 'Identity', inputs: ['s'], outputs: ['t'] }],
  );
}

/**
 * Identity on [unnamed, "dim0"]: the unnamed dim cannot take the name `dim0` (the model uses it),
 * so it reads back as `dim0_`.
 */
export function dimNameClashModel(): Uint8Array {
  return fixtureModel(
    [{ name: 'x', dtype: 'int32', shape: [null, 'dim0'] }],
    [{ name: 'y', dtype: 'int32', shape: [null, 'dim0'] }],
    [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  );
}

/** Two inputs with different symbolic first dims (`n`, `m`): loads, but is not batchable. */
export function twoBatchDimsModel(): Uint8Array {
  return fixtureModel(
    [
      { name: 'a', dtype: 'float32', shape: ['n', 2] },
      { name: 'b', dtype: 'float32', shape: ['m', 2] },
    ],
    [
      { name: 'a2', dtype: 'float32', shape: ['n', 2] },
      { name: 'b2', dtype: 'float32', shape: ['m', 2] },
    ],
    [
      { op: 'Identity', inputs: ['a'], outputs: ['a2'] },
      { op: 'Identity', inputs: ['b'], outputs: ['b2'] },
    ],
  );
}

/** `c = a + b` with a: [n], b: [m]: loads, but fails at run time when n ≠ m (and neither is 1). */
export function broadcastFailureModel(): Uint8Array {
  return fixtureModel(
    [
      { name: 'a', dtype: 'float32', shape: ['n'] },
      { name: 'b', dtype: 'float32', shape: ['m'] },
    ],
    [{ name: 'c', dtype: 'float32', shape: [null] }],
    [{ op: 'Add', inputs: ['a', 'b'], outputs: ['c'] }],
  );
}

/** Named fixtures that a runtime must refuse with `MODEL_INVALID`, each with what is wrong. */
export function invalidModels(valid: Uint8Array): { name: string; bytes: Uint8Array }[] {
  const text = new TextEncoder();
  return [
    { name: 'empty: zero bytes', bytes: new Uint8Array(0) },
    { name: 'garbage: three random bytes', bytes: new Uint8Array([0xff, 0x13, 0x37]) },
    { name: 'truncated: a valid model cut in half', bytes: valid.slice(0, valid.length >> 1) },
    { name: 'truncated: a valid model without its last byte', bytes: valid.slice(0, valid.length - 1) },
    { name: 'not ONNX: a JSON document', bytes: text.encode('{"model": "iris", "format": "onnx"}') },
    { name: 'not ONNX: a GGUF header', bytes: text.encode('GGUF\u0003\u0000\u0000\u0000') },
    {
      name: 'ONNX without a graph',
      bytes: new Uint8Array(onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8 })).finish()),
    },
    {
      name: 'unknown operator',
      bytes: fixtureModel(
        [{ name: 'x', dtype: 'float32', shape: [1] }],
        [{ name: 'y', dtype: 'float32', shape: [1] }],
        [{ op: 'NoSuchOperator', inputs: ['x'], outputs: ['y'] }],
      ),
    },
    {
      name: 'output never computed',
      bytes: fixtureModel(
        [{ name: 'x', dtype: 'float32', shape: [1] }],
        [{ name: 'y', dtype: 'float32', shape: [1] }],
        [],
      ),
    },
    {
      name: 'float16 input (a dtype Verity has no name for)',
      bytes: fixtureModel(
        [{ name: 'x', dtype: 10, shape: [1] }],
        [{ name: 'y', dtype: 10, shape: [1] }],
        [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
      ),
    },
  ];
}

/** A committed example model and its samples (short tensor JSON form). */
export interface ExampleModel {
  name: string;
  path: string;
  bytes: Uint8Array;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  samples: { inputs: Record<string, unknown> }[];
}

/** `examples/models/`, found by walking up from this file. */
export function exampleModelsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'examples', 'models');
    if (existsSync(join(candidate, 'iris.onnx'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('examples/models/iris.onnx not found (run `npm run examples -w @verity/examples`)');
    dir = parent;
  }
}

/** The example models with the signatures they must read back as (see examples/README.md). */
export function exampleModels(): ExampleModel[] {
  const dir = exampleModelsDir();
  const load = (file: string, inputs: TensorSignature[], outputs: TensorSignature[]): ExampleModel => {
    const path = join(dir, `${file}.onnx`);
    const { samples } = JSON.parse(readFileSync(join(dir, `${file}.samples.json`), 'utf8')) as {
      samples: ExampleModel['samples'];
    };
    return { name: file, path, bytes: new Uint8Array(readFileSync(path)), inputs, outputs, samples };
  };
  return [
    load(
      'iris',
      [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
      [
        { name: 'probabilities', dtype: 'float32', shape: ['batch', 3] },
        { name: 'label', dtype: 'int64', shape: ['batch'] },
      ],
    ),
    load(
      'forecast',
      [{ name: 'history', dtype: 'float32', shape: ['batch', 24] }],
      [{ name: 'forecast', dtype: 'float32', shape: ['batch', 1] }],
    ),
  ];
}
