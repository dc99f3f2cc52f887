import type { ComponentChildren } from 'preact';
import { formatNumber } from '../format.js';

/**
 * One headline number. `data-value` holds the raw value (tests compare it with the API's answer; the
 * text is formatted for people).
 */
export function Stat(props: {
  label: string;
  value: number | null | undefined;
  format?: (v: unknown) => string;
  /** A line under the number: what it counts, over what. */
  hint?: ComponentChildren;
  id?: string;
  /** Its answer is on the way: marked busy (tests and screen readers wait for it). */
  loading?: boolean;
}) {
  const format = props.format ?? formatNumber;
  return (
    <div class="stat" data-stat={props.id} aria-busy={props.loading ? 'true' : 'false'}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value" data-value={props.value ?? ''}>
        {format(props.value)}
      </div>
      {props.hint && <div class="stat-hint">{props.hint}</div>}
    </div>
  );
}
