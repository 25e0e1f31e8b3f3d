/** One retraining run, live: its stage, rows, evaluation, candidate and rollout, and its log (deploy scope). */
import { useState } from 'preact/hooks';
import { useRoute } from 'preact-iso';
import { ACTIVE_RUN_STATUSES, type RetrainingRun } from '../../../shared/api/retraining.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
import { KeyValue } from '../components/key-value.js';
import { LiveLog } from '../components/live-log.js';
import { Loading } from '../components/loading.js';
import { PageHeader } from '../components/page-header.js';
import { StatusBadge } from '../components/status-badge.js';
import { usePoll } from '../poll.js';
import { useSession } from '../session.js';
import { evaluationText, modelLink } from './retraining.js';

const STAGES = ['exporting', 'training', 'registering', 'building', 'evaluating', 'rolling-out'] as const;

function Stages({ run }: { run: RetrainingRun }) {
  const at = run.stage ? STAGES.indexOf(run.stage) : -1;
  const done = (i: number) => run.status === 'promoted' || i < at;
  return (
    <ol class="stages" aria-label="Stages">
      {STAGES.map((s, i) => (
        <li key={s} aria-current={i === at && ACTIVE_RUN_STATUSES.includes(run.status) ? 'step' : undefined} class={done(i) ? 'done' : i === at ? 'at' : ''}>
          {s}
        </li>
      ))}
    </ol>
  );
}

export default function RetrainingRunPage() {
  const { params } = useRoute();
  const id = params.id ?? '';
  const session = useSession();
  const [cancelError, setCancelError] = useState<Error | undefined>();
  const run = usePoll(() => api.get<RetrainingRun>(`/api/v1/retraining/runs/${seg(id)}`), 2000, [id]);
  const r = run.data;
  const active = r ? ACTIVE_RUN_STATUSES.includes(r.status) : false;

  const cancel = async () => {
    setCancelError(undefined);
    try {
      await api.post(`/api/v1/retraining/runs/${seg(id)}/cancel`);
      run.reload();
    } catch (e) {
      setCancelError(e as Error);
    }
  };

  return (
    <section>
      <PageHeader title={`Retraining run #${id}`}>
        {r && active && session.can('deploy') ? (
          <button type="button" class="danger" onClick={cancel}>
            Cancel run
          </button>
        ) : null}
      </PageHeader>
      <ErrorMessage error={run.error} />
      <ErrorMessage error={cancelError} what="Cancel" />
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
              ['job', <a href="/ui/retraining">{r.job}</a>],
              ['service', <a href={`/ui/deployments/${seg(r.service)}`}>{r.service}</a>],
              ['trigger', r.trigger],
              ['current model', modelLink(r.current)],
              ['candidate', modelLink(r.candidate)],
              ['rows', r.rows ? `${r.rows.train} train · ${r.rows.eval} eval · ${r.rows.labels} labels` : null],
              ['labels', r.labels ? `${r.labels.count} (until ${new Date(r.labels.until).toLocaleString()})` : null],
              ['evaluation', evaluationText(r)],
              ['image', r.image ? <a href={`/ui/builds/${r.image}`}>build {r.image}</a> : null],
              ['rollout', r.rollout ? <a href={`/ui/rollouts/${r.rollout}`}>rollout {r.rollout}</a> : null],
              ['created', <Ago ts={r.createdAt} />],
              ['finished', r.finishedAt ? <Ago ts={r.finishedAt} /> : null],
              ['by', r.createdBy?.keyName ?? 'a trigger'],
            ]}
          />
          <h2>Log</h2>
          {session.can('deploy') ? <LiveLog path={`/api/v1/retraining/runs/${seg(id)}/log`} label="Run log" /> : <p class="muted">The run's log holds users' data: it needs a key with the deploy scope.</p>}
        </>
      )}
    </section>
  );
}
