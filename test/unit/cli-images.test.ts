/**
 * `edgeml image …` (cli/commands/images.ts, image-views.ts): what the arguments accept and how a refusal reads, the
 * build request they make, and the human views of a succeeded and a failed image.
 */
import test, { type ExecutionContext } from 'ava';
import { describeActivity, formatDuration, outcomeError, renderFailedChecks, renderImage, renderImageList } from '../../cli/commands/image-views.js';
import { buildRequest, parseImageId, parseImageTag, parseManifestSelector, parsePlatforms, pollInterval } from '../../cli/commands/images.js';
import type { Image } from '../../shared/api/images.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

function inputErrorMessage(t: ExecutionContext, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.CLI_INPUT_INVALID);
  return err?.message ?? '';
}

const digest = (c: string) => `sha256:${c.repeat(64)}`;

function image(overrides: Partial<Image> = {}): Image {
  return {
    id: 3,
    status: 'succeeded',
    manifest: { name: 'iris-scorer', version: 2, digest: digest('m') },
    runtime: 'node',
    models: [{ name: 'iris', version: 1, digest: digest('1') }],
    repository: '127.0.0.1:5000/edgeml/iris-scorer',
    tags: ['v2', 'stable'],
    ref: `127.0.0.1:5000/edgeml/iris-scorer@${digest('a')}`,
    digest: digest('a'),
    platforms: { 'linux/amd64': digest('b'), 'linux/arm64': digest('c') },
    sizes: { 'linux/amd64': 52_000_000, 'linux/arm64': 50_100_000 },
    checks: {
      'linux/amd64': { status: 'passed', message: 'sample scored: HTTP 200', output: '{"label":"setosa"}' },
      'linux/arm64': { status: 'passed', message: 'sample scored: HTTP 200', output: '{"label":"setosa"}' },
    },
    baseImage: 'edgeml/runtime-node:20',
    error: null,
    progress: null,
    createdAt: '2024-05-01T12:34:56.789Z',
    createdBy: { keyId: 'k1', keyName: 'ci' },
    startedAt: '2024-05-01T12:34:57.000Z',
    finishedAt: '2024-05-01T12:37:02.000Z',
    durationMs: 125_000,
    attempts: 1,
    ...overrides,
  };
}

function failed(): Image {
  return image({
    status: 'failed',
    ref: null,
    digest: digest('a'),
    checks: {
      'linux/amd64': { status: 'passed', message: 'sample scored: HTTP 200', output: '{"label":"setosa"}' },
      'linux/arm64': { status: 'failed', message: 'the container exited with code 1 before it was ready', output: 'Error: Cannot find module onnxruntime-node\n    at load (score.js:1)\n' },
    },
    error: { code: 'HUB_E_BUILD_FAILED', message: 'smoke check failed on linux/arm64' },
  });
}

// --- arguments -------------------------------------------------------------------------------

test('MANIFEST is NAME, NAME:VERSION or NAME:latest; latest means no version in the request', (t) => {
  const parse = parseManifestSelector('MANIFEST');
  t.deepEqual(parse('iris-scorer'), { name: 'iris-scorer', version: undefined });
  t.deepEqual(parse('iris-scorer:latest'), { name: 'iris-scorer', version: undefined });
  t.deepEqual(parse('iris-scorer:12'), { name: 'iris-scorer', version: 12 });
});

test('a bad MANIFEST names the argument and what is wrong', (t) => {
  const parse = parseManifestSelector('MANIFEST');
  t.regex(inputErrorMessage(t, () => parse('iris:0')), /^MANIFEST "iris:0": expected NAME, NAME:VERSION or NAME:latest.*VERSION is a number/);
  t.regex(inputErrorMessage(t, () => parse('iris:v2')), /VERSION is a number/);
  t.regex(inputErrorMessage(t, () => parse('Iris')), /^MANIFEST "Iris".*NAME is 1–64 lowercase/);
  t.regex(inputErrorMessage(t, () => parse('iris@production')), /aliases are not accepted/);
});

test('--platform takes a comma list of contract platforms, and repeating the flag adds to it', (t) => {
  const parse = parsePlatforms('--platform');
  t.deepEqual(parse('linux/arm64', undefined), ['linux/arm64']);
  t.deepEqual(parse('linux/amd64, linux/arm64', undefined), ['linux/amd64', 'linux/arm64']);
  t.deepEqual(parse('linux/arm64', parse('linux/amd64', undefined)), ['linux/amd64', 'linux/arm64']);
});

