/**
 * Trends: a trends query built by clicking (series with a measure and filters, a breakdown with top N,
 * the interval, the previous period, a formula across series), answered by POST /v1/query and shown as
 * lines, bars or a table, every view with its CSV (the answer's rows, as the API's CSV has them). The
 * query is the URL's `q=` and the view its `chart=`: a copied link shows the same thing. Without a `q`,
 * the range's most frequent event counted per day.
 */
import { useEffect, useMemo } from 'preact/hooks';
import type { Interval, Measure } from '@tally/core';
import { type Cell, type QueryAnswer, records, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { PageHead } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { ErrorBox } from '../components/error-box.js';
import { DataTable, type TableColumn } from '../components/table.js';
import { TimeChart } from '../components/time-chart.js';
import { formatNumber, formatTime } from '../format.js';
import type { View } from '../url.js';
import { BarChart } from './query-builder/bar-chart.js';
import { propertiesOf, useEventNames, usePropertyCatalog } from './query-builder/catalog.js';
import {
  BreakdownField,
  CommitInput,
  EventSelect,
  FilterList,
  PathPicker,
  Problem,
  Segmented,
} from './query-builder/fields.js';
import {
  checkTrends,
  groupLabel,
  INTERVALS,
  isNumericMeasure,
  letter,
  MAX_SERIES,
  MEASURES,
  readTrends,
  type Series,
  type TrendsQ,
  writeTrends,
} from './query-builder/model.js';
import type { PageProps } from './registry.js';

const DAY = 86_400_000;

type ChartKind = 'line' | 'bar' | 'table';
const CHARTS: readonly { id: ChartKind; label: string }[] = [
  { id: 'line', label: 'Line' },
  { id: 'bar', label: 'Bar' },
  { id: 'table', label: 'Table' },
];

const EMPTY: TrendsQ = { kind: 'trends', series: [{ event: '', measure: 'count', filters: [] }], interval: 'day' };

export default function Trends({ route, view, setParams }: PageProps) {
  const read = readTrends(route.params.q);
  const events = useEventNames();
  const catalog = usePropertyCatalog();
  const chart: ChartKind = CHARTS.find((c) => c.id === route.params.chart)?.id ?? 'line';
  const top = events.data?.[0];

  // No query in the link: the range's most frequent event per day, written into the URL so the link holds it.
  useEffect(() => {
    if (route.params.q === undefined && top !== undefined) {
      setParams(
        { q: writeTrends({ ...EMPTY, series: [{ event: top, measure: 'count', filters: [] }] }) },
        { replace: true },
      );
    }
  }, [route.params.q, top]);

  const q = read.q ?? EMPTY;
  const rangeDays = (view.to - view.from) / DAY;
  const { input, problems } = checkTrends(q, rangeDays);
  const answer = useQuery(input);
  const set = (next: TrendsQ) => setParams({ q: writeTrends(next) });

  return (
    <>
      <PageHead title="Trends" view={view} />
      {read.error && (
        <div class="builder-notice">
          <ErrorBox error={new Error(read.error)} onRetry={() => setParams({ q: undefined })} />
        </div>
      )}
      <div class="builder-layout">
        <Card title="Query" id="trends-query">
          <Builder
            q={q}
            set={set}
            problems={problems}
            names={events.data}
            catalog={catalog.data}
            rangeDays={rangeDays}
          />
          {(events.error ?? catalog.error) && <ErrorBox error={(events.error ?? catalog.error)!} />}
        </Card>
        <Results
          q={q}
          input={input}
          answer={answer}
          view={view}
          chart={chart}
          setChart={(c) => setParams({ chart: c === 'line' ? undefined : c })}
        />
      </div>
    </>
  );
}

function Builder(props: {
  q: TrendsQ;
  set(q: TrendsQ): void;
  problems: Record<string, string>;
  names: string[] | undefined;
  catalog: ReturnType<typeof usePropertyCatalog>['data'];
  rangeDays: number;
}) {
  const { q, set, problems } = props;
  const setSeries = (i: number, s: Series) => set({ ...q, series: q.series.map((x, j) => (j === i ? s : x)) });
  const hourTooLong = props.rangeDays > 31;
  return (
    <form class="builder" onSubmit={(e) => e.preventDefault()}>
      {q.series.map((s, i) => {
        const properties = propertiesOf(props.catalog, [s.event]);
        const name = `Series ${letter(i)}`;
        return (
          <fieldset class="builder-item" key={i} data-series={letter(i)}>
            <legend>
              <span class="item-badge" aria-hidden="true">
                {letter(i)}
              </span>
              {name}
            </legend>
            <EventSelect
              label="Event"
              control={`series-${i}-event`}
              value={s.event}
              names={props.names}
              problem={problems[`series[${i}].event`]}
              onChange={(event) => setSeries(i, { ...s, event })}
            />
            <label class="field block">
              <span class="field-label">Measure</span>
              <select
                data-control={`series-${i}-measure`}
                value={s.measure}
                onChange={(e) => {
                  const measure = (e.target as HTMLSelectElement).value as Measure;
                  if (!isNumericMeasure(measure)) {
                    const { property: _p, ...rest } = s;
                    setSeries(i, { ...rest, measure });
                    return;
                  }
                  const numeric = properties.find((p) => p.types.includes('number'))?.path ?? '';
                  setSeries(i, { ...s, measure, property: s.property || numeric });
                }}
              >
                {MEASURES.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.label}
                  </option>
                ))}
              </select>
            </label>
            {isNumericMeasure(s.measure) && (
              <PathPicker
                label="Numeric property"
                control={`series-${i}-property`}
                value={s.property ?? ''}
                properties={properties}
                types={['number']}
                problem={problems[`series[${i}].property`]}
                onChange={(property) => setSeries(i, { ...s, property })}
              />
            )}
            <FilterList
              control={`series-${i}-filter`}
              owner={name}
              filters={s.filters}
              properties={properties}
              onChange={(filters) => setSeries(i, { ...s, filters })}
            />
            {q.series.length > 1 && (
              <button
                type="button"
                class="button small ghost item-remove"
                data-control={`series-${i}-remove`}
                onClick={() => set({ ...q, series: q.series.filter((_, j) => j !== i) })}
              >
                Remove series {letter(i)}
              </button>
            )}
          </fieldset>
        );
      })}
      <button
        type="button"
        class="button small"
        data-control="series-add"
        disabled={q.series.length >= MAX_SERIES}
        onClick={() =>
          set({ ...q, series: [...q.series, { event: q.series.at(-1)?.event ?? '', measure: 'count', filters: [] }] })
        }
      >
        + Series {q.series.length < MAX_SERIES ? letter(q.series.length) : ''}
      </button>

      <div class="builder-section">
        <label class="field block">
          <span class="field-label">Formula</span>
          <CommitInput
            type="text"
            data-control="formula"
            value={q.formula ?? ''}
            placeholder={q.series.length > 1 ? 'e.g. B / A' : 'e.g. A * 100'}
            spellcheck={false}
            autocomplete="off"
            aria-describedby="formula-hint"
            aria-invalid={problems.formula ? 'true' : undefined}
            onCommit={(text) => {
              const formula = text.trim();
              const { formula: _f, ...rest } = q;
              set(formula ? { ...rest, formula } : rest);
            }}
          />
          <span class="field-hint" id="formula-hint">
            Series letters, numbers, + − * / and parentheses; the chart shows the formula.
          </span>
          <Problem text={problems.formula} />
        </label>
        <BreakdownField
          value={q.breakdown}
          properties={propertiesOf(
            props.catalog,
            q.series.map((s) => s.event),
          )}
          onChange={(breakdown) => {
            const { breakdown: _b, ...rest } = q;
            set(breakdown ? { ...rest, breakdown } : rest);
          }}
        />
        <div class="inline-controls wrap">
          <label class="field">
            <span class="field-label">Interval</span>
            <select
              data-control="interval"
              value={q.interval}
              aria-invalid={problems.interval ? 'true' : undefined}
              onChange={(e) => set({ ...q, interval: (e.target as HTMLSelectElement).value as Interval })}
            >
              {INTERVALS.map((i) => (
                <option key={i.id} value={i.id} disabled={i.id === 'hour' && hourTooLong && q.interval !== 'hour'}>
                  {i.label}
                </option>
              ))}
            </select>
          </label>
          <label class="check">
            <input
              type="checkbox"
              data-control="compare"
              checked={q.compare === 'previous_period'}
              onChange={(e) => {
                const { compare: _c, ...rest } = q;
                set((e.target as HTMLInputElement).checked ? { ...rest, compare: 'previous_period' } : rest);
              }}
            />
            Compare with the previous period
          </label>
        </div>
        <Problem text={problems.interval} />
      </div>
    </form>
  );
}

