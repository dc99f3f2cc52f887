/**
 * Retention: of the users who did the start event in a period (the cohort), how many did the return event
 * in each period after, as a heat map of the retention query's rows. The grid's numbers are the query's
 * own (cohort size, returned, rate); the bottom row pools the cohorts per period (their returned users
 * over their sizes, for the cohorts whose period n has begun), the figure retention curves are drawn from.
 */
import { QUERY_LIMITS } from '@tally/core';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { type Cell, records, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { rangeText } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { formatNumber, formatPercent, formatTime } from '../format.js';
import type { View } from '../url.js';
import { heatCell, heatPalette, type HeatPalette } from './page-kit/heat.js';
import type { PageProps } from './registry.js';

type Period = 'day' | 'week' | 'month';
type Mode = 'first_time' | 'recurring';
const PERIODS: readonly Period[] = ['day', 'week', 'month'];
const DAY = 86_400_000;
const DEFAULT_PERIODS = 8;

/** Days up to a month of range, weeks up to half a year, months beyond. */
export function defaultPeriod(view: View): Period {
  const days = (view.to - view.from) / DAY;
  return days <= 31 ? 'day' : days <= 184 ? 'week' : 'month';
}

const PERIOD_TITLE: Record<Period, string> = { day: 'Day', week: 'Week', month: 'Month' };
/** The select's value for "any event" (a URL flag, not a name: see startAny). */
const ANY = '\u0000any';

export interface RetentionCell {
  returned: number;
  rate: number | null;
}

export interface Cohort {
  start: string;
  size: number;
  cells: (RetentionCell | undefined)[];
}

/** The query's long rows as cohorts × periods; an offset the answer has no row for has not begun. */
export function cohortsOf(rows: Record<string, Cell>[], periods: number): Cohort[] {
  const byStart = new Map<string, Cohort>();
  for (const r of rows) {
    const start = r.cohort as string;
    let c = byStart.get(start);
    if (!c) byStart.set(start, (c = { start, size: Number(r.cohort_size ?? 0), cells: new Array(periods) }));
    const n = Number(r.period);
    if (n >= 0 && n < periods) {
      c.cells[n] = { returned: Number(r.returned ?? 0), rate: typeof r.rate === 'number' ? r.rate : null };
    }
  }
  return [...byStart.values()];
}

/** Per period: the cohorts' returned users over their sizes, counting the cohorts that have that period. */
export function pooled(cohorts: Cohort[], periods: number): (RetentionCell & { size: number })[] {
  return Array.from({ length: periods }, (_, n) => {
    let size = 0;
    let returned = 0;
    for (const c of cohorts) {
      const cell = c.cells[n];
      if (!cell) continue;
      size += c.size;
      returned += cell.returned;
    }
    return { size, returned, rate: size > 0 ? returned / size : null };
  });
}

/** The theme's palette, again when the theme changes (the toggle or the system's setting). */
function usePalette(): HeatPalette {
  const [palette, setPalette] = useState(heatPalette);
  useEffect(() => {
    const update = () => setPalette(heatPalette());
    const dark = matchMedia('(prefers-color-scheme: dark)');
    window.addEventListener('tally-theme', update);
    dark.addEventListener('change', update);
    return () => {
      window.removeEventListener('tally-theme', update);
      dark.removeEventListener('change', update);
    };
  }, []);
  return palette;
}

export default function Retention({ route, view, setParams }: PageProps) {
  const p = route.params;
  const period: Period = PERIODS.includes(p.period as Period) ? (p.period as Period) : defaultPeriod(view);
  const n = Number(p.periods);
  const periods = Number.isInteger(n) && n >= 1 && n <= QUERY_LIMITS.periods ? n : DEFAULT_PERIODS;
  const mode: Mode = p.mode === 'recurring' ? 'recurring' : 'first_time';

  const events = useQuery({ kind: 'explore', what: 'events', limit: QUERY_LIMITS.exploreLimit });
  const names = useMemo(() => (events.data ? records(events.data).map((r) => r.event as string) : []), [events.data]);
  // Without a start or return event in the URL, the most frequent event, written into the URL so that a
  // copied link names it and shows the same grid after new events change which one is most frequent.
  // `startAny=1` / `returnAny=1`: any event (the query's `event: null`): cohorts by first seen at all,
  // any activity as a return. Flags of their own, since any text can be an event's name.
  const startAny = p.startAny === '1';
  const returnAny = p.returnAny === '1';
  useEffect(() => {
    const patch: Record<string, string> = {};
    if (!p.start && !startAny && names[0]) patch.start = names[0];
    if (!p.return && !returnAny && names[0]) patch.return = names[0];
    if (Object.keys(patch).length > 0) setParams(patch, { replace: true });
  }, [names, p.start, p.return, startAny, returnAny]);
  const start = startAny ? null : p.start;
  const ret = returnAny ? null : p.return;
  const chosen = (e: string | null | undefined) => e === null || (e !== undefined && e !== '');

  const retention = useQuery(
    chosen(start) && chosen(ret)
      ? { kind: 'retention', start: { event: start ?? null }, return: { event: ret ?? null }, period, periods, mode }
      : null,
  );
  const cohorts = useMemo(
    () => (retention.data ? cohortsOf(records(retention.data), periods) : []),
    [retention.data, periods],
  );
  const pool = useMemo(() => pooled(cohorts, periods), [cohorts, periods]);
  const palette = usePalette();

  const choices = (current: string | null | undefined) =>
    current && !names.includes(current) ? [current, ...names] : names;
  const pick = (which: 'start' | 'return') => (e: Event) => {
    const value = (e.target as HTMLSelectElement).value;
    const flag = which === 'start' ? 'startAny' : 'returnAny';
    setParams(value === ANY ? { [flag]: '1', [which]: undefined } : { [which]: value, [flag]: undefined });
  };
  const shown = (e: string | null | undefined) => (e === null ? 'any event' : e);
  const csv = retention.data
    ? { header: retention.data.columns.map((c) => c.name), rows: retention.data.rows }
    : { header: ['cohort', 'cohort_size', 'period', 'returned', 'rate'], rows: [] };
  const noEvents = events.data && names.length === 0 && !chosen(start);

  return (
    <>
      <div class="page-head">
        <div>
          <h1>Retention</h1>
          <p class="page-sub">Cohorts starting {rangeText(view)}</p>
        </div>
      </div>
      <div class="controls-row" role="group" aria-label="Retention question">
        <label class="field">
          <span class="field-label">Start event</span>
          <select value={start === null ? ANY : (start ?? '')} data-control="start" onChange={pick('start')}>
            <option value={ANY}>Any event (first seen)</option>
            {choices(start).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field-label">Return event</span>
          <select value={ret === null ? ANY : (ret ?? '')} data-control="return" onChange={pick('return')}>
            <option value={ANY}>Any event</option>
            {choices(ret).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field-label">Cohorts by</span>
          <select
            value={mode}
            data-control="mode"
            onChange={(e) => setParams({ mode: (e.target as HTMLSelectElement).value })}
          >
            <option value="first_time">First time (a user's first start ever)</option>
            <option value="recurring">Recurring (every period a user starts in)</option>
          </select>
        </label>
        <label class="field">
          <span class="field-label">Period</span>
          <select
            value={period}
            data-control="period"
            onChange={(e) => setParams({ period: (e.target as HTMLSelectElement).value })}
          >
            {PERIODS.map((x) => (
              <option key={x} value={x}>
                {PERIOD_TITLE[x]}
              </option>
            ))}
          </select>
        </label>
        {/* Keyed by the URL's value: Back or a pasted link shows it; until then, what is being typed. */}
        <PeriodsInput key={periods} periods={periods} onCommit={(v) => setParams({ periods: String(v) })} />
      </div>

      <div class="grid">
        <Card
          title={`Retention by ${period}`}
          id="retention"
          wide
          state={
            noEvents
              ? { loading: false, reload: events.reload, data: [] }
              : chosen(start) && chosen(ret)
                ? retention
                : events
          }
          actions={<CsvButton filename="retention" what="the retention grid" {...csv} />}
        >
          {noEvents ? (
            <p class="muted">No events in this range to build cohorts from.</p>
          ) : (
            <>
              <p class="muted small">
                Each row is the cohort of users who did <code>{shown(start)}</code>{' '}
                {mode === 'first_time' ? `for the first time that ${period}` : `that ${period}`}; each cell, the share
                of them who did <code>{shown(ret)}</code> in the {period} so many {period}s later (and how many); darker
                is more. The last row pools the cohorts whose {period} n has begun.
              </p>
              {/* Focusable: a grid wider than a phone scrolls, and keyboard users must reach all of it. */}
              <div class="table-wrap" tabIndex={0} role="region" aria-label="Cohort grid">
                <table class="data-table" data-grid="retention">
                  <caption class="visually-hidden">
                    Retention by {period}: cohort, its size, and the share and number of its users returning in each
                    {` ${period}`} after
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">Cohort</th>
                      <th scope="col" class="num">
                        Users
                      </th>
                      {Array.from({ length: periods }, (_, i) => (
                        <th key={i} scope="col" class="num">
                          {PERIOD_TITLE[period]} {i}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {cohorts.length === 0 ? (
                      <tr>
                        <td colSpan={periods + 2} class="muted empty">
                          No cohorts in this range.
                        </td>
                      </tr>
                    ) : (
                      cohorts.map((c) => (
                        <tr key={c.start} data-cohort={c.start}>
                          <th scope="row">{formatTime(c.start, view.tz, 'day')}</th>
                          <td class="num" data-col="cohort_size" data-value={String(c.size)}>
                            {formatNumber(c.size)}
                          </td>
                          {Array.from({ length: periods }, (_, i) => (
                            <HeatCell key={i} cell={c.cells[i]} period={i} palette={palette} />
                          ))}
                        </tr>
                      ))
                    )}
                  </tbody>
                  {cohorts.length > 0 && (
                    <tfoot>
                      <tr data-cohort="all">
                        <th scope="row">All cohorts</th>
                        <td class="num" data-col="cohort_size" data-value={String(pool[0]?.size ?? 0)}>
                          {formatNumber(pool[0]?.size ?? 0)}
                        </td>
                        {pool.map((cell, i) => (
                          <HeatCell key={i} cell={cell.size > 0 ? cell : undefined} period={i} palette={palette} />
                        ))}
                      </tr>
                    </tfoot>
                  )}
                </table>
              </div>
            </>
          )}
        </Card>
      </div>
    </>
  );
}

/**
 * The number of periods, as typed: held here until committed (Enter or leaving the field), so a grid that
 * finishes loading meanwhile does not put the URL's number back under the user's fingers.
 */
function PeriodsInput(props: { periods: number; onCommit(periods: number): void }) {
  const [draft, setDraft] = useState(String(props.periods));
  return (
    <label class="field">
      <span class="field-label">Periods</span>
      <input
        type="number"
        min={1}
        max={QUERY_LIMITS.periods}
        value={draft}
        size={4}
        data-control="periods"
        onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
        onChange={(e) => {
          const v = Number((e.target as HTMLInputElement).value);
          if (Number.isInteger(v) && v >= 1 && v <= QUERY_LIMITS.periods && v !== props.periods) props.onCommit(v);
        }}
      />
    </label>
  );
}

function HeatCell(props: { cell: RetentionCell | undefined; period: number; palette: HeatPalette }) {
  const { cell } = props;
  if (!cell) {
    // The period has not begun yet (or the cohort is empty): nothing to count.
    return <td class="num muted" data-period={props.period} data-value="" aria-label="not yet" />;
  }
  const colours = cell.rate === null ? undefined : heatCell(props.palette, cell.rate);
  return (
    <td
      class="num heat-cell"
      data-period={props.period}
      data-returned={String(cell.returned)}
      data-value={cell.rate === null ? '' : String(cell.rate)}
      style={colours}
    >
      <span class="heat-rate">{formatPercent(cell.rate)}</span>
      <span class="heat-count">{formatNumber(cell.returned)}</span>
    </td>
  );
}
