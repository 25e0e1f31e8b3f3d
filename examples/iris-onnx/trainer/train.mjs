// The iris trainer: an edgeml trainer (the contract is in images/README.md, "Trainers") that
// retrains the iris-onnx example's softmax regression on labelled rows and writes the new model
// where `edgeml model register iris DIR` would take it. Plain Node 18 (the runtime image's), one
// dependency (onnx-proto, installed when the hub builds the trainer image); no network.
//
//   EDGEML_TRAIN_DATA, EDGEML_EVAL_DATA   JSONL: {"input": {"features": [[sl, sw, pl, pw], …]}, "label": "setosa" | ["setosa", …]}
//   EDGEML_MODEL_DIR                      the current model: iris/labels.json gives the class order
//   EDGEML_OUTPUT_DIR                     gets iris.onnx, labels.json and metrics.json (a directory model)
//   EDGEML_PARAMS                         {"epochs": 3000, "learningRate": 0.1, "l2": 0.001} (each optional)
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');

const DEFAULT_LABELS = ['setosa', 'versicolor', 'virginica'];
const F = 4;
const OPSET = 13;
const IR_VERSION = 7;

function setting(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: this script runs as an edgeml trainer (see images/README.md)`);
    process.exit(2);
  }
  return value;
}

const params = { epochs: 3000, learningRate: 0.1, l2: 1e-3, ...JSON.parse(process.env.EDGEML_PARAMS || '{}') };

/** The class order of the model being replaced, so label indexes keep their meaning. */
async function currentLabels() {
  try {
    return JSON.parse(await readFile(join(setting('EDGEML_MODEL_DIR'), 'iris', 'labels.json'), 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return DEFAULT_LABELS;
    throw err;
  }
}

/** One example per input row; a row whose label is not a class name (or not one per row) is skipped and counted. */
async function examples(path, labels) {
  const rows = [];
  let skipped = 0;
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    const { input, label } = JSON.parse(line);
    const features = input && input.features;
    const names = Array.isArray(label) ? label : [label];
    if (!Array.isArray(features) || features.length !== names.length) {
      skipped += 1;
      continue;
    }
    features.forEach((x, i) => {
      const y = labels.indexOf(names[i]);
      if (y < 0 || !Array.isArray(x) || x.length !== F || x.some((v) => typeof v !== 'number')) skipped += 1;
      else rows.push({ x, y });
    });
  }
  return { rows, skipped };
}

const LABELS = await currentLabels();
const K = LABELS.length;
const train = await examples(setting('EDGEML_TRAIN_DATA'), LABELS);
const held = await examples(setting('EDGEML_EVAL_DATA'), LABELS);
console.log(`rows: ${train.rows.length} to train on (${train.skipped} skipped), ${held.rows.length} held out (${held.skipped} skipped)`);
if (train.rows.length === 0) {
  console.error('no usable training rows: nothing to train on');
  process.exit(1);
}

// Standardization from the training rows, inside the graph (Sub, Div): callers send centimetres.
const f32 = Math.fround;
const mean = Array.from({ length: F }, (_, j) => f32(train.rows.reduce((s, r) => s + r.x[j], 0) / train.rows.length));
const scale = Array.from({ length: F }, (_, j) => f32(Math.sqrt(train.rows.reduce((s, r) => s + (r.x[j] - mean[j]) ** 2, 0) / train.rows.length) || 1));
const standardize = (x) => x.map((v, j) => (v - mean[j]) / scale[j]);

const W = Array.from({ length: F }, () => new Array(K).fill(0));
const b = new Array(K).fill(0);
function predict(z) {
  const logits = Array.from({ length: K }, (_, k) => b[k] + z.reduce((s, v, j) => s + v * W[j][k], 0));
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}
const argmax = (p) => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);
const accuracy = (rows) => (rows.length ? rows.filter((r) => argmax(predict(standardize(r.x))) === r.y).length / rows.length : null);

// Full-batch gradient descent on mean cross-entropy + L2 (bias not regularized), zero init.
const Z = train.rows.map((r) => standardize(r.x));
for (let epoch = 1; epoch <= params.epochs; epoch++) {
  const gW = Array.from({ length: F }, () => new Array(K).fill(0));
  const gb = new Array(K).fill(0);
  train.rows.forEach((r, i) => {
    const p = predict(Z[i]);
    for (let k = 0; k < K; k++) {
      const d = p[k] - (r.y === k ? 1 : 0);
      gb[k] += d;
      for (let j = 0; j < F; j++) gW[j][k] += d * Z[i][j];
    }
  });
  for (let k = 0; k < K; k++) {
    b[k] -= (params.learningRate * gb[k]) / train.rows.length;
    for (let j = 0; j < F; j++) W[j][k] -= params.learningRate * (gW[j][k] / train.rows.length + params.l2 * W[j][k]);
  }
  if (epoch === 1 || epoch % 500 === 0) console.log(`epoch ${epoch}: train accuracy ${accuracy(train.rows)}`);
}
for (const row of W) for (let k = 0; k < K; k++) row[k] = f32(row[k]);
for (let k = 0; k < K; k++) b[k] = f32(b[k]);

// The same graph as examples/iris-onnx/train.mjs, so score.js serves the new model unchanged.
const { TensorProto } = onnx;
function floatTensor(name, dims, values) {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims, dataType: TensorProto.DataType.FLOAT, rawData: bytes };
}
const tensorType = (elemType, dims) => ({ tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } });
const intAttr = (name, i) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const node = (opType, input, output, attribute = []) => ({ opType, input, output, name: output[0], attribute });
const model = onnx.ModelProto.create({
  irVersion: IR_VERSION,
  opsetImport: [{ domain: '', version: OPSET }],
  producerName: 'edgeml examples/iris-onnx/trainer/train.mjs',
  producerVersion: '1',
  domain: 'edgeml.examples',
  modelVersion: 1,
  docString: `Iris classifier retrained on ${train.rows.length} labelled rows`,
  graph: {
    name: 'iris_softmax_regression',
    input: [{ name: 'features', type: tensorType(TensorProto.DataType.FLOAT, ['N', F]) }],
    output: [
      { name: 'probabilities', type: tensorType(TensorProto.DataType.FLOAT, ['N', K]) },
      { name: 'label', type: tensorType(TensorProto.DataType.INT64, ['N']) },
    ],
    initializer: [floatTensor('mean', [F], mean), floatTensor('scale', [F], scale), floatTensor('weights', [F, K], W.flat()), floatTensor('bias', [K], b)],
    node: [
      node('Sub', ['features', 'mean'], ['centered']),
      node('Div', ['centered', 'scale'], ['standardized']),
      node('MatMul', ['standardized', 'weights'], ['scores']),
      node('Add', ['scores', 'bias'], ['logits']),
      node('Softmax', ['logits'], ['probabilities'], [intAttr('axis', 1)]),
      node('ArgMax', ['probabilities'], ['label'], [intAttr('axis', 1), intAttr('keepdims', 0)]),
    ],
  },
  metadataProps: [{ key: 'labels', value: JSON.stringify(LABELS) }],
});
const problem = onnx.ModelProto.verify(model);
if (problem) throw new Error(`invalid ModelProto: ${problem}`);
const bytes = onnx.ModelProto.encode(model).finish();

const out = setting('EDGEML_OUTPUT_DIR');
const metrics = {
  rows: { train: train.rows.length, eval: held.rows.length, skipped: train.skipped + held.skipped },
  params,
  accuracy: { train: accuracy(train.rows), eval: accuracy(held.rows) },
  onnx: { file: 'iris.onnx', bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') },
};
await writeFile(join(out, 'iris.onnx'), bytes);
await writeFile(join(out, 'labels.json'), `${JSON.stringify(LABELS)}\n`);
await writeFile(join(out, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
console.log(`accuracy: train ${metrics.accuracy.train}, eval ${metrics.accuracy.eval}; wrote iris.onnx (${bytes.length} bytes), labels.json, metrics.json`);
