/**
 * Live: the tail of what the server stores for the tenant, from `GET /v1/live` (server-sent events),
 * newest first, the last 500 rows kept. The stream is read with fetch (sse.ts), since EventSource cannot
 * send the key as a header. Filters are the endpoint's own (kind, event names, one user), in the URL.
 *
 * Pause keeps the connection: what arrives meanwhile is held (up to 500 rows, older ones counted) and the
 * button says how many; Resume puts them in the list. A frame the server could not send in time (this tab
 * fell behind) comes as `event: dropped` and shows as a row with the count. A stream that ends (server
 * restart) is opened again after the delay the server asked for; the stream does not replay, so the gap is
 * marked in the list.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, request } from '../api.js';
import { Card } from '../components/card.js';
import { CsvButton } from '../components/csv-button.js';
import { ErrorBox } from '../components/error-box.js';
import { Stat } from '../components/stat.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { formatMs, formatNumber, formatTime } from '../format.js';
import { useSession } from '../session.js';
import { hrefFor, type Route } from '../url.js';
import type { PageProps } from './registry.js';
import { gapRow, type LiveRow, type LiveRowData, parse, rowOf } from './live/rows.js';
import { readSse, type SseMessage, SseParser } from './live/sse.js';

/** Rows kept in the list (and held while paused). */
export const MAX_ROWS = 500;
/** How often arrivals are drawn: a burst of a thousand frames is one render, not a thousand. */
const DRAW_MS = 100;
const DEFAULT_RETRY_MS = 5000;

type Kind = 'events' | 'logs' | 'events,logs';
type Status = 'connecting' | 'live' | 'reconnecting' | 'stopped';

function kindOf(param: string | undefined): Kind {
  return param === 'events' || param === 'logs' ? param : 'events,logs';
}

