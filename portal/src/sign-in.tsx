import { useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorMessage } from './components/error-message.js';
import type { Identity } from './session.js';
import { keepKey } from './session-store.js';

/** Asks for an API key, checks it with the hub, and keeps it for this tab only. */
export function SignIn({ reason, onSignedIn }: { reason: string | null; onSignedIn: (identity: Identity) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return setError(new Error('Enter an API key (it starts with emk_).'));
    setBusy(true);
    setError(undefined);
    try {
      const identity = await api.getWithKey<Identity>('/api/v1/whoami', trimmed);
      keepKey(trimmed);
      setKey('');
      onSignedIn(identity);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      {/* POST, and no field name: should this script ever not run, a native submit cannot put the key in a URL. */}
      <form method="post" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">edgeml</h1>
        <p class="muted">Sign in with an API key. It is kept in this tab only and sent to the hub as a bearer token.</p>
        {reason ? <p class="notice" role="status">{reason}</p> : null}
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" spellcheck={false} value={key} onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)} required />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <ErrorMessage error={error} what="Sign-in failed" />
      </form>
    </main>
  );
}
