/**
 * evaluateImage against a real scoring image the hub built and pushed: it runs on the local Docker,
 * scores every eval input and compares the answer at the pointer with the label; an input the image
 * refuses counts as failed. An image that cannot start is an evaluation error. No container is left.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { Image } from '../../shared/api/images.js';
import { ErrorCodes } from '../../shared/errors.js';
import { evaluateImage } from '../../hub/evaluation/evaluate.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/runtimes/', import.meta.url));
const LONG = 10 * 60_000;

const leftovers = async (instance: string) => (await exec('docker', ['ps', '-aq', '--filter', `label=io.edgeml.smoke-test.hub=${instance}`])).stdout.trim();

test('evaluateImage scores eval rows with the real image: accuracy at /class, refused inputs counted as failed', async (t) => {
  t.timeout(LONG);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/js`, 'v1').catch(() => undefined));
  const cli = cliFor(hub, hub.adminKey, LONG);
  jsonOf(t, await cli('model', 'register', 'iris-linear', join(FIXTURES, 'models', 'iris-linear'), '--json'));
  jsonOf(t, await cli('manifest', 'create', 'js', '--runtime', 'node', '--score', join(FIXTURES, 'node', 'linear', 'score.js'), '--deps', join(FIXTURES, 'node', 'linear', 'package.json'), '--model', 'iris-linear:1', '--schema', join(FIXTURES, 'schema.json'), '--json'));
  const image = jsonOf<Image>(t, await cli('image', 'build', 'js', '--platform', 'linux/amd64', '--json'));
  const instance = `eval-${randomBytes(3).toString('hex')}`;
  const lines: string[] = [];
  const base = { platform: 'linux/amd64', containerName: `edgeml-eval-${instance}`, hubInstance: instance, timeoutMs: 120_000, log: (l: string) => lines.push(l) };

  const result = await evaluateImage({
    ...base,
    ref: image.ref!,
    pointer: '/class',
    metric: 'accuracy',
    rows: [
      // The class means answer their class; the fourth label is wrong on purpose; the last input is refused (400).
      { input: { features: [5.006, 3.428, 1.462, 0.246] }, label: 'setosa' },
      { input: { features: [5.936, 2.77, 4.26, 1.326] }, label: 'versicolor' },
      { input: { features: [6.588, 2.974, 5.552, 2.026] }, label: 'virginica' },
      { input: { features: [5.1, 3.5, 1.4, 0.2] }, label: 'virginica' },
      { input: { features: [1] }, label: 'setosa' },
    ],
  });
  t.deepEqual({ ...result, predictions: undefined }, { metric: 'accuracy', value: 0.75, rows: 4, failed: 1, predictions: undefined });
  t.deepEqual(
    result.predictions,
    ['setosa', 'versicolor', 'virginica', 'setosa', null].map((predicted, index) => ({ index, predicted })),
  );
  t.true(lines.some((l) => /^row failed: HTTP 400/.test(l)), lines.join('\n'));
  t.is(await leftovers(instance), '', 'the container is removed');

  // A pointer into the scores: the error of one score against a number, here exactly 0.
  const setosa = 5.006 * 5.006 + 3.428 * 3.428 + 1.462 * 1.462 + 0.246 * 0.246 - 19.50459;
  // A label that is not a number fails its row, not the run; the container runs with memory and CPU limits.
  const features = [5.006, 3.428, 1.462, 0.246];
  const mae = await evaluateImage({
    ...base,
    ref: image.ref!,
    pointer: '/scores/setosa',
    metric: 'mae',
    memory: '256m',
    cpus: 1,
    rows: [
      { input: { features }, label: setosa },
      { input: { features }, label: 'n/a' },
    ],
  });
  t.true(mae.value < 1e-9, `mae ${mae.value}`);
  t.like(mae, { rows: 1, failed: 1 });
  t.is(mae.predictions[1]!.predicted, null);
  t.true(lines.some((l) => /^row failed: the label "n\/a" is not a number: mae/.test(l)), lines.join('\n'));
  // An answer that is not a number (the class) under mae: every row fails, and that is an evaluation error.
  const strings = await t.throwsAsync(evaluateImage({ ...base, ref: image.ref!, pointer: '/class', metric: 'mae', rows: [{ input: { features }, label: 1 }] }));
  t.is((strings as { code?: string }).code, ErrorCodes.HUB_EVALUATION_FAILED);

  const missing = `${registry}/${prefix}/nope@sha256:${'0'.repeat(64)}`;
  const err = await t.throwsAsync(evaluateImage({ ...base, ref: missing, pointer: '/class', metric: 'accuracy', rows: [{ input: {}, label: 'x' }] }));
  t.is((err as { code?: string }).code, ErrorCodes.HUB_EVALUATION_FAILED);
  t.regex(err!.message, /did not start: docker run failed/);
  t.is(await leftovers(instance), '');
});
