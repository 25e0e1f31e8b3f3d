/**
 * `edgeml telemetry` rendering (cli/commands/telemetry.ts): a device's series one row per sample
 * to the second with a sparkline per figure, within 100 columns; a service's custom figures.
 */
import test from 'ava';
import { renderDeviceTelemetry, renderServiceTelemetry, sparkline, SPARKLINE_WIDTH } from '../../cli/commands/telemetry.js';
import type { DeviceTelemetry, ServiceTelemetry } from '../../shared/api/telemetry.js';

const GiB = 1024 ** 3;

function deviceReport(points: number, startIso = '2025-03-01T08:00:00.000Z', stepMs = 10_000): DeviceTelemetry {
  const start = Date.parse(startIso);
  return {
    device: 'gw-1',
    since: startIso,
    until: new Date(start + points * stepMs).toISOString(),
    samples: points,
    latest: null,
    series: Array.from({ length: points }, (_, i) => ({
      ts: new Date(start + i * stepMs + 123).toISOString(),
      cpuPercent: i === 3 ? null : (i * 7) % 100,
      memoryUsedBytes: Math.round(GiB * (1 + i / points)),
      memoryTotalBytes: 4 * GiB,
      diskUsedBytes: 10 * GiB,
      diskTotalBytes: 64 * GiB,
      temperatureC: 40 + (i % 10),
    })),
    invalidMessages: 0,
  };
}

test('sparkline: one character per point from ▁ to █, a gap for a missing one, averaged down to the width', (t) => {
  t.is(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█');
  t.is(sparkline([5, null, 5]), '▁ ▁');
  t.is(sparkline([null, null]), '');
  const long = sparkline(Array.from({ length: 120 }, (_, i) => i));
  t.is(long.length, SPARKLINE_WIDTH);
  t.is(long.at(0), '▁');
  t.is(long.at(-1), '█');
});

test('device: one row per sample with the time to the second (no ms), trends as sparklines, all within 100 columns', (t) => {
  const text = renderDeviceTelemetry(deviceReport(120));
  const lines = text.split('\n');
  t.true(lines.every((l) => [...l].length <= 100), lines.find((l) => [...l].length > 100));
  t.regex(text, /^08:00:10 +7\.0% +1\.0 GB 25% +10\.0 GB 16% +41\.0 °C$/m);
  t.notRegex(text, /\.\d{3}Z/, 'no milliseconds');
  t.regex(text, /^cpu trend: +[▁▂▃▄▅▆▇█ ]+ 0\.0–99\.0%$/m);
  t.regex(text, /^temperature trend: +[▁▂▃▄▅▆▇█ ]+ 40\.0–49\.0 °C$/m);
});

test('device: a series over more than one day shows the date with each time', (t) => {
  const text = renderDeviceTelemetry(deviceReport(3, '2025-03-01T23:59:50.000Z'));
  t.regex(text, /^03-01 23:59:50 /m);
  t.regex(text, /^03-02 00:00:10 /m);
});

test('service: the custom figures follow the devices, counters and observations by name', (t) => {
  const figures = { requests: 4, errors: 0, rejected: 0, queueTimeouts: 0, requestsPerSecond: 1, errorRate: 0, p50: 2, p95: 3, p99: 3, atLeast: [], replicas: 1, scaling: { up: 0, down: 0, held: 0 } };
  const report: ServiceTelemetry = {
    service: 'iris',
    since: '2025-03-01T08:00:00.000Z',
    until: '2025-03-01T09:00:00.000Z',
    ...figures,
    custom: { counters: { scored: 4 }, observations: { confidence: { count: 3, sum: 2.5, min: 0.5, max: 1, mean: 2.5 / 3 } } },
    devices: [{ device: 'gw-1', ...figures }],
  };
  const text = renderServiceTelemetry(report);
  t.regex(text, /^CUSTOM METRIC +KIND +COUNT +SUM +MEAN +MIN +MAX$/m);
  t.regex(text, /^scored +count +4 +- +- +- +-$/m);
  t.regex(text, /^confidence +observe +3 +2\.5 +0\.8333 +0\.5 +1$/m);
  t.notRegex(renderServiceTelemetry({ ...report, custom: { counters: {}, observations: {} } }), /CUSTOM METRIC/);
});
