/**
 * Request logs: a search over the tenant's request logs (status class or code, method, route, user, API
 * key, text in the URL, in the header's range), newest first, a page at a time through the logs query's
 * cursor; and one log's page (`#/logs/<id>`, GET /v1/query/logs/:id) with its headers (redacted values
 * marked), its bodies (marked when the plugin cut them) and, for an event stream, the captured frames.
 *
 * Paging keeps the cursors of the pages before in the URL (`pages=<c1>.<c2>…`, the last one is the page
 * shown), so Back, reload and a copied link all land on the same page, and "Newer" needs no cursor the
 * API does not give (it only pages forward).
 */
import {
  type RequestLogDetail,
  type HttpMethod,
  HTTP_METHODS,
  type LogFilters,
  REDACTED,
  type StatusClass,
} from '@tally/core';
import { type ComponentChildren, Fragment } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { type Cell, records, request, useLoad, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { rangeText } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { formatBytes, formatMs, formatNumber, formatTime } from '../format.js';
import { hrefFor, type Route, viewParams } from '../url.js';
import { isEventStream, parseSse, type SseFrame } from './page-kit/sse.js';
import type { PageProps } from './registry.js';

type Row = Record<string, Cell>;

const LIMITS = [25, 50, 100, 200] as const;
const DEFAULT_LIMIT = 50;
const CURSOR = /^[A-Za-z0-9_-]+$/;
/** The URL params of a search, as the logs query names its filters. */
const FILTER_PARAMS = ['status', 'statusClass', 'method', 'route', 'userId', 'apiKeyId', 'url'] as const;

/** The filters a URL asks for; a value that cannot be one (a status of `abc`) is left out and reported. */
export function filtersOf(params: Record<string, string>): { filters: LogFilters; ignored: string[] } {
  const filters: LogFilters = {};
  const ignored: string[] = [];
  if (params.statusClass !== undefined) {
    if (/^[1-5]xx$/.test(params.statusClass)) filters.statusClass = params.statusClass as StatusClass;
    else ignored.push(`statusClass=${params.statusClass}`);
  }
  if (params.status !== undefined) {
    const n = Number(params.status);
    if (/^\d{3}$/.test(params.status) && n >= 100 && n <= 599) filters.status = n;
    else ignored.push(`status=${params.status}`);
  }
  if (params.method !== undefined) {
    if (HTTP_METHODS.includes(params.method as HttpMethod)) filters.method = params.method as HttpMethod;
    else ignored.push(`method=${params.method}`);
  }
  for (const k of ['route', 'userId', 'apiKeyId', 'url'] as const) if (params[k]) filters[k] = params[k];
  return { filters, ignored };
}

/** The cursors of the pages before and of the page shown (page 1 has none). */
export function trailOf(params: Record<string, string>): string[] {
  return (params.pages ?? '').split('.').filter((c) => CURSOR.test(c));
}

/** The page's own params (filters, limit, paging), without the view's. */
function ownParams(route: Route): Record<string, string> {
  const shared = viewParams(route.params);
  return Object.fromEntries(Object.entries(route.params).filter(([k]) => !(k in shared)));
}

export default function Logs(props: PageProps) {
  const id = props.route.rest[0];
  return id === undefined ? <LogSearch {...props} /> : <OneLog {...props} id={id} />;
}

function LogSearch({ route, view, setParams }: PageProps) {
  const p = route.params;
  const { filters, ignored } = filtersOf(p);
  const limit = LIMITS.includes(Number(p.limit) as (typeof LIMITS)[number]) ? Number(p.limit) : DEFAULT_LIMIT;
  const trail = trailOf(p);
  const cursor = trail[trail.length - 1];
  const logs = useQuery({ kind: 'logs', filters, limit, ...(cursor ? { cursor } : {}) });
  const rows = logs.data ? records(logs.data) : [];
  const next = logs.data?.meta.next;
  const page = trail.length + 1;
  const own = ownParams(route);
  /** A user or key in the list, as a link to their logs (this search narrowed to them, from its first page). */
  const filterLink = (value: Cell | undefined, param: 'userId' | 'apiKeyId', what: string) => {
    if (typeof value !== 'string' || value === '') return '–';
    const { pages: _pages, ...search } = own;
    return (
      <a href={hrefFor(route, 'logs', { ...search, [param]: value })} title={`Logs of ${what} ${value}`}>
        {value}
      </a>
    );
  };

  const columns: TableColumn<Row>[] = [
    {
      key: 'time',
      label: 'Time',
      value: (r) => r.time as string,
      render: (r) => (
        <a
          href={hrefFor(route, 'logs', own, [r.id as string])}
          aria-label={`Request log of ${formatTime(r.time, view.tz)}, ${r.method} ${r.url}`}
        >
          {formatTime(r.time, view.tz)}
        </a>
      ),
    },
    {
      key: 'status',
      label: 'Status',
      numeric: true,
      value: (r) => r.status as number,
      render: (r) => <span class={Number(r.status) >= 500 ? 'status-5xx' : undefined}>{String(r.status)}</span>,
    },
    { key: 'method', label: 'Method', value: (r) => r.method as string },
    { key: 'route', label: 'Route', value: (r) => r.route as string },
    {
      key: 'url',
      label: 'URL',
      value: (r) => r.url as string,
      render: (r) => <span class="wrap-cell">{r.url as string}</span>,
    },
    {
      key: 'duration_ms',
      label: 'Duration',
      numeric: true,
      value: (r) => r.duration_ms as number,
      render: (r) => formatMs(r.duration_ms),
    },
    {
      key: 'user_id',
      label: 'User',
      value: (r) => r.user_id as string,
      render: (r) => filterLink(r.user_id, 'userId', 'user'),
    },
    {
      key: 'api_key_id',
      label: 'API key',
      value: (r) => r.api_key_id as string,
      render: (r) => filterLink(r.api_key_id, 'apiKeyId', 'API key'),
    },
    { key: 'error', label: 'Error', value: (r) => r.error as string },
  ];
  const csvColumns: TableColumn<Row>[] = [
    { key: 'id', label: 'Id', value: (r) => r.id as string },
    ...columns,
    { key: 'request_bytes', label: 'Request bytes', value: (r) => r.request_bytes as number },
    { key: 'response_bytes', label: 'Response bytes', value: (r) => r.response_bytes as number },
  ];

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Request logs</h1>
          <p class="page-sub">{rangeText(view)} · newest first</p>
        </div>
      </div>
      {/* Keyed by the URL's filters: Back or a pasted link shows the fields the list was searched with. */}
      <SearchForm key={FILTER_PARAMS.map((k) => p[k] ?? '').join('\u0000')} params={p} setParams={setParams} />
      {ignored.length > 0 && (
        <p class="notice" role="status">
          Left out of the search, not being filters the logs query takes: {ignored.join(', ')}.
        </p>
      )}
      <div class="grid">
        <Card
          title={`Logs, page ${page}`}
          id="logs"
          wide
          state={logs}
          actions={
            <div class="button-row">
              <label class="field">
                <span class="visually-hidden">Logs per page</span>
                <select
                  value={String(limit)}
                  data-control="limit"
                  onChange={(e) => setParams({ limit: (e.target as HTMLSelectElement).value, pages: undefined })}
                >
                  {LIMITS.map((n) => (
                    <option key={n} value={String(n)}>
                      {n} per page
                    </option>
                  ))}
                </select>
              </label>
              <CsvButton
                filename={`request-logs-page-${page}`}
                what={`request logs, page ${page}`}
                {...tableCsv(csvColumns, rows)}
              />
            </div>
          }
        >
          <DataTable
            caption={`Request logs matching the search, newest first, page ${page}`}
            columns={columns}
            rows={rows}
            rowKey={(r) => r.id as string}
            empty={page > 1 ? 'No more logs.' : 'No request logs match in this range.'}
          />
          <div class="button-row pager" role="group" aria-label="Log pages">
            <button
              type="button"
              class="button small"
              data-control="newer"
              disabled={page === 1}
              onClick={() => setParams({ pages: trail.slice(0, -1).join('.') })}
            >
              ← Newer
            </button>
            <span class="muted small" aria-live="polite">
              Page {page}
              {logs.data ? ` · ${formatNumber(rows.length)} logs` : ''}
            </span>
            <button
              type="button"
              class="button small"
              data-control="older"
              disabled={!next}
              onClick={() => next && setParams({ pages: [...trail, next].join('.') })}
            >
              Older →
            </button>
          </div>
        </Card>
      </div>
    </>
  );
}

