/**
 * The bytes of one outbox batch file. The rename in `writeFileDurably` already keeps torn writes out
 * of sight, so the lengths and checksum are for what it cannot prevent: a filesystem that loses
 * data blocks on power loss (ext4 without data=ordered, some FAT on SD cards), a failing card, or a
 * human copying files around. Lengths are checked at open from the header alone (cheap: no payload
 * read for a queue that may be tens of MiB on a slow card); the checksum when the batch is read to
 * be sent.
 *
 *   0  magic 'EMOB'   4  version (1)   5  lane (0 metrics, 1 capture, 2 feedback, 3 logs)   6  id length (u16 BE)
 *   8  payload length (u32 BE)   12  CRC-32 of id bytes then payload (u32 BE)   16  id   …  payload
 */
import { crc32 } from 'node:zlib';

/** In the order of their codes in the file header: a new lane is appended. */
export const LANES = ['metrics', 'capture', 'feedback', 'logs'] as const;
export type Lane = (typeof LANES)[number];

export const HEADER_BYTES = 16;
/** Ids are made by the caller (a UUID is 36 bytes); the bound keeps a header read to one small read. */
export const MAX_ID_BYTES = 128;

const MAGIC = 0x454d4f42;
const VERSION = 1;

export function encodeBatch(lane: Lane, id: string, payload: Uint8Array): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  const out = Buffer.allocUnsafe(HEADER_BYTES + idBytes.length + payload.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt8(VERSION, 4);
  out.writeUInt8(LANES.indexOf(lane), 5);
  out.writeUInt16BE(idBytes.length, 6);
  out.writeUInt32BE(payload.length, 8);
  out.writeUInt32BE(crc32(payload, crc32(idBytes)), 12);
  idBytes.copy(out, HEADER_BYTES);
  out.set(payload, HEADER_BYTES + idBytes.length);
  return out;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface BatchHeader {
  lane: Lane;
  id: string;
  payloadBytes: number;
}

/** `head` is at least the first HEADER_BYTES + MAX_ID_BYTES bytes of the file (or all of it). */
export function decodeHeader(head: Buffer, fileBytes: number): Decoded<BatchHeader> {
  if (head.length < HEADER_BYTES) return { ok: false, reason: 'shorter than a header' };
  if (head.readUInt32BE(0) !== MAGIC) return { ok: false, reason: 'not an outbox batch' };
  if (head.readUInt8(4) !== VERSION) return { ok: false, reason: `unsupported version ${head.readUInt8(4)}` };
  const lane = LANES[head.readUInt8(5)];
  if (lane === undefined) return { ok: false, reason: 'unknown lane' };
  const idBytes = head.readUInt16BE(6);
  const payloadBytes = head.readUInt32BE(8);
  if (idBytes === 0 || idBytes > MAX_ID_BYTES) return { ok: false, reason: 'bad id length' };
  if (fileBytes !== HEADER_BYTES + idBytes + payloadBytes) {
    return { ok: false, reason: `${fileBytes} bytes where the header says ${HEADER_BYTES + idBytes + payloadBytes} (truncated or extended)` };
  }
  if (head.length < HEADER_BYTES + idBytes) return { ok: false, reason: 'shorter than its id' };
  return { ok: true, value: { lane, id: head.subarray(HEADER_BYTES, HEADER_BYTES + idBytes).toString('utf8'), payloadBytes } };
}

/** The whole file: the header checks, then the checksum. */
export function decodeBatch(file: Buffer): Decoded<BatchHeader & { bytes: Buffer }> {
  const header = decodeHeader(file, file.length);
  if (!header.ok) return header;
  const idEnd = HEADER_BYTES + file.readUInt16BE(6);
  const bytes = file.subarray(idEnd);
  if (crc32(bytes, crc32(file.subarray(HEADER_BYTES, idEnd))) !== file.readUInt32BE(12)) return { ok: false, reason: 'checksum mismatch' };
  return { ok: true, value: { ...header.value, bytes } };
}
