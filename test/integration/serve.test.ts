/**
 * `edgeml serve`: local files with the node and python runtimes (scoring, validation, swagger,
 * reload on change, errors, cleanup), and `--manifest` against a real hub, before (files) and
 * after (image, linux/amd64 on the rig) the manifest's image is built.
 */
import { access, cp, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { FINISHED_STATUSES, type Image } from '../../shared/api/images.js';
import { cleanEnv, cliFor, jsonOf, runCli } from '../helpers/cli.js';
import { spawnEdgeml, startHub, tempDir, type EdgemlProcess } from '../helpers/edgeml-process.js';
import { exec } from '../helpers/exec.js';
import { api } from '../helpers/hub-api.js';
import { deleteFromRegistry, rig } from '../helpers/rig.js';
import { call, FIXTURES, MODELS, score } from '../helpers/runtime-contract.js';
import { waitFor } from '../helpers/wait.js';

const WEIGHTS = join(MODELS, 'iris-linear', 'weights.json');
const SETOSA = [5.1, 3.5, 1.4, 0.2];

/** A copy of a fixture app and the shared schema in a temp dir, for the test to edit. */
async function appCopy(t: ExecutionContext, runtime: 'node' | 'python', app: string): Promise<{ dir: string; score: string; schema: string; weights: string }> {
  const dir = await tempDir(t, 'edgeml-serve-test-');
  await cp(join(FIXTURES, runtime, app), dir, { recursive: true });
  const schema = join(dir, 'schema.json');
  if (!(await access(schema).then(() => true, () => false))) await cp(join(FIXTURES, 'schema.json'), schema);
  const weights = join(dir, 'weights.json');
  await cp(WEIGHTS, weights);
  return { dir, score: join(dir, runtime === 'node' ? 'score.js' : 'score.py'), schema, weights };
}

function serveProcess(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = cleanEnv()): EdgemlProcess {
  return spawnEdgeml(t, ['serve', '--port', '0', ...args], env);
}

async function servingUrl(proc: EdgemlProcess, timeoutMs = 60_000): Promise<string> {
  const line = await waitFor('"serving on"', () => {
    if (!proc.running) throw new Error(`edgeml serve exited: ${proc.tail(20)}`);
    return proc.rawOutput.find((l) => l.startsWith('serving on '));
  }, timeoutMs);
  return line.slice('serving on '.length);
}

/** The first JSON line saying where it serves (`--json`); fails at once if serve exits instead. */
function readyLine(proc: EdgemlProcess, timeoutMs: number) {
  return waitFor('the ready line', () => {
    const line = proc.logs.find((l) => typeof l.url === 'string' && l.mode !== undefined);
    if (!line && !proc.running) throw new Error(`edgeml serve exited: ${proc.tail(20)}`);
    return line;
  }, timeoutMs);
}

const count = (proc: EdgemlProcess, text: string) => proc.rawOutput.filter((l) => l === text).length;

/** After serve has exited, nothing answers where it served: the runtime was stopped too. */
async function assertRefused(t: ExecutionContext, url: string): Promise<void> {
  const failure = await fetch(`${url}/health`).then(() => undefined, (err: Error & { cause?: { code?: string } }) => err);
  t.is(failure?.cause?.code, 'ECONNREFUSED', `${url}/health still answers after serve exited`);
}

/** The runtime's port from its `listening` line (echoed by serve before it is ready). */
async function runtimeUrl(proc: EdgemlProcess): Promise<string> {
  const line = await proc.waitForLog('the runtime listening', (l) => l.msg === 'listening', 30_000);
  return `http://127.0.0.1:${String(line.port)}`;
}

/**
 * A CommonJS scoring app whose init() does what SERVE_TEST_INIT says (exit, hang, or nothing) and
 * whose run() answers the EDGEML_* names it sees.
 */
async function probeApp(t: ExecutionContext): Promise<{ score: string; schema: string }> {
  const dir = await tempDir(t, 'edgeml-serve-probe-');
  const score = join(dir, 'score.js');
  await writeFile(score, [
    'exports.init = async () => {',
    "  if (process.env.SERVE_TEST_INIT === 'exit') { console.log('init: giving up'); process.exit(3); }",
    "  if (process.env.SERVE_TEST_INIT === 'hang') { console.log('init: hanging'); await new Promise(() => undefined); }",
    '};',
    "exports.run = () => ({ edgeml: Object.keys(process.env).filter((k) => k.startsWith('EDGEML_')).sort(), probe: process.env.SERVE_TEST_PROBE });",
    '',
  ].join('\n'));
  const schema = join(dir, 'schema.json');
  await writeFile(schema, JSON.stringify({ input: { type: 'object' }, output: {}, sample: {} }));
  return { score, schema };
}

/** The app directory the runtime loaded from (its "scoring module loaded" line). */
const loadedFrom = (proc: EdgemlProcess) => String(proc.logs.find((l) => l.msg === 'scoring module loaded')?.file ?? '');

test('files, node: scores with the runtime contract (validation, swagger, metrics), reloads on a change to score.js and to the model, keeps serving when a change is bad, Ctrl-C cleans up', async (t) => {
  const app = await appCopy(t, 'node', 'linear');
  const proc = serveProcess(t, ['--runtime', 'node', '--score', app.score, '--schema', app.schema, '--model', `iris-linear=${app.weights}`]);
  const url = await servingUrl(proc);
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.is((await score(url, { features: SETOSA })).body.class, 'setosa');
  const invalid = await score(url, { features: [1, 2] });
  t.is(invalid.status, 400);
  t.is(invalid.body.error.message, 'features: must NOT have fewer than 4 items');
  const swagger = await call(url, 'GET', '/swagger.json');
  t.deepEqual(swagger.body.paths['/score'].post.requestBody.content['application/json'].example, { features: SETOSA });
  t.is((await call(url, 'GET', '/metrics')).status, 200);
  const modelFile = join(String(proc.logs.find((l) => l.msg === 'starting')?.modelDir), 'iris-linear', 'weights.json');
  t.deepEqual(JSON.parse(await readFile(modelFile, 'utf8')), JSON.parse(await readFile(WEIGHTS, 'utf8')), 'a single-file model keeps its base name under NAME/');
  t.is(await readlink(modelFile), app.weights, 'the model is linked, not copied');

  // The scoring file changes: the runtime restarts on the same port with it.
  const source = await readFile(app.score, 'utf8');
  await writeFile(app.score, source.replace("return { class: model.classes[best],", "return { class: 'virginica',"));
  await waitFor('reloaded', () => count(proc, 'reloaded') === 1, 30_000);
  t.is((await score(url, { features: SETOSA })).body.class, 'virginica');

  // The model changes (setosa's bias way down): reloaded again.
  await writeFile(app.score, source);
  await waitFor('reloaded twice', () => count(proc, 'reloaded') === 2, 30_000);
  const weights = JSON.parse(await readFile(app.weights, 'utf8')) as { bias: number[] };
  weights.bias[0] = -1000;
  await writeFile(app.weights, JSON.stringify(weights));
  await waitFor('reloaded three times', () => count(proc, 'reloaded') === 3, 30_000);
  t.not((await score(url, { features: SETOSA })).body.class, 'setosa');

  // A schema the hub would refuse: the previous version keeps serving.
  await writeFile(app.schema, JSON.stringify({ input: { type: 'object' }, output: {}, sample: 3 }));
  const failed = await waitFor('reload failed', () => proc.rawOutput.find((l) => l.startsWith('reload failed')), 30_000);
  t.regex(failed, /schema\.sample does not match schema\.input: sample: must be object/);
  t.is((await score(url, { features: SETOSA })).status, 200);

  const appDir = loadedFrom(proc);
  t.is(await proc.kill('SIGINT'), 0);
  await assertRefused(t, url);
  t.false(await access(appDir).then(() => true, () => false), `${appDir} is removed`);
});

test('files, python: scores, reloads when score.py changes, --json says where and what reloaded', async (t) => {
  const app = await appCopy(t, 'python', 'linear');
  const proc = serveProcess(t, ['--runtime', 'python', '--score', app.score, '--schema', app.schema, '--model', `iris-linear=${app.weights}`, '--json']);
  const ready = await readyLine(proc, 60_000);
  const url = String(ready.url);
  t.deepEqual(ready, { url, swagger: `${url}/swagger.json`, mode: 'files' });
  t.is((await score(url, { features: SETOSA })).body.class, 'setosa');
  t.is((await score(url, { features: SETOSA, extra: 1 })).body.error.message, 'extra: is not a known field');
  await writeFile(app.score, `${await readFile(app.score, 'utf8')}\n_run = run\n\ndef run(input):\n    return {**_run(input), "class": "versicolor"}\n`);
  await waitFor('{"reloaded": true}', () => proc.logs.some((l) => l.reloaded === true), 30_000);
  t.is((await score(url, { features: SETOSA })).body.class, 'versicolor');
  t.is(await proc.kill('SIGINT'), 0);
  await assertRefused(t, url);
});

test("files, python: x-edgeml-decode dataframe gives score.py a pandas DataFrame (Debian's python3 with python3-pandas)", async (t) => {
  const app = await appCopy(t, 'python', 'dataframe');
  const proc = serveProcess(t, ['--runtime', 'python', '--python', '/usr/bin/python3', '--score', app.score, '--schema', app.schema]);
  const url = await servingUrl(proc);
  const reply = await score(url, { rows: [{ a: 1, b: 2 }, { a: 3, b: 4.5 }] });
  t.deepEqual(reply.body, { type: 'DataFrame', columns: ['a', 'b'], dtypes: ['float64'], sum: 10.5 });
  t.is(await proc.kill('SIGINT'), 0);
  await assertRefused(t, url);
});

test('files: clear errors for a missing file, a bad schema, a runtime that does not start and a scoring file that does not load', async (t) => {
  const app = await appCopy(t, 'node', 'linear');
  const env = cleanEnv();
  const missing = await runCli(['serve', '--runtime', 'node', '--score', join(app.dir, 'nope.js'), '--schema', app.schema, '--port', '0'], env);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--score \S*nope\.js: no such file/);
  const wrongKind = await runCli(['serve', '--runtime', 'python', '--score', app.score, '--schema', app.schema, '--port', '0'], env);
  t.is(wrongKind.code, 2);
  t.regex(wrongKind.stderr, /the python runtime loads score\.py/);
  await writeFile(join(app.dir, 'bad.json'), JSON.stringify({ input: { type: 'object', required: ['x'] }, output: {}, sample: {} }));
  const badSchema = await runCli(['serve', '--runtime', 'node', '--score', app.score, '--schema', join(app.dir, 'bad.json'), '--port', '0'], env);
  t.is(badSchema.code, 2);
  t.regex(badSchema.stderr, /--schema \S*bad\.json: schema\.sample does not match schema\.input: sample\.x: is required/);
  const noPython = await runCli(['serve', '--runtime', 'python', '--python', '/nonexistent/python3', '--score', join(FIXTURES, 'python/linear/score.py'), '--schema', app.schema, '--port', '0'], env);
  t.is(noPython.code, 1);
  t.regex(noPython.stderr, /the python runtime \(\/nonexistent\/python3\) exited before it was ready; its last output:\n.*ENOENT/);
  const broken = await runCli(['serve', '--runtime', 'node', '--score', join(FIXTURES, 'node/syntax-error/score.js'), '--schema', app.schema, '--port', '0'], env);
  t.is(broken.code, 1);
  t.regex(broken.stderr, /is not serving: cannot load \S+score\.js: SyntaxError: .*its last output:/s);
  const twice = await runCli(['serve', '--runtime', 'node', '--score', app.score, '--schema', app.schema, '--model', `iris-linear=${app.weights}`, '--model', 'iris-linear=other.json', '--port', '0'], env);
  t.is(twice.code, 2);
  t.regex(twice.stderr, /--model iris-linear= is given twice \(\S*weights\.json and other\.json\)/);
  const neither = await runCli(['serve', '--port', '0'], env);
  t.is(neither.code, 2);
  t.regex(neither.stderr, /needs --manifest NAME\[:VERSION\], or --runtime node\|python/);
});

