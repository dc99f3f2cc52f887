/**
 * Catalog: what the tenant sends. Events with their volume and last time seen, and whether the catalog
 * lists them (an unlisted event is stored only when the tenant accepts unlisted events, and is marked);
 * their properties with JSON types and top values (explore, sampled from the range's most recent
 * events), where two types under one key show bad data. For admin keys, the quarantine: the events the
 * collector refused, by reason, with a replay that checks them again against today's catalog and
 * settings (a dry run first, then a confirmation).
 */
import { useState } from 'preact/hooks';
import {
  type ApiError,
  type Cell,
  type Loaded,
  type QueryAnswer,
  records,
  request,
  useLoad,
  useQuery,
} from '../api.js';
import { BarCell } from '../components/bar.js';
import { Card } from '../components/card.js';
import { PageHead } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { ErrorBox } from '../components/error-box.js';
import { Stat } from '../components/stat.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { formatNumber, formatPercent, formatTime } from '../format.js';
import { type Session, tenantOf, useSession } from '../session.js';
import { hrefFor, type Route, type View } from '../url.js';
import type { PageProps } from './registry.js';
import { runAdmin } from './catalog/run.js';

/** Explore's most rows: every event name of a busy tenant, and their properties. */
const LIMIT = 1000;
/** Refused events listed (the counts by reason cover them all). */
const REJECTED_SHOWN = 50;

type Row = Record<string, Cell>;

interface TopValue {
  value: string;
  count: number;
}

interface Rejected {
  seq: number;
  tenantId: string;
  eventId: string;
  name: string | null;
  code: string;
  message: string;
  item: string;
  source: string;
  keyId: string | null;
  sentAt: string | null;
  receivedAt: string;
  truncated: boolean;
}

interface RejectedList {
  events: Rejected[];
  counts: Record<string, number>;
}

interface ReplayReport {
  examined: number;
  stored: number;
  duplicates: number;
  stillFailing: number;
  failing: Record<string, number>;
}

/** The page's own params, for links that change one of them. */
function ownParams(route: Route): Record<string, string> {
  const { range: _r, from: _f, to: _t, tz: _z, ...own } = route.params;
  return own;
}

function linkTo(route: Route, patch: Record<string, string | undefined>): string {
  const params: Record<string, string> = { ...ownParams(route) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete params[k];
    else params[k] = v;
  }
  return hrefFor(route, 'catalog', params);
}

export default function Catalog({ route, view, setParams }: PageProps) {
  const { session } = useSession();
  const selected = route.params.event || undefined;
  const events = useQuery({ kind: 'explore', what: 'events', limit: LIMIT });
  const properties = useQuery({
    kind: 'explore',
    what: 'properties',
    limit: LIMIT,
    ...(selected ? { event: selected } : {}),
  });
  const eventRows = events.data ? records(events.data) : [];
  const hasCatalog = events.data ? events.data.columns.some((c) => c.name === 'listed') : undefined;
  const total = eventRows.reduce((s, r) => s + Number(r.count ?? 0), 0);
  const unlisted = eventRows.filter((r) => r.listed === false);
  const propertyRows = properties.data ? records(properties.data) : [];
  const mixed = mixedTypes(propertyRows);
  const quarantine = useQuarantine(session, route, view, events.reload);

  return (
    <>
      <PageHead title="Catalog" view={view} />

      <div class="stats">
        <Stat
          id="names"
          label="Event names"
          value={events.data ? eventRows.length : undefined}
          hint="seen in the range"
        />
        <Stat id="events" label="Events" value={events.data ? total : undefined} hint="stored in the range" />
        <Stat
          id="unlisted"
          label="Unlisted events"
          value={events.data ? unlisted.length : undefined}
          hint={hasCatalog === false ? 'this server has no catalog' : 'names the catalog does not list'}
        />
        <Stat
          id="mixed"
          label="Keys with several types"
          value={properties.data ? mixed.size : undefined}
          hint={selected ? `in ${selected}` : 'in the sampled events'}
        />
      </div>

      <div class="grid">
        <EventsCard state={events} rows={eventRows} total={total} route={route} view={view} selected={selected} />
        <UnlistedCard state={events} rows={unlisted} hasCatalog={hasCatalog} route={route} view={view} />
        {quarantine ? (
          <ReasonsCard q={quarantine} session={session} route={route} view={view} />
        ) : (
          <Card title="Quarantine" id="quarantine">
            <p class="notice" data-needs="admin">
              The events the collector refused are shown to admin keys only: they hold whatever a write key sent. Sign
              in with an admin key of this tenant (
              <code>tally keys create --tenant {tenantOf(session)} --scope admin</code>) to see them by reason and
              replay them.
            </p>
          </Card>
        )}
        <PropertiesCard
          state={properties}
          rows={propertyRows}
          mixed={mixed}
          names={eventRows.map((r) => r.event as string)}
          selected={selected}
          setParams={setParams}
        />
        {quarantine && <RefusedCard q={quarantine} view={view} />}
      </div>
    </>
  );
}

