/**
 * Overview: the tenant's traffic at a glance, every number from the query API. Events over time, the
 * ingestion rate and users per bucket are trends of all events (`event: null`). The per-event sparklines
 * are one trends query over the top names. Active users over the whole range are the users entering step 1
 * of a funnel in any order over the range's names (up to its 20 steps): whoever did any of them, each
 * counted once, which per-bucket unique users summed would not give. Routes and the recent server errors
 * are a routes and a logs query.
 */
import { type Interval, QUERY_LIMITS } from '@tally/core';
import { type Cell, type Loaded, type QueryAnswer, query, records, useLoad, useQuery } from '../api.js';
import { BarCell } from '../components/bar.js';
import { Card } from '../components/card.js';
import { PageHead } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { Sparkline } from '../components/sparkline.js';
import { Stat } from '../components/stat.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { TimeChart } from '../components/time-chart.js';
import { formatMs, formatNumber, formatPercent, formatTime } from '../format.js';
import { hrefFor, type View } from '../url.js';
import type { PageProps } from './registry.js';

const HOUR = 3_600_000;
/** Hourly buckets up to two days; days beyond. */
const HOURLY_UP_TO = 2 * 24 * HOUR;
/** Most event names listed (explore's answer, by count). */
const MAX_NAMES = 200;
const TOP_N = 10;

type Row = Record<string, Cell>;

/** Per-bucket values of a trends answer: the bucket times in order, and each series' values by letter. */
export interface Totals {
  times: number[];
  /** Series A's values (all events, or the first name). */
  total: number[];
  bySeries: number[][];
}

export function totalsOf(answer: QueryAnswer, seriesCount: number): Totals {
  const times: number[] = [];
  const index = new Map<number, number>();
  const bySeries = Array.from({ length: seriesCount }, () => [] as number[]);
  for (const r of records(answer)) {
    const t = Date.parse(r.time as string);
    if (!index.has(t)) {
      index.set(t, times.length);
      times.push(t);
    }
    const values = bySeries[(r.series as string).charCodeAt(0) - 65];
    if (values) values[index.get(t) as number] = Number(r.value ?? 0);
  }
  for (const values of bySeries) for (let i = 0; i < times.length; i++) values[i] ??= 0;
  return { times, total: bySeries[0] ?? [], bySeries };
}

/** A trends query's answer as Totals (for useLoad, which keeps it per key). */
async function trendsOf(
  series: { event: string | null; measure: 'count' | 'unique_users' }[],
  interval: Interval,
  view: View,
  signal: AbortSignal,
): Promise<Totals> {
  const answer = await query({ kind: 'trends', range: view.range, tz: view.tz, interval, series }, { signal });
  return totalsOf(answer, series.length);
}

function intervalOf(view: View): 'hour' | 'day' {
  return view.to - view.from <= HOURLY_UP_TO ? 'hour' : 'day';
}

/** Peak and average events per hour, over the hours of the range that have begun. */
export function ingestionRate(times: readonly number[], total: readonly number[], now = Date.now()) {
  let sum = 0;
  let hours = 0;
  let peak = 0;
  let peakAt: number | undefined;
  times.forEach((t, i) => {
    if (t > now) return;
    const v = total[i] ?? 0;
    sum += v;
    hours++;
    if (v > peak) {
      peak = v;
      peakAt = t;
    }
  });
  return { average: hours === 0 ? null : Math.round((sum / hours) * 100) / 100, peak, peakAt };
}

