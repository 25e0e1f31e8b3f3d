/**
 * `edgeml telemetry SERVICE` and `edgeml telemetry device ID`: what the fleet's gateways measured
 * (requests per second, error rate, latency percentiles, rejections, ready replicas and the
 * autoscaler's decisions) per device and for the fleet,
 * or over time in buckets (`--series [--points N]`), and a device's own metrics, over a window
 * (`--since 1h`, `--until`).
 */
import type { Command } from 'commander';
import {
  DEFAULT_SINCE,
  SERVICE_SERIES_POINTS,
  TIME_BOUND_PATTERN,
  type DeviceTelemetry,
  type PercentileName,
  type ServiceFigures,
  type ServiceSeries,
  type ServiceTelemetry,
} from '../../shared/api/telemetry.js';
import { formatBytes } from '../../shared/size.js';
import { inputError, parseDeviceId } from '../args.js';
import { apiPath, type Query } from '../../client/hub-client.js';
import { formatTime, renderFields, renderTable } from '../output.js';
import { addClientOptions, clientAction, withClientOptions, type CliIo } from './client-command.js';
import { parseService } from './deployments.js';

export function parseTimeBoundFlag(label: string) {
  const re = new RegExp(TIME_BOUND_PATTERN);
  return (text: string): string => {
    if (!re.test(text)) throw inputError(`${label} ${JSON.stringify(text)}: expected a duration back from now (30m, 1h, 7d) or a date-time (2024-05-01T00:00:00Z)`);
    return text;
  };
}

export interface WindowFlags {
  since?: string;
  until?: string;
}

/** `--since` and `--until` on a command. */
export function withWindowOptions(command: Command, defaultSince: string | undefined = DEFAULT_SINCE): Command {
  return command
    .option('--since <when>', `start of the window: a duration back from now or a date-time${defaultSince ? ` (default ${defaultSince})` : ''}`, parseTimeBoundFlag('--since'))
    .option('--until <when>', 'end of the window (default now)', parseTimeBoundFlag('--until'));
}

