import type { VersionSelector } from '../store/store.js';

/** `3`, `latest` or `@production` from a path (the route schema already checked the form). */
export function selectorFromRef(ref: string): VersionSelector {
  if (ref === 'latest') return { latest: true };
  if (ref.startsWith('@')) return { alias: ref.slice(1) };
  return { version: Number(ref) };
}