export default function Overview({ route, view }: PageProps) {
  const interval = intervalOf(view);
  const per = interval === 'hour' ? 'hour' : 'day';
  const viewKey = JSON.stringify([view.range, view.tz]);

  const events = useQuery({ kind: 'explore', what: 'events', limit: MAX_NAMES });
  const eventRows = events.data ? records(events.data) : [];
  const names = eventRows.map((r) => r.event as string);
  const namesKey = events.data ? JSON.stringify(names) : null;

  const totals = useLoad(`events|${interval}|${viewKey}`, (signal) =>
    trendsOf(
      [
        { event: null, measure: 'count' },
        { event: null, measure: 'unique_users' },
      ],
      interval,
      view,
      signal,
    ),
  );
  // Hourly counts for the ingestion rate: the chart's own when it is hourly; hours are not asked beyond 31 days.
  const hourlyAllowed = view.to - view.from <= QUERY_LIMITS.hourlyRangeDays * 24 * HOUR;
  const hourlyApart = interval !== 'hour' && hourlyAllowed;
  const hourlyOwn = useLoad(hourlyApart ? `events|hour|${viewKey}` : null, (signal) =>
    trendsOf([{ event: null, measure: 'count' }], 'hour', view, signal),
  );
  const hourly = interval === 'hour' ? totals : hourlyAllowed ? hourlyOwn : undefined;
  // The top events' counts per bucket, for their sparklines.
  const topNames = names.slice(0, Math.min(TOP_N, QUERY_LIMITS.series));
  const perName = useLoad(
    topNames.length > 0 && namesKey ? `top|${JSON.stringify(topNames)}|${interval}|${viewKey}` : null,
    (signal) =>
      trendsOf(
        topNames.map((event) => ({ event, measure: 'count' as const })),
        interval,
        view,
        signal,
      ),
  );

  const funnelNames = names.slice(0, QUERY_LIMITS.steps);
  const active = useLoad(namesKey && `${namesKey}|active|${viewKey}`, async (signal) => {
    if (funnelNames.length === 0) return 0;
    const steps = (funnelNames.length === 1 ? [funnelNames[0], funnelNames[0]] : funnelNames).map((event) => ({
      event,
    }));
    const answer = await query(
      { kind: 'funnel', range: view.range, tz: view.tz, order: 'any', window: '1d', steps },
      { signal },
    );
    const first = records(answer).find((r) => r.step === 1);
    return Number(first?.entered ?? 0);
  });

  const routes = useQuery({ kind: 'routes', sort: 'count', limit: QUERY_LIMITS.routesLimit });
  const errors = useQuery({ kind: 'logs', filters: { statusClass: '5xx' }, limit: 10 });

  const totalEvents = events.data ? eventRows.reduce((s, r) => s + Number(r.count ?? 0), 0) : undefined;
  const routeRows = routes.data ? records(routes.data) : [];
  const requests = routes.data ? routeRows.reduce((s, r) => s + Number(r.count ?? 0), 0) : undefined;
  const errors5xx = routeRows.reduce((s, r) => s + Number(r.errors_5xx ?? 0), 0);
  const rate = hourly?.data ? ingestionRate(hourly.data.times, hourly.data.total) : undefined;
  const dayRate =
    !hourlyAllowed && totals.data
      ? ingestionRate(
          totals.data.times,
          totals.data.total.map((v) => v / 24),
        )
      : undefined;

  return (
    <>
      <PageHead title="Overview" view={view} />

      <div class="stats">
        <Stat
          id="events"
          label="Events"
          value={totalEvents}
          loading={events.loading}
          hint={`${names.length} event names`}
        />
        <Stat
          id="active-users"
          label="Active users"
          value={active.data}
          loading={active.loading}
          hint={names.length > QUERY_LIMITS.steps ? `did any of the top ${QUERY_LIMITS.steps} events` : 'did any event'}
        />
        <Stat
          id="ingestion"
          label="Ingestion rate"
          value={(rate ?? dayRate)?.average}
          loading={(hourly ?? totals).loading}
          format={(v) => (typeof v === 'number' ? `${formatNumber(v)}/h` : '–')}
          hint={
            rate ? (
              <>
                <span>peak {formatNumber(rate.peak)}/h</span>
                <Sparkline values={hourly?.data?.total ?? []} width={90} height={22} />
              </>
            ) : (
              'events per hour'
            )
          }
        />
        <Stat
          id="requests"
          label="Requests"
          value={requests}
          loading={routes.loading}
          hint={`${routeRows.length} routes`}
        />
        <Stat
          id="error-rate"
          label="Server errors"
          loading={routes.loading}
          value={requests ? errors5xx / requests : requests === 0 ? 0 : undefined}
          format={formatPercent}
          hint={`${formatNumber(errors5xx)} responses 5xx`}
        />
      </div>

      <div class="grid">
        <EventsOverTime totals={totals} interval={interval} view={view} per={per} />
        <ActiveUsers totals={totals} interval={interval} view={view} per={per} />
        <IngestionRate hourly={hourly} view={view} />
        <TopEvents rows={eventRows} state={events} perName={perName.data} names={topNames} route={route} view={view} />
        <TopRoutes rows={routeRows} state={routes} route={route} />
        <RecentErrors state={errors} view={view} route={route} />
      </div>
    </>
  );
}

