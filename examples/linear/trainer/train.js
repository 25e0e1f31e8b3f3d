// Trainer of the linear example (edgeml trainer contract): fits y = a * x + b by least squares on
// EDGEML_TRAIN_DATA (JSONL rows {"input": {"x": …}, "label": y, …}) and writes the model, one
// file model.json, to EDGEML_OUTPUT_DIR. The current model ($EDGEML_MODEL_DIR/linear/model.json)
// is read only to say what it replaces.
//
// EDGEML_PARAMS (a JSON object) may set "mode" to exercise a retraining job's other outcomes:
// "worse" writes a model worse than the fit, "crash" exits 3, "sleep" never ends (a timeout).
// CommonJS and Node 18 APIs: it runs as `node train.js` in the trainer image.
'use strict';
const { readFileSync, writeFileSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const params = JSON.parse(process.env.EDGEML_PARAMS || '{}');
const mode = params.mode || 'fit';

function rows(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
    .filter((row) => row.input && Number.isFinite(row.input.x) && Number.isFinite(row.label));
}

function fit(data) {
  const n = data.length;
  const mx = data.reduce((s, r) => s + r.input.x, 0) / n;
  const my = data.reduce((s, r) => s + r.label, 0) / n;
  const sxx = data.reduce((s, r) => s + (r.input.x - mx) ** 2, 0);
  const sxy = data.reduce((s, r) => s + (r.input.x - mx) * (r.label - my), 0);
  const a = sxx === 0 ? 0 : sxy / sxx;
  return { a, b: my - a * mx };
}

if (mode === 'crash') {
  console.error('linear trainer: crashing as asked (params.mode = "crash")');
  process.exit(3);
}
if (mode === 'sleep') {
  console.log('linear trainer: sleeping as asked (params.mode = "sleep")');
  setInterval(() => undefined, 60_000);
} else {
  const current = join(process.env.EDGEML_MODEL_DIR, 'linear', 'model.json');
  if (existsSync(current)) console.log(`current model: ${readFileSync(current, 'utf8').trim()}`);
  const data = rows(process.env.EDGEML_TRAIN_DATA);
  if (data.length < 2) {
    console.error(`linear trainer: ${data.length} usable rows; at least 2 are needed`);
    process.exit(1);
  }
  const fitted = fit(data);
  const model = mode === 'worse' ? { a: -fitted.a, b: fitted.b + 100 } : fitted;
  console.log(`fitted on ${data.length} rows: a = ${fitted.a}, b = ${fitted.b}${mode === 'worse' ? ' (writing a worse model, as asked)' : ''}`);
  writeFileSync(join(process.env.EDGEML_OUTPUT_DIR, 'model.json'), `${JSON.stringify(model)}\n`);
}
