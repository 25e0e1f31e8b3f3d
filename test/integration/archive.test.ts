/**
 * packDirectory and extractArchive (shared/archive/) against the real filesystem, and against GNU
 * tar for interoperability.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { extractArchive, packDirectory, type ArchiveLimits } from '../../shared/archive/index.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { tempDir } from '../helpers/edgeml-process.js';
import { tarOf, type TarSpec } from '../helpers/tar.js';

// Not helpers/exec.ts: it writes to stdin, which tar and mkfifo close before reading (EPIPE).
const run = promisify(execFile);

const LIMITS: ArchiveLimits = { maxFiles: 1000, maxBytes: 10_000_000 };
const WEIGHTS = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 256));

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The same model tree; `reversed` creates it in the opposite order with other mtimes. */
async function modelTree(t: ExecutionContext, reversed = false): Promise<string> {
  const dir = await tempDir(t);
  const steps: Array<() => Promise<unknown>> = [
    () => mkdir(join(dir, 'model/nested/deep'), { recursive: true }),
    () => mkdir(join(dir, 'cache')),
    () => writeFile(join(dir, 'model/nested/deep/weights.bin'), WEIGHTS),
    () => writeFile(join(dir, 'model/config.json'), '{"inputs":3}\n'),
    () => writeFile(join(dir, 'empty.txt'), ''),
    // '-' sorts before '/', so whole-path order differs from a depth-first walk here.
    () => writeFile(join(dir, 'model-card.md'), '# demo\n'),
    () => writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho scored\n', { mode: 0o700 }),
    () => symlink('model/nested/deep/weights.bin', join(dir, 'latest')),
    () => symlink('../config.json', join(dir, 'model/nested/config')),
  ];
  for (const step of reversed ? [steps[0]!, ...steps.slice(1).reverse()] : steps) await step();
  if (reversed) await utimes(join(dir, 'model/config.json'), 1_000_000, 2_000_000);
  return dir;
}

/** Every path under `dir`, sorted as whole paths (ASCII names here, so JS order is byte order). */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(dir, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      out.push(path);
      if ((await lstat(join(dir, path))).isDirectory()) await walk(path);
    }
  };
  await walk('');
  return out.sort();
}


test('packDirectory gives the same bytes for the same content, whatever the creation order or mtimes', async (t) => {
  const dir = await modelTree(t);
  const first = await readAll(packDirectory(dir));
  const second = await readAll(packDirectory(dir));
  t.true(first.length > WEIGHTS.length);
  t.is(sha256(first), sha256(second));
  t.is(sha256(await readAll(packDirectory(await modelTree(t, true)))), sha256(first));
  // A content change must change the bytes, or the comparison above proves nothing.
  await writeFile(join(dir, 'empty.txt'), 'not anymore');
  t.not(sha256(await readAll(packDirectory(dir))), sha256(first));
});

test('GNU tar reads packDirectory output: sorted entries, normalized modes, owner 0/0, mtime 0', async (t) => {
  const dir = await modelTree(t);
  const work = await tempDir(t);
  await writeFile(join(work, 'model.tar'), await readAll(packDirectory(dir)));
  const listing = await run('tar', ['--numeric-owner', '--utc', '-tvf', join(work, 'model.tar')]);
  const lines = listing.stdout.trim().split('\n');
  t.deepEqual(
    lines.map((l) => l.split(/\s+/).slice(5).join(' ')),
    [
      'cache',
      'empty.txt',
      'latest -> model/nested/deep/weights.bin',
      'model',
      'model-card.md',
      'model/config.json',
      'model/nested',
      'model/nested/config -> ../config.json',
      'model/nested/deep',
      'model/nested/deep/weights.bin',
      'run.sh',
    ],
  );
  const modes = Object.fromEntries(lines.map((l) => [l.split(/\s+/)[5], l.split(/\s+/)[0]]));
  t.is(modes['run.sh'], '-rwxr-xr-x');
  t.is(modes['empty.txt'], '-rw-r--r--');
  t.is(modes['model'], 'drwxr-xr-x');
  t.true(lines.every((l) => l.split(/\s+/)[1] === '0/0' && l.includes('1970-01-01 00:00')), listing.stdout);
});

