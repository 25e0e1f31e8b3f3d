/**
 * Retraining: each job with its triggers and last run, and every run with its stage, live — the
 * portal's view of the long operation that trains, evaluates and promotes models.
 */
import type { RetrainingJob, RetrainingJobList, RetrainingRun, RetrainingRunList } from '../../../shared/api/retraining.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { LIST_POLL_MS } from './intervals.js';

export function modelLink(ref: { name: string; version: number } | null) {
  return ref ? <a href={`/ui/models/${seg(ref.name)}?version=${ref.version}`}>{`${ref.name}:${ref.version}`}</a> : <span class="muted">—</span>;
}

export function evaluationText(run: RetrainingRun): string | null {
  const e = run.evaluation;
  if (!e) return null;
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toPrecision(4));
  return `${e.metric} ${fmt(e.current)} → ${fmt(e.candidate)} on ${e.compared} rows`;
}

function trigger(job: RetrainingJob): string {
  const parts = [job.schedule ? `cron "${job.schedule}"` : null, job.minNewLabels ? `${job.minNewLabels} new labels` : null].filter(Boolean);
  return parts.length > 0 ? parts.join(' or ') : 'by hand';
}

function JobsTable({ jobs }: { jobs: RetrainingJob[] }) {
  if (jobs.length === 0) return <p class="muted">No retraining job yet: <code>edgeml retrain create</code> makes one.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>Jobs</caption>
        <thead>
          <tr>
            <th>Job</th>
            <th>Service</th>
            <th>Trainer</th>
            <th>Runs when</th>
            <th>Metric</th>
            <th>Last run</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.name}>
              <td>{j.name}</td>
              <td>
                <a href={`/ui/deployments/${seg(j.service)}`}>{j.service}</a>
              </td>
              <td>{j.trainer}</td>
              <td>{trigger(j)}</td>
              <td>
                {j.evalMetric}
                {j.minImprovement > 0 ? ` (+${j.minImprovement})` : ''}
              </td>
              <td>
                {j.lastRun ? (
                  <>
                    <a href={`/ui/retraining/runs/${seg(j.lastRun.id)}`}>#{j.lastRun.id}</a> <StatusBadge status={j.lastRun.status} />
                  </>
                ) : (
                  <span class="muted">none</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RunsTable({ runs }: { runs: RetrainingRun[] }) {
  if (runs.length === 0) return <p class="muted">No run yet.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>Runs, newest first</caption>
        <thead>
          <tr>
            <th>Run</th>
            <th>Job</th>
            <th>Status</th>
            <th>Stage</th>
            <th>Candidate</th>
            <th>Evaluation</th>
            <th>Started</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id}>
              <td>
                <a href={`/ui/retraining/runs/${seg(r.id)}`}>#{r.id}</a>
              </td>
              <td>{r.job}</td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>{r.stage ?? <span class="muted">—</span>}</td>
              <td>{modelLink(r.candidate)}</td>
              <td>{evaluationText(r) ?? <span class="muted">—</span>}</td>
              <td>
                <Ago ts={r.startedAt ?? r.createdAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function RetrainingPage() {
  const jobs = usePoll(() => api.get<RetrainingJobList>('/api/v1/retraining/jobs'), LIST_POLL_MS, []);
  const runs = usePoll(() => api.get<RetrainingRunList>('/api/v1/retraining/runs'), LIST_POLL_MS, []);
  return (
    <section>
      <PageHeader title="Retraining" />
      <ErrorMessage error={jobs.error} what="Retraining jobs could not be loaded" />
      {jobs.data ? <JobsTable jobs={jobs.data.jobs} /> : jobs.error ? null : <Loading />}
      <h2>Runs</h2>
      <ErrorMessage error={runs.error} what="Retraining runs could not be loaded" />
      {runs.data ? <RunsTable runs={runs.data.runs.slice(0, 100)} /> : runs.error ? null : <Loading />}
    </section>
  );
}
