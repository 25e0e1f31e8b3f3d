/**
 * Pause, Resume and Abort for a rollout, shown only to a key with the deploy scope and only when the
 * hub would accept them in the rollout's phase. Abort rolls devices back, so it asks first, in the
 * page. The page's view may be a second old: the hub's refusal (409) is shown as it says it.
 *
 * Pause and Resume are one button whose label follows the phase, so keyboard focus stays on it. A
 * button stays busy from the click until the page shows the phase the action left (not only until
 * the POST answers), so a second click cannot act on the old phase. Busy buttons are aria-disabled
 * rather than disabled: a disabled button would drop the focus.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Rollout, RolloutPhase } from '../../../shared/api/rollouts.js';
import { api, seg } from '../api.js';
import { useSession } from '../session.js';
import { ErrorMessage } from './error-message.js';
import './page-actions.css';

type Action = 'pause' | 'resume' | 'abort';

const FAILED: Record<Action, string> = { pause: 'Pause failed', resume: 'Resume failed', abort: 'Abort failed' };

/** The Pause/Resume toggle's action in this phase, if any. */
function toggleOf(r: Rollout): 'pause' | 'resume' | null {
  return r.phase === 'running' ? 'pause' : r.phase === 'paused' ? 'resume' : null;
}

// A rollback cannot be aborted (the hub says: deploy again instead).
const abortable = (r: Rollout) => (r.phase === 'running' || r.phase === 'paused') && r.kind !== 'rollback';

export function RolloutActions({ rollout, onDone }: { rollout: Rollout; onDone: () => void }) {
  const session = useSession();
  const [posting, setPosting] = useState<Action | null>(null);
  // The phase an accepted action left: busy until the page's view has moved past it.
  const [leaving, setLeaving] = useState<RolloutPhase | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [failure, setFailure] = useState<{ action: Action; error: Error } | null>(null);
  const abortButton = useRef<HTMLButtonElement>(null);
  const refocusAbort = useRef(false);

  // A new phase settles an accepted action, and makes an older refusal stale.
  useEffect(() => {
    setLeaving(null);
    setFailure(null);
  }, [rollout.phase]);

  useEffect(() => {
    if (!confirming && refocusAbort.current) {
      refocusAbort.current = false;
      abortButton.current?.focus();
    }
  }, [confirming]);

  if (!session.can('deploy')) return null;
  const toggle = toggleOf(rollout);
  const canAbort = abortable(rollout);
  if (!toggle && !canAbort) return null;
  const busy = posting !== null || leaving === rollout.phase;

  const run = async (action: Action) => {
    if (busy) return;
    setPosting(action);
    setFailure(null);
    try {
      await api.post<Rollout>(`/api/v1/rollouts/${seg(rollout.id)}/${action}`);
      setLeaving(rollout.phase);
    } catch (e) {
      setFailure({ action, error: e instanceof Error ? e : new Error(String(e)) });
      if (action === 'abort') {
        refocusAbort.current = true;
        setConfirming(false);
      }
    } finally {
      setPosting(null);
      onDone();
    }
  };

  const moved = rollout.devices.filter((d) => d.movedAt !== null).length;
  return (
    <div class="page-actions">
      <div class="actions">
        {toggle ? (
          <button key="toggle" type="button" onClick={() => run(toggle)} aria-disabled={busy}>
            {toggle === 'pause' ? 'Pause' : 'Resume'}
          </button>
        ) : null}
        {canAbort && !confirming ? (
          <button key="abort" ref={abortButton} type="button" class="danger" onClick={() => busy || setConfirming(true)} aria-disabled={busy}>
            Abort
          </button>
        ) : null}
      </div>
      {canAbort && confirming ? (
        <div class="confirm" role="group" aria-label="Confirm abort">
          <p>
            Abort rollout {rollout.id} and roll back the {moved} device{moved === 1 ? '' : 's'} it moved?
          </p>
          <div class="actions">
            <button type="button" class="danger" onClick={() => run('abort')} aria-disabled={busy} autoFocus>
              {posting === 'abort' ? 'Aborting…' : 'Abort and roll back'}
            </button>
            <button
              type="button"
              class="secondary"
              onClick={() => {
                if (busy) return;
                refocusAbort.current = true;
                setConfirming(false);
              }}
              aria-disabled={busy}
            >
              Keep it
            </button>
          </div>
        </div>
      ) : null}
      {failure ? <ErrorMessage error={failure.error} what={FAILED[failure.action]} /> : null}
    </div>
  );
}
