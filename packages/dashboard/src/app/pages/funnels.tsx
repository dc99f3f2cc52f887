/**
 * Funnels: a funnel query built by clicking (2–10 steps, each an event with filters and an optional
 * window from the step before; the overall window; the order; exclusions; a breakdown), answered by
 * POST /v1/query. Bars per step with the drop-off between steps, conversion from the first step and from
 * the previous one, median and p90 time to convert, for all users or one breakdown group, and a table of
 * the groups. With a breakdown the page asks twice, with and without it: the groups come from one answer,
 * "all users" from the other (a group's numbers do not add up to medians of the whole). The query is
 * the URL's `q=`, the group shown its `group=` (the group's value as JSON): a link shows the same thing.
 */
import { useEffect } from 'preact/hooks';
import type { FunnelOrder } from '@tally/core';
import { type Cell, type Loaded, type QueryAnswer, records, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { PageHead } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { ErrorBox } from '../components/error-box.js';
import { Stat } from '../components/stat.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { formatNumber, formatPercent, formatSeconds } from '../format.js';
import { propertiesOf, useEventNames, usePropertyCatalog } from './query-builder/catalog.js';
import { BreakdownField, DurationField, EventSelect, FilterList } from './query-builder/fields.js';
import {
  checkFunnel,
  type Exclusion,
  type FunnelQ,
  groupLabel,
  MAX_STEPS,
  ORDERS,
  readFunnel,
  type Step,
  writeFunnel,
} from './query-builder/model.js';
import type { PageProps } from './registry.js';

const EMPTY: FunnelQ = {
  kind: 'funnel',
  steps: [
    { event: '', filters: [] },
    { event: '', filters: [] },
  ],
  window: '14d',
  order: 'ordered',
  exclusions: [],
};

export default function Funnels({ route, view, setParams }: PageProps) {
  const read = readFunnel(route.params.q);
  const events = useEventNames();
  const catalog = usePropertyCatalog();
  const [first, second] = events.data ?? [];

  // No query in the link: the range's two most frequent events, written into the URL so the link holds it.
  useEffect(() => {
    if (route.params.q === undefined && first !== undefined) {
      const steps = [first, second ?? first].map((event) => ({ event, filters: [] }));
      setParams({ q: writeFunnel({ ...EMPTY, steps }) }, { replace: true });
    }
  }, [route.params.q, first, second]);

  const q = read.q ?? EMPTY;
  const { input, problems } = checkFunnel(q);
  const whole = useQuery(input && withoutBreakdown(input));
  const grouped = useQuery(input?.breakdown ? input : null);
  const set = (next: FunnelQ) => setParams({ q: writeFunnel(next) });

  const truncated = grouped.data?.meta.truncated === true;
  const groups = input?.breakdown && grouped.data ? groupsOf(grouped.data) : [];
  const chosen = input?.breakdown ? route.params.group : undefined;
  const selected = chosen === undefined ? undefined : groups.find((g) => JSON.stringify(g) === chosen);
  const showing: Loaded<QueryAnswer> = selected === undefined && chosen === undefined ? whole : grouped;
  const rows = showing.data
    ? stepRows(showing.data).filter((r) => chosen === undefined || JSON.stringify(r.breakdown ?? null) === chosen)
    : undefined;
  const groupName = chosen === undefined ? 'All users' : groupLabel(selected ?? JSON.parse(chosen), truncated);

  return (
    <>
      <PageHead title="Funnels" view={view} />
      {read.error && (
        <div class="builder-notice">
          <ErrorBox error={new Error(read.error)} onRetry={() => setParams({ q: undefined })} />
        </div>
      )}
      <div class="builder-layout">
        <Card title="Funnel" id="funnel-query">
          <Builder q={q} set={set} problems={problems} names={events.data} catalog={catalog.data} />
          {(events.error ?? catalog.error) && <ErrorBox error={(events.error ?? catalog.error)!} />}
        </Card>
        <div class="builder-results">
          {!input ? (
            <Card title="Conversion" id="funnel-bars">
              <p class="muted">Finish the funnel on the left to see its answer.</p>
            </Card>
          ) : (
            <>
              <Summary rows={rows} />
              <Card
                title={`Conversion · ${groupName}`}
                id="funnel-bars"
                state={showing}
                actions={
                  <>
                    {input.breakdown && (
                      <label class="field inline">
                        <span class="field-label">Group</span>
                        <select
                          data-control="group"
                          value={chosen ?? ''}
                          onChange={(e) => setParams({ group: (e.target as HTMLSelectElement).value || undefined })}
                        >
                          <option value="">All users</option>
                          {chosen !== undefined && selected === undefined && grouped.data && (
                            <option value={chosen}>{groupName}</option>
                          )}
                          {groups.map((g) => (
                            <option key={JSON.stringify(g)} value={JSON.stringify(g)}>
                              {groupLabel(g, truncated)}
                            </option>
                          ))}
                        </select>
                      </label>
                    )}
                    <CsvButton filename="funnel" what="the funnel's steps" {...tableCsv(STEP_COLUMNS, rows ?? [])} />
                  </>
                }
              >
                {rows && <Bars rows={rows} />}
              </Card>
              <Card
                title="Steps"
                id="funnel-steps"
                state={showing}
                actions={
                  <CsvButton filename="funnel-steps" what="the steps table" {...tableCsv(STEP_COLUMNS, rows ?? [])} />
                }
              >
                {rows && (
                  <DataTable
                    caption={`Funnel steps, ${groupName}`}
                    columns={STEP_COLUMNS}
                    rows={rows}
                    empty="No users entered this funnel in the range."
                    rowKey={(r) => String(r.step)}
                  />
                )}
              </Card>
              {input.breakdown && (
                <ByGroup
                  state={grouped}
                  property={input.breakdown.property}
                  steps={q.steps.length}
                  truncated={truncated}
                  onPick={(g) => setParams({ group: JSON.stringify(g) })}
                />
              )}
              <p class="muted small result-meta">
                {typeof whole.data?.meta.ms === 'number' &&
                  `Answered in ${formatNumber(Math.round(whole.data.meta.ms))} ms. `}
                Users are counted by user id, else anonymous id; step 1 counts in the range, later steps up to the
                funnel’s window after it.
              </p>
            </>
          )}
        </div>
      </div>
    </>
  );
}

function withoutBreakdown(q: FunnelQ): FunnelQ {
  const { breakdown: _b, ...rest } = q;
  return rest;
}

interface StepRow {
  step: number;
  event: string;
  breakdown?: Cell;
  entered: number;
  converted: number;
  dropped: number;
  conversion_from_first: number | null;
  conversion_from_previous: number | null;
  median_seconds: number | null;
  p90_seconds: number | null;
}

const n = (v: Cell | undefined): number | null => (v === null || v === undefined ? null : Number(v));

function stepRows(answer: QueryAnswer): StepRow[] {
  return records(answer).map((r) => ({
    step: Number(r.step),
    event: String(r.event),
    ...('breakdown' in r ? { breakdown: r.breakdown } : {}),
    entered: Number(r.entered),
    converted: Number(r.converted),
    dropped: Number(r.dropped),
    conversion_from_first: n(r.conversion_from_first),
    conversion_from_previous: n(r.conversion_from_previous),
    median_seconds: n(r.median_seconds),
    p90_seconds: n(r.p90_seconds),
  }));
}

/** The breakdown groups of an answer, in its order (by users entering, "other" last). */
function groupsOf(answer: QueryAnswer): Cell[] {
  const seen = new Set<string>();
  const out: Cell[] = [];
  for (const r of records(answer)) {
    const key = JSON.stringify(r.breakdown ?? null);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(r.breakdown ?? null);
    }
  }
  return out;
}