test('extractArchive reproduces a packed tree: content, executable bit, empty files and dirs, symlinks', async (t) => {
  const source = await modelTree(t);
  const dest = join(await tempDir(t), 'out', 'model');
  const entries = await extractArchive(packDirectory(source), dest, LIMITS);

  t.deepEqual(await listTree(dest), await listTree(source));
  t.deepEqual(
    entries.map((e) => e.path),
    await listTree(source),
  );
  t.deepEqual(await readFile(join(dest, 'model/nested/deep/weights.bin')), WEIGHTS);
  t.is(await readFile(join(dest, 'run.sh'), 'utf8'), '#!/bin/sh\necho scored\n');
  t.is((await stat(join(dest, 'run.sh'))).mode & 0o777, 0o755);
  t.is((await stat(join(dest, 'model/config.json'))).mode & 0o777, 0o644);
  t.is((await stat(join(dest, 'empty.txt'))).size, 0);
  t.true((await stat(join(dest, 'cache'))).isDirectory());
  t.is(await readlink(join(dest, 'latest')), 'model/nested/deep/weights.bin');
  t.is(await readlink(join(dest, 'model/nested/config')), '../config.json');
  t.is(await readFile(join(dest, 'model/nested/config'), 'utf8'), '{"inputs":3}\n');
  for (const e of entries.filter((e) => e.type === 'file')) {
    t.is(e.digest, `sha256:${sha256(await readFile(join(dest, e.path)))}`, e.path);
  }
});

test('extractArchive accepts what GNU tar writes, "./" prefix and all, and recreates hardlinks', async (t) => {
  const source = await modelTree(t);
  const work = await tempDir(t);
  const tarPath = join(work, 'gnu.tar');
  await run('tar', ['-cf', tarPath, '-C', source, '.']);
  const entries = await extractArchive(Readable.from([await readFile(tarPath)]), join(work, 'out'), LIMITS);
  t.deepEqual(entries.map((e) => e.path), await listTree(source));

  const linked = await tarOf([
    { name: 'a.bin', content: 'shared bytes' },
    { name: 'b.bin', type: 'link', linkname: 'a.bin' },
  ]);
  const dest = join(work, 'linked');
  await extractArchive(Readable.from([linked]), dest, LIMITS);
  const [a, b] = await Promise.all([stat(join(dest, 'a.bin')), stat(join(dest, 'b.bin'))]);
  t.is(a.ino, b.ino);
  t.is(a.nlink, 2);
});

