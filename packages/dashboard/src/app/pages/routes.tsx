/**
 * Routes: the request logs per (method, route) with their counts, error counts by class, latency
 * percentiles and a sparkline of requests over the range; sorted by the server (`sort` of a routes query,
 * so "the 50 slowest" are the slowest of all routes, not of the 50 busiest). A route opens its own page,
 * `#/routes/<method>/<route>`, with the same figures per interval. Every number is a routes query's.
 */
import { type HttpMethod, HTTP_METHODS, type Interval, QUERY_LIMITS, type RouteSort } from '@tally/core';
import type { ComponentChildren } from 'preact';
import { useMemo } from 'preact/hooks';
import { type Cell, type Loaded, type QueryAnswer, query, records, useLoad, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { PageHead, rangeText } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { ErrorBox } from '../components/error-box.js';
import { Sparkline } from '../components/sparkline.js';
import { Stat } from '../components/stat.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { TimeChart } from '../components/time-chart.js';
import { formatMs, formatNumber, formatPercent, formatTime } from '../format.js';
import { hrefFor, type Route, type View } from '../url.js';
import { mapLimited } from './page-kit/pool.js';
import { type SortableColumn, SortableTable } from './page-kit/sortable-table.js';
import type { PageProps } from './registry.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
type Row = Record<string, Cell>;

export const SORTS: readonly { id: RouteSort; label: string }[] = [
  { id: 'count', label: 'Most requests' },
  { id: 'errors', label: 'Most errors' },
  { id: 'error_rate', label: 'Highest error rate' },
  { id: 'p50', label: 'Slowest (p50)' },
  { id: 'p95', label: 'Slowest (p95)' },
  { id: 'p99', label: 'Slowest (p99)' },
];
const LIMITS = [10, 25, 50, 100, 250, 1000] as const;
const DEFAULT_LIMIT = 50;
/** Sparkline queries in flight at once. */
const SPARK_WIDTH = 3;
/** Routes drawn with a sparkline (a query each): the top ones of a long list. */
const SPARK_MAX = 100;

/** Buckets for a range: hours up to two days, days beyond (as the Overview draws). */
export function defaultInterval(view: View): Interval {
  return view.to - view.from <= 2 * DAY ? 'hour' : 'day';
}

function hourlyAllowed(view: View): boolean {
  return view.to - view.from <= QUERY_LIMITS.hourlyRangeDays * DAY;
}

const isSort = (v: string | undefined): v is RouteSort => SORTS.some((s) => s.id === v);
const isMethod = (v: string | undefined): v is HttpMethod => HTTP_METHODS.includes(v as HttpMethod);
const INTERVALS: readonly Interval[] = ['hour', 'day', 'week', 'month'];
const isInterval = (v: string | undefined): v is Interval => INTERVALS.includes(v as Interval);

/** A share of a count, `–` over none. */
const share = (part: unknown, whole: unknown) =>
  typeof part === 'number' && typeof whole === 'number' && whole > 0 ? part / whole : null;

export default function Routes(props: PageProps) {
  const { rest } = props.route;
  if (rest.length === 0) return <RouteTable {...props} />;
  const method = rest[0] as string;
  const name = rest.slice(1).join('/');
  if (!name) {
    return (
      <>
        <h1>Routes</h1>
        <ErrorBox
          error={new Error(`"#/routes/${rest.join('/')}" names no route: a route's page is #/routes/<method>/<route>.`)}
        />
        <a href={hrefFor(props.route, 'routes')}>All routes</a>
      </>
    );
  }
  return <OneRoute {...props} method={method} name={name} />;
}

/** The link to one route's page, keeping the range and zone. */
export function routeHref(current: Route, method: string, route: string): string {
  return hrefFor(current, 'routes', {}, [method, route]);
}

function RouteTable({ route, view, setParams }: PageProps) {
  const p = route.params;
  const sort: RouteSort = isSort(p.sort) ? p.sort : 'count';
  const method = isMethod(p.method) ? p.method : undefined;
  const limit = LIMITS.includes(Number(p.limit) as (typeof LIMITS)[number]) ? Number(p.limit) : DEFAULT_LIMIT;
  const interval = defaultInterval(view);

  const table = useQuery({ kind: 'routes', sort, limit, ...(method ? { method } : {}) });
  const rows = table.data ? records(table.data) : [];
  const rowsKey = table.data ? JSON.stringify(rows.map((r) => [r.method, r.route])) : null;

  // One series query per route shown: a routes query over time answers for the routes its filters match.
  const sparks = useLoad(
    rowsKey && `${rowsKey}|${interval}|${JSON.stringify(view.range)}|${view.tz}`,
    async (signal) => {
      const drawn = rows.slice(0, SPARK_MAX);
      const series = await mapLimited(drawn, SPARK_WIDTH, (r) =>
        query(
          {
            kind: 'routes',
            range: view.range,
            tz: view.tz,
            method: r.method as HttpMethod,
            route: r.route as string,
            interval,
          },
          { signal },
        ),
      );
      const byRoute = new Map<string, { times: string[]; counts: number[] }>();
      drawn.forEach((r, i) => {
        const points = records(series[i] as QueryAnswer);
        byRoute.set(`${r.method} ${r.route}`, {
          times: points.map((x) => x.time as string),
          counts: points.map((x) => Number(x.count ?? 0)),
        });
      });
      return byRoute;
    },
  );

  const columns: SortableColumn<Row, RouteSort>[] = [
    { key: 'method', label: 'Method', value: (r) => r.method as string },
    {
      key: 'route',
      label: 'Route',
      value: (r) => r.route as string,
      render: (r) => <a href={routeHref(route, r.method as string, r.route as string)}>{r.route as string}</a>,
    },
    {
      key: 'count',
      label: 'Requests',
      numeric: true,
      sort: 'count',
      value: (r) => r.count as number,
      render: (r) => formatNumber(r.count),
    },
    {
      key: 'errors_4xx',
      label: '4xx',
      title: 'Client errors (400–499)',
      numeric: true,
      value: (r) => r.errors_4xx as number,
      render: (r) => <Share count={r.errors_4xx} of={r.count} />,
    },
    {
      key: 'errors_5xx',
      label: '5xx',
      title: 'Server errors (500 and above)',
      numeric: true,
      value: (r) => r.errors_5xx as number,
      render: (r) => <Share count={r.errors_5xx} of={r.count} bad />,
    },
    {
      key: 'errors',
      label: 'Errors',
      title: '4xx and 5xx answers',
      numeric: true,
      sort: 'errors',
      value: (r) => Number(r.errors_4xx ?? 0) + Number(r.errors_5xx ?? 0),
      render: (r) => formatNumber(Number(r.errors_4xx ?? 0) + Number(r.errors_5xx ?? 0)),
    },
    {
      key: 'error_rate',
      label: 'Error rate',
      numeric: true,
      sort: 'error_rate',
      value: (r) => r.error_rate as number,
      render: (r) => formatPercent(r.error_rate),
    },
    ...(['p50', 'p95', 'p99'] as const).map((q): SortableColumn<Row, RouteSort> => ({
      key: `${q}_ms`,
      label: q,
      title: `${q.slice(1)}th percentile latency`,
      numeric: true,
      sort: q,
      value: (r) => r[`${q}_ms`] as number,
      render: (r) => formatMs(r[`${q}_ms`]),
    })),
    {
      key: 'trend',
      label: `Requests per ${interval}`,
      value: () => null,
      render: (r) => {
        const s = sparks.data?.get(`${r.method} ${r.route}`);
        if (!s) return <span class="muted">{sparks.data || sparks.error ? '–' : '…'}</span>;
        return (
          <Sparkline
            values={s.counts}
            width={110}
            height={22}
            label={`Requests per ${interval} to ${r.method} ${r.route}: ${s.counts.map((c) => formatNumber(c)).join(', ')}`}
          />
        );
      },
    },
  ];

  const csvColumns: TableColumn<Row>[] = (table.data?.columns ?? []).map((c) => ({
    key: c.name,
    label: c.name,
    value: (r) => r[c.name] as Cell as string,
  }));
  const sparkCsv = {
    header: ['method', 'route', 'time', 'count'],
    rows: [...(sparks.data ?? new Map())].flatMap(([key, s]) => {
      const [m, ...r] = key.split(' ');
      return s.times.map((t: string, i: number) => [m, r.join(' '), t, s.counts[i]]);
    }),
  };

  return (
    <>
      <PageHead title="Routes" view={view} />
      <div class="controls-row" role="group" aria-label="Which routes">
        <label class="field">
          <span class="field-label">Sort</span>
          <select
            value={sort}
            data-control="sort"
            onChange={(e) => setParams({ sort: (e.target as HTMLSelectElement).value })}
          >
            {SORTS.map((s) => (
              <option key={s.id} value={s.id}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field-label">Method</span>
          <select
            value={method ?? ''}
            data-control="method"
            onChange={(e) => setParams({ method: (e.target as HTMLSelectElement).value })}
          >
            <option value="">Any</option>
            {HTTP_METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field-label">Show</span>
          <select
            value={String(limit)}
            data-control="limit"
            onChange={(e) => setParams({ limit: (e.target as HTMLSelectElement).value })}
          >
            {LIMITS.map((n) => (
              <option key={n} value={String(n)}>
                Top {n}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div class="grid">
        <Card
          title="Requests by route"
          id="routes"
          wide
          state={table}
          actions={
            <div class="button-row">
              <CsvButton filename="routes" what="routes" {...tableCsv(csvColumns, rows)} />
              <CsvButton filename="routes-over-time" what={`requests per ${interval} of each route`} {...sparkCsv} />
            </div>
          }
        >
          <SortableTable
            caption={`Routes by ${SORTS.find((s) => s.id === sort)?.label.toLowerCase()}, with errors by class, latency percentiles and requests per ${interval}`}
            columns={columns}
            rows={rows}
            sort={sort}
            onSort={(s) => setParams({ sort: s })}
            rowKey={(r) => `${r.method} ${r.route}`}
            empty="No requests in this range."
          />
          {table.data?.meta.truncated && (
            <p class="muted small">The top {limit} routes of this order; choose “Show” for more.</p>
          )}
          {rows.length > SPARK_MAX && (
            <p class="muted small">
              Requests per {interval} are drawn for the first {SPARK_MAX} routes.
            </p>
          )}
          {sparks.error && <ErrorBox error={sparks.error} onRetry={sparks.reload} />}
        </Card>
      </div>
    </>
  );
}

/** A count with its share of the requests, the share muted. */
function Share(props: { count: unknown; of: unknown; bad?: boolean }) {
  const s = share(props.count, props.of);
  const n = Number(props.count ?? 0);
  return (
    <span class="with-share">
      <span class={props.bad && n > 0 ? 'status-5xx' : undefined}>{formatNumber(props.count)}</span>
      <span class="muted small">{s === null ? '' : formatPercent(s)}</span>
    </span>
  );
}

function OneRoute({ route, view, setParams, method, name }: PageProps & { method: string; name: string }) {
  const hourly = hourlyAllowed(view);
  const asked = isInterval(route.params.interval) ? route.params.interval : undefined;
  const interval: Interval = asked && (asked !== 'hour' || hourly) ? asked : defaultInterval(view);
  const filter = { method: method as HttpMethod, route: name };
  const totals = useQuery({ kind: 'routes', ...filter, limit: 1 });
  const series = useQuery({ kind: 'routes', ...filter, interval });
  const total = totals.data ? records(totals.data)[0] : undefined;
  const points = useMemo(() => (series.data ? records(series.data) : []), [series.data]);

  const charts = useMemo(() => {
    const times = points.map((r) => Date.parse(r.time as string));
    const col = (k: string) => points.map((r) => (typeof r[k] === 'number' ? (r[k] as number) : null));
    return {
      times,
      // One chart: the errors read against the requests they are part of.
      requests: [
        { label: 'Requests', values: col('count') },
        { label: '4xx', values: col('errors_4xx') },
        { label: '5xx', values: col('errors_5xx') },
      ],
      latency: [
        { label: 'p50', values: col('p50_ms') },
        { label: 'p95', values: col('p95_ms') },
        { label: 'p99', values: col('p99_ms') },
      ],
    };
  }, [points]);

  const columns: TableColumn<Row>[] = [
    {
      key: 'time',
      label: interval === 'hour' ? 'Hour' : interval[0]?.toUpperCase() + interval.slice(1),
      value: (r) => r.time as string,
      render: (r) => formatTime(r.time, view.tz, interval === 'hour' ? 'minute' : 'day'),
    },
    {
      key: 'count',
      label: 'Requests',
      numeric: true,
      value: (r) => r.count as number,
      render: (r) => formatNumber(r.count),
    },
    {
      key: 'errors_4xx',
      label: '4xx',
      numeric: true,
      value: (r) => r.errors_4xx as number,
      render: (r) => <Share count={r.errors_4xx} of={r.count} />,
    },
    {
      key: 'errors_5xx',
      label: '5xx',
      numeric: true,
      value: (r) => r.errors_5xx as number,
      render: (r) => <Share count={r.errors_5xx} of={r.count} bad />,
    },
    {
      key: 'error_rate',
      label: 'Error rate',
      numeric: true,
      value: (r) => r.error_rate as number,
      render: (r) => formatPercent(r.error_rate),
    },
    ...(['p50', 'p95', 'p99'] as const).map((q): TableColumn<Row> => ({
      key: `${q}_ms`,
      label: q,
      numeric: true,
      value: (r) => r[`${q}_ms`] as number,
      render: (r) => formatMs(r[`${q}_ms`]),
    })),
  ];
  const csv = tableCsv(columns, points);
  const per = interval === 'hour' ? 'hour' : interval;
  const chartCsv = (keys: string[]) => ({
    header: ['time', ...keys],
    rows: points.map((r) => [r.time as string, ...keys.map((k) => r[k] as number | null)]),
  });

  return (
    <>
      <div class="page-head">
        <div>
          <p class="small">
            <a href={hrefFor(route, 'routes')}>← All routes</a>
          </p>
          <h1>
            <span class="badge">{method}</span> {name}
          </h1>
          <p class="page-sub">{rangeText(view)}</p>
        </div>
        <div class="controls-row">
          <label class="field">
            <span class="field-label">Interval</span>
            <select
              value={interval}
              data-control="interval"
              onChange={(e) => setParams({ interval: (e.target as HTMLSelectElement).value })}
            >
              {INTERVALS.map((i) => (
                <option key={i} value={i} disabled={i === 'hour' && !hourly}>
                  {i === 'hour' && !hourly
                    ? `Hour (up to ${QUERY_LIMITS.hourlyRangeDays} days)`
                    : i[0]?.toUpperCase() + i.slice(1)}
                </option>
              ))}
            </select>
          </label>
          <a class="button small" href={hrefFor(route, 'logs', { method, route: name })}>
            Request logs of this route
          </a>
        </div>
      </div>

      {totals.error ? (
        <ErrorBox error={totals.error} onRetry={totals.reload} />
      ) : (
        <div class="stats" data-card="route-totals" aria-busy={totals.loading ? 'true' : 'false'}>
          <Stat id="count" label="Requests" value={totals.data ? Number(total?.count ?? 0) : undefined} />
          <Stat
            id="errors_4xx"
            label="Client errors (4xx)"
            value={totals.data ? Number(total?.errors_4xx ?? 0) : undefined}
            hint={formatPercent(share(total?.errors_4xx, total?.count))}
          />
          <Stat
            id="errors_5xx"
            label="Server errors (5xx)"
            value={totals.data ? Number(total?.errors_5xx ?? 0) : undefined}
            hint={formatPercent(share(total?.errors_5xx, total?.count))}
          />
          <Stat id="p50_ms" label="p50 latency" value={total?.p50_ms as number | undefined} format={formatMs} />
          <Stat id="p95_ms" label="p95 latency" value={total?.p95_ms as number | undefined} format={formatMs} />
          <Stat id="p99_ms" label="p99 latency" value={total?.p99_ms as number | undefined} format={formatMs} />
        </div>
      )}
      {totals.data && !total && (
        <p class="notice">
          No requests to {method} {name} in this range.
        </p>
      )}

      <div class="grid">
        <ChartCard
          title={`Requests and errors per ${per}`}
          id="route-requests"
          state={series}
          csv={chartCsv(['count', 'errors_4xx', 'errors_5xx'])}
        >
          <TimeChart
            label={`Requests, 4xx and 5xx answers per ${per} of ${method} ${name}`}
            times={charts.times}
            series={charts.requests}
            tz={view.tz}
            interval={interval}
            height={220}
            integers
          />
        </ChartCard>
        <ChartCard
          title={`Latency per ${per}`}
          id="route-latency"
          state={series}
          csv={chartCsv(['p50_ms', 'p95_ms', 'p99_ms'])}
        >
          <TimeChart
            label={`p50, p95 and p99 latency per ${per} of ${method} ${name}, in milliseconds`}
            times={charts.times}
            series={charts.latency}
            tz={view.tz}
            interval={interval}
            height={220}
            format={(v) => formatMs(v)}
            axis={(v) => formatMs(v)}
          />
        </ChartCard>
        <Card
          title={`By ${per}`}
          id="route-series"
          wide
          state={series}
          actions={<CsvButton filename={`route-${method}-${name}`} what={`${method} ${name} per ${per}`} {...csv} />}
        >
          <DataTable
            caption={`${method} ${name}: requests, errors and latency per ${per}`}
            columns={columns}
            rows={points}
            rowKey={(r) => r.time as string}
          />
        </Card>
      </div>
    </>
  );
}

function ChartCard(props: {
  title: string;
  id: string;
  state: Loaded<QueryAnswer>;
  csv: { header: string[]; rows: (string | number | null)[][] };
  wide?: boolean;
  children: ComponentChildren;
}) {
  return (
    <Card
      title={props.title}
      id={props.id}
      wide={props.wide}
      state={props.state}
      actions={<CsvButton filename={props.id} what={props.title.toLowerCase()} {...props.csv} />}
    >
      {props.state.data && props.children}
    </Card>
  );
}
