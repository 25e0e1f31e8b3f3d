/** One retraining run, live: its stage, rows, evaluation, candidate and rollout, and its log (deploy scope). */
import { useEffect, useRef, useState } from 'preact/hooks';
import { useRoute } from 'preact-iso';
import type { RetrainingRun, RunStatus } from '../../../shared/api/retraining.js';
import { api, seg } from '../api.js';
import { Ago } from '../components/ago.js';
import { ErrorMessage } from '../components/error-message.js';
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

const STAGES = ['exporting', 'training', 'registering', 'building', 'evaluating', 'rolling-out'] as const;

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
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const cancelButton = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  useEffect(() => {
    if (!confirming && refocus.current) {
      refocus.current = false;
      cancelButton.current?.focus();
    }
  }, [confirming]);

  if (run.cancelledBy) return <span class="muted">cancel requested by {run.cancelledBy.keyName}</span>;

  const cancel = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await api.post(`/api/v1/retraining/runs/${seg(run.id)}/cancel`);
      // Busy until the reload shows cancelledBy (this component then shows who asked).
      onDone();
    } catch (e) {
      setError(e instanceof Error ? e : new Error(String(e)));
      setBusy(false);
      refocus.current = true;
      setConfirming(false);
    }
  };

  return (
    <div class="page-actions">
      {confirming ? (
        <div class="confirm" role="group" aria-label="Confirm cancel">
          <p>Cancel run #{run.id}? Its work so far is dropped and no candidate is promoted.</p>
          <div class="actions">
            <button type="button" class="danger" onClick={cancel} disabled={busy} autoFocus>
              {busy ? 'Cancelling…' : 'Cancel the run'}
            </button>
            <button
              type="button"
              class="secondary"
              disabled={busy}
              onClick={() => {
                refocus.current = true;
                setConfirming(false);
              }}
            >
              Keep it
            </button>
          </div>
        </div>
      ) : (
        <div class="actions">
          <button type="button" class="danger" ref={cancelButton} onClick={() => setConfirming(true)}>
            Cancel run
          </button>
        </div>
      )}
      <ErrorMessage error={error} what="Cancel failed" />
    </div>
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
              ['job', <a href="/ui/retraining">{r.job}</a>],
              ['service', <a href={`/ui/deployments/${seg(r.service)}`}>{r.service}</a>],
              ['trigger', r.trigger],
              ['current model', modelLink(r.current)],
              ['candidate', modelLink(r.candidate)],
              ['rows', r.rows ? `${r.rows.train} train · ${r.rows.eval} eval · ${r.rows.labels} labels` : null],
              ['labels', r.labels ? `${r.labels.count} (until ${new Date(r.labels.until).toLocaleString()})` : null],
              ['evaluation', evaluationText(r)],
              ['image', r.image ? <a href={`/ui/builds/${seg(r.image)}`}>build {r.image}</a> : null],
              ['rollout', r.rollout ? <a href={`/ui/rollouts/${seg(r.rollout)}`}>rollout {r.rollout}</a> : null],
              ['created', <Ago ts={r.createdAt} />],
              ['finished', r.finishedAt ? <Ago ts={r.finishedAt} /> : null],
              ['by', r.createdBy?.keyName ?? 'a trigger'],
            ]}
          />
          <h2>Log</h2>
          {session.can('deploy') ? <LiveLog path={`/api/v1/retraining/runs/${seg(id)}/log`} label="Run log" active={active} /> : <p class="muted">The run's log holds users' data: it needs a key with the deploy scope.</p>}
        </>
      )}
    </section>
  );
}