test('a bad --platform names the flag, the value and the accepted platforms', (t) => {
  const parse = parsePlatforms('--platform');
  t.is(
    inputErrorMessage(t, () => parse('linux/amd64,linux/386', undefined)),
    '--platform "linux/amd64,linux/386": expected a comma-separated list of linux/amd64, linux/arm64 ("linux/386" is not one)',
  );
  t.regex(inputErrorMessage(t, () => parse('linux/amd64,', undefined)), /^--platform "linux\/amd64,".*\(an empty entry\)$/);
  t.regex(inputErrorMessage(t, () => parse('', undefined)), /an empty entry/);
  t.regex(inputErrorMessage(t, () => parse('arm64', undefined)), /"arm64" is not one/);
  t.is(inputErrorMessage(t, () => parse('linux/arm64,linux/arm64', undefined)), '--platform linux/arm64 is given twice');
  t.is(inputErrorMessage(t, () => parse('linux/arm64', ['linux/arm64'])), '--platform linux/arm64 is given twice');
});

test('--tag follows the contract tag pattern', (t) => {
  const parse = parseImageTag('--tag');
  for (const tag of ['stable', '2026-11-24', 'latest', '_x', 'v1.2_rc-3', 'a'.repeat(128)]) t.is(parse(tag), tag);
  for (const bad of ['', '-x', '.x', 'has space', 'a/b', 'a:b', 'a'.repeat(129)]) {
    t.regex(inputErrorMessage(t, () => parse(bad)), /^--tag ".*": expected an image tag of 1–128 letters/, JSON.stringify(bad));
  }
});

test('ID is a positive integer', (t) => {
  const parse = parseImageId('ID');
  t.is(parse('1'), 1);
  t.is(parse('42'), 42);
  for (const bad of ['0', '-1', '01', '1.5', 'abc', '']) {
    t.regex(inputErrorMessage(t, () => parse(bad)), /^ID ".*": expected an image id 1, 2, …/, JSON.stringify(bad));
  }
});

test('the build request carries only what was given', (t) => {
  t.deepEqual(buildRequest({ name: 'iris', version: undefined }, {}), { manifest: 'iris' });
  t.deepEqual(buildRequest({ name: 'iris', version: 2 }, { platform: ['linux/arm64'], tag: ['stable', 'eu'] }), {
    manifest: 'iris',
    version: 2,
    platforms: ['linux/arm64'],
    tags: ['stable', 'eu'],
  });
  t.is(inputErrorMessage(t, () => buildRequest({ name: 'iris', version: undefined }, { tag: ['a', 'b', 'a'] })), '--tag a is given twice');
  const nine = Array.from({ length: 9 }, (_, i) => `t${i}`);
  t.regex(inputErrorMessage(t, () => buildRequest({ name: 'iris', version: undefined }, { tag: nine })), /--tag is given 9 times; at most 8 tags/);
});

test(`EDGEML_POLL_MS overrides the 1 s poll interval and must be a whole number`, (t) => {
  t.is(pollInterval({}), 1000);
  t.is(pollInterval({ EDGEML_POLL_MS: '50' }), 50);
  for (const bad of ['0', '-5', '1.5', 'fast']) {
    const err = t.throws(() => pollInterval({ EDGEML_POLL_MS: bad }), { instanceOf: EdgemlError });
    t.is(err?.code, ErrorCodes.CONFIG_INVALID);
    t.regex(err?.message ?? '', /^EDGEML_POLL_MS=/);
  }
});

// --- views -----------------------------------------------------------------------------------

test('a succeeded image shows ref, digest, and each platform with digest, size and smoke check', (t) => {
  const text = renderImage(image());
  for (const line of [
    /^image:\s+3$/m,
    /^status:\s+succeeded$/m,
    /^manifest:\s+iris-scorer:2 \(mmmmmmmmmmmm\)$/m,
    /^models:\s+iris:1$/m,
    new RegExp(`^ref:\\s+127\\.0\\.0\\.1:5000/edgeml/iris-scorer@sha256:a{64}$`, 'm'),
    /^digest:\s+sha256:a{64}$/m,
    /^tags:\s+v2,stable$/m,
    /^linux\/amd64:\s+sha256:b{64}  49\.6 MB  smoke check passed: sample scored: HTTP 200$/m,
    /^linux\/arm64:\s+sha256:c{64}  47\.8 MB  smoke check passed/m,
    /^created:\s+2024-05-01T12:34:56\.789Z by ci \(key k1\)$/m,
    /^duration:\s+2m 05s$/m,
  ]) {
    t.regex(text, line);
  }
  t.notRegex(text, /^(error|progress):/m, 'no error, no progress once finished');
  t.is(outcomeError(image()), undefined);
});

