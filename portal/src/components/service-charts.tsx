/**
 * A service's requests/s, error rate and latency percentiles over a window, for the fleet or one
 * device. Each chart's caption gives the window's totals from the report route, the same figures
 * the CLI's `telemetry` prints. A page that polls that report already passes its figures as
 * `totals` (null: none in the window), so the same report is not fetched twice; otherwise the
 * charts fetch it with the series.
 */
import { api, seg } from '../api.js';
import { usePoll } from '../poll.js';
import type { ServiceFigures, ServiceSeries, ServiceTelemetry } from '../../../shared/api/telemetry.js';
import { ErrorMessage } from './error-message.js';
import { fmtCount, fmtErrorRate, fmtPercentile, unixSeconds } from './figures.js';
import { Loading } from './loading.js';
import type { Range } from './range-picker.js';
import { TimeChart } from './time-chart.js';
import './service-charts.css';

export const TELEMETRY_POLL_MS = 5000;
const POINTS = 60;

type Totals = Pick<ServiceFigures, 'requests' | 'errors' | 'rejected' | 'errorRate' | 'p50' | 'p95' | 'p99' | 'atLeast'>;

/** Percentiles that, in some bucket, lay above the histogram's last bound (plotted at the bound). */
function capped(series: ServiceSeries): ('p50' | 'p95' | 'p99')[] {
  return (['p50', 'p95', 'p99'] as const).filter((p) => series.points.some((point) => point.atLeast.includes(p)));
}

/** What a window without figures reads as: nothing counted, no percentile. */
const NONE: Totals = { requests: 0, errors: 0, rejected: 0, errorRate: null, p50: null, p95: null, p99: null, atLeast: [] };

export function ServiceCharts({ service, device, range, totals: given }: { service: string; device?: string | undefined; range: Range; totals?: Totals | null }) {
  const fetchTotals = given === undefined;
  const polled = usePoll(
    async () => {
      const query = { since: range, device };
      const [series, totals] = await Promise.all([
        api.get<ServiceSeries>(`/api/v1/telemetry/services/${seg(service)}/series`, { ...query, points: POINTS }),
        fetchTotals ? api.get<ServiceTelemetry>(`/api/v1/telemetry/services/${seg(service)}`, query) : undefined,
      ]);
      return { series, totals };
    },
    TELEMETRY_POLL_MS,
    [service, device, range, fetchTotals],
  );
  if (!polled.data) return polled.error ? <ErrorMessage error={polled.error} what={`Figures of ${service}`} /> : <Loading what={`Loading the figures of ${service}`} />;

  const { series } = polled.data;
  const totals = polled.data.totals ?? given ?? NONE;
  const x = series.points.map((p) => unixSeconds(p.ts));
  const where = device ? ` on ${device}` : '';
  return (
    <>
      <ErrorMessage error={polled.error} what="The figures could not be refreshed" />
      <div class="grid-3">
        <TimeChart
          title={`${service}${where}: requests/s`}
          caption={`${fmtCount(totals.requests)} requests · ${fmtCount(totals.errors)} errors · p95 ${fmtPercentile(totals, 'p95')}`}
          x={x}
          series={[{ label: 'requests/s', values: series.points.map((p) => p.requestsPerSecond) }]}
        />
        <TimeChart
          title={`${service}${where}: error rate (%)`}
          caption={`${fmtErrorRate(totals.errorRate)} (${fmtCount(totals.errors)} of ${fmtCount(totals.requests)})${totals.rejected ? ` · ${fmtCount(totals.rejected)} rejected` : ''}`}
          x={x}
          series={[{ label: 'errors %', values: series.points.map((p) => (p.errorRate === null ? null : p.errorRate * 100)) }]}
        />
        <TimeChart
          title={`${service}${where}: latency (ms)`}
          caption={`p50 ${fmtPercentile(totals, 'p50')} · p95 ${fmtPercentile(totals, 'p95')} · p99 ${fmtPercentile(totals, 'p99')}${capped(series).length > 0 ? ` · ${capped(series).join(', ')} above the top bucket in some intervals: drawn at its bound` : ''}`}
          x={x}
          series={(['p50', 'p95', 'p99'] as const).map((p) => ({ label: p, values: series.points.map((point) => point[p]) }))}
        />
      </div>
    </>
  );
}
