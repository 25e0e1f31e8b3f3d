/**
 * The archive rules (shared/archive/) through ArchiveInspector, with tars crafted in memory by
 * tar-stream's own packer: no filesystem. Every rejection must carry the right code and name the
 * offending entry.
 */
import { createHash } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { ArchiveInspector, type ArchiveEntry, type ArchiveLimits } from '../../shared/archive/index.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import { tarOf, type TarSpec } from '../helpers/tar.js';


const LIMITS: ArchiveLimits = { maxFiles: 100, maxBytes: 1_000_000 };


async function inspect(bytes: Buffer, limits = LIMITS, chunkSize = bytes.length || 1): Promise<ArchiveEntry[]> {
  const inspector = new ArchiveInspector(limits);
  try {
    for (let offset = 0; offset < bytes.length; offset += chunkSize) await inspector.write(bytes.subarray(offset, offset + chunkSize));
  } catch {
    // The failure is reported again (and asserted) by finish().
  }
  return inspector.finish();
}

async function rejects(t: ExecutionContext, specs: TarSpec[] | Buffer, code: ErrorCode, mentions: string, limits = LIMITS): Promise<void> {
  const bytes = Buffer.isBuffer(specs) ? specs : await tarOf(specs);
  const err = await t.throwsAsync(inspect(bytes, limits), { instanceOf: EdgemlError });
  t.is(err?.code, code, err?.message);
  t.is(err?.httpStatus, code === ErrorCodes.ARCHIVE_TOO_LARGE ? 413 : 400);
  t.true(err?.message.includes(mentions), `"${err?.message}" should mention ${mentions}`);
}

const sha256 = (content: string | Buffer) => `sha256:${createHash('sha256').update(content).digest('hex')}`;

test('a good archive lists every entry sorted by path, with normalized paths and modes and real digests', async (t) => {
  const weights = Buffer.alloc(3000, 7); // spans several blocks and chunks
  const bytes = await tarOf([
    { name: './', type: 'directory' }, // the root itself is skipped
    { name: './run.sh', content: '#!/bin/sh\n', mode: 0o700 },
    { name: 'model/', type: 'directory', mode: 0o700 },
    { name: 'model/weights.bin', content: weights, mode: 0o600 },
    { name: 'model/empty', content: '' },
    { name: 'latest', type: 'symlink', linkname: 'model/weights.bin' },
    { name: 'model/up', type: 'symlink', linkname: '..' },
    { name: 'copy.bin', type: 'link', linkname: './model/weights.bin' },
  ]);
  const expected: ArchiveEntry[] = [
    { path: 'copy.bin', type: 'hardlink', size: 0, digest: null, mode: 0o777, target: './model/weights.bin' },
    { path: 'latest', type: 'symlink', size: 0, digest: null, mode: 0o777, target: 'model/weights.bin' },
    { path: 'model', type: 'directory', size: 0, digest: null, mode: 0o755, target: null },
    { path: 'model/empty', type: 'file', size: 0, digest: sha256(''), mode: 0o644, target: null },
    { path: 'model/up', type: 'symlink', size: 0, digest: null, mode: 0o777, target: '..' },
    { path: 'model/weights.bin', type: 'file', size: 3000, digest: sha256(weights), mode: 0o644, target: null },
    { path: 'run.sh', type: 'file', size: 10, digest: sha256('#!/bin/sh\n'), mode: 0o755, target: null },
  ];
  t.deepEqual(await inspect(bytes), expected);
  // Chunk boundaries must not matter.
  t.deepEqual(await inspect(bytes, LIMITS, 7), expected);
  t.deepEqual(await inspect(bytes, LIMITS, 511), expected);
});

test('symlinks may name entries that come later, chain through each other, or dangle inside the root', async (t) => {
  const entries = await inspect(
    await tarOf([
      { name: 'a', type: 'symlink', linkname: 'b/c' }, // b comes later and is itself a link
      { name: 'b', type: 'symlink', linkname: 'sub' },
      { name: 'sub/c', content: 'x' },
      { name: 'sub/deep/l', type: 'symlink', linkname: '../../b/../a' },
      { name: 'dangling', type: 'symlink', linkname: 'not/there/../yet' },
    ]),
  );
  t.deepEqual(
    entries.map((e) => e.path),
    ['a', 'b', 'dangling', 'sub/c', 'sub/deep/l'],
  );
});

