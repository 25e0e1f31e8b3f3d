/**
 * The device's own figures for a metrics batch: CPU load, memory, the disk holding the agent's data,
 * temperature, uptime and network bytes. Each figure comes from its own probe with its own deadline:
 * one that fails or hangs (no sensor, a wedged /proc read on a sick board) gives null, never a
 * made-up 0, and never holds up or breaks the others.
 */
import { statfs } from 'node:fs/promises';
import si from 'systeminformation';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { DeviceMetrics } from '../../shared/protocol.js';
import { withDeadline } from './deadline.js';

/** What the sampler reads from the machine, as the system reports it; one call per figure. */
export interface DeviceProbes {
  /** Load over all cores since the previous call, percent. */
  cpuLoad(): Promise<number>;
  memory(): Promise<{ total: number; available: number }>;
  /** The main CPU temperature in °C: null, or -1, where the machine has no sensor. */
  cpuTemperature(): Promise<number | null>;
  uptimeSeconds(): Promise<number>;
  /** Byte counters since boot, per interface. */
  network(): Promise<Array<{ iface: string; rxBytes: number; txBytes: number }>>;
  /** The filesystem holding the agent's data directory, in blocks. */
  filesystem(): Promise<{ blocks: number; bfree: number; bsize: number }>;
}

export function systemProbes(dataDir: string): DeviceProbes {
  return {
    cpuLoad: async () => (await si.currentLoad()).currentLoad,
    memory: async () => {
      const m = await si.mem();
      return { total: m.total, available: m.available };
    },
    cpuTemperature: async () => (await si.cpuTemperature()).main,
    uptimeSeconds: async () => si.time().uptime,
    network: async () => (await si.networkStats('*')).map((n) => ({ iface: n.iface, rxBytes: n.rx_bytes, txBytes: n.tx_bytes })),
    filesystem: () => statfs(dataDir),
  };
}

export interface DeviceSamplerOptions {
  probes: DeviceProbes;
  clock: Clock;
  logger: Logger;
  /** Per probe; default 5 s. */
  timeoutMs?: number;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

const LOOPBACK = 'lo';

const count = (n: number) => Number.isFinite(n) && n >= 0;

function percent(load: number): number | null {
  // Rounding in the counters can put a fully busy machine a hair over 100.
  return count(load) ? Math.min(100, load) : null;
}

function memory(m: { total: number; available: number }): DeviceMetrics['memory'] {
  if (!count(m.total) || m.total === 0 || !count(m.available) || m.available > m.total) return null;
  return { usedBytes: Math.round(m.total - m.available), totalBytes: Math.round(m.total) };
}

function disk(fs: { blocks: number; bfree: number; bsize: number }): DeviceMetrics['disk'] {
  if (![fs.blocks, fs.bfree, fs.bsize].every(count) || fs.bfree > fs.blocks) return null;
  // Like df's Size and Used: blocks reserved for root count as neither used nor free to others.
  return { usedBytes: (fs.blocks - fs.bfree) * fs.bsize, totalBytes: fs.blocks * fs.bsize };
}

function temperature(celsius: number | null): number | null {
  // systeminformation says -1 for "no sensor" on some boards.
  return celsius === null || celsius === -1 || !Number.isFinite(celsius) ? null : celsius;
}

function network(ifaces: Array<{ iface: string; rxBytes: number; txBytes: number }>): DeviceMetrics['network'] {
  const external = ifaces.filter((n) => n.iface !== LOOPBACK);
  // One unreadable counter would make the sum a lie.
  if (!external.every((n) => count(n.rxBytes) && count(n.txBytes))) return null;
  return { rxBytes: external.reduce((sum, n) => sum + n.rxBytes, 0), txBytes: external.reduce((sum, n) => sum + n.txBytes, 0) };
}

/** A function that takes one sample each time it is called. It never rejects. */
export function deviceSampler(o: DeviceSamplerOptions): () => Promise<DeviceMetrics> {
  const p = o.probes;
  const timeoutMs = o.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  // A probe that fails once usually fails every time (no sensor): one warning per probe, not one per interval.
  const warned = new Set<keyof DeviceProbes>();
  const probe = async <T, R>(name: keyof DeviceProbes, read: () => Promise<T>, map: (value: T) => R | null): Promise<R | null> => {
    try {
      return map(await withDeadline(read(), timeoutMs, o.clock, `device probe ${name}`));
    } catch (err) {
      if (!warned.has(name)) {
        warned.add(name);
        o.logger.warn({ probe: name, err: (err as Error).message }, 'a device probe failed; its figure is sent as null');
      }
      return null;
    }
  };
  return async () => {
    const [cpuPercent, mem, fs, temperatureC, uptimeSeconds, net] = await Promise.all([
      probe('cpuLoad', () => p.cpuLoad(), percent),
      probe('memory', () => p.memory(), memory),
      probe('filesystem', () => p.filesystem(), disk),
      probe('cpuTemperature', () => p.cpuTemperature(), temperature),
      probe('uptimeSeconds', () => p.uptimeSeconds(), (s) => (count(s) ? s : null)),
      probe('network', () => p.network(), network),
    ]);
    return { cpuPercent, memory: mem, disk: fs, temperatureC, uptimeSeconds, network: net };
  };
}
