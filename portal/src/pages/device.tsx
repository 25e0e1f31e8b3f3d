/**
 * One device: what it is (facts), where it stands (status, generations), its labels (editable with
 * the admin scope), the services it runs with their images and models, its own metrics and each
 * service's traffic on it, and the errors it last reported.
 */
import { useLocation, useRoute } from 'preact-iso';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
import { formatBytes } from '../../../shared/size.js';
import { unixSeconds } from '../components/figures.js';
import { KeyValue } from '../components/key-value.js';
import { LabelEditor, LabelList } from '../components/label-editor.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { isRange, RangePicker } from '../components/range-picker.js';
import { ServiceCharts, TELEMETRY_POLL_MS } from '../components/service-charts.js';
import { StatusBadge } from '../components/status-badge.js';
import { TimeChart } from '../components/time-chart.js';
import { usePoll } from '../poll.js';
import { useSession } from '../session.js';
import type { Device } from '../../../shared/api/devices.js';
import type { DeviceTelemetry } from '../../../shared/api/telemetry.js';
import type { DeviceServices, ServingService } from '../../../shared/api/where.js';
import { isLagging } from './fleet-summary.js';
import { DETAIL_POLL_MS } from './intervals.js';
import './device.css';

function Facts({ device }: { device: Device }) {
  const f = device.facts;
  return (
    <KeyValue
      rows={[
        ['Status', <StatusBadge status={device.status} />],
        ['Labels', <LabelList labels={device.labels} />],
        ['Reconcile', device.phase ? <StatusBadge status={device.phase} /> : null],
        ['Generation', device.desiredGeneration === null ? null : `${device.observedGeneration ?? '—'} of ${device.desiredGeneration}${isLagging(device) ? ' (behind)' : ''}`],
        ['Online since', device.status === 'online' ? <Ago ts={device.onlineSince} /> : null],
        ['Last seen', <Ago ts={device.lastSeen} />],
        ['Offline reason', device.offlineReason],
        ['Gateway', device.gateway ? <code>{device.gateway}</code> : null],
        ['Platform', f ? <code>{f.platform}</code> : null],
        ['Agent version', f?.agentVersion],
        ['Hostname', f?.hostname],
        ['OS', f ? `${f.os.distro} ${f.os.release}` : null],
        ['Kernel', f?.os.kernel],
        ['CPUs', f ? String(f.cpus) : null],
        ['Memory', f ? formatBytes(f.memoryBytes) : null],
        ['Docker', f?.docker ? `${f.docker.version} (API ${f.docker.apiVersion})` : f ? 'not reported' : null],
        ['Enrolled', <span>
          <Ago ts={device.enrolledAt} /> by {device.enrolledBy.keyName}
        </span>],
        ['Revoked', device.revokedAt ? <Ago ts={device.revokedAt} /> : null],
      ]}
    />
  );
}

function Replicas({ s }: { s: ServingService }) {
  if (!s.replicas) return <span class="muted">—</span>;
  return (
    <span title={s.replicas.capacity}>
      {s.replicas.ready} ready of {s.replicas.desired}
      {s.replicas.capacity ? <span class="muted"> (held: capacity)</span> : null}
    </span>
  );
}

