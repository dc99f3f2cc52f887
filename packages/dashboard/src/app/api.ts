/**
 * The dashboard's only way to the server: the query API (`POST /v1/query` and the other read routes) and,
 * for admin sections, the admin API, each call with the session's key. A failure comes back as an
 * ApiError `{code, message}` (the server's error body, or TALLY_NETWORK when no answer came), which pages
 * show in an ErrorBox; a 401 (a revoked key) also ends the session, back to sign-in.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Query, QueryKind } from '@tally/core';
import { useRoute } from './url.js';
import type { Session } from './session.js';

export interface Column {
  name: string;
  type: string;
}

export type Cell = string | number | boolean | null | Record<string, unknown> | unknown[];

export interface QueryMeta {
  source?: string;
  ms?: number;
  truncated?: boolean;
  range?: { from: string; to: string };
  next?: string;
  explain?: unknown;
  [key: string]: unknown;
}

export interface QueryAnswer {
  columns: Column[];
  rows: Cell[][];
  meta: QueryMeta;
}

/** Every field optional, at every depth: the server fills the defaults and refuses what is wrong. */
type Loose<T> = T extends readonly (infer U)[] ? Loose<U>[] : T extends object ? { [K in keyof T]?: Loose<T[K]> } : T;

/**
 * A query as the dashboard writes one: the model of @tally/core with its defaults left out. `range` and
 * `tz` are filled in from the view when absent (useQuery).
 */
export type QueryInput = {
  [K in QueryKind]: Loose<Omit<Extract<Query, { kind: K }>, 'kind'>> & { kind: K };
}[QueryKind];

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** HTTP status; 0 when no answer came. */
    readonly status: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface WhoAmI {
  tenant: string | null;
  scope: 'read' | 'write' | 'admin';
  keyId: string;
}

let session: Session | undefined;
let unauthorized: (error: ApiError) => void = () => undefined;

/** Set by the shell: the key every call sends, and what a 401 does. */
export function configureApi(s: Session | undefined, onUnauthorized: (error: ApiError) => void): void {
  session = s;
  unauthorized = onUnauthorized;
}

/** A request with the session's key (or `key`), answered as JSON, or thrown as ApiError. */
export async function request<T>(
  path: string,
  init: { method?: string; body?: unknown; signal?: AbortSignal; key?: string; tenant?: boolean } = {},
): Promise<T> {
  const key = init.key ?? session?.key;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let url = path;
  // A server-wide admin key names the tenant it reads; tenant keys read their own.
  if (init.tenant !== false && session?.tenant === null && session.asTenant) {
    url += `${url.includes('?') ? '&' : '?'}tenant=${encodeURIComponent(session.asTenant)}`;
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('TALLY_NETWORK', `the server did not answer: ${(e as Error).message}`, 0);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const body = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })?.error;
    const error = new ApiError(
      body?.code ?? `HTTP_${res.status}`,
      body?.message ?? `${res.status} ${res.statusText}`,
      res.status,
      body?.details,
    );
    // The sign-in check handles its own 401 (it has no session to end yet).
    if (res.status === 401 && init.key === undefined) unauthorized(error);
    throw error;
  }
  return json as T;
}

/** One query: its columns, rows and meta. */
export function query(q: QueryInput, options: { signal?: AbortSignal } = {}): Promise<QueryAnswer> {
  return request<QueryAnswer>('/v1/query', { body: q, signal: options.signal });
}

/** Who a key is (sign-in checks it before keeping it). */
export function whoami(key: string): Promise<WhoAmI> {
  return request<WhoAmI>('/v1/whoami', { key, tenant: false });
}

/** The rows of an answer as objects keyed by column name. */
export function records(answer: QueryAnswer): Record<string, Cell>[] {
  return answer.rows.map((row) => Object.fromEntries(answer.columns.map((c, i) => [c.name, row[i] ?? null])));
}

export interface Loaded<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
  /** Asks again (e.g. a Retry button). */
  reload(): void;
}

/**
 * Loads `load()` whenever `key` changes (a JSON of what it depends on), cancelling the previous call;
 * null skips. Errors other than an abort become `error`, for an ErrorBox. Loading from the render in which
 * the key changes (the effect that starts the call runs after it): the data shown meanwhile is the old
 * key's, and nothing may take it for the new one's.
 */
export function useLoad<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean; key?: string }>({
    loading: key !== null,
  });
  const [round, setRound] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    if (key === null) {
      setState({ loading: false });
      return;
    }
    const abort = new AbortController();
    setState((s) => ({ data: s.data, loading: true, key: s.key }));
    loadRef.current(abort.signal).then(
      (data) => {
        if (!abort.signal.aborted) setState({ data, loading: false, key });
      },
      (e: unknown) => {
        if (abort.signal.aborted) return;
        const error =
          e instanceof ApiError ? e : new ApiError('TALLY_DASHBOARD', (e as Error)?.message ?? String(e), 0);
        setState({ error, loading: false, key });
      },
    );
    return () => abort.abort();
  }, [key, round]);
  const { key: settledKey, ...shown } = state;
  return {
    ...shown,
    loading: key !== null && (state.loading || settledKey !== key),
    reload: () => setRound((r) => r + 1),
  };
}

/** A query in the current view: `range` and `tz` come from the URL unless `q` sets them; null skips. */
export function useQuery(q: QueryInput | null): Loaded<QueryAnswer> {
  const { view } = useRoute();
  const full = useMemo(
    () => (q === null ? null : { range: view.range, tz: view.tz, ...q }),
    [JSON.stringify(q), JSON.stringify(view.range), view.tz],
  );
  return useLoad(full === null ? null : JSON.stringify(full), (signal) => query(full as QueryInput, { signal }));
}