const PATH_CASES: Array<[string, string]> = [
  ['../evil', 'leaves the model directory'],
  ['a/../../evil', 'leaves the model directory'],
  ['a/../b', '".." segment'],
  ['/etc/passwd', 'absolute'],
  ['C:\\x', 'backslash'],
  ['C:x', 'drive letter'],
  ['dir\\file', 'backslash'],
];
for (const [name, reason] of PATH_CASES) {
  test(`entry name ${JSON.stringify(name)} is refused (${reason})`, async (t) => {
    await rejects(t, [{ name: 'ok', content: 'fine' }, { name, content: 'x' }], ErrorCodes.ARCHIVE_INVALID, `archive entry ${JSON.stringify(name)}: `);
    await rejects(t, [{ name, content: 'x' }], ErrorCodes.ARCHIVE_INVALID, reason);
  });
}

test('a path over 4096 bytes or with a segment over 255 bytes is refused', async (t) => {
  await rejects(t, [{ name: `${'d/'.repeat(2100)}f`, content: 'x' }], ErrorCodes.ARCHIVE_INVALID, 'longer than 4096 bytes');
  await rejects(t, [{ name: `d/${'x'.repeat(256)}`, content: 'x' }], ErrorCodes.ARCHIVE_INVALID, 'longer than 255 bytes');
  t.is((await inspect(await tarOf([{ name: `d/${'x'.repeat(255)}`, content: 'x' }]))).length, 1);
});

