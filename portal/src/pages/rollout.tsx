/**
 * A rollout, live: phase, batch N of M, progress, devices per phase, each device as it moves, the
 * gates' last figures, and Pause / Resume / Abort for a deploy key. Polled every second while it
 * runs or is paused; slower once it is over (a rollback it started has its own page, linked).
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useRoute } from 'preact-iso';
import type { Rollout, RolloutDevicePhase, RolloutGate } from '../../../shared/api/rollouts.js';
import { api, seg } from '../api.js';
import { everyMember } from '../every-member.js';
import { Ago } from '../components/ago.js';
import { isActive, targetText } from '../components/deployment-facts.js';
import { ErrorMessage } from '../components/error-message.js';
import { KeyValue } from '../components/key-value.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { RolloutActions } from '../components/rollout-actions.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import './rollout.css';

/** shared/api/rollouts.ts ROLLOUT_DEVICE_PHASES, in its order (a value import would pull typebox in). */
const DEVICE_PHASES = everyMember<RolloutDevicePhase>()(['pending', 'pulling', 'starting', 'retrying', 'healthy', 'failed', 'rolled-back', 'offline']);

const LIVE_MS = 1000;
const FINISHED_MS = 10_000;

/** "batch 2 of 4" (1-based) while it runs; once over, "4 batches done", or where it stopped. */
function batchText(r: Rollout): string {
  if (r.batch >= r.batches || r.phase === 'succeeded') return `${r.batches} batch${r.batches === 1 ? '' : 'es'}${isActive(r.phase) ? '' : ' done'}`;
  const at = `batch ${r.batch + 1} of ${r.batches}`;
  return isActive(r.phase) ? at : `stopped in ${at}`;
}

function strategyText(r: Rollout): string {
  const o = r.options;
  if (r.strategy === 'all-at-once') return 'all at once';
  const parts = [r.strategy, r.strategy === 'canary' ? `canary ${o.canary}` : null, `batch size ${o.batchSize}`, `soak ${o.soak}`];
  return parts.filter(Boolean).join(', ');
}

const ms = (v: number | null) => (v === null ? '—' : `${Math.round(v)} ms`);

function gateValue(g: Pick<RolloutGate, 'name'>, v: number | null): string {
  if (v === null) return '—';
  if (g.name === 'error-rate') return `${+(v * 100).toFixed(3)}%`;
  if (g.name === 'p95') return ms(v);
  return String(+v.toFixed(3));
}

/** The old revision's p95 (p95 and p95-ratio gates): a latency, whatever the gate's own value is. */
const gateBaseline = (g: Pick<RolloutGate, 'name' | 'baseline'>): string => (g.name === 'p95' || g.name === 'p95-ratio' ? ms(g.baseline) : gateValue(g, g.baseline));

function Progress({ r }: { r: Rollout }) {
  const total = r.devices.length;
  const done = Math.round(r.progress * total);
  return (
    <div class="rollout-progress">
      <div
        class="progress"
        role="progressbar"
        aria-label="Devices done"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={done}
        aria-valuetext={`${done} of ${total} devices done`}
      >
        <span style={{ width: `${total ? (100 * done) / total : 0}%` }} />
      </div>
      <p class="muted">
        {done} of {total} devices done
      </p>
    </div>
  );
}

function Counts({ r }: { r: Rollout }) {
  return (
    <ul class="cards phase-counts" aria-label="Devices per phase">
      {DEVICE_PHASES.map((p) => (
        <li key={p} class={`card${r.counts[p] ? '' : ' zero'}`}>
          <div class="figure">{r.counts[p] ?? 0}</div>
          <div class="what">{p}</div>
        </li>
      ))}
    </ul>
  );
}