function EventsOverTime(props: { totals: Loaded<Totals>; interval: 'hour' | 'day'; view: View; per: string }) {
  const data = props.totals.data;
  const csv = data
    ? { header: ['time', 'events'], rows: data.times.map((t, i) => [new Date(t).toISOString(), data.total[i] ?? 0]) }
    : { header: ['time', 'events'], rows: [] };
  return (
    <Card
      title={`Events per ${props.per}`}
      id="events-over-time"
      wide
      state={props.totals}
      actions={<CsvButton filename="events-over-time" what="events over time" {...csv} />}
    >
      {data && (
        <TimeChart
          integers
          label={`Events per ${props.per}, all event names summed`}
          times={data.times}
          series={[{ label: 'Events', values: data.total }]}
          tz={props.view.tz}
          interval={props.interval}
          kind="bars"
        />
      )}
    </Card>
  );
}

function ActiveUsers(props: { totals: Loaded<Totals>; interval: 'hour' | 'day'; view: View; per: string }) {
  const data = props.totals.data;
  const users = data?.bySeries[1] ?? [];
  const csv = {
    header: ['time', 'users'],
    rows: (data?.times ?? []).map((t, i) => [new Date(t).toISOString(), users[i] ?? 0]),
  };
  return (
    <Card
      title={`Active users per ${props.per}`}
      id="active-users"
      state={props.totals}
      actions={<CsvButton filename="active-users" what="active users" {...csv} />}
    >
      {data && (
        <TimeChart
          integers
          label={`Users who did any event, per ${props.per}`}
          times={data.times}
          series={[{ label: 'Users', values: users }]}
          tz={props.view.tz}
          interval={props.interval}
          height={200}
        />
      )}
    </Card>
  );
}

function IngestionRate(props: { hourly: Loaded<Totals> | undefined; view: View }) {
  const data = props.hourly?.data;
  const csv = data
    ? {
        header: ['hour', 'events'],
        rows: data.times.map((t, i) => [new Date(t).toISOString(), data.total[i] ?? 0]),
      }
    : { header: ['hour', 'events'], rows: [] };
  return (
    <Card
      title="Ingestion rate, events per hour"
      id="ingestion-rate"
      state={props.hourly}
      actions={<CsvButton filename="ingestion-rate" what="events per hour" {...csv} />}
    >
      {!props.hourly ? (
        <p class="muted">Hourly counts cover at most {QUERY_LIMITS.hourlyRangeDays} days: pick a shorter range.</p>
      ) : (
        data && (
          <TimeChart
            integers
            label="Events stored per hour"
            times={data.times}
            series={[{ label: 'Events/h', values: data.total }]}
            tz={props.view.tz}
            interval="hour"
            height={200}
          />
        )
      )}
    </Card>
  );
}