test('packDirectory refuses a symlink that points outside the directory, naming it', async (t) => {
  const dir = await modelTree(t);
  await symlink('../../etc', join(dir, 'model/escape'));
  const err = await t.throwsAsync(readAll(packDirectory(dir)), { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.ARCHIVE_INVALID);
  t.is(err?.message, `cannot pack "${join(dir, 'model/escape')}": symlink target "../../etc" leaves the model directory`);

  const absolute = await modelTree(t);
  await symlink('/etc/passwd', join(absolute, 'passwd'));
  const err2 = await t.throwsAsync(readAll(packDirectory(absolute)), { instanceOf: EdgemlError });
  t.is(err2?.code, ErrorCodes.ARCHIVE_INVALID);
  t.true(err2?.message.includes(`"${join(absolute, 'passwd')}"`) && err2.message.includes('is absolute'), err2?.message);
});

test('packDirectory refuses a directory without a single file before writing a byte', async (t) => {
  const empty = await tempDir(t);
  const err = await t.throwsAsync(readAll(packDirectory(empty)), { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.ARCHIVE_INVALID);
  t.regex(err?.message ?? '', /no files/);
  t.true(err?.message.includes(JSON.stringify(empty)), err?.message);

  const onlyDirs = await tempDir(t);
  await mkdir(join(onlyDirs, 'model/deep'), { recursive: true });
  await symlink('model/deep', join(onlyDirs, 'latest'));
  const err2 = await t.throwsAsync(readAll(packDirectory(onlyDirs)), { instanceOf: EdgemlError });
  t.is(err2?.code, ErrorCodes.ARCHIVE_INVALID);
  t.regex(err2?.message ?? '', /no files/);
});

test('packDirectory refuses FIFOs and sockets', async (t) => {
  const dir = await modelTree(t);
  await run('mkfifo', [join(dir, 'model/pipe')]);
  const err = await t.throwsAsync(readAll(packDirectory(dir)), { instanceOf: EdgemlError });
  t.is(err?.message, `cannot pack "${join(dir, 'model/pipe')}": is a FIFO; only files, directories and symlinks can be packed`);

  const withSocket = await modelTree(t);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(withSocket, 'agent.sock'), resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const err2 = await t.throwsAsync(readAll(packDirectory(withSocket)), { instanceOf: EdgemlError });
  t.true(err2?.message.includes('agent.sock') && err2.message.includes('is a socket'), err2?.message);
});

test('extractArchive refuses a non-empty destination and leaves it untouched', async (t) => {
  const source = await modelTree(t);
  const dest = await tempDir(t);
  await writeFile(join(dest, 'keep.txt'), 'mine');
  const err = await t.throwsAsync(extractArchive(packDirectory(source), dest, LIMITS), { instanceOf: EdgemlError });
  t.is(err?.code, ErrorCodes.CLI_INPUT_INVALID);
  t.true(err?.message.includes(JSON.stringify(dest)), err?.message);
  t.deepEqual(await readdir(dest), ['keep.txt']);
  t.is(await readFile(join(dest, 'keep.txt'), 'utf8'), 'mine');
});

const MALICIOUS: Array<[string, TarSpec[]]> = [
  ['a "../evil" entry', [{ name: 'good.txt', content: 'ok' }, { name: 'sub/file', content: 'ok' }, { name: '../evil', content: 'pwned' }]],
  ['a write through a symlink', [{ name: 'good.txt', content: 'ok' }, { name: 'l', type: 'symlink', linkname: '..' }, { name: 'l/evil', content: 'pwned' }]],
  ['a symlink escaping after files were written', [{ name: 'sub/file', content: 'ok' }, { name: 'sub/evil', type: 'symlink', linkname: '../../evil' }]],
  ['a hardlink to nowhere at the end', [{ name: 'sub/file', content: 'ok' }, { name: 'evil', type: 'link', linkname: 'missing' }]],
];
for (const [what, specs] of MALICIOUS) {
  test(`extractArchive of ${what} leaves nothing behind and writes nothing outside`, async (t) => {
    const sandbox = await tempDir(t);
    const bytes = await tarOf(specs);

    // A destination it creates is removed again.
    const err = await t.throwsAsync(extractArchive(Readable.from([bytes]), join(sandbox, 'dest'), LIMITS), { instanceOf: EdgemlError });
    t.is(err?.code, ErrorCodes.ARCHIVE_INVALID);
    t.deepEqual(await readdir(sandbox), []);

    // A destination that existed (empty) is left existing and empty.
    const existing = join(sandbox, 'existing');
    await mkdir(existing);
    await t.throwsAsync(extractArchive(Readable.from([bytes]), existing, LIMITS), { instanceOf: EdgemlError });
    t.deepEqual(await readdir(sandbox), ['existing']);
    t.deepEqual(await readdir(existing), []);
  });
}

test('extractArchive cleans up when the source itself fails midway, and rethrows that error', async (t) => {
  const sandbox = await tempDir(t);
  const bytes = await readAll(packDirectory(await modelTree(t)));
  const broken = new Error('connection reset');
  async function* upload() {
    yield bytes.subarray(0, 6000);
    throw broken;
  }
  t.is(await t.throwsAsync(extractArchive(upload(), join(sandbox, 'dest'), LIMITS)), broken);
  t.deepEqual(await readdir(sandbox), []);
});

test('extractArchive enforces the limits and removes what it wrote', async (t) => {
  const sandbox = await tempDir(t);
  const err = await t.throwsAsync(extractArchive(packDirectory(await modelTree(t)), join(sandbox, 'dest'), { maxFiles: 1000, maxBytes: 100 }), {
    instanceOf: EdgemlError,
  });
  t.is(err?.code, ErrorCodes.ARCHIVE_TOO_LARGE);
  t.is(err?.httpStatus, 413);
  t.deepEqual(await readdir(sandbox), []);
});

test.serial('extracted files get exact modes whatever the umask', async (t) => {
  const source = await tempDir(t);
  await writeFile(join(source, 'tool'), 'x');
  await chmod(join(source, 'tool'), 0o711);
  const dest = join(await tempDir(t), 'dest');
  const previous = process.umask(0o077);
  try {
    await extractArchive(packDirectory(source), dest, LIMITS);
  } finally {
    process.umask(previous);
  }
  t.is((await stat(join(dest, 'tool'))).mode & 0o777, 0o755);
});