interface Line {
  /** `A`, `formula`, `A|web`: the table's column key. */
  key: string;
  series: string;
  label: string;
  values: (number | null)[];
  previous: (number | null)[];
}

const num = (v: Cell): number | null => (typeof v === 'number' ? v : v === null ? null : Number(v));

/** The answer's long rows as one line per series and group, in the answer's order. */
function linesOf(answer: QueryAnswer, q: TrendsQ): { times: number[]; lines: Line[] } {
  const times: number[] = [];
  const at = new Map<number, number>();
  const lines = new Map<string, Line>();
  const hasGroups = answer.columns.some((c) => c.name === 'breakdown');
  const truncated = answer.meta.truncated === true;
  for (const r of records(answer)) {
    const t = Date.parse(String(r.time));
    if (!at.has(t)) {
      at.set(t, times.length);
      times.push(t);
    }
    const series = String(r.series);
    const group = hasGroups ? groupLabel(r.breakdown, truncated) : undefined;
    const key = group === undefined ? series : `${series}|${group}`;
    let line = lines.get(key);
    if (!line) {
      // One series broken down: its groups name the lines; several: the series and the group.
      const label =
        group === undefined
          ? lineLabel(series, q)
          : q.series.length === 1 && !q.formula
            ? group
            : `${series === 'formula' ? q.formula : series} · ${group}`;
      line = { key, series, label, values: [], previous: [] };
      lines.set(key, line);
    }
    const i = at.get(t) as number;
    line.values[i] = num(r.value ?? null);
    line.previous[i] = num(r.previous ?? null);
  }
  for (const line of lines.values()) {
    for (let i = 0; i < times.length; i++) {
      line.values[i] ??= null;
      line.previous[i] ??= null;
    }
  }
  return { times, lines: [...lines.values()] };
}

