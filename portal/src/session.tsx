/**
 * Who is signed in, as the hub says (GET /api/v1/whoami), and what their key's scope allows: pages
 * show no button that would fail.
 */
import { createContext, type ComponentChildren } from 'preact';
import { useContext } from 'preact/hooks';
import type { Scope } from '../../shared/api/common.js';
import { expireSession } from './session-store.js';

export interface Identity {
  id: string;
  name: string;
  scope: Scope;
}

const RANK: Record<Scope, number> = { read: 0, deploy: 1, admin: 2 };

export interface Session {
  identity: Identity;
  /** Whether the key's scope includes `scope` (admin ⊃ deploy ⊃ read). */
  can(scope: Scope): boolean;
  signOut(): void;
}

export function sessionOf(identity: Identity): Session {
  return { identity, can: (scope) => RANK[identity.scope] >= RANK[scope], signOut: () => expireSession(null) };
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ session, children }: { session: Session; children: ComponentChildren }) {
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}
