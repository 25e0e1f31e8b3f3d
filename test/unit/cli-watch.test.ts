/** cli/watch.ts: redraws with a header, NDJSON only on change, ends quietly on abort; no real waiting (injected sleep). */
import test from 'ava';
import { parseWatchInterval, watchLoop } from '../../cli/watch.js';
import { ErrorCodes } from '../../shared/errors.js';

function recorder(isTTY = false) {
  const chunks: string[] = [];
  return { chunks, stdout: { isTTY, write: (text: string) => chunks.push(text) } };
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
  await watchLoop({ ...s, render: () => 'unused', json: true, stdout: out.stdout, intervalMs: 2000, title: 'edgeml device list' });
  t.deepEqual(out.chunks, ['{"n":1}\n', '{"n":2}\n']);
  t.deepEqual(s.waits, [2000, 2000, 2000, 2000]);
});

test('text: each round a header with the interval, the time and the command, then the table; a terminal is cleared first', async (t) => {
  const s = scripted();
  const out = recorder(true);
  await watchLoop({ ...s, render: (d) => `N ${d.n}\n`, json: false, stdout: out.stdout, intervalMs: 2000, title: 'edgeml device list', now: () => new Date('2026-01-02T03:04:05.678Z') });
  t.is(out.chunks.length, 4);
  t.is(out.chunks[2], '\x1b[H\x1b[2JEvery 2s: edgeml device list    2026-01-02T03:04:05Z\n\nN 2\n');
});

test('a failed fetch ends the watch with its error, unless Ctrl-C came first', async (t) => {
  const controller = new AbortController();
  const failing = () => watchLoop({ fetch: async () => { controller.abort(); throw new Error('hub gone'); }, render: String, json: true, stdout: recorder().stdout, intervalMs: 1000, title: 't', signal: controller.signal, sleep: async () => undefined });
  await t.notThrowsAsync(failing());
  await t.throwsAsync(
    watchLoop({ fetch: async () => { throw new Error('hub gone'); }, render: String, json: true, stdout: recorder().stdout, intervalMs: 1000, title: 't', signal: new AbortController().signal, sleep: async () => undefined }),
    { message: 'hub gone' },
  );
});

test('--interval takes a duration of at least 500ms', (t) => {
  t.is(parseWatchInterval('2s'), 2000);
  t.is(parseWatchInterval('1m'), 60_000);
  t.is((t.throws(() => parseWatchInterval('10ms')) as { code?: string }).code, ErrorCodes.CLI_INPUT_INVALID);
  t.throws(() => parseWatchInterval('2'));
});
