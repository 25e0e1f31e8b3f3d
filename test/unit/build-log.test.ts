/** Build logs past their limit keep only the hub's own lines; docker output lines are cut to a bounded length. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { BuildLogs, MAX_LOG_BYTES } from '../../hub/builds/build-log.js';
import { eachLine, MAX_OUTPUT_LINE_CHARS } from '../../hub/builds/docker-cli.js';

test('past the limit, output lines are dropped even when they look like the hub\'s; the hub\'s own notes are kept', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeml-build-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const logs = await BuildLogs.open(dir, pino({ level: 'silent' }));
  const log = logs.begin('run-1');
  log.note('run 1 started');
  log.write('edgeml: a script line before the cut is written like any other');
  const line = 'x'.repeat(1023);
  for (let bytes = 0; bytes <= MAX_LOG_BYTES; bytes += 1024) log.write(line);
  log.write('edgeml: run 1 promoted');
  log.write('more output');
  log.note('run 1 failed: the script exited 1');
  await logs.end('run-1');

  const text = await readFile(join(dir, 'run-1.log'), 'utf8');
  t.true(Buffer.byteLength(text) <= MAX_LOG_BYTES + 200, `${Buffer.byteLength(text)} bytes`);
  const lines = text.split('\n');
  t.is(lines[0], 'edgeml: run 1 started');
  t.is(lines[1], 'edgeml: a script line before the cut is written like any other');
  t.deepEqual(lines.slice(-3), ['edgeml: the log is cut here: it reached 8.0 MB', 'edgeml: run 1 failed: the script exited 1', '']);
  t.false(text.includes('promoted'));
  t.false(text.includes('more output'));
});

async function linesOf(chunks: string[], max?: number): Promise<string[]> {
  const input = new PassThrough();
  const lines: string[] = [];
  const ended = new Promise((resolve) => input.once('end', resolve));
  eachLine(input, (line) => lines.push(line), max);
  for (const chunk of chunks) input.write(chunk);
  input.end();
  await ended;
  return lines;
}

test('eachLine: LF and CRLF lines across chunks, a last line without a newline, multi-byte characters split between chunks', async (t) => {
  const euro = Buffer.from('€');
  const input = new PassThrough();
  const lines: string[] = [];
  const ended = new Promise((resolve) => input.once('end', resolve));
  eachLine(input, (line) => lines.push(line));
  input.write('one\r\ntw');
  input.write(Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]));
  input.write(Buffer.concat([euro.subarray(1), Buffer.from('\n\nlast')]));
  input.end();
  await ended;
  t.deepEqual(lines, ['one', 'two €', '', 'last']);
});

test('eachLine: a line longer than the maximum is cut and marked, the rest of it dropped as it arrives, and the next line is whole', async (t) => {
  t.deepEqual(await linesOf(['abcdefgh', 'ijkl\nnext\n'], 5), ['abcde… [line cut at 5 characters]', 'next']);
  // Megabytes without a newline: one bounded line.
  const mega = 'y'.repeat(256 * 1024);
  const lines = await linesOf([mega, mega, mega, mega, 'z\nafter']);
  t.is(lines.length, 2);
  t.is(lines[0], `${'y'.repeat(MAX_OUTPUT_LINE_CHARS)}… [line cut at ${MAX_OUTPUT_LINE_CHARS} characters]`);
  t.is(lines[1], 'after');
  t.is(MAX_OUTPUT_LINE_CHARS, 64 * 1024);
});