/** The search fields, as typed; applied to the URL (and so to the list) on submit. */
function SearchForm(props: { params: Record<string, string>; setParams: PageProps['setParams'] }) {
  const p = props.params;
  const [status, setStatus] = useState(p.statusClass ?? p.status ?? '');
  const [method, setMethod] = useState(p.method ?? '');
  const [route, setRoute] = useState(p.route ?? '');
  const [user, setUser] = useState(p.userId ?? '');
  const [key, setKey] = useState(p.apiKeyId ?? '');
  const [url, setUrl] = useState(p.url ?? '');
  const [problem, setProblem] = useState<string>();

  const submit = (e: Event) => {
    e.preventDefault();
    const s = status.trim().toLowerCase();
    const isClass = /^[1-5]xx$/.test(s);
    const isCode = /^[1-5]\d\d$/.test(s);
    if (s !== '' && !isClass && !isCode) {
      setProblem('A status is a class (5xx) or a code (503).');
      return;
    }
    setProblem(undefined);
    props.setParams({
      statusClass: isClass ? s : undefined,
      status: isCode ? s : undefined,
      method,
      route: route.trim(),
      userId: user.trim(),
      apiKeyId: key.trim(),
      url: url.trim(),
      // A new search starts on its first page.
      pages: undefined,
    });
  };
  const clear = () => {
    const none = Object.fromEntries(FILTER_PARAMS.map((k) => [k, undefined]));
    props.setParams({ ...none, pages: undefined });
  };
  const text = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);

  return (
    <form class="controls-row" onSubmit={submit} role="search" aria-label="Search request logs">
      <label class="field">
        <span class="field-label">Status</span>
        <input
          value={status}
          onInput={text(setStatus)}
          placeholder="5xx or 503"
          size={8}
          name="status"
          aria-invalid={problem ? 'true' : undefined}
          aria-describedby={problem ? 'logs-status-problem' : undefined}
        />
      </label>
      <label class="field">
        <span class="field-label">Method</span>
        <select value={method} name="method" onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
          <option value="">Any</option>
          {HTTP_METHODS.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <label class="field grow-field">
        <span class="field-label">Route</span>
        <input value={route} onInput={text(setRoute)} placeholder="/users/:id" name="route" />
      </label>
      <label class="field grow-field">
        <span class="field-label">URL contains</span>
        <input value={url} onInput={text(setUrl)} name="url" />
      </label>
      <label class="field">
        <span class="field-label">User</span>
        <input value={user} onInput={text(setUser)} size={10} name="userId" />
      </label>
      <label class="field">
        <span class="field-label">API key</span>
        <input value={key} onInput={text(setKey)} size={10} name="apiKeyId" />
      </label>
      <div class="button-row">
        <button type="submit" class="button primary small">
          Search
        </button>
        <button type="button" class="button small" onClick={clear}>
          Clear
        </button>
      </div>
      {problem && (
        <span class="field-problem" role="alert" id="logs-status-problem">
          {problem}
        </span>
      )}
    </form>
  );
}