const STEP_COLUMNS: TableColumn<StepRow>[] = [
  { key: 'step', label: 'Step', numeric: true, value: (r) => r.step },
  { key: 'event', label: 'Event', value: (r) => r.event },
  { key: 'entered', label: 'Users', numeric: true, value: (r) => r.entered, render: (r) => formatNumber(r.entered) },
  {
    key: 'converted',
    label: 'To next step',
    numeric: true,
    value: (r) => r.converted,
    render: (r) => formatNumber(r.converted),
  },
  { key: 'dropped', label: 'Dropped', numeric: true, value: (r) => r.dropped, render: (r) => formatNumber(r.dropped) },
  {
    key: 'conversion_from_first',
    label: 'From first',
    numeric: true,
    value: (r) => r.conversion_from_first,
    render: (r) => formatPercent(r.conversion_from_first),
  },
  {
    key: 'conversion_from_previous',
    label: 'From previous',
    numeric: true,
    value: (r) => r.conversion_from_previous,
    render: (r) => formatPercent(r.conversion_from_previous),
  },
  {
    key: 'median_seconds',
    label: 'Median time',
    numeric: true,
    value: (r) => r.median_seconds,
    render: (r) => formatSeconds(r.median_seconds),
  },
  {
    key: 'p90_seconds',
    label: 'p90 time',
    numeric: true,
    value: (r) => r.p90_seconds,
    render: (r) => formatSeconds(r.p90_seconds),
  },
];

