import { useMemo, useState } from 'preact/hooks';
import { fromWall, toWall } from '@tally/core';
import { applyTheme, effectiveTheme } from '../theme.js';
import { RANGE_PRESETS, type Route, type View, browserTimeZone, patchParams } from '../url.js';

const DAY = 86_400_000;

/** `YYYY-MM-DD` of an instant's wall date in `tz`. */
function wallDate(ts: number, tz: string): string {
  return new Date(toWall(ts, tz)).toISOString().slice(0, 10);
}

/** The day after a `YYYY-MM-DD` (custom ranges end at the start of the day after the last one shown). */
function nextDay(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + DAY).toISOString().slice(0, 10);
}

/**
 * The date range: a preset, or "Custom" with a first and a last day (both shown, so the URL's exclusive
 * `to` is the day after the last). Changing it changes the URL; every page follows.
 */
export function RangePicker({ route, view }: { route: Route; view: View }) {
  const [custom, setCustom] = useState(view.preset === 'custom');
  const first = wallDate(view.from, view.tz);
  // The last day shown: the day before the exclusive end.
  const last = wallDate(fromWall(toWall(view.to, view.tz) - 1, view.tz), view.tz);
  const [from, setFrom] = useState(first);
  const [to, setTo] = useState(last);
  const [problem, setProblem] = useState<string>();

  const choose = (value: string) => {
    if (value === 'custom') {
      setCustom(true);
      setFrom(first);
      setTo(last);
      return;
    }
    setCustom(false);
    patchParams(route, { range: value, from: undefined, to: undefined });
  };
  const apply = (e: Event) => {
    e.preventDefault();
    if (!from || !to || to < from) {
      setProblem('The last day must not be before the first.');
      return;
    }
    setProblem(undefined);
    patchParams(route, { range: undefined, from, to: nextDay(to) });
  };

  return (
    <div class="range-picker">
      <label class="field">
        <span class="field-label">Range</span>
        <select
          value={custom ? 'custom' : view.preset}
          onChange={(e) => choose((e.target as HTMLSelectElement).value)}
          data-control="range"
        >
          {RANGE_PRESETS.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
          <option value="custom">Custom…</option>
        </select>
      </label>
      {custom && (
        <form class="custom-range" onSubmit={apply}>
          <label class="field">
            <span class="field-label">First day</span>
            <input type="date" value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} required />
          </label>
          <label class="field">
            <span class="field-label">Last day</span>
            <input type="date" value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} required />
          </label>
          <button type="submit" class="button small">
            Apply
          </button>
          {problem && (
            <span class="field-problem" role="alert">
              {problem}
            </span>
          )}
        </form>
      )}
    </div>
  );
}

let zones: string[] | undefined;
function timeZones(): string[] {
  if (!zones) {
    const list = (Intl as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
    zones = [...new Set(['UTC', browserTimeZone(), ...list])].sort((a, b) =>
      a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b),
    );
  }
  return zones;
}

/** The time zone days and hours are counted in (default: the browser's). */
export function TimeZonePicker({ route, view }: { route: Route; view: View }) {
  const options = useMemo(() => {
    const list = timeZones();
    return list.includes(view.tz) ? list : [view.tz, ...list];
  }, [view.tz]);
  return (
    <label class="field">
      <span class="field-label">Time zone</span>
      <select
        value={view.tz}
        data-control="tz"
        onChange={(e) => patchParams(route, { tz: (e.target as HTMLSelectElement).value })}
      >
        {options.map((z) => (
          <option key={z} value={z}>
            {z.replaceAll('_', ' ')}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Light or dark, kept in localStorage; until pressed, the system's choice. */
export function ThemeToggle() {
  const [theme, setTheme] = useState(effectiveTheme);
  const next = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="button small ghost"
      aria-label={`Switch to ${next} theme`}
      data-control="theme"
      onClick={() => {
        applyTheme(next);
        setTheme(next);
      }}
    >
      {theme === 'dark' ? 'Light' : 'Dark'}
    </button>
  );
}