/** GET /v1/query/logs/:id */
export type LogDetail = RequestLogDetail;

/** Response headers are kept beside the request's under `response.<name>`. */
const RESPONSE_PREFIX = 'response.';

interface HeaderRow {
  side: 'request' | 'response';
  name: string;
  value: string;
}

export function headerRows(headers: Record<string, string> | null): HeaderRow[] {
  return Object.entries(headers ?? {})
    .map(([name, value]): HeaderRow =>
      name.startsWith(RESPONSE_PREFIX)
        ? { side: 'response', name: name.slice(RESPONSE_PREFIX.length), value }
        : { side: 'request', name, value },
    )
    .sort((a, b) => (a.side === b.side ? a.name.localeCompare(b.name) : a.side === 'request' ? -1 : 1));
}

/** Text with every redaction marker shown as a "redacted" badge (the value itself was never stored). */
function Redacted({ text }: { text: string }) {
  const parts = text.split(REDACTED);
  if (parts.length === 1) return <>{text}</>;
  return (
    <>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {part}
          {i < parts.length - 1 && (
            <span class="badge bad" data-redacted="true" title="Redacted before it was stored">
              redacted
            </span>
          )}
        </Fragment>
      ))}
    </>
  );
}

/** JSON bodies indented for reading; anything else (or a cut JSON body) as sent. */
function readable(body: string): string {
  const t = body.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return body;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return body;
  }
}

