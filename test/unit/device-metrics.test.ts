/**
 * Device metrics (agent/telemetry/device-metrics.ts) from stand-in probes: how each system figure
 * maps onto the protocol, and that a probe that throws or hangs gives null without touching the
 * others. The real probes on this machine are checked in test/integration/agent-telemetry.test.ts.
 */
import test from 'ava';
import { pino } from 'pino';
import { deviceSampler, type DeviceProbes } from '../../agent/telemetry/device-metrics.js';
import { decodeMessage } from '../../shared/protocol.js';
import { ManualClock } from '../helpers/fake-clock.js';
import { metricsBatch } from '../helpers/telemetry-batches.js';

const GiB = 2 ** 30;

function probes(overrides: Partial<DeviceProbes> = {}): DeviceProbes {
  return {
    cpuLoad: async () => 37.5,
    memory: async () => ({ total: 8 * GiB, available: 6 * GiB }),
    cpuTemperature: async () => 51.2,
    uptimeSeconds: async () => 3600.5,
    network: async () => [
      { iface: 'lo', rxBytes: 1_000_000, txBytes: 1_000_000 },
      { iface: 'eth0', rxBytes: 500, txBytes: 70 },
      { iface: 'wlan0', rxBytes: 20, txBytes: 3 },
    ],
    filesystem: async () => ({ blocks: 1000, bfree: 250, bsize: 4096 }),
    ...overrides,
  };
}

/** A logger that keeps its warnings. */
function recordingLogger() {
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, warnings };
}

const sampler = (p: DeviceProbes, clock = new ManualClock(0)) => deviceSampler({ probes: p, clock, logger: pino({ level: 'silent' }), timeoutMs: 1000 });

test('system figures map onto the protocol: used memory is total minus available, disk like df, loopback left out', async (t) => {
  const sample = await sampler(probes())();
  t.deepEqual(sample, {
    cpuPercent: 37.5,
    memory: { usedBytes: 2 * GiB, totalBytes: 8 * GiB },
    disk: { usedBytes: 750 * 4096, totalBytes: 1000 * 4096 },
    temperatureC: 51.2,
    uptimeSeconds: 3600.5,
    network: { rxBytes: 520, txBytes: 73 },
  });
  t.true(decodeMessage('telemetry', JSON.stringify(metricsBatch({ device: sample }))).ok, 'a valid batch carries it');
});

test('a probe that throws gives null for its figure only, and is warned about once', async (t) => {
  const { logger, warnings } = recordingLogger();
  const sample = deviceSampler({
    probes: probes({
      memory: async () => {
        throw new Error('no /proc/meminfo');
      },
    }),
    clock: new ManualClock(0),
    logger,
  });
  const first = await sample();
  t.is(first.memory, null);
  t.is(first.cpuPercent, 37.5);
  t.deepEqual(first.network, { rxBytes: 520, txBytes: 73 });
  await sample();
  t.is(warnings.length, 1);
  t.is(warnings[0]!.probe, 'memory');
});

test('a probe that never answers gives null once its deadline passes; the rest are not held up', async (t) => {
  const clock = new ManualClock(0);
  const pending = sampler(probes({ cpuTemperature: () => new Promise(() => undefined) }), clock)();
  // Let the other probes settle, then pass the deadline.
  await new Promise((r) => setImmediate(r));
  clock.advance(1000);
  const sample = await pending;
  t.is(sample.temperatureC, null);
  t.is(sample.uptimeSeconds, 3600.5);
  t.is(clock.pending(), 0, 'no deadline timer is left behind');
});

test('no sensor (-1 or null) is null, never 0; odd values are null rather than invalid', async (t) => {
  t.is((await sampler(probes({ cpuTemperature: async () => -1 }))()).temperatureC, null);
  t.is((await sampler(probes({ cpuTemperature: async () => null }))()).temperatureC, null);
  t.is((await sampler(probes({ cpuTemperature: async () => -12.5 }))()).temperatureC, -12.5, 'a cold outdoor box is not "unknown"');
  const odd = await sampler(
    probes({
      cpuLoad: async () => Number.NaN,
      memory: async () => ({ total: 0, available: 0 }),
      uptimeSeconds: async () => -3,
      network: async () => [{ iface: 'eth0', rxBytes: Number.NaN, txBytes: 1 }],
      filesystem: async () => ({ blocks: 10, bfree: 20, bsize: 4096 }),
    }),
  )();
  t.deepEqual(odd, { cpuPercent: null, memory: null, disk: null, temperatureC: 51.2, uptimeSeconds: null, network: null });
  t.true(decodeMessage('telemetry', JSON.stringify(metricsBatch({ device: odd }))).ok);
});

test('CPU load a hair over 100 (counter rounding) is capped; a machine with only loopback has 0 network bytes', async (t) => {
  const sample = await sampler(probes({ cpuLoad: async () => 100.4, network: async () => [{ iface: 'lo', rxBytes: 9, txBytes: 9 }] }))();
  t.is(sample.cpuPercent, 100);
  t.deepEqual(sample.network, { rxBytes: 0, txBytes: 0 });
});
