/**
 * Where the signed-in API key lives: the tab's sessionStorage, so it goes with the tab and is never
 * put in a URL, a cookie or a log. Listeners hear sign-in, sign-out and expiry.
 */
const KEY_ITEM = 'edgeml.apiKey';

type Listener = (reason: string | null) => void;
const listeners = new Set<Listener>();

export function currentKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function keepKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
  for (const l of listeners) l(null);
}

/** Forget the key; `reason` is shown on the sign-in form (null: signed out by hand). */
export function expireSession(reason: string | null): void {
  sessionStorage.removeItem(KEY_ITEM);
  for (const l of listeners) l(reason);
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