function TopEvents(props: {
  rows: Row[];
  state: Loaded<QueryAnswer>;
  /** Counts per bucket of `names` (series A, B… in their order). */
  perName: Totals | undefined;
  names: string[];
  route: PageProps['route'];
  view: View;
}) {
  const trendOf = (name: string) => {
    const i = props.names.indexOf(name);
    return i < 0 ? [] : (props.perName?.bySeries[i] ?? []);
  };
  const max = Math.max(1, ...props.rows.map((r) => Number(r.count ?? 0)));
  const columns: TableColumn<Row>[] = [
    {
      key: 'event',
      label: 'Event',
      value: (r) => r.event as string,
      render: (r) => (
        <>
          {String(r.event)}
          {r.listed === false && (
            <span class="badge bad" title="Not in the catalog">
              unlisted
            </span>
          )}
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
      key: 'trend',
      label: 'Trend',
      value: () => null,
      render: (r) => <Sparkline values={trendOf(r.event as string)} width={96} height={20} />,
    },
    {
      key: 'last_seen',
      label: 'Last seen',
      value: (r) => r.last_seen as string,
      render: (r) => formatTime(r.last_seen, props.view.tz),
    },
  ];
  const top = props.rows.slice(0, TOP_N);
  const csvColumns: TableColumn<Row>[] = [
    ...columns.filter((c) => c.key !== 'trend'),
    { key: 'listed', label: 'Listed', value: (r) => (r.listed as boolean | undefined) ?? null },
  ];
  return (
    <Card
      title="Top events"
      id="top-events"
      state={props.state}
      actions={
        <>
          <a class="small" href={hrefFor(props.route, 'catalog')}>
            All events
          </a>
          <CsvButton filename="top-events" what="top events" {...tableCsv(csvColumns, props.rows)} />
        </>
      }
    >
      <DataTable caption="Top events by count" columns={columns} rows={top} rowKey={(r) => r.event as string} />
    </Card>
  );
}

function TopRoutes(props: { rows: Row[]; state: Loaded<QueryAnswer>; route: PageProps['route'] }) {
  const columns: TableColumn<Row>[] = [
    { key: 'method', label: 'Method', value: (r) => r.method as string },
    {
      key: 'route',
      label: 'Route',
      value: (r) => r.route as string,
      // The route's own page: its requests, errors and latency over time.
      render: (r) => (
        <a href={hrefFor(props.route, 'routes', {}, [r.method as string, r.route as string])}>{String(r.route)}</a>
      ),
    },
    {
      key: 'count',
      label: 'Requests',
      numeric: true,
      value: (r) => r.count as number,
      render: (r) => formatNumber(r.count),
    },
    {
      key: 'error_rate',
      label: 'Errors',
      numeric: true,
      value: (r) => r.error_rate as number,
      render: (r) => (
        <span class={Number(r.errors_5xx ?? 0) > 0 ? 'status-5xx' : undefined}>{formatPercent(r.error_rate)}</span>
      ),
    },
    { key: 'p95_ms', label: 'p95', numeric: true, value: (r) => r.p95_ms as number, render: (r) => formatMs(r.p95_ms) },
  ];
  const csvColumns: TableColumn<Row>[] = [
    ...columns,
    { key: 'errors_4xx', label: '4xx', value: (r) => r.errors_4xx as number },
    { key: 'errors_5xx', label: '5xx', value: (r) => r.errors_5xx as number },
    { key: 'p50_ms', label: 'p50', value: (r) => r.p50_ms as number },
    { key: 'p99_ms', label: 'p99', value: (r) => r.p99_ms as number },
  ];
  return (
    <Card
      title="Top routes"
      id="top-routes"
      state={props.state}
      actions={
        <>
          <a class="small" href={hrefFor(props.route, 'routes')}>
            All routes
          </a>
          <CsvButton filename="top-routes" what="top routes" {...tableCsv(csvColumns, props.rows)} />
        </>
      }
    >
      <DataTable
        caption="Top routes by requests, with error rate and 95th percentile latency"
        columns={columns}
        rows={props.rows.slice(0, TOP_N)}
        rowKey={(r) => `${r.method} ${r.route}`}
      />
    </Card>
  );
}

function RecentErrors(props: { state: Loaded<QueryAnswer>; view: View; route: PageProps['route'] }) {
  const rows = props.state.data ? records(props.state.data) : [];
  const columns: TableColumn<Row>[] = [
    {
      key: 'time',
      label: 'Time',
      value: (r) => r.time as string,
      render: (r) => (
        <a
          href={hrefFor(props.route, 'logs', {}, [r.id as string])}
          aria-label={`Request log of ${formatTime(r.time, props.view.tz)}`}
        >
          {formatTime(r.time, props.view.tz)}
        </a>
      ),
    },
    {
      key: 'status',
      label: 'Status',
      numeric: true,
      value: (r) => r.status as number,
      render: (r) => <span class="status-5xx">{String(r.status)}</span>,
    },
    { key: 'method', label: 'Method', value: (r) => r.method as string },
    { key: 'url', label: 'URL', value: (r) => r.url as string },
    {
      key: 'duration_ms',
      label: 'Duration',
      numeric: true,
      value: (r) => r.duration_ms as number,
      render: (r) => formatMs(r.duration_ms),
    },
    { key: 'error', label: 'Error', value: (r) => r.error as string },
  ];
  const csvColumns: TableColumn<Row>[] = [
    { key: 'id', label: 'Id', value: (r) => r.id as string },
    ...columns,
    { key: 'route', label: 'Route', value: (r) => r.route as string },
  ];
  return (
    <Card
      title="Recent server errors (5xx)"
      id="recent-5xx"
      wide
      state={props.state}
      actions={
        <>
          <a class="small" href={hrefFor(props.route, 'logs', { statusClass: '5xx' })}>
            All 5xx logs
          </a>
          <CsvButton filename="recent-5xx" what="recent server errors" {...tableCsv(csvColumns, rows)} />
        </>
      }
    >
      <DataTable
        caption="The ten most recent requests answered with a 5xx status"
        columns={columns}
        rows={rows}
        empty="No server errors in this range."
        rowKey={(r) => r.id as string}
      />
    </Card>
  );
}