/** A latency in ms as a table shows it; one in the open top bucket is only known to be above it. */
function formatMs(figures: Pick<ServiceFigures, PercentileName | 'atLeast'>, p: PercentileName): string {
  const v = figures[p];
  if (v === null) return '-';
  if (figures.atLeast.includes(p)) return `> ${v} ms`;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

const formatRate = (perSecond: number) => (perSecond >= 10 ? perSecond.toFixed(1) : perSecond.toFixed(2));
const formatShare = (share: number | null) => (share === null ? '-' : `${(share * 100).toFixed(share > 0 && share < 0.001 ? 3 : 1)}%`);

/** The autoscaler's decisions: `+2 -1`, `+0 -0 (3 held)` when the resource guard refused some; `-` for none. */
export function formatScaling({ up, down, held }: ServiceFigures['scaling']): string {
  if (up + down + held === 0) return '-';
  return `+${up} -${down}${held ? ` (${held} held)` : ''}`;
}

export function renderServiceTelemetry(r: ServiceTelemetry): string {
  const fleet = [
    `${r.requests} requests (${formatRate(r.requestsPerSecond)}/s)`,
    `errors ${r.errors} (${formatShare(r.errorRate)})`,
    `rejected ${r.rejected}`,
    `p50 ${formatMs(r, 'p50')}`,
    `p95 ${formatMs(r, 'p95')}`,
    `p99 ${formatMs(r, 'p99')}`,
  ].join(', ');
  const head = renderFields([
    ['service', r.service],
    ['window', `${formatTime(r.since)} → ${formatTime(r.until)}`],
    ['fleet', fleet],
    ['replicas', r.replicas === null ? undefined : `${r.replicas} ready at the latest count, scaled ${formatScaling(r.scaling)}`],
  ]);
  const table = renderTable(
    ['DEVICE', 'REQUESTS', 'REQ/S', 'ERRORS', 'ERROR RATE', 'REJECTED', 'P50', 'P95', 'P99', 'REPLICAS', 'SCALED'],
    r.devices.map((d) => [
      d.device,
      String(d.requests),
      formatRate(d.requestsPerSecond),
      String(d.errors),
      formatShare(d.errorRate),
      String(d.rejected),
      formatMs(d, 'p50'),
      formatMs(d, 'p95'),
      formatMs(d, 'p99'),
      d.replicas === null ? '-' : String(d.replicas),
      formatScaling(d.scaling),
    ]),
    '(no device sent figures for this service in the window)',
  );
  return `${head}\n${table}`;
}

export function renderServiceSeries(r: ServiceSeries): string {
  const head = renderFields([
    ['service', r.service],
    ['window', `${formatTime(r.since)} → ${formatTime(r.until)}, ${r.points.length} buckets of ${r.stepSeconds} s`],
  ]);
  // Buckets shorter than a minute would share formatTime's minutes.
  const time = r.stepSeconds < 60 ? (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : formatTime;
  const table = renderTable(
    ['TIME', 'REQUESTS', 'REQ/S', 'ERRORS', 'ERROR RATE', 'REJECTED', 'P50', 'P95', 'P99'],
    r.points.map((p) => [
      time(p.ts),
      String(p.requests),
      formatRate(p.requestsPerSecond),
      String(p.errors),
      formatShare(p.errorRate),
      String(p.rejected),
      formatMs(p, 'p50'),
      formatMs(p, 'p95'),
      formatMs(p, 'p99'),
    ]),
    '(no buckets)',
  );
  return `${head}\n${table}`;
}

function parsePoints(text: string): number {
  const { min, max } = SERVICE_SERIES_POINTS;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw inputError(`--points ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`);
  return Number(text);
}

const usedOf = (used: number | null, total: number | null) => (used === null || total === null ? '-' : `${formatBytes(used)} / ${formatBytes(total)}`);

export function renderDeviceTelemetry(r: DeviceTelemetry): string {
  const m = r.latest?.device;
  const fields = renderFields([
    ['device', r.device],
    ['window', `${formatTime(r.since)} → ${formatTime(r.until)}, ${r.samples} samples`],
    ['latest', r.latest ? r.latest.to : 'none in the window'],
    ['cpu', m ? (m.cpuPercent === null ? '-' : `${m.cpuPercent.toFixed(1)}%`) : undefined],
    ['memory', m ? usedOf(m.memory?.usedBytes ?? null, m.memory?.totalBytes ?? null) : undefined],
    ['disk', m ? usedOf(m.disk?.usedBytes ?? null, m.disk?.totalBytes ?? null) : undefined],
    ['temperature', m ? (m.temperatureC === null ? '-' : `${m.temperatureC.toFixed(1)} °C`) : undefined],
    ['uptime', m?.uptimeSeconds == null ? undefined : `${Math.round(m.uptimeSeconds)} s`],
    ['outbox dropped', r.latest ? `metrics ${r.latest.outbox.dropped.metrics}, capture ${r.latest.outbox.dropped.capture}` : undefined],
    ['outbox queued', r.latest ? `metrics ${r.latest.outbox.queued.metrics}, capture ${r.latest.outbox.queued.capture}` : undefined],
    ['invalid messages', String(r.invalidMessages)],
  ]);
  const containers = renderTable(
    ['SERVICE', 'REVISION', 'CPU', 'MEMORY'],
    (r.latest?.containers ?? []).map((c) => [c.service, String(c.revision), c.cpuPercent === null ? '-' : `${c.cpuPercent.toFixed(1)}%`, usedOf(c.memoryBytes, c.memoryLimitBytes ?? c.memoryBytes)]),
    '(no containers)',
  );
  const series = renderTable(
    ['TIME', 'CPU', 'MEMORY', 'DISK', 'TEMP'],
    r.series.map((p) => [
      formatTime(p.ts),
      p.cpuPercent === null ? '-' : `${p.cpuPercent.toFixed(1)}%`,
      usedOf(p.memoryUsedBytes, p.memoryTotalBytes),
      usedOf(p.diskUsedBytes, p.diskTotalBytes),
      p.temperatureC === null ? '-' : `${p.temperatureC.toFixed(1)} °C`,
    ]),
    '(no samples)',
  );
  return `${fields}\n${containers}\n${series}`;
}

const windowQuery = (flags: WindowFlags): Query => ({ since: flags.since, until: flags.until });

export function addTelemetryCommands(program: Command, io: CliIo): void {
  const telemetry = program
    .command('telemetry')
    .description("a service's requests/s, error rate, latency percentiles, rejections, ready replicas and scaling decisions per device and for the fleet; `telemetry device ID` for a device's own metrics")
    .argument('<service>', 'service name', parseService)
    .option('--device <id>', 'only this device', parseDeviceId('--device'))
    .option('--series', 'the figures over time: one row per bucket of the window')
    .option('--points <n>', `with --series: how many buckets (${SERVICE_SERIES_POINTS.min}–${SERVICE_SERIES_POINTS.max}, default ${SERVICE_SERIES_POINTS.default})`, parsePoints)
    // Its flags stay its own, so `telemetry device ID --since 2h` reaches the subcommand.
    .enablePositionalOptions();
  withClientOptions(withWindowOptions(telemetry)).action(
    clientAction<[string], WindowFlags & { device?: string; series?: boolean; points?: number }>(io, async (ctx, [service], flags) => {
      const query = { ...windowQuery(flags), device: flags.device };
      if (flags.series) {
        const series = await ctx.client.json<ServiceSeries>('GET', apiPath('telemetry', 'services', service, 'series'), { query: { ...query, points: flags.points } });
        ctx.out.result(series, () => renderServiceSeries(series));
        return;
      }
      if (flags.points !== undefined) throw inputError('--points goes with --series');
      const report = await ctx.client.json<ServiceTelemetry>('GET', apiPath('telemetry', 'services', service), { query });
      ctx.out.result(report, () => renderServiceTelemetry(report));
    }),
  );
  const device = telemetry
    .command('device')
    .description("a device's latest metrics, containers and outbox drops, and a series of CPU, memory, disk and temperature")
    .argument('<id>', 'device id', parseDeviceId('device'));
  withWindowOptions(device).action(
    clientAction<[string], WindowFlags>(io, async (ctx, [id], flags) => {
      const report = await ctx.client.json<DeviceTelemetry>('GET', apiPath('telemetry', 'devices', id), { query: windowQuery(flags) });
      ctx.out.result(report, () => renderDeviceTelemetry(report));
    }),
  );
  addClientOptions(telemetry);
}
