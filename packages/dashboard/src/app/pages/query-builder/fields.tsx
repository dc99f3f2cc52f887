/**
 * The controls of the query builders (Trends, Funnels): real <select>, <input> and <button> elements with
 * labels, so everything works with a keyboard and a screen reader. Each control changes the query in the
 * URL when the user commits a choice (a select's change, a text field's change on Enter or leaving it),
 * not on every keystroke: one query per decision. `data-control` names each control for tests.
 */
import { useEffect, useState } from 'preact/hooks';
import type { FilterOp } from '@tally/core';
import { CONTEXT_PATHS, type PropertyInfo, USER_PATHS } from './catalog.js';
import {
  DURATION_UNITS,
  type Filter,
  FILTER_OPS,
  formatFilterValue,
  parseFilterValue,
  splitDuration,
  valueless,
} from './model.js';

/**
 * A text or number input that commits on change (Enter, or leaving it). What is typed meanwhile is kept
 * here: the page re-renders when a query answers, and a plain controlled input would be put back to the
 * URL's value under the user's fingers. A new value from the URL replaces the draft.
 */
export function CommitInput(props: {
  type: 'text' | 'number';
  value: string;
  onCommit(text: string): void;
  id?: string;
  class?: string;
  min?: number;
  max?: number;
  placeholder?: string;
  list?: string;
  autocomplete?: string;
  spellcheck?: boolean;
  'data-control'?: string;
  'aria-label'?: string;
  'aria-invalid'?: 'true';
  'aria-describedby'?: string;
}) {
  const { value, onCommit, ...rest } = props;
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  return (
    <input
      {...rest}
      value={draft}
      onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
      onChange={(e) => onCommit((e.target as HTMLInputElement).value)}
    />
  );
}

export function Problem({ text, id }: { text?: string; id?: string }) {
  if (!text) return null;
  return (
    <span class="field-problem" id={id} role="alert">
      {text}
    </span>
  );
}

/** An event name from the range's events; the current one stays listed even when the range has none. */
export function EventSelect(props: {
  label: string;
  control: string;
  value: string;
  names: readonly string[] | undefined;
  onChange(name: string): void;
  problem?: string;
}) {
  const names = props.names ?? [];
  const options = props.value && !names.includes(props.value) ? [props.value, ...names] : names;
  return (
    <label class="field block">
      <span class="field-label">{props.label}</span>
      <select
        data-control={props.control}
        value={props.value}
        onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}
        aria-invalid={props.problem ? 'true' : undefined}
      >
        {props.value === '' && (
          <option value="" disabled>
            {props.names === undefined
              ? 'Loading events…'
              : names.length === 0
                ? 'No events in range'
                : 'Pick an event'}
          </option>
        )}
        {options.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <Problem text={props.problem} />
    </label>
  );
}

const OTHER = '\u0000other';

/**
 * A property path: the event's properties, the context fields, who did it, or any path typed by hand
 * ("Other path…"). `none` adds a first option meaning no path (a breakdown's "None").
 */
