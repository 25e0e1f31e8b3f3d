/**
 * FLEET SIMULATOR (test and benchmark tool, not an agent): N simulated devices in one process that
 * speak the real MQTT protocol v1 to a real hub. Each is enrolled through the hub's REST API,
 * connects like agent/link/hub-link.ts, and runs the agent's real reconcile loop
 * (agent/reconcile/reconciler.ts) over a simulated container engine whose pull, start and health
 * durations and failure rates are configured, reporting on `reported` as the agent does. It exists
 * for scale tests and benchmarks of the hub's rollout controller; the real agent stays the only agent.
 *
 * Everything it starts is bounded (connection attempts, a single scheduler for every simulated
 * timer, the reconcile loops' included) and `stop()` ends all of it. Only loopback hubs are accepted.
 */
import { systemClock, type Clock } from '../../shared/clock.js';
import { SERVICE_PHASES, type ReportedState, type ServicePhase } from '../../shared/protocol.js';
import { enrollDevices } from './enroll.js';
import { deviceIds, resolveOptions, type FleetOptions } from './options.js';
import { Scheduler } from './scheduler.js';
import { SimDevice, type RevisionTimeline, type SimDeviceState } from './sim-device.js';
import { LINK_STATES, type LinkState } from './sim-link.js';

export type { FleetOptions } from './options.js';
export type { SimDeviceState, RevisionTimeline } from './sim-device.js';
export { drawnStepsMs, failureDrawn } from './sim-runtime.js';

export type DevicePhase = ReportedState['phase'] | 'none';
const DEVICE_PHASES: readonly DevicePhase[] = ['none', 'idle', 'reconciling', 'converged', 'failed'];

export interface FleetCounts {
  devices: number;
  connection: Record<LinkState, number>;
  /** Each device's phase in its newest report (`none` before its first). */
  phase: Record<DevicePhase, number>;
  /** Entries of `service` (or of every service) by phase. */
  services: Record<ServicePhase, number>;
  /** Devices by the revision of `service` they serve, `none` for those serving nothing (needs `service`). */
  serving: Record<string, number>;
}

export interface FleetTimelineEntry extends RevisionTimeline {
  deviceId: string;
}

/** The handle a test holds on one device. */
export interface SimulatedDevice {
  readonly id: string;
  /** Drops the connection abruptly: the hub gets the last will, `offline (lost)`. */
  goOffline(): void;
  /** Reconnects; resolves once the device announced itself online again. */
  goOnline(): Promise<void>;
  state(): SimDeviceState;
}

export interface Fleet {
  readonly ids: readonly string[];
  /** How long enrolling every device took. */
  readonly enrollment: { devices: number; ms: number; maxRequestMs: number; concurrency: number };
  /** From the first connection attempt until every device had announced itself online. */
  readonly connectMs: number;
  device(id: string): SimulatedDevice;
  counts(service?: string): FleetCounts;
  /** Every device that got this revision, earliest to serve first (never-served last). */
  timeline(service: string, revision: number): FleetTimelineEntry[];
  /** MQTT PUBLISH packets every device sent and received so far (resends included). */
  messages(): { sent: number; received: number };
  /** Resolves when `predicate(fleet)` holds; checked every 50 ms; rejects with the counts at the timeout. */
  waitFor(predicate: (fleet: Fleet) => boolean, timeoutMs: number, what?: string): Promise<void>;
  /** Closes every connection (abruptly: the hub sees `offline (lost)`) and every timer. */
  stop(): Promise<void>;
}

