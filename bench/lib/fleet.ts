/**
 * Rollouts to a simulated fleet (bench/simulator/) on a real hub (hub.ts), timed from the request
 * until both sides have settled: what `npm run bench:fleet` (fleet-sim.ts) and the rollout-scale
 * benchmark share.
 */
import type { DeviceList, Labels } from '../../shared/api/devices.js';
import type { Fleet } from '../simulator/fleet-simulator.js';
import { call, type Hub } from './hub.js';

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * The value at index ⌊q·n⌋ of sorted values (the last one for q = 1). Not stats.ts's nearest rank:
 * this is how fleet-sim has always reported its percentiles, and its figures stay comparable.
 */
function quantile(sorted: readonly number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

export interface RolloutResult {
  revision: number;
  requestMs: number;
  /** Until every device in the simulator had run the revision or failed it. */
  simSettledMs: number;
  /** Until the hub's rollout was over (and, with `checkDevices`, it saw every device observe its generation). */
  hubSettledMs: number;
  running: number;
  failed: number;
  runningAtMs: { first: number; p50: number; p95: number; last: number };
}

export interface RolloutOptions {
  service: string;
  /** The deployment's target: the devices listed when `checkDevices`. */
  labels: Labels;
  revision: number;
  /** Sends the deploy or update request. */
  send: () => Promise<unknown>;
  timeoutMs: number;
  /** How often the hub is asked once the simulator has settled. */
  pollMs?: number;
  /**
   * Also list the devices and wait until each observed its desired generation (one GET of the
   * whole fleet per poll: with thousands of devices that is load on the hub being measured).
   */
  checkDevices?: boolean;
}

/** Runs one rollout (a deploy or an update) and waits until both sides have settled, or fails at `timeoutMs`. */
export async function rollout(hub: Hub, fleet: Fleet, o: RolloutOptions): Promise<RolloutResult> {
  const t0 = Date.now();
  await o.send();
  const requestMs = Date.now() - t0;
  const settled = (f: Fleet) => {
    const entries = f.timeline(o.service, o.revision);
    return entries.length === f.ids.length && entries.every((e) => e.runningAt !== null || e.failedAt !== null);
  };
  // A staged rollout moves devices batch by batch, or rolls back: until the hub says it is over
  // (its rollout phase), "every device settled" is not the end.
  const hubSettled = async () => {
    const deployment = await call<{ rollout: { phase?: string } }>(hub, 'GET', `/api/v1/deployments/${o.service}`);
    if (deployment.rollout.phase === 'running' || deployment.rollout.phase === 'paused') return false;
    if (!o.checkDevices) return true;
    const selector = Object.entries(o.labels).map(([k, v]) => `label=${encodeURIComponent(`${k}=${v}`)}`).join('&');
    const { devices } = await call<DeviceList>(hub, 'GET', `/api/v1/devices?${selector}`);
    return devices.every((d) => d.observedGeneration === d.desiredGeneration && (d.phase === 'converged' || d.phase === 'failed'));
  };
  await fleet.waitFor(settled, o.timeoutMs, `every device to run or fail revision ${o.revision}`);
  const simSettledMs = Date.now() - t0;
  while (!(await hubSettled())) {
    if (Date.now() - t0 > o.timeoutMs) throw new Error(`the hub did not settle revision ${o.revision} within ${seconds(o.timeoutMs)}`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
  const hubSettledMs = Date.now() - t0;

  const entries = fleet.timeline(o.service, o.revision);
  const times = entries.flatMap((e) => (e.runningAt === null ? [] : [e.runningAt - t0])).sort((a, b) => a - b);
  return {
    revision: o.revision,
    requestMs,
    simSettledMs,
    hubSettledMs,
    running: times.length,
    failed: entries.filter((e) => e.runningAt === null).length,
    runningAtMs: { first: quantile(times, 0), p50: quantile(times, 0.5), p95: quantile(times, 0.95), last: quantile(times, 1) },
  };
}
