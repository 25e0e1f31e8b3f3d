/**
 * Data capture (issue 7 part 2): which scoring requests are sampled, and what of their bodies may
 * leave the device. Pure: the gateway decides and tees, the capture buffer batches.
 *
 * Redaction needs the whole body parsed, so bodies are kept up to CAPTURE_KEEP_BYTES: within it a
 * JSON body is parsed, redacted and re-serialized before it is cut at the cap; a larger one (or one
 * that is not JSON) cannot be redacted, so with fields to redact it is withheld, and without them
 * its first bytes are kept as text. JSON is recognised by parsing, not by the content type: curl
 * sends JSON as a form by default, and a header cannot make redaction safe anyway.
 */
import type { CapturedBody, CaptureSettings } from '../../shared/protocol.js';

export const REDACTED = '[redacted]';

/** The most of one body the gateway keeps for a sample: enough to parse, redact and then cut. */
export const CAPTURE_KEEP_BYTES = 1024 * 1024;

/** `random` returns [0, 1): a rate of 1 always samples, 0 (or no settings) never. */
export function sampled(settings: CaptureSettings | undefined, random: () => number): settings is CaptureSettings {
  return settings !== undefined && settings.rate > 0 && random() < settings.rate;
}

/** What the gateway kept of one body: its first bytes (all of it when `kept.length === bytes`). */
export interface KeptBody {
  kept: Buffer;
  /** The size of the whole body as it went over the wire. */
  bytes: number;
}

export function capturedBody(body: KeptBody, settings: CaptureSettings): CapturedBody {
  const { kept, bytes } = body;
  if (bytes === 0) return { text: '', bytes, truncated: false };
  const complete = kept.length === bytes;
  const json = complete ? redactedJson(kept, new Set(settings.redact.map((name) => name.toLowerCase()))) : undefined;
  if (json !== undefined) {
    const serialized = Buffer.from(json.text);
    if (serialized.length <= settings.maxBodyBytes) return { json: json.value, bytes, truncated: false };
    return { ...utf8Prefix(serialized, settings.maxBodyBytes), bytes };
  }
  // Not JSON, or too large to parse: what it holds cannot be redacted.
  if (settings.redact.length > 0) return { bytes, truncated: !complete, withheld: true };
  const prefix = utf8Prefix(kept, settings.maxBodyBytes);
  return { ...prefix, bytes, truncated: prefix.truncated || !complete };
}

/** The body parsed, redacted and serialized again; undefined when it is not JSON (or nested too deep to walk). */
function redactedJson(body: Buffer, names: ReadonlySet<string>): { value: unknown; text: string } | undefined {
  try {
    const value = redact(JSON.parse(body.toString('utf8')), names);
    return { value, text: JSON.stringify(value) };
  } catch {
    return undefined;
  }
}

/** `names` in lower case: `Password` and `PASSWORD` are the field a deployment called `password`. */
function redact(value: unknown, names: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, names));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, names.has(k.toLowerCase()) ? REDACTED : redact(v, names)]));
}

/** The longest prefix of `bytes` that ends on a character boundary within `max`. */
function boundary(bytes: Buffer, max: number): number {
  if (bytes.length <= max) return bytes.length;
  let end = max;
  // Back off continuation bytes (10xxxxxx): the character they belong to starts before the cut.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return end;
}

/** The first bytes as text, at most `max` bytes of UTF-8, never ending in half a character; `truncated` if anything was cut. */
function utf8Prefix(bytes: Buffer, max: number): { text: string; truncated: boolean } {
  const end = boundary(bytes, max);
  const text = bytes.subarray(0, end).toString('utf8');
  // Bytes that are not UTF-8 decode as U+FFFD, three bytes each: the text may have grown past the cap.
  const encoded = Buffer.from(text);
  if (encoded.length <= max) return { text, truncated: end < bytes.length };
  return { text: encoded.subarray(0, boundary(encoded, max)).toString('utf8'), truncated: true };
}
