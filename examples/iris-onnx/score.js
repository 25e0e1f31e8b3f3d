// Scoring script for the iris-onnx example (edgeml runtime contract: init() once, then run(input)).
//
// The model is registered as `iris` from the directory examples/iris-onnx/model, whose contents
// (not the directory itself) land in $EDGEML_MODEL_DIR/iris/: so the graph is
// $EDGEML_MODEL_DIR/iris/iris.onnx and the class names $EDGEML_MODEL_DIR/iris/labels.json.
// Registering the single file model/iris.onnx works too (a single-file model keeps its base name);
// labels.json is then missing and the built-in class names are used.
// Without EDGEML_MODEL_DIR (running locally) the model/ directory next to this file is used.
//
// Plain ES2020 and Node APIs available since Node 16: it runs on Debian's Node 18 in the image.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

const DEFAULT_LABELS = ['setosa', 'versicolor', 'virginica'];
const MAX_ROWS = 64;

let session;
let labels;

function modelDir() {
  const root = process.env.EDGEML_MODEL_DIR;
  return root ? join(root, 'iris') : join(dirname(fileURLToPath(import.meta.url)), 'model');
}

export async function init() {
  const dir = modelDir();
  const path = join(dir, 'iris.onnx');
  let bytes;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new Error(`iris model not found at ${path} (register examples/iris-onnx/model as "iris"): ${err.message}`);
  }
  try {
    labels = JSON.parse(await readFile(join(dir, 'labels.json'), 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') throw new Error(`${join(dir, 'labels.json')}: ${err.message}`);
    labels = DEFAULT_LABELS;
  }
  // One thread each: edge boards are small, and the gateway already bounds concurrency.
  session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

/** input: {"features": [[sepal length, sepal width, petal length, petal width], …]} in cm, 1..64 rows. */
export async function run(input) {
  if (!session) throw new Error('init() has not run');
  const rows = input && input.features;
  // The runtime validates against schema.json first; this keeps direct callers honest too.
  if (!Array.isArray(rows) || rows.length < 1 || rows.length > MAX_ROWS) throw new Error(`features: must be an array of 1..${MAX_ROWS} rows`);
  const data = new Float32Array(rows.length * 4);
  rows.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== 4 || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new Error(`features.${i}: must be 4 finite numbers`);
    }
    data.set(row, i * 4);
  });
  const out = await session.run({ features: new ort.Tensor('float32', data, [rows.length, 4]) });
  const probs = out.probabilities.data;
  const index = out.label.data; // BigInt64Array
  if (probs.length !== rows.length * labels.length) throw new Error(`model gives ${probs.length / rows.length} classes, labels.json names ${labels.length}`);
  const predictions = rows.map((_, i) => {
    const probabilities = {};
    labels.forEach((name, k) => {
      probabilities[name] = Math.round(probs[i * labels.length + k] * 1e6) / 1e6; // float32: 6 digits are all it has
    });
    return { label: labels[Number(index[i])], probabilities };
  });
  return { predictions };
}