test('a failed image shows the error and which platform failed; the failed checks come with their output', (t) => {
  const i = failed();
  const text = renderImage(i);
  t.regex(text, /^status:\s+failed$/m);
  t.regex(text, /^ref:\s+-$/m);
  t.regex(text, /^linux\/arm64:\s+sha256:c{64}  47\.8 MB  smoke check failed: the container exited with code 1 before it was ready$/m);
  t.regex(text, /^error:\s+smoke check failed on linux\/arm64 \[HUB_E_BUILD_FAILED\]$/m);

  t.is(
    renderFailedChecks(i),
    'linux/arm64: smoke check failed: the container exited with code 1 before it was ready\n' +
      '  Error: Cannot find module onnxruntime-node\n' +
      '      at load (score.js:1)\n',
  );
  const err = outcomeError(i);
  t.is(err?.code, ErrorCodes.HUB_BUILD_FAILED);
  t.is(err?.message, 'image 3 failed: smoke check failed on linux/arm64');
});

test('a cancelled image is an error too; a queued one shows what is not there yet', (t) => {
  t.is(outcomeError(image({ status: 'cancelled' }))?.code, ErrorCodes.HUB_BUILD_CANCELLED);
  const queued = renderImage(
    image({ status: 'queued', ref: null, digest: null, platforms: { 'linux/amd64': null }, sizes: {}, checks: {}, durationMs: null, startedAt: null, finishedAt: null }),
  );
  t.regex(queued, /^linux\/amd64:\s+-  -  smoke check -$/m);
  t.regex(queued, /^digest:\s+-$/m);
  t.regex(queued, /^duration:\s+-$/m);
  t.is(outcomeError(image({ status: 'queued' })), undefined);
});

test('a building image shows its progress, and a restarted one its attempt', (t) => {
  const text = renderImage(image({ status: 'building', attempts: 2, progress: { stepsDone: 7, stepsTotal: 18, current: '[linux/arm64 4/9] RUN npm ci' } }));
  t.regex(text, /^status:\s+building \(attempt 2\)$/m);
  t.regex(text, /^progress:\s+building 7\/18 steps: \[linux\/arm64 4\/9\] RUN npm ci$/m);
  t.is(describeActivity('queued', null), 'queued');
  t.is(describeActivity('testing', { stepsDone: 18, stepsTotal: 18, current: '' }), 'testing 18/18 steps');
  t.regex(describeActivity('building', { stepsDone: 1, stepsTotal: 2, current: 'x'.repeat(200) }), /^building 1\/2 steps: x{59}…$/);
});

test('image list has the promised columns', (t) => {
  const text = renderImageList([image(), image({ id: 4, status: 'building', digest: null, platforms: { 'linux/arm64': null }, durationMs: null })]);
  const [header, first, second] = text.trimEnd().split('\n');
  t.regex(header!, /^ID\s+STATUS\s+MANIFEST\s+PLATFORMS\s+DIGEST\s+CREATED\s+DURATION$/);
  t.regex(first!, /^3\s+succeeded\s+iris-scorer:2\s+linux\/amd64,linux\/arm64\s+aaaaaaaaaaaa\s+2024-05-01 12:34Z\s+2m 05s$/);
  t.regex(second!, /^4\s+building\s+iris-scorer:2\s+linux\/arm64\s+-\s+2024-05-01 12:34Z\s+-$/);
  t.is(renderImageList([]), '(no images)\n');
});

test('durations', (t) => {
  t.is(formatDuration(null), '-');
  t.is(formatDuration(400), '0.4s');
  t.is(formatDuration(42_400), '42s');
  t.is(formatDuration(125_000), '2m 05s');
  t.is(formatDuration(3_725_000), '1h 02m');
});
