/**
 * `edgeml telemetry SERVICE` and `edgeml telemetry device ID`: what the fleet's gateways measured
 * (requests per second, error rate, latency percentiles, rejections, ready replicas and the
 * autoscaler's decisions) per device and for the fleet,
 * or over time in buckets (`--series [--points N]`), the scoring code's own figures, and a device's
 * own metrics (a row per sample to the second, and a sparkline per figure), over a window
 * (`--since 1h`, `--until`).
 */
import type { Command } from 'commander';
import {
  DEFAULT_SINCE,
  SERVICE_SERIES_POINTS,
  TIME_BOUND_PATTERN,
  type DeviceSeriesPoint,
  type DeviceTelemetry,
  type PercentileName,
  type ServiceCustomMetrics,
  type ServiceFigures,
  type ServiceSeries,
  type ServiceTelemetry,
} from '../../shared/api/telemetry.js';
import { formatBytes } from '../../shared/size.js';
import { inputError, parseDeviceId } from '../args.js';
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
  const custom = r.custom && renderCustom(r.custom);
  return custom ? `${head}\n${table}\n${custom}` : `${head}\n${table}`;
}

/** A figure of scoring code as a table shows it: whole numbers as they are, others to 4 significant digits. */
const formatFigure = (v: number) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

/** The scoring code's own figures (`metrics.count`, `metrics.observe`); undefined when it counted nothing. */
export function renderCustom(c: ServiceCustomMetrics): string | undefined {
  const rows = [
    ...Object.entries(c.counters).map(([name, n]) => [name, 'count', formatFigure(n), '-', '-', '-', '-']),
    ...Object.entries(c.observations).map(([name, o]) => [name, 'observe', String(o.count), formatFigure(o.sum), formatFigure(o.mean), formatFigure(o.min), formatFigure(o.max)]),
  ];
  if (rows.length === 0) return undefined;
  return renderTable(['CUSTOM METRIC', 'KIND', 'COUNT', 'SUM', 'MEAN', 'MIN', 'MAX'], rows, '');
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
/** Used bytes and their share of the total: narrow enough for a row per sample in 100 columns. */
const shareOf = (used: number | null, total: number | null) => (used === null || total === null || total === 0 ? '-' : `${formatBytes(used)} ${Math.round((used / total) * 100)}%`);
const percentOf = (used: number | null, total: number | null) => (used === null || total === null || total === 0 ? null : (used / total) * 100);

const SPARKS = '▁▂▃▄▅▆▇█';
/** Characters in a sparkline at most: longer series are averaged down, so a line fits in 100 columns. */
export const SPARKLINE_WIDTH = 60;

/** One character per point (a gap for a missing one), scaled from the series' least to its greatest value. */
export function sparkline(values: readonly (number | null)[], width = SPARKLINE_WIDTH): string {
  const per = Math.max(1, Math.ceil(values.length / width));
  const points: (number | null)[] = [];
  for (let i = 0; i < values.length; i += per) {
    const known = values.slice(i, i + per).filter((v): v is number => v !== null);
    points.push(known.length ? known.reduce((a, b) => a + b, 0) / known.length : null);
  }
  const known = points.filter((v): v is number => v !== null);
  if (known.length === 0) return '';
  const lo = Math.min(...known);
  const span = Math.max(...known) - lo;
  return points.map((v) => (v === null ? ' ' : SPARKS[span === 0 ? 0 : Math.min(SPARKS.length - 1, Math.floor(((v - lo) / span) * SPARKS.length))])).join('');
}

/** `▁▃█ 2.0–80.5%`: the trend, then the range it spans. */
function trend(values: readonly (number | null)[], unit: string): string | undefined {
  const known = values.filter((v): v is number => v !== null);
  if (known.length < 2) return undefined;
  return `${sparkline(values)} ${Math.min(...known).toFixed(1)}–${Math.max(...known).toFixed(1)}${unit}`;
}

/** Seconds precision; the date only when the series spans more than one day (the window line gives it). */
function sampleTime(series: readonly DeviceSeriesPoint[]): (iso: string) => string {
  const oneDay = new Set(series.map((p) => p.ts.slice(0, 10))).size <= 1;
  return (iso) => (oneDay ? iso.slice(11, 19) : `${iso.slice(5, 10)} ${iso.slice(11, 19)}`);
}

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
    ['cpu trend', trend(r.series.map((p) => p.cpuPercent), '%')],
    ['memory trend', trend(r.series.map((p) => percentOf(p.memoryUsedBytes, p.memoryTotalBytes)), '%')],
    ['disk trend', trend(r.series.map((p) => percentOf(p.diskUsedBytes, p.diskTotalBytes)), '%')],
    ['temperature trend', trend(r.series.map((p) => p.temperatureC), ' °C')],
  ]);
  const containers = renderTable(
    ['SERVICE', 'REVISION', 'CPU', 'MEMORY'],
    (r.latest?.containers ?? []).map((c) => [c.service, String(c.revision), c.cpuPercent === null ? '-' : `${c.cpuPercent.toFixed(1)}%`, usedOf(c.memoryBytes, c.memoryLimitBytes ?? c.memoryBytes)]),
    '(no containers)',
  );
  const time = sampleTime(r.series);
  const series = renderTable(
    ['TIME', 'CPU', 'MEMORY', 'DISK', 'TEMP'],
    r.series.map((p) => [
      time(p.ts),
      p.cpuPercent === null ? '-' : `${p.cpuPercent.toFixed(1)}%`,
      shareOf(p.memoryUsedBytes, p.memoryTotalBytes),
      shareOf(p.diskUsedBytes, p.diskTotalBytes),
      p.temperatureC === null ? '-' : `${p.temperatureC.toFixed(1)} °C`,
    ]),
    '(no samples)',
  );
  return `${fields}\n${containers}\n${series}`;
}

/** The window as the hub reads it: an absent `since` takes the hub's default. */
export const windowQuery = (flags: WindowFlags) => ({ since: flags.since, until: flags.until });

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
        const series = await ctx.client.call('getServiceTelemetrySeries', { params: { service }, query: { ...query, points: flags.points } });
        ctx.out.result(series, () => renderServiceSeries(series));
        return;
      }
      if (flags.points !== undefined) throw inputError('--points goes with --series');
      const report = await ctx.client.call('getServiceTelemetry', { params: { service }, query });
      ctx.out.result(report, () => renderServiceTelemetry(report));
    }),
  );
  const device = telemetry
    .command('device')
    .description("a device's latest metrics, containers and outbox drops, and a series of CPU, memory, disk and temperature")
    .argument('<id>', 'device id', parseDeviceId('device'));
  withWindowOptions(device).action(
    clientAction<[string], WindowFlags>(io, async (ctx, [id], flags) => {
      const report = await ctx.client.call('getDeviceTelemetry', { params: { id }, query: windowQuery(flags) });
      ctx.out.result(report, () => renderDeviceTelemetry(report));
    }),
  );
  addClientOptions(telemetry);
}
