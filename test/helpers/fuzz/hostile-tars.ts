/**
 * Hostile tar archives for model uploads, each with what a safe hub must do with it. Entries that
 * try to escape name `marker`, so a test can look for that name outside the hub's data directory.
 * Most are written with tar-stream (test/helpers/tar.ts); what no packer writes (lying sizes, cut
 * headers) is patched into its bytes.
 */
import { tarOf, type TarSpec } from '../tar.js';
import type { Random } from './random.js';

export interface HostileTar {
  label: string;
  tar: Buffer;
  /** `refuse`: a 4xx naming `mentions`; `accept`: safe, must be stored; `either`: safe if stored. */
  expect: 'refuse' | 'accept' | 'either';
  mentions?: string;
}

const BLOCK = 512;
const SIZE_FIELD = { offset: 124, length: 12 };
const CHECKSUM_FIELD = { offset: 148, length: 8 };

function writeChecksum(tar: Buffer, header: number): void {
  tar.fill(0x20, header + CHECKSUM_FIELD.offset, header + CHECKSUM_FIELD.offset + CHECKSUM_FIELD.length);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += tar[header + i]!;
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, header + CHECKSUM_FIELD.offset, 'latin1');
}

/** A copy of `tar` whose header at `header` announces `size` bytes (base-256 beyond octal's range). */
export function withAnnouncedSize(tar: Buffer, header: number, size: bigint): Buffer {
  const out = Buffer.from(tar);
  const at = header + SIZE_FIELD.offset;
  if (size < 8n ** 11n) {
    out.write(`${size.toString(8).padStart(11, '0')}\0`, at, 'latin1');
  } else {
    out.fill(0, at, at + SIZE_FIELD.length);
    out[at] = 0x80;
    let rest = size;
    for (let i = SIZE_FIELD.length - 1; i > 0 && rest > 0n; i--, rest >>= 8n) out[at + i] = Number(rest & 0xffn);
  }
  writeChecksum(out, header);
  return out;
}

/** A copy of `tar` with one header byte changed and the checksum made valid again. */
function withHeaderByte(tar: Buffer, header: number, offset: number, byte: number): Buffer {
  const out = Buffer.from(tar);
  out[header + offset] = byte;
  writeChecksum(out, header);
  return out;
}

const file = (name: string, content: string | Buffer = 'x'): TarSpec => ({ name, type: 'file', mode: 0o644, content });