test('files: a runtime that exits in init() after listening fails serve (exit 1, CLI_E_SERVE_FAILED, its last output); Ctrl-C during a slow init() exits at once and stops the runtime', async (t) => {
  const app = await probeApp(t);
  const args = ['serve', '--runtime', 'node', '--score', app.score, '--schema', app.schema, '--port', '0'];
  const died = await runCli([...args, '--json'], { ...cleanEnv(), SERVE_TEST_INIT: 'exit' });
  t.is(died.code, 1, died.stderr);
  const error = JSON.parse(died.stderr.trim().split('\n').at(-1)!) as { error: { code: string; message: string } };
  t.is(error.error.code, 'CLI_E_SERVE_FAILED');
  t.regex(error.error.message, /^the node runtime \(node\) exited with code 3 before it was ready; its last output:\n.*init: giving up/s);

  const proc = serveProcess(t, ['--runtime', 'node', '--score', app.score, '--schema', app.schema], { ...cleanEnv(), SERVE_TEST_INIT: 'hang' });
  const url = await runtimeUrl(proc);
  await waitFor('init() hanging', () => proc.rawOutput.includes('init: hanging'), 30_000);
  const started = Date.now();
  proc.child.kill('SIGINT');
  await waitFor('serve exits after one Ctrl-C', () => !proc.running, 10_000);
  t.is(await proc.exited(), 0);
  t.true(Date.now() - started < 10_000);
  await assertRefused(t, url);
});

