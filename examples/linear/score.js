// Scoring script of the linear example (edgeml runtime contract: init() once, then run(input)).
//
// The model is one file, model.json ({"a": …, "b": …}), registered as `linear`: it lands in
// $EDGEML_MODEL_DIR/linear/model.json. The answer is y = a * x + b. Without EDGEML_MODEL_DIR
// (running locally) model/model.json next to this file is used.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let model;

function modelFile() {
  const root = process.env.EDGEML_MODEL_DIR;
  return root ? join(root, 'linear', 'model.json') : join(dirname(fileURLToPath(import.meta.url)), 'model', 'model.json');
}

export async function init() {
  const file = modelFile();
  const parsed = JSON.parse(await readFile(file, 'utf8'));
  if (!Number.isFinite(parsed.a) || !Number.isFinite(parsed.b)) throw new Error(`${file}: expected {"a": number, "b": number}`);
  model = parsed;
}

/** input: {"x": number} → {"y": a * x + b} */
export async function run(input) {
  if (!model) throw new Error('init() has not run');
  return { y: model.a * input.x + model.b };
}