export async function hostileTars(marker: string, limits: { maxFiles: number }): Promise<HostileTar[]> {
  const refuse = async (label: string, specs: TarSpec[], mentions?: string): Promise<HostileTar> => ({ label, tar: await tarOf(specs), expect: 'refuse', mentions });
  const one = await tarOf([file('weights.bin', 'abcdef')]);
  const cases: HostileTar[] = [
    await refuse('absolute path', [file(`/tmp/${marker}`)], marker),
    await refuse('dot-dot', [file(`../${marker}`)], marker),
    await refuse('dot-dot deep', [file(`model/../../../../tmp/${marker}`)], marker),
    await refuse('dot-dot after dot', [file(`./../${marker}`)], marker),
    await refuse('symlink absolute', [{ name: 'link', type: 'symlink', linkname: `/tmp/${marker}` }], 'link'),
    await refuse('symlink climbing', [{ name: 'model/link', type: 'symlink', linkname: `../../${marker}` }], 'link'),
    await refuse('symlink to a symlink climbing', [
      { name: 'a', type: 'symlink', linkname: 'b/..' },
      { name: 'b', type: 'symlink', linkname: '..' },
    ]),
    await refuse('file through a symlink', [{ name: 'dir', type: 'symlink', linkname: '.' }, file('dir/x')], 'dir'),
    await refuse('file through an escaping symlink', [{ name: 'up', type: 'symlink', linkname: '..' }, file(`up/${marker}`)], 'up'),
    await refuse('symlink loop', [
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: 'a' },
    ]),
    await refuse('hardlink absolute', [{ name: 'hl', type: 'link', linkname: '/etc/passwd' }], 'hl'),
    await refuse('hardlink climbing', [{ name: 'hl', type: 'link', linkname: `../${marker}` }], 'hl'),
    await refuse('hardlink to nothing', [{ name: 'hl', type: 'link', linkname: 'missing' }], 'hl'),
    await refuse('character device', [{ name: 'tty', type: 'character-device', devmajor: 5, devminor: 0 }], 'tty'),
    await refuse('block device', [{ name: 'disk', type: 'block-device', devmajor: 8, devminor: 0 }], 'disk'),
    await refuse('fifo', [{ name: 'pipe', type: 'fifo' }], 'pipe'),
    await refuse('duplicate entries', [file('a', '1'), file('a', '2')], 'a'),
    await refuse('duplicate after normalizing', [file('model/a'), file('./model//a')], 'a'),
    await refuse('file then directory of one name', [file('x'), { name: 'x/', type: 'directory' }, file('x/y')], 'x'),
    await refuse('segment over 255 bytes', [file(`${'n'.repeat(256)}`)]),
    await refuse('path over 4096 bytes', [file(`${'d/'.repeat(2100)}f`)]),
    await refuse('pax path climbing', [{ ...file('safe.bin'), pax: { path: `../${marker}` } }], marker),
    await refuse('pax path absolute', [{ ...file('safe.bin'), pax: { path: `/tmp/${marker}` } }], marker),
    await refuse('pax linkpath climbing', [{ name: 'l', type: 'symlink', linkname: 'ok', pax: { linkpath: `../../${marker}` } }], 'l'),
    await refuse('no entries at all', []),
    await refuse('only a directory', [{ name: 'model/', type: 'directory' }]),
    await refuse(
      'more entries than allowed',
      Array.from({ length: limits.maxFiles + 5 }, (_, i) => file(`f${i}`)),
    ),
    { label: 'huge announced size', tar: withAnnouncedSize(one, 0, 8n * 1024n ** 3n), expect: 'refuse' },
    { label: 'size beyond octal (base-256)', tar: withAnnouncedSize(one, 0, 2n ** 62n), expect: 'refuse' },
    { label: 'truncated content', tar: one.subarray(0, BLOCK + 3), expect: 'refuse' },
    { label: 'truncated header', tar: one.subarray(0, 300), expect: 'refuse' },
    { label: 'header without end blocks', tar: one.subarray(0, BLOCK * 2), expect: 'either' },
    { label: 'bad checksum', tar: (() => { const b = Buffer.from(one); b[0] = 0x41; return b; })(), expect: 'refuse' },
    { label: 'unknown type flag', tar: withHeaderByte(one, 0, 156, 'X'.charCodeAt(0)), expect: 'refuse' },
    { label: 'GNU sparse flag', tar: withHeaderByte(one, 0, 156, 'S'.charCodeAt(0)), expect: 'refuse' },
    { label: 'not a tar at all', tar: Buffer.from('this is not a tar archive, just text\n'.repeat(40)), expect: 'refuse' },
    { label: 'only zero blocks', tar: Buffer.alloc(BLOCK * 4), expect: 'refuse' },
    // Safe ones: refusing them would be a bug too.
    { label: 'plain model', tar: await tarOf([{ name: 'model/', type: 'directory' }, file('model/w.bin', 'weights'), { name: 'model/cur', type: 'symlink', linkname: 'w.bin' }]), expect: 'accept' },
    { label: 'segment of 255 bytes', tar: await tarOf([file('s'.repeat(255))]), expect: 'accept' },
    { label: 'hardlink inside', tar: await tarOf([file('a', 'data'), { name: 'b', type: 'link', linkname: 'a' }]), expect: 'either' },
    { label: 'setuid bits', tar: await tarOf([{ ...file('run.sh', '#!/bin/sh\n'), mode: 0o6777 }]), expect: 'either' },
    { label: 'backslashes and drive letters', tar: await tarOf([file('a\\..\\..\\evil'), file('C:/x')]), expect: 'either' },
    { label: 'unicode names', tar: await tarOf([file('é'), file('e\u0301'), file('😀/ß')]), expect: 'either' },
    { label: 'dangling symlink inside', tar: await tarOf([file('x'), { name: 'l', type: 'symlink', linkname: 'nothing-here' }]), expect: 'either' },
  ];
  return cases;
}

/** A random archive-like body: a valid small tree, a hostile one, or tar bytes with random damage. */
export async function randomTarish(rng: Random, hostile: readonly HostileTar[]): Promise<Buffer> {
  const choice = rng.int(0, 3);
  if (choice === 0) return rng.pick(hostile).tar;
  const specs = Array.from({ length: rng.int(1, 6) }, (_, i) => file(`m${rng.int(0, 3)}/f${i}`, rng.bytes(rng.int(0, 2000))));
  const tar = await tarOf(specs);
  if (choice === 1) return tar;
  const damaged = Buffer.from(tar);
  for (let i = rng.int(1, 8); i > 0; i--) damaged[rng.int(0, damaged.length - 1)] = rng.int(0, 255);
  return choice === 2 ? damaged : damaged.subarray(0, rng.int(0, damaged.length));
}
