/**
 * A destructive action that asks first, in the page (not window.confirm): the button, then the
 * question with "yes" and "Keep it". Focus returns to the button when the question closes, and a
 * busy button stays focusable (aria-disabled), so keyboard users keep their place.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorMessage } from './error-message.js';
import './page-actions.css';

export interface ConfirmActionProps {
  /** The button, e.g. "Cancel build". */
  label: string;
  /** The question, e.g. "Cancel build 12? …". */
  question: string;
  /** The button that does it, e.g. "Cancel the build". */
  confirm: string;
  /** What the error message starts with when it fails. */
  failure: string;
  /** Does it; resolves once the hub accepted (the page's reload then shows the outcome). */
  act: () => Promise<unknown>;
}

export function ConfirmAction({ label, question, confirm, failure, act }: ConfirmActionProps) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const button = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  useEffect(() => {
    if (!confirming && refocus.current) {
      refocus.current = false;
      button.current?.focus();
    }
  }, [confirming]);

  const close = () => {
    refocus.current = true;
    setConfirming(false);
  };
  const run = async () => {
    if (busy) return;
    setBusy(true);
    setError(undefined);
    try {
      // Busy until the page's next load shows the outcome (and usually removes this component).
      await act();
    } catch (e) {
      setError(e instanceof Error ? e : new Error(String(e)));
      setBusy(false);
      close();
    }
  };

  return (
    <div class="page-actions">
      {confirming ? (
        <div class="confirm" role="group" aria-label={`Confirm: ${label}`}>
          <p>{question}</p>
          <div class="actions">
            <button type="button" class="danger" onClick={run} aria-disabled={busy} autoFocus>
              {busy ? 'Working…' : confirm}
            </button>
            <button type="button" class="secondary" aria-disabled={busy} onClick={() => (busy ? undefined : close())}>
              Keep it
            </button>
          </div>
        </div>
      ) : (
        <div class="actions">
          <button type="button" class="danger" ref={button} onClick={() => setConfirming(true)}>
            {label}
          </button>
        </div>
      )}
      <ErrorMessage error={error} what={failure} />
    </div>
  );
}