function Summary({ rows }: { rows: StepRow[] | undefined }) {
  const firstRow = rows?.[0];
  const lastRow = rows?.at(-1);
  return (
    <div class="stats funnel-stats">
      <Stat id="funnel-entered" label="Entered" value={firstRow?.entered} hint="users doing step 1 in the range" />
      <Stat id="funnel-completed" label="Completed" value={lastRow?.entered} hint="users reaching the last step" />
      <Stat
        id="funnel-conversion"
        label="Conversion"
        value={lastRow ? (lastRow.conversion_from_first ?? null) : undefined}
        format={formatPercent}
        hint="last step over the first"
      />
    </div>
  );
}

/** One bar per step, its length the share of step 1's users; the part lost since the step before shaded. */
function Bars({ rows }: { rows: StepRow[] }) {
  if (rows.length === 0) return <p class="muted">No users entered this funnel in the range.</p>;
  const base = rows[0]?.entered ?? 0;
  const frac = (v: number) => (base > 0 ? v / base : 0);
  const pct = (f: number) => `${Math.max(0, Math.min(100, f * 100)).toFixed(2)}%`;
  return (
    <ol class="funnel">
      {rows.map((r, i) => {
        const prev = rows[i - 1];
        const next = rows[i + 1];
        return (
          <li class="funnel-step" key={r.step} data-step={r.step}>
            <div class="funnel-step-head">
              <span class="item-badge" aria-hidden="true">
                {r.step}
              </span>
              <span class="funnel-event">{r.event}</span>
              <span class="funnel-count" data-value={r.entered}>
                {formatNumber(r.entered)} {r.entered === 1 ? 'user' : 'users'}
              </span>
            </div>
            <svg
              class="funnel-bar"
              width="100%"
              height="22"
              role="img"
              aria-label={`Step ${r.step}, ${r.event}: ${formatNumber(r.entered)} users, ${formatPercent(
                r.conversion_from_first,
              )} of step 1`}
              focusable="false"
            >
              <rect class="bar-track" width="100%" height="22" rx="4" />
              {prev && <rect class="funnel-lost" width={pct(frac(prev.entered))} height="22" rx="4" />}
              <rect class="bar-fill" width={pct(frac(r.entered))} height="22" rx="4" />
            </svg>
            <p class="funnel-step-meta">
              {i === 0 ? (
                'Entered the funnel'
              ) : (
                <>
                  <span data-field="conversion_from_first" data-value={r.conversion_from_first ?? ''}>
                    {formatPercent(r.conversion_from_first)}
                  </span>{' '}
                  of step 1
                  {i > 1 && (
                    <>
                      {' · '}
                      <span data-field="conversion_from_previous" data-value={r.conversion_from_previous ?? ''}>
                        {formatPercent(r.conversion_from_previous)}
                      </span>{' '}
                      of step {i}
                    </>
                  )}
                  {' · median '}
                  <span data-field="median_seconds" data-value={r.median_seconds ?? ''}>
                    {formatSeconds(r.median_seconds)}
                  </span>
                  {' · p90 '}
                  <span data-field="p90_seconds" data-value={r.p90_seconds ?? ''}>
                    {formatSeconds(r.p90_seconds)}
                  </span>
                </>
              )}
            </p>
            {next && (
              <p class="funnel-drop">
                <span aria-hidden="true">↓ </span>
                {formatNumber(r.dropped)} dropped before step {next.step} (
                {formatPercent(r.entered > 0 ? r.dropped / r.entered : null)})
              </p>
            )}
          </li>
        );
      })}
    </ol>
  );
}

interface GroupRow {
  group: Cell;
  steps: StepRow[];
}

