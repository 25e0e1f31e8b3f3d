/** One retraining run, live: its stage, rows, evaluation, candidate and rollout, and its log (deploy scope). */
import { useRoute } from 'preact-iso';
import type { RetrainingRun, RunStage, RunStatus } from '../../../shared/api/retraining.js';
import { api, seg } from '../api.js';
import { everyMember } from '../every-member.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
import { ConfirmAction } from '../components/confirm-action.js';
import { KeyValue } from '../components/key-value.js';
import { LiveLog } from '../components/live-log.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import '../components/page-actions.css';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { useSession } from '../session.js';
import { DETAIL_POLL_MS } from './intervals.js';
import { evaluationText, modelLink } from './retraining.js';

/** shared/api/retraining.ts ACTIVE_RUN_STATUSES (a value import would pull typebox into the bundle). */
const ACTIVE: readonly RunStatus[] = ['queued', 'running'];

/** shared/api/retraining.ts RUN_STAGES, in their order. */
const STAGES = everyMember<RunStage>()(['exporting', 'training', 'registering', 'building', 'evaluating', 'rolling-out']);

function Stages({ run }: { run: RetrainingRun }) {
  const at = run.stage ? STAGES.indexOf(run.stage) : -1;
  const done = (i: number) => run.status === 'promoted' || i < at;
  return (
    <ol class="stages" aria-label="Stages">
      {STAGES.map((s, i) => (
        <li key={s} aria-current={i === at && ACTIVE.includes(run.status) ? 'step' : undefined} class={done(i) ? 'done' : i === at ? 'at' : ''}>
          {s}
        </li>
      ))}
    </ol>
  );
}

/**
 * Cancel asks first, in the page (the run's work so far is dropped), and stays busy from the click
 * until the run says who asked: then the page says so instead of offering the button again.
 */
function CancelRun({ run, onDone }: { run: RetrainingRun; onDone: () => void }) {
  if (run.cancelledBy) return <span class="muted">cancel requested by {run.cancelledBy.keyName}</span>;
  return (
    <ConfirmAction
      label="Cancel run"
      question={`Cancel run #${run.id}? Its work so far is dropped and no candidate is promoted.`}
      confirm="Cancel the run"
      failure="Cancel failed"
      act={async () => {
        await api.post(`/api/v1/retraining/runs/${seg(run.id)}/cancel`);
        onDone();
      }}
    />
  );
}

export default function RetrainingRunPage() {
  const { params } = useRoute();
  const id = params.id ?? '';
  const session = useSession();
  const run = usePoll(() => api.get<RetrainingRun>(`/api/v1/retraining/runs/${seg(id)}`), DETAIL_POLL_MS, [id]);
  const r = run.data;
  const active = r ? ACTIVE.includes(r.status) : false;

  return (
    <section>
      <PageHeader title={`Retraining run #${id}`}>
        {r && active && session.can('deploy') ? <CancelRun key={r.id} run={r} onDone={run.reload} /> : null}
      </PageHeader>
      <ErrorMessage error={run.error} what={`Run #${id} could not be loaded`} />
      {!r ? (
        run.error ? null : <Loading />
      ) : (
        <>
          <p aria-live="polite">
            <StatusBadge status={r.status} /> {r.stage ? `stage: ${r.stage}` : ''} {r.reason ? <span class="muted">— {r.reason}</span> : null}
          </p>
          <Stages run={r} />
          <KeyValue
            rows={[
              ['Job', <a href="/ui/retraining">{r.job}</a>],
              ['Service', <a href={`/ui/deployments/${seg(r.service)}`}>{r.service}</a>],
              ['Trigger', r.trigger],
              ['Current model', modelLink(r.current)],
              ['Candidate', modelLink(r.candidate)],
              ['Rows', r.rows ? `${r.rows.train} train · ${r.rows.eval} eval · ${r.rows.labels} labels` : null],
              ['Labels', r.labels ? `${r.labels.count} (until ${new Date(r.labels.until).toLocaleString()})` : null],
              ['Evaluation', evaluationText(r)],
              ['Image', r.image ? <a href={`/ui/builds/${seg(r.image)}`}>build {r.image}</a> : null],
              ['Rollout', r.rollout ? <a href={`/ui/rollouts/${seg(r.rollout)}`}>rollout {r.rollout}</a> : null],
              ['Created', <Ago ts={r.createdAt} />],
              ['Finished', r.finishedAt ? <Ago ts={r.finishedAt} /> : null],
              ['By', r.createdBy?.keyName ?? 'a trigger'],
            ]}
          />
          <h2>Log</h2>
          {session.can('deploy') ? <LiveLog path={`/api/v1/retraining/runs/${seg(id)}/log`} label="Run log" active={active} /> : <p class="muted">The run's log holds users' data: it needs a key with the deploy scope.</p>}
        </>
      )}
    </section>
  );
}
