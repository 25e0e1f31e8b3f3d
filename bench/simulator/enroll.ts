/**
 * Enrolls the simulated devices through the hub's REST API, as an operator's script would, a few
 * requests at a time, and times it: how long enrollment takes is itself a number worth knowing.
 */
import { request } from 'undici';
import type { Labels } from '../../shared/api/devices.js';
import type { FleetHub } from './options.js';

export interface Enrollment {
  tokens: Record<string, string>;
  /** Wall time of the whole enrollment. */
  ms: number;
  /** Slowest single request. */
  maxRequestMs: number;
}

const REQUEST_TIMEOUT_MS = 30_000;

export async function enrollDevices(hub: FleetHub, devices: ReadonlyArray<{ id: string; labels: Labels }>, concurrency: number, now: () => number): Promise<Enrollment> {
  const tokens: Record<string, string> = {};
  let maxRequestMs = 0;
  const started = now();
  let next = 0;
  const enrollOne = async ({ id, labels }: { id: string; labels: Labels }): Promise<void> => {
    const t0 = now();
    const res = await request(`${hub.url}/api/v1/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, labels }),
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    const text = await res.body.text();
    if (res.statusCode !== 201) throw new Error(`fleet simulator: enrolling ${id} answered ${res.statusCode}: ${text}`);
    tokens[id] = (JSON.parse(text) as { token: string }).token;
    maxRequestMs = Math.max(maxRequestMs, now() - t0);
  };
  const worker = async (): Promise<void> => {
    for (let i = next++; i < devices.length; i = next++) {
      try {
        await enrollOne(devices[i]!);
      } catch (err) {
        // The other workers stop too: a hub that refuses one device will refuse the rest.
        next = devices.length;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker));
  return { tokens, ms: now() - started, maxRequestMs };
}
