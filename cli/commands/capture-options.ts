/**
 * Data capture flags: `deploy --capture-rate R --capture-max-body SIZE --capture-redact a,b` and
 * `service capture SERVICE --rate R --max-body SIZE --redact a,b` take the same values. Checked here
 * against the protocol's bounds, so a refusal names the flag as typed.
 */
import { captureOff } from '../../shared/api/deployments.js';
import { CaptureSettings, MAX_CAPTURE_BODY_BYTES } from '../../shared/protocol.js';
import { formatBytes, parseSize, SIZE_PATTERN } from '../../shared/size.js';
import { inputError } from '../args.js';
import { formatList } from '../output.js';

export interface CaptureFlags {
  rate?: number;
  maxBody?: number;
  redact?: string[];
}

const MAX_REDACT = CaptureSettings.properties.redact.maxItems!;
const MAX_FIELD_NAME = CaptureSettings.properties.redact.items.maxLength!;

export function parseRate(flag: string) {
  return (text: string): number => {
    const rate = Number(text);
    if (!/^(\d+(\.\d+)?|\.\d+)$/.test(text) || rate > 1) throw inputError(`${flag} ${JSON.stringify(text)}: expected a share of requests from 0 (off) to 1 (all), e.g. 0.1`);
    return rate;
  };
}

export function parseMaxBody(flag: string) {
  return (text: string): number => {
    const bytes = new RegExp(SIZE_PATTERN).test(text) ? parseSize(text) : 0;
    if (bytes < 1 || bytes > MAX_CAPTURE_BODY_BYTES) throw inputError(`${flag} ${JSON.stringify(text)}: expected a size from 1 byte to ${formatBytes(MAX_CAPTURE_BODY_BYTES)}, e.g. 16k`);
    return bytes;
  };
}

/** Comma-separated field names; `""` for none. */
export function parseRedact(flag: string) {
  return (text: string): string[] => {
    const names = text.trim() === '' ? [] : text.split(',').map((n) => n.trim());
    if (names.some((n) => n === '' || n.length > MAX_FIELD_NAME) || names.length > MAX_REDACT) {
      throw inputError(`${flag} ${JSON.stringify(text)}: expected up to ${MAX_REDACT} comma-separated JSON field names of 1–${MAX_FIELD_NAME} characters, e.g. password,ssn ("" for none)`);
    }
    return names;
  };
}

/** The flags given, over `base`: the settings the service has, or capture off for a new one. */
export function captureSettings(flags: CaptureFlags, base: CaptureSettings = captureOff()): CaptureSettings {
  return { rate: flags.rate ?? base.rate, maxBodyBytes: flags.maxBody ?? base.maxBodyBytes, redact: flags.redact ?? base.redact };
}

export function formatCapture(c: CaptureSettings): string {
  if (c.rate === 0) return 'off';
  return `rate ${c.rate}, bodies up to ${formatBytes(c.maxBodyBytes)}, redact ${formatList(c.redact)}`;
}