function measureText(s: Series): string {
  if (s.measure === 'count') return 'count';
  if (s.measure === 'unique_users') return 'unique users';
  return `${s.measure} of ${(s.property ?? '').replace(/^properties\./, '')}`;
}

function lineLabel(series: string, q: TrendsQ): string {
  if (series === 'formula') return `${q.formula}`;
  const s = q.series[series.charCodeAt(0) - 65];
  return s ? `${series}: ${s.event} (${measureText(s)})` : series;
}

function Results(props: {
  q: TrendsQ;
  input: TrendsQ | null;
  answer: ReturnType<typeof useQuery>;
  view: View;
  chart: ChartKind;
  setChart(c: ChartKind): void;
}) {
  const { q, answer, view } = props;
  const shaped = useMemo(() => (answer.data ? linesOf(answer.data, q) : undefined), [answer.data]);
  const timeStyle = q.interval === 'hour' ? 'minute' : 'day';
  const compare = q.compare === 'previous_period';
  // With a formula the chart shows it (a ratio next to counts would flatten it); the table has everything.
  const drawn = shaped ? (q.formula ? shaped.lines.filter((l) => l.series === 'formula') : shaped.lines) : [];
  const chartSeries = drawn.flatMap((l) => [
    { label: l.label, values: l.values },
    ...(compare ? [{ label: `${l.label} (previous period)`, values: l.previous }] : []),
  ]);
  const per = INTERVALS.find((i) => i.id === q.interval)?.label.toLowerCase() ?? q.interval;
  const title = q.formula
    ? `${q.formula} per ${per}`
    : q.series.length === 1 && q.series[0]
      ? `${q.series[0].event || 'Events'}: ${measureText(q.series[0])} per ${per}`
      : `${q.series.length} series per ${per}`;
  const label = `${title}${q.breakdown ? `, by ${q.breakdown.property}` : ''}${compare ? ', with the previous period' : ''}`;
  const csv = answer.data
    ? { header: answer.data.columns.map((c) => c.name), rows: answer.data.rows }
    : { header: [], rows: [] };

  let body;
  if (!props.input) body = <p class="muted">Finish the query on the left to see its answer.</p>;
  else if (shaped && shaped.times.length === 0) body = <p class="muted">Nothing in this range.</p>;
  else if (shaped && props.chart === 'table')
    body = <TrendsTable shaped={shaped} view={view} compare={compare} timeStyle={timeStyle} />;
  else if (shaped && props.chart === 'bar') {
    body = (
      <BarChart
        label={label}
        times={shaped.times}
        series={chartSeries}
        timeLabel={(t) => formatTime(t, view.tz, timeStyle)}
      />
    );
  } else if (shaped) {
    body = (
      <TimeChart
        label={label}
        times={shaped.times}
        series={chartSeries}
        tz={view.tz}
        interval={q.interval}
        kind="line"
        height={300}
      />
    );
  }
  const meta = answer.data?.meta;
  return (
    <div class="builder-results">
      <Card
        title={title}
        id="trends-result"
        wide
        state={props.input ? answer : undefined}
        actions={
          <>
            <Segmented
              label="Chart type"
              control="chart"
              value={props.chart}
              options={CHARTS}
              onChange={props.setChart}
            />
            <CsvButton filename="trends" what="the trend's rows" {...csv} />
          </>
        }
      >
        {body}
        {meta && (
          <p class="muted small result-meta">
            {meta.truncated && q.breakdown
              ? `Top ${q.breakdown.limit ?? 10} values of ${q.breakdown.property}; the rest are in Other. `
              : ''}
            Answered from {meta.source === 'rollup' ? 'the hourly rollup' : 'the event rows'}
            {typeof meta.ms === 'number' ? ` in ${formatNumber(Math.round(meta.ms))} ms` : ''}.
          </p>
        )}
      </Card>
    </div>
  );
}

function TrendsTable(props: {
  shaped: { times: number[]; lines: Line[] };
  view: View;
  compare: boolean;
  timeStyle: 'minute' | 'day';
}) {
  const { times, lines } = props.shaped;
  const rows = times.map((t, i) => ({ t, i }));
  type Row = (typeof rows)[number];
  const columns: TableColumn<Row>[] = [
    {
      key: 'time',
      label: 'Time',
      value: (r) => new Date(r.t).toISOString(),
      render: (r) => formatTime(r.t, props.view.tz, props.timeStyle),
    },
    ...lines.flatMap((l): TableColumn<Row>[] => [
      {
        key: l.key,
        label: l.label,
        numeric: true,
        value: (r) => l.values[r.i] ?? null,
        render: (r) => formatNumber(l.values[r.i]),
      },
      ...(props.compare
        ? [
            {
              key: `${l.key}|previous`,
              label: `${l.label} (previous period)`,
              numeric: true,
              value: (r: Row) => l.previous[r.i] ?? null,
              render: (r: Row) => formatNumber(l.previous[r.i]),
            },
          ]
        : []),
    ]),
  ];
  return (
    <DataTable caption="The trend's values per bucket" columns={columns} rows={rows} rowKey={(r) => String(r.t)} />
  );
}