export function PathPicker(props: {
  label: string;
  control: string;
  value: string;
  properties: readonly PropertyInfo[];
  onChange(path: string): void;
  none?: string;
  /** Offer userId / anonymousId (filters: yes; breakdowns: they would be a group per user). */
  users?: boolean;
  /** Only these property types (numeric measures: `number`). */
  types?: readonly string[];
  problem?: string;
}) {
  const properties = props.types
    ? props.properties.filter((p) => p.types.some((t) => props.types?.includes(t)))
    : props.properties;
  const listed = [
    ...properties.map((p) => p.path),
    ...(props.types ? [] : CONTEXT_PATHS),
    ...(props.users && !props.types ? USER_PATHS : []),
  ];
  const known = props.value === '' || listed.includes(props.value);
  const [typing, setTyping] = useState(false);
  const custom = typing || !known;

  if (custom) {
    return (
      <div class="field block">
        <label class="field-label" for={`${props.control}-path`}>
          {props.label} (path)
        </label>
        <div class="inline-controls">
          <CommitInput
            id={`${props.control}-path`}
            data-control={props.control}
            type="text"
            value={props.value}
            placeholder="properties.key"
            spellcheck={false}
            autocomplete="off"
            onCommit={(text) => props.onChange(text.trim())}
            aria-invalid={props.problem ? 'true' : undefined}
          />
          <button
            type="button"
            class="button small"
            aria-label={`${props.label}: choose from the list`}
            onClick={() => {
              setTyping(false);
              if (!known) props.onChange('');
            }}
          >
            List
          </button>
        </div>
        <Problem text={props.problem} />
      </div>
    );
  }
  return (
    <label class="field block">
      <span class="field-label">{props.label}</span>
      <select
        data-control={props.control}
        value={props.value}
        aria-invalid={props.problem ? 'true' : undefined}
        onChange={(e) => {
          const v = (e.target as HTMLSelectElement).value;
          if (v === OTHER) setTyping(true);
          else props.onChange(v);
        }}
      >
        {props.none !== undefined ? (
          <option value="">{props.none}</option>
        ) : (
          props.value === '' && (
            <option value="" disabled>
              Pick a property
            </option>
          )
        )}
        {properties.length > 0 && (
          <optgroup label="Properties">
            {properties.map((p) => (
              <option key={p.path} value={p.path}>
                {p.path.replace(/^properties\./, '')}
              </option>
            ))}
          </optgroup>
        )}
        {!props.types && (
          <optgroup label="Context">
            {CONTEXT_PATHS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </optgroup>
        )}
        {props.users && !props.types && (
          <optgroup label="User">
            {USER_PATHS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </optgroup>
        )}
        <option value={OTHER}>Other path…</option>
      </select>
      <Problem text={props.problem} />
    </label>
  );
}

/** The filters of one series, step or exclusion (ANDed), and a button adding one. */
export function FilterList(props: {
  control: string;
  /** "Series A", "Step 2": names the controls for screen readers. */
  owner: string;
  filters: readonly Filter[];
  properties: readonly PropertyInfo[];
  onChange(filters: Filter[]): void;
}) {
  const set = (i: number, f: Filter) => props.onChange(props.filters.map((x, j) => (j === i ? f : x)));
  return (
    <div class="filter-list">
      {props.filters.map((f, i) => {
        const info = props.properties.find((p) => p.path === f.property);
        const id = `${props.control}-${i}`;
        return (
          <div class="filter-row" key={i} role="group" aria-label={`${props.owner} filter ${i + 1}`}>
            <PathPicker
              label="Where"
              control={`${id}-property`}
              value={f.property}
              properties={props.properties}
              users
              onChange={(property) => set(i, { ...f, property })}
            />
            <label class="field">
              <span class="field-label">Is</span>
              <select
                data-control={`${id}-op`}
                value={f.op}
                onChange={(e) => {
                  const op = (e.target as HTMLSelectElement).value as FilterOp;
                  const text = formatFilterValue(f.value);
                  set(
                    i,
                    valueless(op)
                      ? { property: f.property, op }
                      : { ...f, op, value: parseFilterValue(text, op, info?.types ?? []) },
                  );
                }}
              >
                {FILTER_OPS.map((o) => (
                  <option key={o.id} value={o.id}>
                    {o.label}
                  </option>
                ))}
              </select>
            </label>
            {!valueless(f.op) && (
              <label class="field">
                <span class="field-label">{f.op === 'in' || f.op === 'nin' ? 'Values (a, b)' : 'Value'}</span>
                <CommitInput
                  type="text"
                  data-control={`${id}-value`}
                  value={formatFilterValue(f.value)}
                  list={info && info.values.length > 0 ? `${id}-values` : undefined}
                  autocomplete="off"
                  spellcheck={false}
                  onCommit={(text) => set(i, { ...f, value: parseFilterValue(text, f.op, info?.types ?? []) })}
                />
                {info && info.values.length > 0 && (
                  <datalist id={`${id}-values`}>
                    {info.values.map((v) => (
                      <option key={v} value={v} />
                    ))}
                  </datalist>
                )}
              </label>
            )}
            <button
              type="button"
              class="button small ghost remove"
              aria-label={`Remove ${props.owner} filter ${i + 1}`}
              data-control={`${id}-remove`}
              onClick={() => props.onChange(props.filters.filter((_, j) => j !== i))}
            >
              ✕
            </button>
          </div>
        );
      })}
      <button
        type="button"
        class="button small"
        data-control={`${props.control}-add`}
        aria-label={`Add a filter to ${props.owner}`}
        onClick={() => props.onChange([...props.filters, { property: '', op: 'eq' }])}
      >
        + Filter
      </button>
    </div>
  );
}

/** Group by a property: the path ("None" for no breakdown) and how many top values get a group of their own. */
export function BreakdownField(props: {
  value: { property: string; limit?: number } | undefined;
  properties: readonly PropertyInfo[];
  onChange(value: { property: string; limit?: number } | undefined): void;
}) {
  const limit = props.value?.limit ?? 10;
  return (
    <div class="inline-controls wrap">
      <PathPicker
        label="Breakdown"
        control="breakdown"
        value={props.value?.property ?? ''}
        properties={props.properties}
        none="None"
        onChange={(property) => props.onChange(property === '' ? undefined : { ...props.value, property })}
      />
      {props.value && (
        <label class="field">
          <span class="field-label">Top</span>
          <CommitInput
            type="number"
            class="narrow"
            data-control="breakdown-limit"
            min={1}
            max={100}
            value={String(limit)}
            onCommit={(text) => {
              const n = Math.round(Number(text));
              if (props.value && n >= 1 && n <= 100) {
                props.onChange(n === 10 ? { property: props.value.property } : { ...props.value, limit: n });
              }
            }}
          />
        </label>
      )}
    </div>
  );
}

/** A duration as a whole number and a unit (`30m`, `1h`, `14d`); empty when `optional` and not given. */
export function DurationField(props: {
  label: string;
  control: string;
  value: string | undefined;
  optional?: boolean;
  disabled?: boolean;
  onChange(value: string | undefined): void;
  problem?: string;
}) {
  const split = splitDuration(props.value);
  // The unit picked before an amount is typed (an optional window not given yet).
  const [pending, setPending] = useState('h');
  const unit = split?.unit ?? (props.value ? '' : pending);
  const emit = (amount: string, u: string) => {
    const n = Math.round(Number(amount));
    if (amount.trim() === '' || !Number.isFinite(n) || n < 1) {
      if (props.optional) props.onChange(undefined);
      return;
    }
    props.onChange(`${n}${u || 'h'}`);
  };
  return (
    <fieldset class="duration" disabled={props.disabled}>
      <legend class="field-label">{props.label}</legend>
      <div class="inline-controls">
        <CommitInput
          type="number"
          class="narrow"
          min={1}
          data-control={`${props.control}-amount`}
          aria-label={`${props.label}: amount`}
          placeholder={props.optional ? 'any' : undefined}
          value={split ? String(split.amount) : ''}
          aria-invalid={props.problem ? 'true' : undefined}
          onCommit={(text) => emit(text, unit)}
        />
        <select
          data-control={`${props.control}-unit`}
          aria-label={`${props.label}: unit`}
          value={unit}
          onChange={(e) => {
            const u = (e.target as HTMLSelectElement).value;
            setPending(u);
            if (split) emit(String(split.amount), u);
          }}
        >
          {unit === '' && <option value="">{props.value}</option>}
          {DURATION_UNITS.map((u) => (
            <option key={u.id} value={u.id}>
              {u.label}
            </option>
          ))}
        </select>
      </div>
      <Problem text={props.problem} />
    </fieldset>
  );
}

/** A choice of a few (chart type): buttons with aria-pressed, in a labelled group. */
export function Segmented<T extends string>(props: {
  label: string;
  control: string;
  value: T;
  options: readonly { id: T; label: string }[];
  onChange(value: T): void;
}) {
  return (
    <div class="segmented" role="group" aria-label={props.label}>
      {props.options.map((o) => (
        <button
          key={o.id}
          type="button"
          class="button small"
          data-control={`${props.control}-${o.id}`}
          aria-pressed={o.id === props.value ? 'true' : 'false'}
          onClick={() => props.onChange(o.id)}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}