function Gates({ r }: { r: Rollout }) {
  if (!r.options.gates) return null;
  return (
    <div class="table-wrap">
      <table>
        <caption>Gates{r.options.gates.minRequests ? ` (each judges after ${r.options.gates.minRequests} requests)` : ''}</caption>
        <thead>
          <tr>
            <th>Gate</th>
            <th>Threshold</th>
            <th class="num">Value</th>
            <th class="num">Baseline</th>
            <th class="num">Requests</th>
            <th class="num">Batch</th>
            <th>Verdict</th>
            <th>Checked</th>
          </tr>
        </thead>
        <tbody>
          {r.gates.length === 0 ? (
            <tr>
              <td colSpan={8} class="muted">
                No figures yet: a gate checks a batch once its soak ends.
              </td>
            </tr>
          ) : (
            r.gates.map((g) => (
              <tr key={`${g.name}-${g.batch}`}>
                <td>{g.name}</td>
                <td>
                  <code>{g.threshold}</code>
                </td>
                <td class="num">{gateValue(g, g.value)}</td>
                <td class="num">{gateBaseline(g)}</td>
                <td class="num">{g.requests}</td>
                <td class="num">{g.batch + 1}</td>
                <td>
                  <span class={`badge ${g.ok === null ? 'info' : g.ok ? 'good' : 'bad'}`}>{g.ok === null ? 'waiting' : g.ok ? 'passed' : 'breached'}</span>
                </td>
                <td>
                  <Ago ts={g.checkedAt} />
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

function Devices({ r }: { r: Rollout }) {
  return (
    <div class="table-wrap">
      <table>
        <caption>Devices ({r.devices.length})</caption>
        <thead>
          <tr>
            <th>Device</th>
            <th class="num">Batch</th>
            <th>Phase</th>
            <th class="num">From revision</th>
            <th>Moved</th>
            <th>Done</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {r.devices.map((d) => (
            <tr key={d.id} data-device={d.id}>
              <td>
                <a href={`/ui/devices/${seg(d.id)}`}>{d.id}</a>
              </td>
              <td class="num">{d.batch + 1}</td>
              <td>
                <StatusBadge status={d.phase} />
              </td>
              <td class="num">{d.previousRevision ?? '—'}</td>
              <td>
                <Ago ts={d.movedAt} />
              </td>
              <td>{d.doneAt ? <Ago ts={d.doneAt} /> : <span class="muted">—</span>}</td>
              <td>{d.error ? <span class="device-error">{d.error}</span> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A time ahead (a soak's end): Ago reads only the past. */
function Until({ ts }: { ts: string }) {
  const s = Math.max(0, Math.round((Date.parse(ts) - Date.now()) / 1000));
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.ceil(s / 60)} min` : `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return (
    <time dateTime={ts} title={new Date(ts).toISOString()}>
      in {text}
    </time>
  );
}

function Facts({ r }: { r: Rollout }) {
  const rows: [string, ComponentChildren][] = [
        ['Service', <a href={`/ui/deployments/${seg(r.service)}`}>{r.service}</a>],
        ['Kind', r.kind],
        ['Revision', `${r.fromRevision ?? 'none'} → ${r.revision ?? 'none'}`],
        ['Strategy', strategyText(r)],
        ['Max failures', r.options.maxFailures],
        ['Device timeout', r.options.deviceTimeout],
        ['Target', r.target ? <code>{`${targetText(r.target.from)} → ${targetText(r.target.to)}`}</code> : null],
        ['Soak until', r.soakUntil ? <Until ts={r.soakUntil} /> : null],
        ['Started', <Ago ts={r.createdAt} />],
        ['Finished', r.finishedAt ? <Ago ts={r.finishedAt} /> : null],
        ['Rolled back by', r.rolledBackBy ? <a href={`/ui/rollouts/${r.rolledBackBy}`}>Rollout {r.rolledBackBy}</a> : null],
        ['Rollback of', r.rollbackOf ? <a href={`/ui/rollouts/${r.rollbackOf}`}>Rollout {r.rollbackOf}</a> : null],
  ];
  // Facts that do not apply to this rollout (no retarget, no soak, not rolled back) are left out.
  return <KeyValue rows={rows.filter(([, v]) => v !== null)} />;
}

export default function RolloutPage() {
  const { params } = useRoute();
  const id = params.id ?? '';
  // Until the first answer, poll as if live: most rollout links point at one in flight.
  const [intervalMs, setIntervalMs] = useState(LIVE_MS);
  const { data: r, error, reload } = usePoll(() => api.get<Rollout>(`/api/v1/rollouts/${seg(id)}`), intervalMs, [id]);
  const phase = r?.phase;
  useEffect(() => {
    if (phase) setIntervalMs(isActive(phase) ? LIVE_MS : FINISHED_MS);
  }, [phase]);
  return (
    <section>
      <PageHeader title={`Rollout ${id}`}>{r ? <RolloutActions rollout={r} onDone={reload} /> : null}</PageHeader>
      <ErrorMessage error={error} what={`Rollout ${id} could not be loaded`} />
      <p class="rollout-status" role="status" aria-live="polite">
        {r ? (
          <>
            <StatusBadge status={r.phase} /> Rollout {r.id} of <strong>{r.service}</strong> is {r.phase}
            {` · ${batchText(r)}`}
            {r.reason ? ` · ${r.reason}` : ''}
          </>
        ) : null}
      </p>
      {!r ? (
        error ? null : <Loading what="Loading the rollout" />
      ) : (
        <>
          <Progress r={r} />
          <Counts r={r} />
          <Facts r={r} />
          <Gates r={r} />
          <Devices r={r} />
        </>
      )}
    </section>
  );
}
