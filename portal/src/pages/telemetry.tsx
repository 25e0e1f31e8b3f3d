/**
 * A service's traffic, errors and latency over a time range, for the fleet or one device. The
 * choice lives in the URL (?service=&device=&range=) so a view can be bookmarked and shared.
 */
import { useEffect } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, seg } from '../api.js';
import { ErrorMessage } from '../components/error-message.js';
import { fmtCount, fmtErrorRate, fmtPercentile, fmtRate } from '../components/figures.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { isRange, RangePicker, type Range } from '../components/range-picker.js';
import { ServiceCharts, TELEMETRY_POLL_MS } from '../components/service-charts.js';
import { usePoll } from '../poll.js';
import type { DeploymentList } from '../../../shared/api/deployments.js';
import type { ServiceFigures, ServiceTelemetry } from '../../../shared/api/telemetry.js';
import './telemetry.css';

const DEFAULT_RANGE: Range = '1h';

interface View {
  service: string;
  device: string;
  range: Range;
}

function hrefOf(view: View): string {
  const params = new URLSearchParams();
  if (view.service) params.set('service', view.service);
  if (view.device) params.set('device', view.device);
  params.set('range', view.range);
  return `/ui/telemetry?${params.toString()}`;
}

function Cards({ figures }: { figures: ServiceFigures }) {
  const cards: [string, string][] = [
    ['requests', fmtCount(figures.requests)],
    ['requests/s', fmtRate(figures.requestsPerSecond)],
    ['error rate', fmtErrorRate(figures.errorRate)],
    ['p50 latency', fmtPercentile(figures, 'p50')],
    ['p95 latency', fmtPercentile(figures, 'p95')],
    ['p99 latency', fmtPercentile(figures, 'p99')],
  ];
  return (
    <ul class="cards" aria-label="Headline figures">
      {cards.map(([what, figure]) => (
        <li class="card" key={what}>
          <div class="figure">{figure}</div>
          <div class="what">{what}</div>
        </li>
      ))}
    </ul>
  );
}

function DeviceTable({ report, view }: { report: ServiceTelemetry; view: View }) {
  if (report.devices.length === 0) return <p class="muted">No device sent figures for {report.service} in the last {view.range}.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>
          Devices serving {report.service}, last {view.range}
        </caption>
        <thead>
          <tr>
            <th>Device</th>
            <th class="num">Requests</th>
            <th class="num">Requests/s</th>
            <th class="num">Errors</th>
            <th class="num">Error rate</th>
            <th class="num">Rejected</th>
            <th class="num">p50</th>
            <th class="num">p95</th>
            <th class="num">p99</th>
            <th class="num">Ready replicas</th>
            <th>Charts</th>
          </tr>
        </thead>
        <tbody>
          {report.devices.map((d) => (
            <tr key={d.device}>
              <td>
                <a href={`/ui/devices/${seg(d.device)}`}>{d.device}</a>
              </td>
              <td class="num">{fmtCount(d.requests)}</td>
              <td class="num">{fmtRate(d.requestsPerSecond)}</td>
              <td class="num">{fmtCount(d.errors)}</td>
              <td class="num">{fmtErrorRate(d.errorRate)}</td>
              <td class="num">{fmtCount(d.rejected)}</td>
              <td class="num">{fmtPercentile(d, 'p50')}</td>
              <td class="num">{fmtPercentile(d, 'p95')}</td>
              <td class="num">{fmtPercentile(d, 'p99')}</td>
              <td class="num">{d.replicas ?? '—'}</td>
              <td>
                {view.device === d.device ? (
                  <span class="muted">shown</span>
                ) : (
                  <a href={hrefOf({ ...view, device: d.device })} aria-label={`Charts of ${report.service} on ${d.device}`}>
                    show
                  </a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function TelemetryPage() {
  const { query, route } = useLocation();
  const view: View = { service: query.service ?? '', device: query.device ?? '', range: isRange(query.range) ? query.range : DEFAULT_RANGE };
  const go = (change: Partial<View>) => route(hrefOf({ ...view, ...change }));

  const deployments = usePoll(() => api.get<DeploymentList>('/api/v1/deployments'), TELEMETRY_POLL_MS, []);
  const services = deployments.data?.deployments.map((d) => d.service) ?? [];

  // No service asked for: show the first one (replacing the URL, so Back does not bounce here).
  useEffect(() => {
    if (!view.service && services[0]) route(hrefOf({ ...view, service: services[0] }), true);
  }, [view.service, services[0]]);

  // Fleet-wide always: its `devices` are the choices of the device picker.
  const report = usePoll(
    () => (view.service ? api.get<ServiceTelemetry>(`/api/v1/telemetry/services/${seg(view.service)}`, { since: view.range }) : Promise.resolve(undefined)),
    TELEMETRY_POLL_MS,
    [view.service, view.range],
  );
  const devices = report.data?.devices.map((d) => d.device) ?? [];
  const serviceChoices = view.service && !services.includes(view.service) ? [view.service, ...services] : services;
  const deviceChoices = view.device && !devices.includes(view.device) ? [view.device, ...devices] : devices;
  const figures: ServiceFigures | undefined = view.device ? report.data?.devices.find((d) => d.device === view.device) : report.data;

  return (
    <section>
      <PageHeader title="Telemetry" />
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label class="inline" for="telemetry-service">
          Service
          <select id="telemetry-service" value={view.service} onChange={(e) => go({ service: (e.currentTarget as HTMLSelectElement).value, device: '' })}>
            {view.service ? null : <option value="">choose a service</option>}
            {serviceChoices.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label class="inline" for="telemetry-device">
          Device
          <select id="telemetry-device" value={view.device} onChange={(e) => go({ device: (e.currentTarget as HTMLSelectElement).value })}>
            <option value="">all devices (fleet)</option>
            {deviceChoices.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        <RangePicker value={view.range} onChange={(range) => go({ range })} />
      </form>
      <ErrorMessage error={deployments.error} what="The services could not be listed" />
      {!view.service ? (
        deployments.data ? (
          <p class="muted">No service is deployed yet: deploy one and its figures show here.</p>
        ) : deployments.error ? null : (
          <Loading what="Loading the services" />
        )
      ) : (
        <>
          <h2>
            {view.service} {view.device ? `on ${view.device}` : 'across the fleet'}, last {view.range}
          </h2>
          <ErrorMessage error={report.error} what={`The figures of ${view.service} could not be read`} />
          {figures ? <Cards figures={figures} /> : report.data ? <p class="muted">{view.device} sent no figures for {view.service} in the last {view.range}.</p> : null}
          {/* The charts' captions use this page's report: fetched once, not again by the charts. */}
          {report.data ? <ServiceCharts service={view.service} device={view.device || undefined} range={view.range} totals={figures ?? null} /> : null}
          {report.data ? <DeviceTable report={report.data} view={view} /> : report.error ? null : <Loading what="Loading the devices" />}
        </>
      )}
    </section>
  );
}