/** `event|property` pairs seen with more than one JSON type. */
function mixedTypes(rows: Row[]): Set<string> {
  const types = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.event}|${r.property}`;
    types.set(k, (types.get(k) ?? 0) + 1);
  }
  return new Set([...types].filter(([, n]) => n > 1).map(([k]) => k));
}

function EventsCard(props: {
  state: Loaded<QueryAnswer>;
  rows: Row[];
  total: number;
  route: Route;
  view: View;
  selected?: string;
}) {
  const { route, view, total } = props;
  const max = Math.max(1, ...props.rows.map((r) => Number(r.count ?? 0)));
  const columns: TableColumn<Row>[] = [
    {
      key: 'event',
      label: 'Event',
      value: (r) => r.event as string,
      render: (r) => (
        <>
          <a
            href={linkTo(route, { event: r.event as string })}
            aria-current={props.selected === r.event ? 'true' : undefined}
            aria-label={`Properties of ${String(r.event)}`}
          >
            {String(r.event)}
          </a>
          {r.listed === false && <span class="badge bad">unlisted</span>}
        </>
      ),
    },
    {
      key: 'count',
      label: 'Events',
      numeric: true,
      value: (r) => r.count as number,
      render: (r) => <BarCell value={r.count} max={max} />,
    },
    {
      key: 'share',
      label: 'Share',
      numeric: true,
      value: (r) => (total > 0 ? Number(r.count ?? 0) / total : null),
      render: (r) => formatPercent(total > 0 ? Number(r.count ?? 0) / total : null),
    },
    {
      key: 'last_seen',
      label: 'Last seen',
      value: (r) => r.last_seen as string,
      render: (r) => formatTime(r.last_seen, view.tz),
    },
    {
      key: 'listed',
      label: 'In the catalog',
      value: (r) => (typeof r.listed === 'boolean' ? r.listed : null),
      render: (r) => (r.listed === true ? 'yes' : r.listed === false ? 'no' : '–'),
    },
  ];
  return (
    <Card
      title="Events"
      id="events"
      wide
      state={props.state}
      actions={<CsvButton filename="catalog-events" what="events" {...tableCsv(columns, props.rows)} />}
    >
      <DataTable
        caption="Event names in the range with their volume, last time seen and whether the catalog lists them"
        columns={columns}
        rows={props.rows}
        rowKey={(r) => r.event as string}
        empty="No events in this range."
      />
      {props.state.data?.meta.truncated && (
        <p class="muted small">The first {formatNumber(LIMIT)} names by volume are shown.</p>
      )}
    </Card>
  );
}

function UnlistedCard(props: {
  state: Loaded<QueryAnswer>;
  rows: Row[];
  hasCatalog: boolean | undefined;
  route: Route;
  view: View;
}) {
  const columns: TableColumn<Row>[] = [
    {
      key: 'event',
      label: 'Event',
      value: (r) => r.event as string,
      render: (r) => (
        <>
          <a href={linkTo(props.route, { event: r.event as string })} aria-label={`Properties of ${String(r.event)}`}>
            {String(r.event)}
          </a>
          <span class="badge bad">unlisted</span>
        </>
      ),
    },
    {
      key: 'count',
      label: 'Events',
      numeric: true,
      value: (r) => r.count as number,
      render: (r) => formatNumber(r.count),
    },
    {
      key: 'last_seen',
      label: 'Last seen',
      value: (r) => r.last_seen as string,
      render: (r) => formatTime(r.last_seen, props.view.tz),
    },
  ];
  return (
    <Card
      title="Unlisted events seen"
      id="unlisted"
      state={props.state}
      actions={<CsvButton filename="catalog-unlisted" what="unlisted events" {...tableCsv(columns, props.rows)} />}
    >
      {props.hasCatalog === false ? (
        <p class="muted">This server checks events against no catalog, so none is listed or unlisted.</p>
      ) : (
        <>
          <p class="muted small">
            Stored without checks because the tenant accepts unlisted events (marked <code>context.unlisted</code>). Add
            them to the catalog to have them checked.
          </p>
          <DataTable
            caption="Events stored in the range whose name the catalog does not list"
            columns={columns}
            rows={props.rows}
            rowKey={(r) => r.event as string}
            empty="None in this range: every event stored is in the catalog."
          />
        </>
      )}
    </Card>
  );
}

function topValues(cell: Cell | undefined): TopValue[] {
  try {
    const v = typeof cell === 'string' ? (JSON.parse(cell) as unknown) : cell;
    return Array.isArray(v) ? (v as TopValue[]) : [];
  } catch {
    return [];
  }
}

function PropertiesCard(props: {
  state: Loaded<QueryAnswer>;
  rows: Row[];
  mixed: Set<string>;
  names: string[];
  selected?: string;
  setParams: PageProps['setParams'];
}) {
  const { selected } = props;
  const options = selected && !props.names.includes(selected) ? [selected, ...props.names] : props.names;
  const columns: TableColumn<Row>[] = [
    { key: 'event', label: 'Event', value: (r) => r.event as string },
    { key: 'property', label: 'Property', value: (r) => r.property as string },
    {
      key: 'type',
      label: 'Type',
      value: (r) => r.type as string,
      render: (r) => (
        <>
          {String(r.type)}
          {props.mixed.has(`${r.event}|${r.property}`) && <span class="badge bad">several types</span>}
        </>
      ),
    },
    {
      key: 'count',
      label: 'Events',
      numeric: true,
      value: (r) => r.count as number,
      render: (r) => formatNumber(r.count),
    },
    {
      key: 'top_values',
      label: 'Top values',
      value: (r) => r.top_values as string,
      render: (r) => {
        const values = topValues(r.top_values);
        if (values.length === 0) return '–';
        return values.map((v) => `${v.value} (${formatNumber(v.count)})`).join(', ');
      },
    },
  ];
  return (
    <Card
      title={selected ? `Properties of ${selected}` : 'Properties'}
      id="properties"
      wide
      state={props.state}
      actions={
        <>
          <label class="field">
            <span class="visually-hidden">Properties of</span>
            <select
              value={selected ?? ''}
              data-control="event"
              onChange={(e) => props.setParams({ event: (e.target as HTMLSelectElement).value || undefined })}
            >
              <option value="">Every event</option>
              {options.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          <CsvButton
            filename={selected ? `properties-${selected}` : 'properties'}
            what="properties"
            {...tableCsv(columns, props.rows)}
          />
        </>
      }
    >
      <p class="muted small">
        Top-level properties of the 10,000 most recent events in the range{selected ? ` named ${selected}` : ''}, with
        their JSON types; counts and the five top values are within that sample.
      </p>
      <DataTable
        caption="Properties by event, JSON type, count and top values"
        columns={columns}
        rows={props.rows}
        rowKey={(r) => `${r.event}|${r.property}|${r.type}`}
        empty="No properties in this range."
      />
      {props.state.data?.meta.truncated && (
        <p class="muted small">The first {formatNumber(LIMIT)} rows are shown: pick one event to see all of its.</p>
      )}
    </Card>
  );
}

interface QuarantineState {
  tenant: string;
  reason?: string;
  filter: { tenant: string; since: string; code?: string };
  /** The events of the filter (the most recent). */
  list: Loaded<RejectedList>;
  /** Counts of every reason, whichever is picked. */
  all: Loaded<RejectedList>;
  reasons: { code: string; count: number }[];
  /** Refused events the filter matches. */
  matching: number | undefined;
  reload(): void;
}

/** The quarantine of the tenant since the range's start, for admin keys; undefined for others. */
function useQuarantine(
  session: Session,
  route: Route,
  view: View,
  onReplayed: () => void,
): QuarantineState | undefined {
  const admin = session.scope === 'admin';
  const tenant = tenantOf(session);
  const reason = route.params.reason || undefined;
  const since = new Date(view.from).toISOString();
  const filter = { tenant, since, ...(reason ? { code: reason } : {}) };
  const query = new URLSearchParams({ ...filter, limit: String(REJECTED_SHOWN) }).toString();
  // The tenant is named in the query: a tenant's admin key may name its own, a server-wide one must.
  const list = useLoad(admin ? query : null, (signal) =>
    request<RejectedList>(`/v1/admin/rejected?${query}`, { signal, tenant: false }),
  );
  const allQuery = new URLSearchParams({ tenant, since, limit: '1' }).toString();
  const all = useLoad(admin ? allQuery : null, (signal) =>
    request<RejectedList>(`/v1/admin/rejected?${allQuery}`, { signal, tenant: false }),
  );
  if (!admin) return undefined;
  const reasons = Object.entries(all.data?.counts ?? {})
    .map(([code, count]) => ({ code, count }))
    .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1));
  const matching = all.data
    ? reason
      ? (all.data.counts[reason] ?? 0)
      : reasons.reduce((s, r) => s + r.count, 0)
    : undefined;
  return {
    tenant,
    reason,
    filter,
    list,
    all,
    reasons,
    matching,
    reload: () => {
      list.reload();
      all.reload();
      onReplayed();
    },
  };
}

function ReasonsCard({ q, session, route, view }: { q: QuarantineState; session: Session; route: Route; view: View }) {
  const { reason } = q;
  const columns: TableColumn<{ code: string; count: number }>[] = [
    {
      key: 'code',
      label: 'Reason',
      value: (r) => r.code,
      render: (r) => (
        <a href={linkTo(route, { reason: r.code })} aria-current={reason === r.code ? 'true' : undefined}>
          <code>{r.code}</code>
        </a>
      ),
    },
    { key: 'count', label: 'Refused', numeric: true, value: (r) => r.count, render: (r) => formatNumber(r.count) },
  ];
  return (
    <Card
      title="Quarantine by reason"
      id="quarantine"
      state={q.all}
      actions={
        <CsvButton filename="quarantine-reasons" what="refused events by reason" {...tableCsv(columns, q.reasons)} />
      }
    >
      <p class="muted small">
        Events the collector refused since {formatTime(view.from, view.tz)}, kept to be fixed and replayed.
        {reason && (
          <>
            {' '}
            <a href={linkTo(route, { reason: undefined })}>Every reason</a>
          </>
        )}
      </p>
      <DataTable
        caption="Refused events by reason"
        columns={columns}
        rows={q.reasons}
        rowKey={(r) => r.code}
        empty="Nothing refused in this range."
      />
      <Replay
        key={JSON.stringify(q.filter)}
        session={session}
        filter={q.filter}
        count={q.matching}
        what={reason ? `refused for ${reason}` : 'refused'}
        onDone={q.reload}
      />
    </Card>
  );
}

function RefusedCard({ q, view }: { q: QuarantineState; view: View }) {
  const columns: TableColumn<Rejected>[] = [
    {
      key: 'received_at',
      label: 'Received',
      value: (r) => r.receivedAt,
      render: (r) => formatTime(r.receivedAt, view.tz),
    },
    { key: 'name', label: 'Event', value: (r) => r.name },
    { key: 'code', label: 'Reason', value: (r) => r.code, render: (r) => <code>{r.code}</code> },
    { key: 'message', label: 'Message', value: (r) => r.message },
    { key: 'source', label: 'Route', value: (r) => r.source },
    {
      key: 'replayable',
      label: 'Replayable',
      value: (r) => !r.truncated,
      render: (r) => (r.truncated ? <span class="badge bad">too large, cut</span> : 'yes'),
    },
  ];
  const rows = q.list.data?.events ?? [];
  const csv = tableCsv(
    [
      ...columns,
      { key: 'event_id', label: 'Id', value: (r: Rejected) => r.eventId },
      { key: 'key_id', label: 'Key', value: (r: Rejected) => r.keyId },
      { key: 'item', label: 'Item', value: (r: Rejected) => r.item },
    ],
    rows,
  );
  return (
    <Card
      title={q.reason ? `Refused for ${q.reason}` : 'Refused events'}
      id="rejected"
      wide
      state={q.list}
      actions={<CsvButton filename="quarantine" what="refused events" {...csv} />}
    >
      <DataTable
        caption="The most recent refused events, newest first"
        columns={columns}
        rows={rows}
        rowKey={(r) => `${r.tenantId}|${r.eventId}`}
        empty="Nothing refused in this range."
      />
      {rows.length === REJECTED_SHOWN && (
        <p class="muted small">The {REJECTED_SHOWN} most recent are shown (and in the CSV); the counts cover all.</p>
      )}
    </Card>
  );
}

type ReplayState =
  | { step: 'idle' }
  | { step: 'dry-run' | 'running'; progress?: string }
  | { step: 'confirm'; report: ReplayReport }
  | { step: 'done'; report: ReplayReport }
  | { step: 'failed'; error: ApiError };

function summary(r: ReplayReport, dry: boolean): string {
  const failing = Object.entries(r.failing)
    .map(([code, n]) => `${code} ${formatNumber(n)}`)
    .join(', ');
  return (
    `${formatNumber(r.examined)} examined: ${formatNumber(r.stored)} ${dry ? 'would be stored' : 'stored'}, ` +
    `${formatNumber(r.duplicates)} already stored, ${formatNumber(r.stillFailing)} still refused` +
    (failing ? ` (${failing})` : '') +
    '.'
  );
}

/** Replay of what the filter matches: a dry run that only counts, then the replay once confirmed. */
function Replay(props: {
  session: Session;
  filter: { tenant: string; since: string; code?: string };
  count: number | undefined;
  what: string;
  onDone: () => void;
}) {
  const [state, setState] = useState<ReplayState>({ step: 'idle' });
  const run = async (dryRun: boolean) => {
    setState({ step: dryRun ? 'dry-run' : 'running' });
    try {
      const report = await runAdmin<ReplayReport>(
        '/v1/admin/rejected/replay',
        { ...props.filter, dryRun },
        props.session.key,
        (progress) => setState({ step: dryRun ? 'dry-run' : 'running', progress }),
      );
      setState({ step: dryRun ? 'confirm' : 'done', report });
      if (!dryRun) props.onDone();
    } catch (e) {
      setState({ step: 'failed', error: e as ApiError });
    }
  };
  const busy = state.step === 'dry-run' || state.step === 'running';
  // Nothing to replay: no button that could only be disabled.
  if (props.count === 0 && state.step === 'idle') return null;
  return (
    <div class="replay" data-replay={state.step}>
      {state.step === 'confirm' ? (
        <div class="notice" role="status">
          <p>
            <strong>Dry run:</strong> {summary(state.report, true)} Replaying checks them against the catalog and the
            tenant's settings as they are now and stores what passes, once.
          </p>
          <div class="card-actions">
            <button
              type="button"
              class="button small primary"
              disabled={state.report.stored === 0}
              onClick={() => void run(false)}
            >
              Replay {formatNumber(state.report.stored)} now
            </button>
            <button type="button" class="button small" onClick={() => setState({ step: 'idle' })}>
              Cancel
            </button>
          </div>
        </div>
      ) : (
        <div class="card-actions">
          <button type="button" class="button small" disabled={busy || !props.count} onClick={() => void run(true)}>
            {busy ? 'Checking…' : `Replay ${props.count === undefined ? '' : formatNumber(props.count)} ${props.what}…`}
          </button>
          {busy && state.progress && <span class="muted small">{state.progress}</span>}
        </div>
      )}
      {state.step === 'done' && (
        <p class="notice" role="status">
          <strong>Replayed:</strong> {summary(state.report, false)}
        </p>
      )}
      {state.step === 'failed' && <ErrorBox error={state.error} onRetry={() => setState({ step: 'idle' })} />}
    </div>
  );
}