function ServicesTable({ id, services }: { id: string; services: ServingService[] }) {
  if (services.length === 0) return <p class="muted">{id} runs no service.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>Services on {id}</caption>
        <thead>
          <tr>
            <th>Service</th>
            <th class="num">Revision</th>
            <th>Health</th>
            <th>Image digest</th>
            <th>Models</th>
            <th>Replicas</th>
          </tr>
        </thead>
        <tbody>
          {services.map((s) => (
            <tr key={s.name}>
              <td>
                <a href={`/ui/deployments/${seg(s.name)}`}>{s.name}</a>
              </td>
              <td class="num">
                {s.revision}
                {s.servingRevision !== null && s.servingRevision !== s.revision ? <span class="muted"> (serving {s.servingRevision})</span> : null}
                {s.servingRevision === null ? <span class="muted"> (not serving)</span> : null}
              </td>
              <td>
                <StatusBadge status={s.phase} />
              </td>
              <td>{s.digest ? <code title={s.image ?? undefined}>{s.digest}</code> : <span class="muted">unknown</span>}</td>
              <td>
                {s.models === null ? (
                  <span class="muted">unknown</span>
                ) : s.models.length === 0 ? (
                  <span class="muted">none known</span>
                ) : (
                  s.models.map((m, i) => (
                    <span key={`${m.name}:${m.version}`}>
                      {i > 0 ? ', ' : ''}
                      <a href={`/ui/models/${seg(m.name)}?version=${m.version}`}>
                        {m.name}:{m.version}
                      </a>
                    </span>
                  ))
                )}
              </td>
              <td>
                <Replicas s={s} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** What the device's report calls an error: a failed reconcile, and each service's error or refusal. */
function LastErrors({ device }: { device: Device }) {
  const rows: { what: string; code: string; message: string }[] = [];
  if (device.phase === 'failed') rows.push({ what: 'reconcile', code: 'failed', message: `generation ${device.observedGeneration ?? '—'} of ${device.desiredGeneration ?? '—'} did not converge` });
  for (const s of device.services) {
    if (s.error) rows.push({ what: `${s.name} revision ${s.revision}`, code: s.error.code, message: s.error.message });
    else if (s.phase === 'failed' || s.phase === 'rejected') rows.push({ what: `${s.name} revision ${s.revision}`, code: s.phase, message: `the service is ${s.phase}` });
  }
  if (rows.length === 0) return <p class="muted">No errors in the device’s last report.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>Errors in the last report of {device.id}</caption>
        <thead>
          <tr>
            <th>Where</th>
            <th>Code</th>
            <th>Message</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>{r.what}</td>
              <td>
                <code>{r.code}</code>
              </td>
              <td class="message">{r.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const percentOf = (used: number | null, total: number | null) => (used === null || total === null || total === 0 ? null : (used / total) * 100);

function DeviceMetricsCharts({ report }: { report: DeviceTelemetry }) {
  const x = report.series.map((p) => unixSeconds(p.ts));
  const last = report.latest?.device;
  const usage = (u: { usedBytes: number; totalBytes: number } | null | undefined) => (u ? `${formatBytes(u.usedBytes)} of ${formatBytes(u.totalBytes)}` : 'no figure');
  return (
    <div class="grid-4">
      <TimeChart
        title="CPU (%)"
        caption={last?.cpuPercent == null ? 'no figure' : `now ${last.cpuPercent.toFixed(1)} %`}
        x={x}
        yRange={[0, 100]}
        series={[{ label: 'CPU %', values: report.series.map((p) => p.cpuPercent) }]}
      />
      <TimeChart title="Memory used (%)" caption={usage(last?.memory)} x={x} yRange={[0, 100]} series={[{ label: 'memory used %', values: report.series.map((p) => percentOf(p.memoryUsedBytes, p.memoryTotalBytes)) }]} />
      <TimeChart title="Disk used (%)" caption={usage(last?.disk)} x={x} yRange={[0, 100]} series={[{ label: 'disk used %', values: report.series.map((p) => percentOf(p.diskUsedBytes, p.diskTotalBytes)) }]} />
      <TimeChart
        title="Temperature (°C)"
        caption={last?.temperatureC == null ? 'no sensor reading' : `now ${last.temperatureC.toFixed(1)} °C`}
        x={x}
        series={[{ label: '°C', values: report.series.map((p) => p.temperatureC) }]}
      />
    </div>
  );
}

export default function DevicePage() {
  const { params } = useRoute();
  const id = params.id ?? '';
  const session = useSession();
  // The range is in the URL (?range=), so a device's view over 24 h can be shared as it is.
  const { query, route } = useLocation();
  const range = isRange(query.range) ? query.range : '1h';
  const setRange = (r: string) => route(`/ui/devices/${seg(id)}?range=${r}`);

  const device = usePoll(() => api.get<Device>(`/api/v1/devices/${seg(id)}`), DETAIL_POLL_MS, [id]);
  // Only for a device the hub knows: an unknown id would otherwise cost a 404 per route every poll.
  const known = device.data !== undefined;
  const whenKnown = <T,>(load: () => Promise<T>) => (known ? load() : Promise.resolve(undefined));
  const services = usePoll(() => whenKnown(() => api.get<DeviceServices>(`/api/v1/devices/${seg(id)}/services`)), known ? DETAIL_POLL_MS : 0, [id, known]);
  const metrics = usePoll(
    () => whenKnown(() => api.get<DeviceTelemetry>(`/api/v1/telemetry/devices/${seg(id)}`, { since: range })),
    known ? TELEMETRY_POLL_MS : 0,
    [id, range, known],
  );

  const d = device.data;
  return (
    <section>
      <PageHeader title={`Device ${id}`}>
        {d ? <StatusBadge status={d.status} /> : null}
        <RangePicker value={range} onChange={setRange} />
      </PageHeader>
      <ErrorMessage error={device.error} what={`Device ${id}`} />
      {!d ? (
        device.error ? null : <Loading what={`Loading ${id}`} />
      ) : (
        <>
          <h2>Facts</h2>
          <Facts device={d} />
          <h2>Services</h2>
          <ErrorMessage error={services.error} what="The services could not be read" />
          {services.data ? <ServicesTable id={id} services={services.data.services} /> : services.error ? null : <Loading what="Loading the services" />}
          <h2>Metrics, last {range}</h2>
          <ErrorMessage error={metrics.error} what="The device’s metrics could not be read" />
          {metrics.data ? (
            metrics.data.series.length ? (
              <DeviceMetricsCharts report={metrics.data} />
            ) : (
              <p class="muted">No metrics from {id} in the last {range}.</p>
            )
          ) : metrics.error ? null : (
            <Loading what="Loading the metrics" />
          )}
          <h2>Last errors</h2>
          <LastErrors device={d} />
          {session.can('admin') ? (
            <>
              <h2>Edit labels</h2>
              {/* Keyed by device: the router keeps this page from /ui/devices/a to b, and a's unsaved edits must not go to b. */}
              <LabelEditor key={d.id} device={d} onSaved={() => device.reload()} />
            </>
          ) : null}
          {services.data?.services.map((s) => (
            <section key={s.name} aria-label={`Traffic of ${s.name}`}>
              <h2>
                {s.name} on {id}, last {range}
              </h2>
              <ServiceCharts service={s.name} device={id} range={range} />
            </section>
          ))}
        </>
      )}
    </section>
  );
}