/** `name=a,b` as the endpoint takes it: trimmed, empty ones left out. */
function namesOf(param: string | undefined): string[] {
  return (param ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export default function Live({ route, view, setParams }: PageProps) {
  const { session } = useSession();
  const kind = kindOf(route.params.kind);
  const names = namesOf(route.params.name);
  const user = route.params.user?.trim() || undefined;
  const paused = route.params.paused === '1';

  const url = useMemo(() => {
    const q = new URLSearchParams();
    if (kind !== 'events,logs') q.set('kind', kind);
    if (names.length > 0 && kind !== 'logs') q.set('name', names.join(','));
    if (user) q.set('userId', user);
    // A server-wide admin key names the tenant it reads (request() does the same for other calls).
    if (session.tenant === null && session.asTenant) q.set('tenant', session.asTenant);
    const s = q.toString();
    return `/v1/live${s ? `?${s}` : ''}`;
  }, [kind, names.join(','), user, session.tenant, session.asTenant]);

  const [rows, setRows] = useState<LiveRow[]>([]);
  const [held, setHeld] = useState<{ rows: LiveRow[]; overflow: number }>({ rows: [], overflow: 0 });
  const [counts, setCounts] = useState({ received: 0, dropped: 0 });
  const [status, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<ApiError>();
  const [ready, setReady] = useState<{ tenantId?: string }>();

  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const seq = useRef(0);
  const incoming = useRef<LiveRow[]>([]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const draw = () => {
    timer.current = undefined;
    const batch = incoming.current;
    if (batch.length === 0) return;
    incoming.current = [];
    // Newest first.
    batch.reverse();
    const frames = batch.filter((r) => r.kind === 'event' || r.kind === 'log').length;
    const dropped = batch.reduce((n, r) => n + (r.kind === 'dropped' ? (r.count ?? 0) : 0), 0);
    setCounts((c) => ({ received: c.received + frames, dropped: c.dropped + dropped }));
    if (pausedRef.current) {
      setHeld((h) => {
        const all = [...batch, ...h.rows];
        return { rows: all.slice(0, MAX_ROWS), overflow: h.overflow + Math.max(0, all.length - MAX_ROWS) };
      });
    } else {
      setRows((r) => [...batch, ...r].slice(0, MAX_ROWS));
    }
  };
  const add = (row: LiveRowData) => {
    incoming.current.push({ ...row, seq: ++seq.current, receivedAt: Date.now() });
    timer.current ??= setTimeout(draw, DRAW_MS);
  };

  // Resume: what was held goes into the list, above what was there.
  useEffect(() => {
    if (paused || held.rows.length === 0) return;
    setRows((r) => [...held.rows, ...r].slice(0, MAX_ROWS));
    setHeld({ rows: [], overflow: 0 });
  }, [paused]);

  useEffect(() => {
    const abort = new AbortController();
    setStatus('connecting');
    setError(undefined);
    setReady(undefined);
    void follow(url, session.key, abort.signal, {
      status: setStatus,
      error: setError,
      frame: (m) => {
        const row = rowOf(m);
        if (m.event === 'ready') {
          setReady(parse(m.data) as { tenantId?: string });
          setStatus('live');
        } else if (row) {
          add(row);
        }
      },
      gap: (why) => add(gapRow(why)),
    });
    return () => {
      abort.abort();
      if (timer.current !== undefined) clearTimeout(timer.current);
      timer.current = undefined;
      incoming.current = [];
    };
  }, [url, session.key]);

  const shownHeld = held.rows.filter((r) => r.kind === 'event' || r.kind === 'log').length + held.overflow;
  const columns = liveColumns(route, view.tz);
  const csv = tableCsv(csvColumns, rows);

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Live</h1>
          <p class="page-sub">
            What the server stores for {ready?.tenantId ?? 'this tenant'} from now on, newest first; the last{' '}
            {formatNumber(MAX_ROWS)} rows are kept. Times in {view.tz}; the date range does not apply.
          </p>
        </div>
        <Filters route={route} setParams={setParams} />
      </div>

      {error && <ErrorBox error={error} />}

      <div class="stats">
        <Stat id="received" label="Received" value={counts.received} hint="events and request logs since opened" />
        <Stat
          id="shown"
          label="In the list"
          value={rows.filter((r) => r.kind === 'event' || r.kind === 'log').length}
          hint={`at most ${formatNumber(MAX_ROWS)}`}
        />
        <Stat
          id="held"
          label="Arrived while paused"
          value={shownHeld}
          hint={held.overflow > 0 ? `${formatNumber(held.overflow)} older ones not kept` : 'shown on resume'}
        />
        <Stat id="dropped" label="Dropped" value={counts.dropped} hint="not sent: this tab fell behind" />
      </div>

      <div class="grid">
        <Card
          title="Stream"
          id="live"
          wide
          actions={
            <>
              <span class="badge" data-live-status={paused ? 'paused' : status} role="status">
                {paused ? 'Paused' : STATUS_TEXT[status]}
              </span>
              <button
                type="button"
                class="button small primary"
                data-control="pause"
                onClick={() => setParams({ paused: paused ? undefined : '1' }, { replace: true })}
              >
                {paused ? `Resume (${formatNumber(shownHeld)} new)` : 'Pause'}
              </button>
              <button
                type="button"
                class="button small"
                disabled={rows.length === 0}
                onClick={() => {
                  setRows([]);
                  setHeld({ rows: [], overflow: 0 });
                }}
              >
                Clear
              </button>
              <CsvButton filename="live" what="the live rows" {...csv} />
            </>
          }
        >
          <DataTable
            caption="Events and request logs as they are stored, newest first"
            columns={columns}
            rows={rows}
            rowKey={(r) => String(r.seq)}
            empty={
              status === 'live'
                ? paused
                  ? 'Paused: nothing shown yet.'
                  : 'Connected: waiting for the next event or request.'
                : 'Not connected yet.'
            }
          />
        </Card>
      </div>
    </>
  );
}

const STATUS_TEXT: Record<Status, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  stopped: 'Stopped',
};

function Filters({ route, setParams }: Pick<PageProps, 'route' | 'setParams'>) {
  const [kind, setKind] = useState(kindOf(route.params.kind));
  const [name, setName] = useState(route.params.name ?? '');
  const [user, setUser] = useState(route.params.user ?? '');
  // The URL wins when it changes by itself (Back, a pasted link).
  useEffect(() => {
    setKind(kindOf(route.params.kind));
    setName(route.params.name ?? '');
    setUser(route.params.user ?? '');
  }, [route.params.kind, route.params.name, route.params.user]);
  const apply = (e: Event) => {
    e.preventDefault();
    setParams({
      kind: kind === 'events,logs' ? undefined : kind,
      name: namesOf(name).join(',') || undefined,
      user: user.trim() || undefined,
    });
  };
  return (
    <form class="custom-range" onSubmit={apply} aria-label="Filters">
      <label class="field">
        <span class="field-label">Show</span>
        <select
          value={kind}
          data-control="kind"
          onChange={(e) => setKind((e.target as HTMLSelectElement).value as Kind)}
        >
          <option value="events,logs">Events and request logs</option>
          <option value="events">Events</option>
          <option value="logs">Request logs</option>
        </select>
      </label>
      <label class="field">
        <span class="field-label">Event names (comma-separated)</span>
        <input
          type="text"
          value={name}
          data-control="name"
          placeholder="all"
          disabled={kind === 'logs'}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
      </label>
      <label class="field">
        <span class="field-label">User id</span>
        <input
          type="text"
          value={user}
          data-control="user"
          placeholder="any"
          onInput={(e) => setUser((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit" class="button">
        Apply
      </button>
    </form>
  );
}

interface Followers {
  status(s: Status): void;
  error(e: ApiError | undefined): void;
  frame(m: SseMessage): void;
  /** The stream ended or could not be opened after it had been: rows may be missing here. */
  gap(why: string): void;
}

/** Opens the stream and keeps it open (again after an end) until `signal` aborts. */
async function follow(url: string, key: string, signal: AbortSignal, on: Followers): Promise<void> {
  let connected = false;
  while (!signal.aborted) {
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
        signal,
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      if (signal.aborted) return;
      on.status('reconnecting');
      on.error(new ApiError('TALLY_NETWORK', `the server did not answer: ${(e as Error).message}`, 0));
      await sleep(DEFAULT_RETRY_MS, signal);
      continue;
    }
    if (!res.ok) {
      const error = await errorOf(res);
      on.error(error);
      // Bad filters and keys do not get better by asking again.
      if (res.status === 400 || res.status === 401 || res.status === 403) {
        on.status('stopped');
        // request() ends the session on a 401 (a revoked key), as every other page does.
        if (res.status === 401) void request('/v1/whoami', { tenant: false }).catch(() => undefined);
        return;
      }
      on.status('reconnecting');
      const after = Number(res.headers.get('retry-after'));
      await sleep(Number.isFinite(after) && after > 0 ? after * 1000 : DEFAULT_RETRY_MS, signal);
      continue;
    }
    if (connected) on.gap('reconnected: what was stored while the stream was down is not shown');
    connected = true;
    on.error(undefined);
    const parser = new SseParser();
    try {
      for await (const m of readSse(res.body as ReadableStream<Uint8Array>, parser)) on.frame(m);
    } catch (e) {
      if (signal.aborted) return;
      on.error(new ApiError('TALLY_NETWORK', `the stream broke off: ${(e as Error).message}`, 0));
    }
    if (signal.aborted) return;
    on.status('reconnecting');
    await sleep(parser.retry ?? DEFAULT_RETRY_MS, signal);
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined;
  try {
    body = (await res.json()) as typeof body;
  } catch {
    body = undefined;
  }
  return new ApiError(
    body?.error?.code ?? `HTTP_${res.status}`,
    body?.error?.message ?? `${res.status} ${res.statusText}`,
    res.status,
    body?.error?.details,
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/** Long property objects are cut in the list; the CSV has them whole. */
function cut(text: string, max = 64): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function liveColumns(route: Route, tz: string): TableColumn<LiveRow>[] {
  return [
    {
      key: 'timestamp',
      label: 'Time',
      value: (r) => r.timestamp ?? new Date(r.receivedAt).toISOString(),
      render: (r) => formatTime(r.timestamp ? Date.parse(r.timestamp) : r.receivedAt, tz, 'second'),
    },
    {
      key: 'kind',
      label: 'Kind',
      value: (r) => r.kind,
      render: (r) =>
        r.kind === 'dropped' || r.kind === 'gap' ? (
          <span class="badge bad">{r.kind}</span>
        ) : (
          <span class="badge">{r.kind}</span>
        ),
    },
    {
      key: 'name',
      label: 'Event or request',
      value: (r) => (r.kind === 'dropped' || r.kind === 'gap' ? null : r.name),
      render: (r) =>
        r.kind === 'log' && r.id ? (
          <a href={hrefFor(route, 'logs', {}, [r.id])}>{r.name}</a>
        ) : r.kind === 'event' ? (
          r.name
        ) : (
          '–'
        ),
    },
    {
      key: 'status',
      label: 'Status',
      numeric: true,
      value: (r) => r.status,
      render: (r) =>
        r.status === null ? '' : <span class={r.status >= 500 ? 'status-5xx' : undefined}>{String(r.status)}</span>,
    },
    {
      key: 'duration_ms',
      label: 'Duration',
      numeric: true,
      value: (r) => r.durationMs,
      render: (r) => (r.durationMs === null ? '' : formatMs(r.durationMs)),
    },
    {
      key: 'user',
      label: 'User',
      value: (r) => r.userId ?? r.anonymousId,
      render: (r) => r.userId ?? r.anonymousId ?? '',
    },
    {
      key: 'details',
      label: 'Details',
      value: (r) => r.details,
      render: (r) => (r.details === '' ? '' : <code title={r.details}>{cut(r.details)}</code>),
    },
  ];
}

/** Everything a row holds, for the CSV. */
const csvColumns: TableColumn<LiveRow>[] = [
  { key: 'received_at', label: 'Received', value: (r) => new Date(r.receivedAt).toISOString() },
  { key: 'timestamp', label: 'Time', value: (r) => r.timestamp },
  { key: 'kind', label: 'Kind', value: (r) => r.kind },
  { key: 'id', label: 'Id', value: (r) => r.id },
  { key: 'name', label: 'Event or request', value: (r) => (r.kind === 'event' || r.kind === 'log' ? r.name : null) },
  { key: 'route', label: 'Route', value: (r) => r.route },
  { key: 'url', label: 'URL', value: (r) => r.url },
  { key: 'status', label: 'Status', value: (r) => r.status },
  { key: 'duration_ms', label: 'Duration', value: (r) => r.durationMs },
  { key: 'user_id', label: 'User id', value: (r) => r.userId },
  { key: 'anonymous_id', label: 'Anonymous id', value: (r) => r.anonymousId },
  { key: 'count', label: 'Dropped', value: (r) => r.count },
  { key: 'details', label: 'Details', value: (r) => r.details },
];
