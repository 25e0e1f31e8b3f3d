// Scoring script for the iris example (edgeml runtime contract: init() once, then run(input)).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

let model;

export async function init() {
  const dir = join(process.env.EDGEML_MODEL_DIR ?? './model', 'iris');
  model = JSON.parse(await readFile(join(dir, 'centroids.json'), 'utf8'));
}

export function run(input) {
  const scores = {};
  for (const [label, centroid] of Object.entries(model.classes)) {
    const squared = centroid.reduce((sum, c, i) => sum + ((input.features[i] - c) / model.scale[i]) ** 2, 0);
    scores[label] = Math.sqrt(squared);
  }
  const label = Object.entries(scores).sort((a, b) => a[1] - b[1])[0][0];
  return { label, distances: scores };
}