test('a symlink with an absolute target is refused', async (t) => {
  await rejects(t, [{ name: 'l', type: 'symlink', linkname: '/etc' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "l": symlink target "/etc" is absolute');
});

test('a symlink whose target climbs out of the root is refused', async (t) => {
  await rejects(t, [{ name: 'l', type: 'symlink', linkname: '../x' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "l": symlink target "../x" leaves the model directory');
  await rejects(t, [{ name: 'b', type: 'symlink', linkname: '..' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "b"');
  await rejects(t, [{ name: 'd/l', type: 'symlink', linkname: '../..' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "d/l"');
  // Climbing out and back in still leaves the root on the way.
  await rejects(t, [{ name: 'd/l', type: 'symlink', linkname: '../../root/d' }], ErrorCodes.ARCHIVE_INVALID, 'leaves the model directory');
});

test('a symlink that escapes only through another archive symlink is refused, whatever the order', async (t) => {
  // Lexically sub/a -> sub/b/.. is sub; but sub/b is a link to the root, so b/.. is the root's parent.
  const chain: TarSpec[] = [
    { name: 'sub/a', type: 'symlink', linkname: 'b/..' },
    { name: 'sub/b', type: 'symlink', linkname: '..' },
  ];
  await rejects(t, chain, ErrorCodes.ARCHIVE_INVALID, 'archive entry "sub/a": symlink target "b/.." leaves the model directory');
  await rejects(t, [...chain].reverse(), ErrorCodes.ARCHIVE_INVALID, 'archive entry "sub/a"');
  // Three hops: x -> y/up/.. where y -> deep/er and deep/er/up -> ../.. (the root, fine by itself).
  await rejects(
    t,
    [
      { name: 'x', type: 'symlink', linkname: 'y/up/..' },
      { name: 'y', type: 'symlink', linkname: 'deep/er' },
      { name: 'deep/er/up', type: 'symlink', linkname: '../..' },
    ],
    ErrorCodes.ARCHIVE_INVALID,
    'archive entry "x"',
  );
  // A link to a link that escapes escapes too, and the message says through which one.
  await rejects(
    t,
    [
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: '../out' },
    ],
    ErrorCodes.ARCHIVE_INVALID,
    'archive entry "a": symlink target "b" leaves the model directory through symlink "b"',
  );
});

test('symlink loops are refused', async (t) => {
  await rejects(
    t,
    [
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'a' },
    ],
    ErrorCodes.ARCHIVE_INVALID,
    'levels of symlinks',
  );
});

test('no entry may sit under a symlink, whichever comes first', async (t) => {
  await rejects(
    t,
    [
      { name: 'sub', type: 'directory' },
      { name: 'l', type: 'symlink', linkname: 'sub' },
      { name: 'l/file', content: 'x' },
    ],
    ErrorCodes.ARCHIVE_INVALID,
    'archive entry "l/file": parent "l" is a symlink',
  );
  await rejects(
    t,
    [
      { name: 'l/file', content: 'x' },
      { name: 'l', type: 'symlink', linkname: 'sub' },
    ],
    ErrorCodes.ARCHIVE_INVALID,
    'archive entry "l": is a symlink but other entries are inside it',
  );
  await rejects(
    t,
    [
      { name: 'f', content: 'x' },
      { name: 'f/g', content: 'y' },
    ],
    ErrorCodes.ARCHIVE_INVALID,
    'archive entry "f/g": parent "f" is a file',
  );
});

test('a hardlink must name a regular file entry inside the archive', async (t) => {
  await rejects(t, [{ name: 'h', type: 'link', linkname: 'missing' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "h": hardlink target "missing" is not a regular file');
  await rejects(
    t,
    [{ name: 'f', content: 'x' }, { name: 'h', type: 'link', linkname: '../f' }],
    ErrorCodes.ARCHIVE_INVALID,
    'archive entry "h": hardlink target "../f" leaves the model directory',
  );
  await rejects(t, [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "h"');
  await rejects(
    t,
    [{ name: 'd', type: 'directory' }, { name: 'h', type: 'link', linkname: 'd' }],
    ErrorCodes.ARCHIVE_INVALID,
    'hardlink target "d" is not a regular file',
  );
  await rejects(
    t,
    [{ name: 'l', type: 'symlink', linkname: 'f' }, { name: 'f', content: 'x' }, { name: 'h', type: 'link', linkname: 'l' }],
    ErrorCodes.ARCHIVE_INVALID,
    'hardlink target "l" is not a regular file',
  );
});

test('devices, FIFOs and types tar-stream does not know are refused, naming the type', async (t) => {
  await rejects(t, [{ name: 'tty', type: 'character-device', devmajor: 5, devminor: 0 }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "tty": unsupported entry type "character-device"');
  await rejects(t, [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], ErrorCodes.ARCHIVE_INVALID, '"block-device"');
  await rejects(t, [{ name: 'pipe', type: 'fifo' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "pipe": unsupported entry type "fifo"');
  // A GNU sparse file ('S'): tar-stream cannot write one, so retype a plain file header.
  const bytes = await tarOf([{ name: 'sparse', content: 'x' }]);
  bytes[156] = 'S'.charCodeAt(0);
  let sum = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += bytes[i]!;
  bytes.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  await rejects(t, bytes, ErrorCodes.ARCHIVE_INVALID, 'archive entry "sparse": unsupported entry type');
});

test('duplicate paths are refused, also when they differ only by normalization', async (t) => {
  await rejects(t, [{ name: 'a', content: '1' }, { name: 'a', content: '2' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "a": duplicate path');
  await rejects(t, [{ name: 'd/x', content: '1' }, { name: './d//x', content: '2' }], ErrorCodes.ARCHIVE_INVALID, 'archive entry "./d//x": duplicate path');
  await rejects(t, [{ name: 'd', type: 'directory' }, { name: 'd/', type: 'directory' }], ErrorCodes.ARCHIVE_INVALID, 'duplicate path');
});

test('an archive without a single file is refused: there is no model in it', async (t) => {
  await rejects(t, await tarOf([]), ErrorCodes.ARCHIVE_INVALID, 'no files');
  await rejects(t, [{ name: './', type: 'directory' }, { name: 'model/', type: 'directory' }, { name: 'model/deep/', type: 'directory' }], ErrorCodes.ARCHIVE_INVALID, 'no files');
  await rejects(t, [{ name: 'dangling', type: 'symlink', linkname: 'nothing-here' }], ErrorCodes.ARCHIVE_INVALID, 'no files');
  t.is((await inspect(await tarOf([{ name: 'empty.txt', content: '' }]))).length, 1, 'one empty file is a file');
});

test('more entries than maxFiles is ARCHIVE_TOO_LARGE (413)', async (t) => {
  const specs: TarSpec[] = [{ name: 'a', content: '1' }, { name: 'b', content: '2' }, { name: 'c', content: '3' }];
  await rejects(t, specs, ErrorCodes.ARCHIVE_TOO_LARGE, 'archive entry "c": archive has more than 2 entries', { maxFiles: 2, maxBytes: 1000 });
  t.is((await inspect(await tarOf(specs), { maxFiles: 3, maxBytes: 1000 })).length, 3);
  // Directories and links count as entries too.
  await rejects(t, [{ name: 'd', type: 'directory' }, { name: 'l', type: 'symlink', linkname: 'd' }], ErrorCodes.ARCHIVE_TOO_LARGE, 'archive entry "l"', {
    maxFiles: 1,
    maxBytes: 1000,
  });
});

test('more file bytes than maxBytes is ARCHIVE_TOO_LARGE (413), decided from the header', async (t) => {
  const specs: TarSpec[] = [{ name: 'a', content: '12345' }, { name: 'b', content: '123456' }];
  await rejects(t, specs, ErrorCodes.ARCHIVE_TOO_LARGE, 'archive entry "b": archive files add up to more than 10 bytes', { maxFiles: 10, maxBytes: 10 });
  t.is((await inspect(await tarOf(specs), { maxFiles: 10, maxBytes: 11 })).length, 2);
  // Only the first header block arrives: the size is already known to be too much.
  const big = await tarOf([{ name: 'big', content: Buffer.alloc(4096) }]);
  await rejects(t, big.subarray(0, 512), ErrorCodes.ARCHIVE_TOO_LARGE, 'archive entry "big"', { maxFiles: 10, maxBytes: 100 });
});

test('a truncated or garbled tar is ARCHIVE_INVALID', async (t) => {
  const bytes = await tarOf([
    { name: 'a', content: Buffer.alloc(2000, 1) },
    { name: 'b', content: 'tail' },
  ]);
  await rejects(t, bytes.subarray(0, Math.floor(bytes.length / 2)), ErrorCodes.ARCHIVE_INVALID, 'archive is truncated or not a tar stream');
  // Cut exactly between two entries: tar-stream sees nothing wrong, the missing end marker gives it away.
  await rejects(t, bytes.subarray(0, 512 + 2048), ErrorCodes.ARCHIVE_INVALID, 'archive is truncated or not a tar stream: missing end-of-archive marker');
  await rejects(t, Buffer.alloc(0), ErrorCodes.ARCHIVE_INVALID, 'archive is truncated or not a tar stream');
  await rejects(t, Buffer.from('this is not a tar archive at all'.repeat(40)), ErrorCodes.ARCHIVE_INVALID, 'archive is truncated or not a tar stream');
  // The intact archive is fine, so the cuts above are what was refused.
  t.is((await inspect(bytes)).length, 2);
});

test('after a failure every write rejects with it, so the caller can stop reading the upload', async (t) => {
  const bytes = await tarOf([{ name: '../evil', content: 'x' }, { name: 'padding', content: Buffer.alloc(64 * 1024, 1) }]);
  const inspector = new ArchiveInspector(LIMITS);
  let written = 0;
  const failure = await t.throwsAsync(async () => {
    for (; written * 512 < bytes.length; written++) await inspector.write(bytes.subarray(written * 512, (written + 1) * 512));
  });
  t.true(written * 512 < bytes.length / 2, `stopped after ${written} blocks of ${bytes.length / 512}`);
  t.is((failure as EdgemlError).code, ErrorCodes.ARCHIVE_INVALID);
  t.is(await t.throwsAsync(inspector.write(Buffer.alloc(512))), failure);
  t.is(await t.throwsAsync(inspector.finish()), failure);
});

test('abort() fails pending and later calls and is idempotent', async (t) => {
  const inspector = new ArchiveInspector(LIMITS);
  await inspector.write((await tarOf([{ name: 'a', content: 'x' }])).subarray(0, 512));
  const reason = new Error('client went away');
  inspector.abort(reason);
  inspector.abort(new Error('second'));
  t.is(await t.throwsAsync(inspector.write(Buffer.alloc(512))), reason);
  t.is(await t.throwsAsync(inspector.finish()), reason);
});