const WAIT_POLL_MS = 50;

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const o = resolveOptions(options);
  const clock = systemClock;
  const ids = deviceIds(o.idPrefix, o.count);
  const labels = ids.map((_, i) => o.labels(i));

  const enrolled = await enrollDevices(o.hub, ids.map((id, i) => ({ id, labels: labels[i]! })), o.enrollConcurrency, () => clock.now());
  const { tokens } = enrolled;

  const scheduler = new Scheduler(clock);
  const devices = new Map(await Promise.all(ids.map(async (id, index) => [id, await SimDevice.create({ index, id, token: tokens[id]!, labels: labels[index]!, options: o, scheduler, clock })] as const)));
  const waits = new Set<{ timer: unknown; reject: (err: Error) => void }>();
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const w of waits) {
      clock.clearTimeout(w.timer);
      w.reject(new Error('the simulated fleet was stopped'));
    }
    waits.clear();
    await Promise.allSettled([...devices.values()].map((d) => d.stop()));
    scheduler.stop();
  };

  const connectStarted = clock.now();
  try {
    await connectAll([...devices.values()], o.connect.concurrency, o.connect.readyTimeoutMs, clock);
  } catch (err) {
    await stop();
    throw err;
  }
  const connectMs = clock.now() - connectStarted;

  const fleet: Fleet = {
    ids,
    enrollment: { devices: ids.length, ms: enrolled.ms, maxRequestMs: enrolled.maxRequestMs, concurrency: o.enrollConcurrency },
    connectMs,
    device: (id) => {
      const device = devices.get(id);
      if (!device) throw new Error(`fleet simulator: no device ${id} in this fleet`);
      return device;
    },
    counts: (service) => {
      const counts: FleetCounts = { devices: devices.size, connection: zeroes(LINK_STATES), phase: zeroes(DEVICE_PHASES), services: zeroes(SERVICE_PHASES), serving: {} };
      for (const device of devices.values()) {
        const state = device.state();
        counts.connection[state.connection]++;
        counts.phase[state.reported?.phase ?? 'none']++;
        for (const s of state.services) if (service === undefined || s.name === service) counts.services[s.phase]++;
        if (service !== undefined) {
          const serving = String(state.services.find((s) => s.name === service)?.servingRevision ?? 'none');
          counts.serving[serving] = (counts.serving[serving] ?? 0) + 1;
        }
      }
      return counts;
    },
    timeline: (service, revision) => {
      const entries: FleetTimelineEntry[] = [];
      for (const device of devices.values()) {
        const entry = device.revision(service, revision);
        if (entry) entries.push({ deviceId: device.id, ...entry });
      }
      const at = (e: FleetTimelineEntry) => e.runningAt ?? Number.POSITIVE_INFINITY;
      return entries.sort((a, b) => at(a) - at(b) || a.receivedAt - b.receivedAt);
    },
    messages: () => {
      const total = { sent: 0, received: 0 };
      for (const device of devices.values()) {
        const m = device.messages();
        total.sent += m.sent;
        total.received += m.received;
      }
      return total;
    },
    waitFor: (predicate, timeoutMs, what = 'the fleet') => {
      if (stopped) return Promise.reject(new Error('the simulated fleet was stopped'));
      const deadline = clock.now() + timeoutMs;
      return new Promise<void>((resolve, reject) => {
        const wait = { timer: null as unknown, reject };
        const check = () => {
          waits.delete(wait);
          let ok: boolean;
          try {
            ok = predicate(fleet);
          } catch (err) {
            return reject(err as Error);
          }
          if (ok) return resolve();
          if (clock.now() >= deadline) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; fleet: ${JSON.stringify(fleet.counts())}`));
          wait.timer = clock.setTimeout(check, WAIT_POLL_MS);
          waits.add(wait);
        };
        check();
      });
    },
    stop,
  };
  return fleet;
}

/** Starts every device, `concurrency` at a time; fails if the fleet is not online within `timeoutMs`. */
async function connectAll(devices: SimDevice[], concurrency: number, timeoutMs: number, clock: Clock): Promise<void> {
  let next = 0;
  const failed: { first: Error | null } = { first: null };
  const worker = async (): Promise<void> => {
    for (let i = next++; i < devices.length && !failed.first; i = next++) {
      await devices[i]!.start().catch((err: Error) => {
        failed.first ??= err;
      });
    }
  };
  let timer: unknown;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error(`fleet simulator: ${devices.filter((d) => d.state().connection === 'online').length} of ${devices.length} devices online after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker)), timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
  if (failed.first) throw failed.first;
}
