/** Byte sizes in flags and config (`512k`, `100m`, `2g`) and in messages (`12.3 MB`). */
import { EdgemlError, ErrorCodes } from './errors.js';

export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?([kKmMgGtT]?([iI]?[bB])?)?$';
export const SIZE_EXAMPLES = ['512k', '100m', '2g'];

const UNIT: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Binary units, case-insensitive: `1k` = `1kb` = `1kib` = 1024 bytes. */
export function parseSize(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `${JSON.stringify(text)} is not a size (like ${SIZE_EXAMPLES.join(', ')})`);
  return Math.floor(Number(m[1]) * UNIT[m[2]!.toLowerCase()]!);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  // Compare after rounding, so 1048575 shows as `1.0 MB`, not `1024.0 KB`.
  while (unit < units.length - 1 && (unit === 0 ? Math.round(value) : Number(value.toFixed(1))) >= 1024) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}