/** A row per breakdown group: users entering, and per later step its share of the group's step 1. */
function ByGroup(props: {
  state: Loaded<QueryAnswer>;
  property: string;
  steps: number;
  truncated: boolean;
  onPick(group: Cell): void;
}) {
  const all = props.state.data ? stepRows(props.state.data) : [];
  const groups: GroupRow[] = [];
  for (const r of all) {
    const key = JSON.stringify(r.breakdown ?? null);
    let g = groups.find((x) => JSON.stringify(x.group) === key);
    if (!g) groups.push((g = { group: r.breakdown ?? null, steps: [] }));
    g.steps.push(r);
  }
  const columns: TableColumn<GroupRow>[] = [
    {
      key: 'group',
      label: props.property.replace(/^properties\./, ''),
      value: (g) => (g.group === null ? null : String(g.group)),
      render: (g) => (
        <button type="button" class="link-button" onClick={() => props.onPick(g.group)}>
          {groupLabel(g.group, props.truncated)}
        </button>
      ),
    },
    {
      key: 'entered',
      label: 'Entered',
      numeric: true,
      value: (g) => g.steps[0]?.entered ?? 0,
      render: (g) => formatNumber(g.steps[0]?.entered ?? 0),
    },
    ...Array.from({ length: Math.max(0, props.steps - 1) }, (_, k): TableColumn<GroupRow> => {
      const step = k + 2;
      return {
        key: `step_${step}`,
        label: `Step ${step}`,
        numeric: true,
        value: (g) => g.steps[step - 1]?.conversion_from_first ?? null,
        render: (g) => {
          const s = g.steps[step - 1];
          return s ? (
            <span title={`${formatNumber(s.entered)} users`}>
              {formatNumber(s.entered)} · {formatPercent(s.conversion_from_first)}
            </span>
          ) : (
            '–'
          );
        },
      };
    }),
    {
      key: 'median_seconds',
      label: 'Median time, last step',
      numeric: true,
      value: (g) => g.steps.at(-1)?.median_seconds ?? null,
      render: (g) => formatSeconds(g.steps.at(-1)?.median_seconds),
    },
  ];
  const csv = props.state.data
    ? { header: props.state.data.columns.map((c) => c.name), rows: props.state.data.rows }
    : { header: [], rows: [] };
  return (
    <Card
      title={`By ${props.property.replace(/^properties\./, '')}`}
      id="funnel-groups"
      state={props.state}
      actions={<CsvButton filename="funnel-by-group" what="the funnel by group" {...csv} />}
    >
      <DataTable
        caption={`Conversion by ${props.property}: users entering, then per step users and share of step 1`}
        columns={columns}
        rows={groups}
        empty="No users entered this funnel in the range."
        rowKey={(g) => JSON.stringify(g.group)}
      />
    </Card>
  );
}