function OneLog({ route, view, id }: PageProps & { id: string }) {
  const log = useLoad(`log|${id}`, (signal) =>
    request<LogDetail>(`/v1/query/logs/${encodeURIComponent(id)}`, { signal }),
  );
  const d = log.data;
  const back = hrefFor(route, 'logs', ownParams(route));
  const headers = useMemo(() => headerRows(d?.headers ?? null), [d]);
  const responseType = headers.find((h) => h.side === 'response' && h.name.toLowerCase() === 'content-type')?.value;
  // A streamed response's capture: its own field when the producer kept one, else an event-stream body.
  const streamText =
    d?.streamBody ??
    (d && d.responseBody !== null && isEventStream(responseType, d.responseBody) ? d.responseBody : null);
  const stream = streamText !== null;
  const frames = useMemo(() => (streamText !== null ? parseSse(streamText) : []), [streamText]);

  const summary: { field: string; label: string; value: Cell; show?: ComponentChildren }[] = d
    ? [
        {
          field: 'timestamp',
          label: 'Time',
          value: d.timestamp,
          show: `${formatTime(d.timestamp, view.tz)} (${d.timestamp})`,
        },
        {
          field: 'status',
          label: 'Status',
          value: d.status,
          show: <span class={d.status >= 500 ? 'status-5xx' : undefined}>{d.status}</span>,
        },
        { field: 'method', label: 'Method', value: d.method },
        {
          field: 'url',
          label: 'URL',
          value: d.url,
          show: (
            <span class="wrap-cell">
              <Redacted text={d.url} />
            </span>
          ),
        },
        {
          field: 'route',
          label: 'Route',
          value: d.route,
          show: d.route ? <a href={hrefFor(route, 'routes', {}, [d.method, d.route])}>{d.route}</a> : '–',
        },
        { field: 'durationMs', label: 'Duration', value: d.durationMs, show: formatMs(d.durationMs) },
        { field: 'requestBytes', label: 'Request size', value: d.requestBytes, show: formatBytes(d.requestBytes) },
        { field: 'responseBytes', label: 'Response size', value: d.responseBytes, show: formatBytes(d.responseBytes) },
        { field: 'aborted', label: 'Aborted by the client', value: d.aborted, show: d.aborted ? 'yes' : 'no' },
        { field: 'error', label: 'Error', value: d.error },
        {
          field: 'userId',
          label: 'User',
          value: d.userId,
          show: d.userId ? <a href={hrefFor(route, 'logs', { userId: d.userId })}>{d.userId}</a> : '–',
        },
        {
          field: 'apiKeyId',
          label: 'API key',
          value: d.apiKeyId,
          show: d.apiKeyId ? <a href={hrefFor(route, 'logs', { apiKeyId: d.apiKeyId })}>{d.apiKeyId}</a> : '–',
        },
        { field: 'ip', label: 'Address', value: d.ip },
        { field: 'requestId', label: 'Request id', value: d.requestId },
        { field: 'userAgent', label: 'User agent', value: d.userAgent },
        { field: 'id', label: 'Log id', value: d.id, show: <code>{d.id}</code> },
      ]
    : [];
  type SummaryRow = (typeof summary)[number];
  const summaryColumns: TableColumn<SummaryRow>[] = [
    { key: 'field', label: 'Field', value: (r) => r.field, render: (r) => r.label },
    {
      key: 'value',
      label: 'Value',
      value: (r) => r.value,
      render: (r) => r.show ?? (r.value === null ? '–' : String(r.value)),
    },
  ];
  const headerColumns: TableColumn<HeaderRow>[] = [
    { key: 'side', label: 'Side', value: (h) => h.side },
    { key: 'name', label: 'Header', value: (h) => h.name, render: (h) => <code>{h.name}</code> },
    {
      key: 'value',
      label: 'Value',
      value: (h) => h.value,
      render: (h) => (
        <span class="wrap-cell">
          <Redacted text={h.value} />
        </span>
      ),
    },
  ];
  const frameColumns: TableColumn<SseFrame & { n: number }>[] = [
    { key: 'n', label: '#', numeric: true, value: (f) => f.n },
    { key: 'event', label: 'Event', value: (f) => f.event },
    { key: 'id', label: 'Id', value: (f) => f.id ?? null },
    {
      key: 'data',
      label: 'Data',
      value: (f) => f.data,
      render: (f) => (
        <span class="wrap-cell">
          <Redacted text={f.data || f.comments.join('\n')} />
          {f.partial && d?.bodyTruncated && (
            <>
              {' '}
              <span class="badge bad">cut</span>
            </>
          )}
        </span>
      ),
    },
  ];
  const numbered = frames.map((f, i) => ({ ...f, n: i + 1 }));
  const redactedCount = headers.filter((h) => h.value.includes(REDACTED)).length;

  return (
    <>
      <div class="page-head">
        <div>
          <p class="small">
            <a href={back}>← Request logs</a>
          </p>
          <h1>{d ? `${d.method} ${d.route ?? d.url}` : 'Request log'}</h1>
          <p class="page-sub">{d ? `${d.status} · ${formatTime(d.timestamp, view.tz)} · ${view.tz}` : id}</p>
        </div>
      </div>
      <div class="grid">
        <Card
          title="Request"
          id="log-summary"
          state={log}
          actions={<CsvButton filename={`log-${id}`} what="this log's fields" {...tableCsv(summaryColumns, summary)} />}
        >
          <DataTable
            caption="The request and its answer"
            columns={summaryColumns}
            rows={summary}
            rowKey={(r) => r.field}
          />
        </Card>
        <Card
          title="Headers"
          id="log-headers"
          state={log}
          actions={
            <CsvButton filename={`log-${id}-headers`} what="this log's headers" {...tableCsv(headerColumns, headers)} />
          }
        >
          {redactedCount > 0 && (
            <p class="muted small">
              {redactedCount === 1 ? 'One value was' : `${redactedCount} values were`} redacted where the request was
              logged: only the marker was stored.
            </p>
          )}
          <DataTable
            caption="Request and response headers as logged"
            columns={headerColumns}
            rows={headers}
            rowKey={(h) => `${h.side}:${h.name}`}
            empty="No headers were logged."
          />
        </Card>
        <Card title="Bodies" id="log-bodies" wide state={log}>
          {d?.bodyTruncated && (
            <p class="notice" data-truncated="true">
              <span class="badge bad">truncated</span> The bodies were cut at the logging limit: what follows is their
              start.
            </p>
          )}
          <Body title="Request body" body={d?.requestBody ?? null} truncated={d?.bodyTruncated ?? false} />
          {stream ? (
            <>
              <div class="sub-heading">
                <h3 class="sub-heading-text">Server-sent events</h3>
                <span class="badge">{`${frames.length} ${frames.length === 1 ? 'frame' : 'frames'} captured`}</span>
                {d?.bodyTruncated && <span class="badge bad">truncated</span>}
                <CsvButton
                  filename={`log-${id}-events`}
                  what="the captured events"
                  {...tableCsv(frameColumns, numbered)}
                />
              </div>
              <DataTable
                caption="The event stream the response sent, frame by frame"
                columns={frameColumns}
                rows={numbered}
                rowKey={(f) => String(f.n)}
                empty="The stream sent nothing."
              />
              <details>
                <summary class="small">The stream as captured</summary>
                <pre class="pre-block">
                  <Redacted text={d?.responseBody ?? ''} />
                </pre>
              </details>
            </>
          ) : (
            <Body title="Response body" body={d?.responseBody ?? null} truncated={d?.bodyTruncated ?? false} />
          )}
        </Card>
      </div>
    </>
  );
}

function Body(props: { title: string; body: string | null; truncated: boolean }) {
  return (
    <>
      <div class="sub-heading">
        <h3 class="sub-heading-text">{props.title}</h3>
        {props.body !== null && props.truncated && <span class="badge bad">truncated</span>}
      </div>
      {props.body === null ? (
        <p class="muted small">None logged.</p>
      ) : (
        <pre class="pre-block" tabIndex={0} aria-label={props.title}>
          <Redacted text={readable(props.body)} />
        </pre>
      )}
    </>
  );
}