test('files: the scoring code gets the runtime\'s EDGEML_* variables and the shell\'s others, not edgeml\'s own (EDGEML_API_KEY, EDGEML_HUB)', async (t) => {
  const app = await probeApp(t);
  const env = { ...cleanEnv(), EDGEML_API_KEY: 'not-for-scoring-code', EDGEML_HUB: 'http://127.0.0.1:1', SERVE_TEST_PROBE: 'passed' };
  const proc = serveProcess(t, ['--runtime', 'node', '--score', app.score, '--schema', app.schema], env);
  const url = await servingUrl(proc);
  const reply = await score(url, {});
  t.is(reply.status, 200, JSON.stringify(reply.body));
  t.is(reply.body.probe, 'passed');
  t.deepEqual(reply.body.edgeml, ['EDGEML_APP_DIR', 'EDGEML_DRAIN_SECONDS', 'EDGEML_MODEL_DIR']);
  t.is(await proc.kill('SIGINT'), 0);
  await assertRefused(t, url);
});

test('--manifest: the files from the hub while no image is built, then the image (docker, host network) once it is; the container goes on Ctrl-C', async (t) => {
  t.timeout(15 * 60_000);
  const { registry } = rig();
  const prefix = `edgeml-test-${Math.random().toString(36).slice(2, 10)}`;
  const hub = await startHub(t, ['--registry', registry], { env: { EDGEML_HUB_IMAGE_PREFIX: prefix } });
  const cli = cliFor(hub, hub.adminKey, 15 * 60_000);
  const env = { ...cleanEnv(), EDGEML_HUB: hub.url, EDGEML_API_KEY: hub.adminKey };
  jsonOf(t, await cli('model', 'register', 'iris-linear', join(MODELS, 'iris-linear'), '--json'));
  // The same files as runtime-contract-images.test.ts's node/linear: the build cache is shared.
  const dir = join(FIXTURES, 'node', 'linear');
  jsonOf(t, await cli('manifest', 'create', 'serve-me', '--model', 'iris-linear:1', '--runtime', 'node', '--score', join(dir, 'score.js'), '--schema', join(FIXTURES, 'schema.json'), '--deps', join(dir, 'package.json'), '--json'));

  const fromFiles = serveProcess(t, ['--manifest', 'serve-me:1', '--json'], env);
  const filesReady = await readyLine(fromFiles, 120_000);
  t.is(filesReady.mode, 'files');
  t.is((await score(String(filesReady.url), { features: SETOSA })).body.class, 'setosa');
  t.is(await fromFiles.kill('SIGINT'), 0);
  await assertRefused(t, String(filesReady.url));

  const queued = jsonOf<Image>(t, await cli('image', 'build', 'serve-me:1', '--platform', 'linux/amd64', '--no-wait', '--json'));
  const image = await waitFor('the image', async () => {
    const { body } = await api<Image>(hub, 'GET', `/api/v1/images/${queued.id}`, { key: hub.adminKey });
    return FINISHED_STATUSES.includes(body.status) ? body : undefined;
  }, 15 * 60_000, 1000);
  t.teardown(async () => {
    for (const tag of image.tags) await deleteFromRegistry(registry, image.repository.slice(registry.length + 1), tag).catch(() => undefined);
  });
  t.is(image.status, 'succeeded', JSON.stringify(image.error));

  const fromImage = serveProcess(t, ['--manifest', 'serve-me', '--json'], env);
  const imageReady = await readyLine(fromImage, 180_000);
  t.is(imageReady.mode, 'image');
  const url = String(imageReady.url);
  t.is((await score(url, { features: SETOSA })).body.class, 'setosa');
  t.is((await score(url, { features: [1] })).status, 400);
  const containers = async () => (await exec('docker', ['ps', '-aq', '--filter', 'name=edgeml-serve-', '--filter', `ancestor=${image.ref!}`])).stdout.trim();
  t.not(await containers(), '');
  t.is(await fromImage.kill('SIGINT'), 0);
  await assertRefused(t, url);
  t.is(await containers(), '');
});
