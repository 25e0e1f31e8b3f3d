/** cli/watch.ts: redraws with a header, NDJSON only on change, ends quietly on abort; no real waiting (injected sleep). */
import test from 'ava';
import { parseWatchInterval, watchLoop } from '../../cli/watch.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

function recorder(isTTY = false) {
  const chunks: string[] = [];
  const errors: string[] = [];
  return { chunks, errors, stdout: { isTTY, write: (text: string) => chunks.push(text) }, stderr: { write: (text: string) => errors.push(text) } };
}

/** A list that changes on the third fetch; the fourth wait aborts (as Ctrl-C would). */
function scripted() {
  const controller = new AbortController();
  const data = [{ n: 1 }, { n: 1 }, { n: 2 }, { n: 2 }];
  let fetches = 0;
  const waits: number[] = [];
  return {
    signal: controller.signal,
    waits,
    fetch: async () => data[fetches++]!,
    sleep: async (ms: number) => {
      waits.push(ms);
      if (waits.length === data.length) controller.abort();
    },
  };
}

test('with --json one line per change, nothing when the data did not change', async (t) => {
  const s = scripted();
  const out = recorder();
  await watchLoop({ ...s, render: () => 'unused', json: true, stdout: out.stdout, stderr: out.stderr, intervalMs: 2000, title: 'edgeml device list' });
  t.deepEqual(out.chunks, ['{"n":1}\n', '{"n":2}\n']);
  t.deepEqual(s.waits, [2000, 2000, 2000, 2000]);
});

test('text: each round a header with the interval, the time and the command, then the table; a terminal is cleared first', async (t) => {
  const s = scripted();
  const out = recorder(true);
  await watchLoop({ ...s, render: (d) => `N ${d.n}\n`, json: false, stdout: out.stdout, stderr: out.stderr, intervalMs: 2000, title: 'edgeml device list', now: () => new Date('2026-01-02T03:04:05.678Z') });
  t.is(out.chunks.length, 4);
  t.is(out.chunks[2], '\x1b[H\x1b[2JEvery 2s: edgeml device list    2026-01-02T03:04:05Z\n\nN 2\n');
});

test('a failed fetch ends the watch with its error, unless Ctrl-C came first', async (t) => {
  const controller = new AbortController();
  const out = recorder();
  const failing = () => watchLoop({ fetch: async () => { controller.abort(); throw new Error('hub gone'); }, render: String, json: true, ...out, intervalMs: 1000, title: 't', signal: controller.signal, sleep: async () => undefined });
  await t.notThrowsAsync(failing());
  await t.throwsAsync(
    watchLoop({ fetch: async () => { throw new Error('hub gone'); }, render: String, json: true, ...out, intervalMs: 1000, title: 't', signal: new AbortController().signal, sleep: async () => undefined }),
    { message: 'hub gone' },
  );
});

/** Fetches answering `script` in turn (a value, or an error thrown); aborts after the last one's wait. */
function flaky(script: Array<{ n: number } | Error>) {
  const controller = new AbortController();
  const waits: number[] = [];
  let fetches = 0;
  return {
    signal: controller.signal,
    waits,
    fetch: async () => {
      const next = script[fetches++]!;
      if (next instanceof Error) throw next;
      return next;
    },
    sleep: async (ms: number) => {
      waits.push(ms);
      if (waits.length === script.length) controller.abort();
    },
  };
}

const unreachable = new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, 'cannot reach the hub at http://127.0.0.1:1: ECONNREFUSED');
const busy = new EdgemlError(ErrorCodes.INTERNAL, 'the hub at http://127.0.0.1:1 answered 503 Service Unavailable', { retryable: true, httpStatus: 503 });

test('a passing failure (hub unreachable, 503) is one line on stderr and the watch goes on at the next interval', async (t) => {
  const s = flaky([{ n: 1 }, unreachable, busy, { n: 2 }]);
  const out = recorder();
  await watchLoop({ ...s, render: (d) => `N ${d.n}`, json: false, ...out, intervalMs: 2000, title: 'edgeml device list', now: () => new Date(0) });
  t.deepEqual(s.waits, [2000, 2000, 2000, 2000], 'each failed round waits the interval too');
  t.deepEqual(out.errors, [
    `edgeml: ${unreachable.message} [${ErrorCodes.CLI_HUB_UNREACHABLE}]\n`,
    `edgeml: ${busy.message} [${ErrorCodes.INTERNAL}]\n`,
  ]);
  t.is(out.chunks.length, 2);
  t.regex(out.chunks[1]!, /N 2\n$/);
});

test('with --json a passing failure is an {"error":…} line on stderr, and stdout stays NDJSON of the data', async (t) => {
  const s = flaky([{ n: 1 }, unreachable, { n: 1 }, { n: 2 }]);
  const out = recorder();
  await watchLoop({ ...s, render: () => 'unused', json: true, ...out, intervalMs: 1000, title: 't' });
  t.deepEqual(out.chunks, ['{"n":1}\n', '{"n":2}\n']);
  t.deepEqual(out.errors.map((line) => JSON.parse(line)), [{ error: { code: ErrorCodes.CLI_HUB_UNREACHABLE, message: unreachable.message } }]);
});

test('an error that another round would meet again (401, 404) still ends the watch', async (t) => {
  for (const err of [
    new EdgemlError(ErrorCodes.HUB_UNAUTHENTICATED, 'no API key', { httpStatus: 401 }),
    new EdgemlError(ErrorCodes.HUB_ROLLOUT_NOT_FOUND, 'no such rollout', { httpStatus: 404 }),
  ]) {
    const s = flaky([{ n: 1 }, err, { n: 2 }]);
    const out = recorder();
    await t.throwsAsync(watchLoop({ ...s, render: String, json: true, ...out, intervalMs: 1000, title: 't' }), { is: err });
    t.deepEqual(out.errors, [], 'main reports it, once');
    t.deepEqual(s.waits, [1000]);
  }
});

test('--interval takes a duration of at least 500ms', (t) => {
  t.is(parseWatchInterval('2s'), 2000);
  t.is(parseWatchInterval('1m'), 60_000);
  t.is((t.throws(() => parseWatchInterval('10ms')) as { code?: string }).code, ErrorCodes.CLI_INPUT_INVALID);
  t.throws(() => parseWatchInterval('2'));
});
