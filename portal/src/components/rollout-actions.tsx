/**
 * Pause, Resume and Abort for a rollout, shown only to a key with the deploy scope and only when the
 * hub would accept them in the rollout's phase. Abort rolls devices back, so it asks first, in the
 * page. The page's view may be a second old: the hub's refusal (409) is shown as it says it.
 */
import { useState } from 'preact/hooks';
import type { Rollout } from '../../../shared/api/rollouts.js';
import { api } from '../api.js';
import { useSession } from '../session.js';
import { ErrorMessage } from './error-message.js';

type Action = 'pause' | 'resume' | 'abort';

const FAILED: Record<Action, string> = { pause: 'Pause failed', resume: 'Resume failed', abort: 'Abort failed' };

function applies(r: Rollout): Action[] {
  const actions: Action[] = [];
  if (r.phase === 'running') actions.push('pause');
  if (r.phase === 'paused') actions.push('resume');
  // A rollback cannot be aborted (the hub says: deploy again instead).
  if ((r.phase === 'running' || r.phase === 'paused') && r.kind !== 'rollback') actions.push('abort');
  return actions;
}

export function RolloutActions({ rollout, onDone }: { rollout: Rollout; onDone: () => void }) {
  const session = useSession();
  const [busy, setBusy] = useState<Action | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [failure, setFailure] = useState<{ action: Action; error: Error } | null>(null);

  if (!session.can('deploy')) return null;
  const actions = applies(rollout);

  const run = async (action: Action) => {
    setBusy(action);
    setFailure(null);
    setConfirming(false);
    try {
      await api.post<Rollout>(`/api/v1/rollouts/${rollout.id}/${action}`);
    } catch (e) {
      setFailure({ action, error: e instanceof Error ? e : new Error(String(e)) });
    } finally {
      setBusy(null);
      onDone();
    }
  };

  const moved = rollout.devices.filter((d) => d.movedAt !== null).length;
  return (
    <div class="rollout-actions">
      <div class="actions">
        {actions.includes('pause') ? (
          <button type="button" onClick={() => run('pause')} disabled={busy !== null}>
            Pause
          </button>
        ) : null}
        {actions.includes('resume') ? (
          <button type="button" onClick={() => run('resume')} disabled={busy !== null}>
            Resume
          </button>
        ) : null}
        {actions.includes('abort') && !confirming ? (
          <button type="button" class="danger" onClick={() => setConfirming(true)} disabled={busy !== null}>
            Abort
          </button>
        ) : null}
      </div>
      {actions.includes('abort') && confirming ? (
        <div class="confirm" role="group" aria-label="Confirm abort">
          <p>
            Abort rollout {rollout.id} and roll back the {moved} device{moved === 1 ? '' : 's'} it moved?
          </p>
          <div class="actions">
            <button type="button" class="danger" onClick={() => run('abort')} disabled={busy !== null} autoFocus>
              Abort and roll back
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>
              Keep it
            </button>
          </div>
        </div>
      ) : null}
      {failure ? <ErrorMessage error={failure.error} what={FAILED[failure.action]} /> : null}
    </div>
  );
}
