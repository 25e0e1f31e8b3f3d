/**
 * The fleet page's figures, worked out from one device list: the label selector its URL carries,
 * counts by status, label and platform, and why a device needs attention. Plain functions, no DOM.
 */
import type { Device, DeviceStatus } from '../../../shared/api/devices.js';

export const STATUSES: readonly DeviceStatus[] = ['online', 'offline', 'revoked', 'never-connected'];

export type Selector = Record<string, string>;

/**
 * `site=a` or `site=a,ring=canary` (commas or spaces between pairs): every pair must match, as the
 * API's repeated `label` query. Label keys and values never hold `,`, `=` or spaces, so the text is unambiguous.
 */
export function parseSelector(text: string): { selector: Selector } | { error: string } {
  const selector: Selector = {};
  for (const pair of text.split(/[\s,]+/).filter(Boolean)) {
    const [key, value, extra] = pair.split('=');
    if (!key || value === undefined || value === '' || extra !== undefined) return { error: `“${pair}” is not key=value (for example site=lab)` };
    selector[key] = value;
  }
  return { selector };
}

export const formatSelector = (selector: Selector): string =>
  Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export const matchesSelector = (device: Device, selector: Selector): boolean => Object.entries(selector).every(([k, v]) => Object.hasOwn(device.labels, k) && device.labels[k] === v);

export function countByStatus(devices: readonly Device[]): Record<DeviceStatus, number> {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<DeviceStatus, number>;
  for (const d of devices) counts[d.status] += 1;
  return counts;
}

const byName = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/** Each label key with its values and how many devices carry each, keys and values sorted. */
export function countByLabel(devices: readonly Device[]): { key: string; values: { value: string; count: number }[] }[] {
  const keys = new Map<string, Map<string, number>>();
  for (const d of devices) {
    for (const [k, v] of Object.entries(d.labels)) {
      const values = keys.get(k) ?? new Map<string, number>();
      values.set(v, (values.get(v) ?? 0) + 1);
      keys.set(k, values);
    }
  }
  return [...keys]
    .sort(([a], [b]) => byName(a, b))
    .map(([key, values]) => ({ key, values: [...values].sort(([a], [b]) => byName(a, b)).map(([value, count]) => ({ value, count })) }));
}

/** Devices that never connected have reported no facts: their platform is `unknown`. */
export const platformOf = (d: Device): string => d.facts?.platform ?? 'unknown';

export function countByPlatform(devices: readonly Device[]): { platform: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const d of devices) counts.set(platformOf(d), (counts.get(platformOf(d)) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => byName(a, b)).map(([platform, count]) => ({ platform, count }));
}

/** A device whose observed generation is behind what the hub asked of it (not yet reported counts as behind). */
export const isLagging = (d: Device): boolean => d.desiredGeneration !== null && (d.observedGeneration ?? 0) < d.desiredGeneration;

/** Why an operator should look at a device; empty when nothing is wrong. A revoked device is done with. */
export function attentionReasons(d: Device): string[] {
  if (d.status === 'revoked') return [];
  const reasons: string[] = [];
  if (d.phase === 'failed') reasons.push('failed');
  if (isLagging(d)) reasons.push(`lagging: generation ${d.observedGeneration ?? 'none'} of ${d.desiredGeneration}`);
  if (d.status === 'offline' && d.services.length > 0) reasons.push(`offline with ${d.services.length} service${d.services.length === 1 ? '' : 's'}`);
  return reasons;
}

export const sortDevices = (devices: readonly Device[]): Device[] => [...devices].sort((a, b) => byName(a.id, b.id));