function Builder(props: {
  q: FunnelQ;
  set(q: FunnelQ): void;
  problems: Record<string, string>;
  names: string[] | undefined;
  catalog: ReturnType<typeof usePropertyCatalog>['data'];
}) {
  const { q, set, problems } = props;
  const anyOrder = q.order === 'any';
  const last = q.steps.length - 1;
  const setStep = (i: number, s: Step) => set({ ...q, steps: q.steps.map((x, j) => (j === i ? s : x)) });
  const setExclusion = (i: number, e: Exclusion) =>
    set({ ...q, exclusions: q.exclusions.map((x, j) => (j === i ? e : x)) });
  const removeStep = (k: number) => {
    const steps = q.steps.filter((_, j) => j !== k);
    if (k === 0 && steps[0]) {
      const { window: _w, ...s } = steps[0];
      steps[0] = s;
    }
    const newLast = steps.length - 1;
    const exclusions = q.exclusions
      .map((e) => ({
        ...e,
        from: e.from - (e.from > k ? 1 : 0),
        to: Math.min(e.to - (e.to >= k ? 1 : 0), newLast),
      }))
      .filter((e) => e.from < e.to);
    set({ ...q, steps, exclusions });
  };
  return (
    <form class="builder" onSubmit={(e) => e.preventDefault()}>
      <ol class="builder-steps">
        {q.steps.map((s, i) => {
          const name = `Step ${i + 1}`;
          const properties = propertiesOf(props.catalog, [s.event]);
          return (
            <li key={i}>
              <fieldset class="builder-item" data-step={i + 1}>
                <legend>
                  <span class="item-badge" aria-hidden="true">
                    {i + 1}
                  </span>
                  {name}
                </legend>
                <EventSelect
                  label="Event"
                  control={`step-${i}-event`}
                  value={s.event}
                  names={props.names}
                  problem={problems[`steps[${i}].event`]}
                  onChange={(event) => setStep(i, { ...s, event })}
                />
                {i > 0 && (
                  <DurationField
                    label={`Within, after step ${i}`}
                    control={`step-${i}-window`}
                    value={s.window}
                    optional
                    disabled={anyOrder}
                    problem={problems[`steps[${i}].window`]}
                    onChange={(window) => {
                      const { window: _w, ...rest } = s;
                      setStep(i, window ? { ...rest, window } : rest);
                    }}
                  />
                )}
                <FilterList
                  control={`step-${i}-filter`}
                  owner={name}
                  filters={s.filters}
                  properties={properties}
                  onChange={(filters) => setStep(i, { ...s, filters })}
                />
                {q.steps.length > 2 && (
                  <button
                    type="button"
                    class="button small ghost item-remove"
                    data-control={`step-${i}-remove`}
                    onClick={() => removeStep(i)}
                  >
                    Remove step {i + 1}
                  </button>
                )}
              </fieldset>
            </li>
          );
        })}
      </ol>
      <button
        type="button"
        class="button small"
        data-control="step-add"
        disabled={q.steps.length >= MAX_STEPS}
        onClick={() => set({ ...q, steps: [...q.steps, { event: '', filters: [] }] })}
      >
        + Step
      </button>

      <div class="builder-section">
        <DurationField
          label="Conversion window, step 1 to last"
          control="window"
          value={q.window}
          problem={problems.window}
          onChange={(window) => window && set({ ...q, window })}
        />
        <label class="field block">
          <span class="field-label">Order</span>
          <select
            data-control="order"
            value={q.order}
            onChange={(e) => {
              const order = (e.target as HTMLSelectElement).value as FunnelOrder;
              // In any order there is no step before a step: no step windows, no exclusions between steps.
              set(
                order === 'any'
                  ? { ...q, order, steps: q.steps.map(({ window: _w, ...s }) => s), exclusions: [] }
                  : { ...q, order },
              );
            }}
          >
            {ORDERS.map((o) => (
              <option key={o.id} value={o.id}>
                {o.label}
              </option>
            ))}
          </select>
          <span class="field-hint">{ORDERS.find((o) => o.id === q.order)?.hint}</span>
        </label>

        {!anyOrder && (
          <div class="exclusions">
            {q.exclusions.map((e, i) => (
              <fieldset class="builder-item" key={i}>
                <legend>Exclusion {i + 1}</legend>
                <EventSelect
                  label="Users who do"
                  control={`exclusion-${i}-event`}
                  value={e.event}
                  names={props.names}
                  problem={problems[`exclusions[${i}].event`]}
                  onChange={(event) => setExclusion(i, { ...e, event })}
                />
                <div class="inline-controls">
                  <label class="field">
                    <span class="field-label">Between step</span>
                    <select
                      data-control={`exclusion-${i}-from`}
                      value={String(e.from)}
                      onChange={(ev) => {
                        const from = Number((ev.target as HTMLSelectElement).value);
                        setExclusion(i, { ...e, from, to: Math.max(e.to, from + 1) });
                      }}
                    >
                      {q.steps.slice(0, last).map((_, k) => (
                        <option key={k} value={String(k)}>
                          {k + 1}
                        </option>
                      ))}
                    </select>
                  </label>
                  <label class="field">
                    <span class="field-label">and step</span>
                    <select
                      data-control={`exclusion-${i}-to`}
                      value={String(e.to)}
                      onChange={(ev) => setExclusion(i, { ...e, to: Number((ev.target as HTMLSelectElement).value) })}
                    >
                      {q.steps.map((_, k) =>
                        k > e.from ? (
                          <option key={k} value={String(k)}>
                            {k + 1}
                          </option>
                        ) : null,
                      )}
                    </select>
                  </label>
                  <button
                    type="button"
                    class="button small ghost"
                    data-control={`exclusion-${i}-remove`}
                    aria-label={`Remove exclusion ${i + 1}`}
                    onClick={() => set({ ...q, exclusions: q.exclusions.filter((_, j) => j !== i) })}
                  >
                    ✕
                  </button>
                </div>
                {e.filters.length > 0 && (
                  <p class="muted small">
                    With {e.filters.length} filter{e.filters.length === 1 ? '' : 's'} from the link.
                  </p>
                )}
              </fieldset>
            ))}
            <button
              type="button"
              class="button small"
              data-control="exclusion-add"
              onClick={() =>
                set({ ...q, exclusions: [...q.exclusions, { event: '', filters: [], from: 0, to: last }] })
              }
            >
              + Exclusion
            </button>
            <span class="field-hint">Users who do the event between the two steps do not reach the later one.</span>
          </div>
        )}

        <BreakdownField
          value={q.breakdown}
          properties={propertiesOf(props.catalog, q.steps[0] ? [q.steps[0].event] : [])}
          onChange={(breakdown) => {
            const { breakdown: _b, ...rest } = q;
            set(breakdown ? { ...rest, breakdown } : rest);
          }}
        />
      </div>
    </form>
  );
}
