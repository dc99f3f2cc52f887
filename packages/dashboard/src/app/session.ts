/**
 * Who is signed in. The key lives in sessionStorage only: it is gone when the tab closes, it is never in
 * a cookie (so no other site can make the browser send it: no CSRF), and never in the URL (links are
 * shared). Every API call sends it as `Authorization: Bearer`.
 */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Session {
  key: string;
  keyId: string;
  scope: 'read' | 'admin';
  /** The key's tenant; null for a server-wide admin key, which reads the tenant in `asTenant`. */
  tenant: string | null;
  /** The tenant a server-wide admin key reads (sent as `?tenant=`). */
  asTenant?: string;
}

const STORAGE_KEY = 'tally.session';

export function loadSession(): Session | undefined {
  try {
    const text = sessionStorage.getItem(STORAGE_KEY);
    if (!text) return undefined;
    const s = JSON.parse(text) as Partial<Session>;
    if (typeof s.key !== 'string' || (s.scope !== 'read' && s.scope !== 'admin')) return undefined;
    return s as Session;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** The tenant the dashboard shows. */
export function tenantOf(session: Session): string {
  return session.tenant ?? session.asTenant ?? '';
}

export interface SessionState {
  session: Session;
  signOut(): void;
}

export const SessionContext = createContext<SessionState | null>(null);

/** The signed-in session (pages check `session.scope === 'admin'` for admin sections). */
export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession: outside the dashboard shell');
  return s;
}
