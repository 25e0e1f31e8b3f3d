/**
 * The fleet at a glance: devices by status, label and platform, the ones needing attention, and the
 * device table. The filters live in the URL (`/ui/?label=site=a&status=online&q=gw`) so a filtered
 * view can be bookmarked and shared. A label filter scopes the whole page (the fleet at site a);
 * status and search narrow the table only.
 */
import { useEffect, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import type { Device, DeviceList, DeviceStatus } from '../../../shared/api/devices.js';
import { api } from '../api.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
import { KeyValue } from '../components/key-value.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { LIST_POLL_MS } from './intervals.js';
import {
  STATUSES,
  attentionReasons,
  countByLabel,
  countByPlatform,
  countByStatus,
  formatSelector,
  isLagging,
  matchesSelector,
  parseSelector,
  platformOf,
  sortDevices,
  type Selector,
} from './fleet-summary.js';
import './fleet.css';

interface Filters {
  label: string;
  q: string;
  status: DeviceStatus | '';
}

const isStatus = (v: string | undefined): v is DeviceStatus => STATUSES.includes(v as DeviceStatus);

function filtersOf(query: Record<string, string>): Filters {
  return { label: query.label ?? '', q: query.q ?? '', status: isStatus(query.status) ? query.status : '' };
}

/** `=` and `,` stay readable in a bookmarked URL: URLSearchParams splits a pair at its first `=` only. */
const encode = (v: string) => encodeURIComponent(v).replace(/%3D/g, '=').replace(/%2C/g, ',');

function fleetHref(f: Filters): string {
  const qs = (['label', 'status', 'q'] as const)
    .filter((k) => f[k] !== '')
    .map((k) => `${k}=${encode(f[k])}`)
    .join('&');
  return qs ? `/ui/?${qs}` : '/ui/';
}

const STATUS_WORDS: Record<DeviceStatus, string> = { online: 'online', offline: 'offline', revoked: 'revoked', 'never-connected': 'never connected' };

function StatusCards({ devices, filters }: { devices: Device[]; filters: Filters }) {
  const counts = countByStatus(devices);
  const card = (count: number, what: string, status: Filters['status']) => (
    <li key={what}>
      <a class="card" href={fleetHref({ ...filters, status })} aria-current={filters.status === status ? 'true' : undefined}>
        <span class="figure">{count}</span> <span class="what">{what}</span>
      </a>
    </li>
  );
  return (
    <ul class="cards fleet-cards" aria-label="Devices by status">
      {card(devices.length, devices.length === 1 ? 'device' : 'devices', '')}
      {STATUSES.map((s) => card(counts[s], STATUS_WORDS[s], s))}
    </ul>
  );
}

function Breakdown({ devices, filters }: { devices: Device[]; filters: Filters }) {
  const labels = countByLabel(devices);
  const platforms = countByPlatform(devices);
  const labelHref = (key: string, value: string) => {
    const parsed = parseSelector(filters.label);
    const selector: Selector = 'selector' in parsed ? parsed.selector : {};
    return fleetHref({ ...filters, label: formatSelector({ ...selector, [key]: value }) });
  };
  return (
    <div class="grid-2">
      <section aria-labelledby="by-label">
        <h2 id="by-label">By label</h2>
        {labels.length === 0 ? (
          <p class="muted">No device has a label.</p>
        ) : (
          <KeyValue
            rows={labels.map(({ key, values }) => [
              key,
              <span class="label-values">
                {values.map(({ value, count }) => (
                  <a key={value} href={labelHref(key, value)} aria-label={`${key}=${value}: ${count}`}>
                    <code>{value}</code> <span class="muted">({count})</span>
                  </a>
                ))}
              </span>,
            ])}
          />
        )}
      </section>
      <section aria-labelledby="by-platform">
        <h2 id="by-platform">By platform</h2>
        {platforms.length === 0 ? <p class="muted">No devices.</p> : <KeyValue rows={platforms.map(({ platform, count }) => [platform, String(count)])} />}
      </section>
    </div>
  );
}

function Attention({ devices }: { devices: Device[] }) {
  const needing = devices.map((d) => ({ d, reasons: attentionReasons(d) })).filter((x) => x.reasons.length > 0);
  return (
    <section aria-labelledby="attention">
      <h2 id="attention">Needing attention</h2>
      {needing.length === 0 ? (
        <p class="muted">No device is failing, lagging, or offline with services.</p>
      ) : (
        <div class="table-wrap">
          <table class="fleet-table">
            <caption>
              {needing.length} device{needing.length === 1 ? '' : 's'} needing attention
            </caption>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Status</th>
                <th scope="col">Why</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {needing.map(({ d, reasons }) => (
                <tr key={d.id}>
                  <th scope="row">
                    <DeviceLink id={d.id} />
                  </th>
                  <td>
                    <StatusBadge status={d.status} />
                  </td>
                  <td>{reasons.join('; ')}</td>
                  <td>
                    <Ago ts={d.lastSeen} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const DeviceLink = ({ id }: { id: string }) => (
  <a href={`/ui/devices/${encodeURIComponent(id)}`}>
    <code>{id}</code>
  </a>
);

function DeviceTable({ devices, total }: { devices: Device[]; total: number }) {
  return (
    <div class="table-wrap">
      <table class="fleet-table">
        <caption>
          Devices: {devices.length === total ? `${total}` : `${devices.length} of ${total}`}
        </caption>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Status</th>
            <th scope="col">Labels</th>
            <th scope="col">Platform</th>
            <th scope="col">Phase</th>
            <th scope="col" class="num" title="observed / desired">
              Generation
            </th>
            <th scope="col">Last seen</th>
          </tr>
        </thead>
        <tbody>
          {devices.length === 0 ? (
            <tr>
              <td colSpan={7} class="muted">
                No device matches these filters.
              </td>
            </tr>
          ) : (
            devices.map((d) => (
              <tr key={d.id}>
                <th scope="row">
                  <DeviceLink id={d.id} />
                </th>
                <td>
                  <StatusBadge status={d.status} />
                  {d.status === 'offline' && d.offlineReason ? <span class="muted"> ({d.offlineReason})</span> : null}
                </td>
                <td>
                  <span class="label-list">
                    {Object.entries(d.labels).map(([k, v]) => (
                      <code key={k}>
                        {k}={v}
                      </code>
                    ))}
                  </span>
                </td>
                <td>{d.facts ? <code>{platformOf(d)}</code> : <span class="muted">unknown</span>}</td>
                <td>{d.phase ? <StatusBadge status={d.phase} /> : <span class="muted">—</span>}</td>
                <td class={`num${isLagging(d) ? ' lagging' : ''}`} title={isLagging(d) ? 'behind what the hub asked' : undefined}>
                  {d.observedGeneration ?? '—'} / {d.desiredGeneration ?? '—'}
                </td>
                <td>
                  <Ago ts={d.lastSeen} />
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

function FilterForm({ filters, go }: { filters: Filters; go: (f: Filters, replace?: boolean) => void }) {
  const [label, setLabel] = useState(filters.label);
  const [problem, setProblem] = useState<string | undefined>();
  // A label link, Back or a bookmark changed the URL: the field shows what is applied.
  useEffect(() => setLabel(filters.label), [filters.label]);

  const apply = (e: Event) => {
    e.preventDefault();
    const parsed = parseSelector(label);
    if ('error' in parsed) return setProblem(parsed.error);
    setProblem(undefined);
    go({ ...filters, label: formatSelector(parsed.selector) });
  };
  const any = filters.label !== '' || filters.q !== '' || filters.status !== '';

  return (
    <form class="filters" role="search" aria-label="Filter devices" onSubmit={apply}>
      <label class="inline" for="fleet-q">
        Search
        <input id="fleet-q" type="search" placeholder="device id" value={filters.q} onInput={(e) => go({ ...filters, q: (e.currentTarget as HTMLInputElement).value }, true)} />
      </label>
      <span class="inline-group">
        <label class="inline" for="fleet-label">
          Label filter
          <input id="fleet-label" type="text" placeholder="key=value" spellcheck={false} value={label} onInput={(e) => setLabel((e.currentTarget as HTMLInputElement).value)} aria-describedby={problem ? 'fleet-label-problem' : undefined} />
        </label>
        <button type="submit" class="secondary">
          Filter
        </button>
      </span>
      <label class="inline" for="fleet-status">
        Status
        <select id="fleet-status" value={filters.status} onChange={(e) => go({ ...filters, status: (e.currentTarget as HTMLSelectElement).value as Filters['status'] })}>
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {STATUS_WORDS[s]}
            </option>
          ))}
        </select>
      </label>
      {any ? <a href="/ui/">Clear filters</a> : null}
      {problem ? (
        <p id="fleet-label-problem" class="error" role="alert">
          {problem}
        </p>
      ) : null}
    </form>
  );
}

export default function FleetPage() {
  const { query, route } = useLocation();
  const filters = filtersOf(query);
  const polled = usePoll(() => api.get<DeviceList>('/api/v1/devices'), LIST_POLL_MS, []);
  const go = (f: Filters, replace = false) => route(fleetHref(f), replace);

  const parsed = parseSelector(filters.label);
  const selector = 'selector' in parsed ? parsed.selector : {};
  const all = polled.data?.devices ?? [];
  const scoped = sortDevices(all.filter((d) => matchesSelector(d, selector)));
  const needle = filters.q.trim().toLowerCase();
  const shown = scoped.filter((d) => (filters.status === '' || d.status === filters.status) && (needle === '' || d.id.toLowerCase().includes(needle)));
  const scope = formatSelector(selector);

  return (
    <>
      <PageHeader title="Fleet">{polled.data ? <span class="muted">{all.length} enrolled</span> : null}</PageHeader>
      <ErrorMessage error={polled.error} what="The device list could not be loaded" />
      <FilterForm filters={filters} go={go} />
      {'error' in parsed ? (
        <p class="error" role="alert">
          The label filter in this address is not valid: {parsed.error}.
        </p>
      ) : null}
      {!polled.data ? (
        polled.error ? null : <Loading what="Loading devices" />
      ) : all.length === 0 ? (
        <p>
          No device is enrolled yet. Enroll one with <code>edgeml device enroll ID</code>, then start its agent.
        </p>
      ) : (
        <>
          {scope ? (
            <p class="scope">
              Devices labelled <code>{scope}</code>: {scoped.length} of {all.length}.
            </p>
          ) : null}
          <StatusCards devices={scoped} filters={filters} />
          <Attention devices={scoped} />
          <Breakdown devices={scoped} filters={filters} />
          <h2 id="devices">Devices</h2>
          <DeviceTable devices={shown} total={scoped.length} />
        </>
      )}
    </>
  );
}
