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
}) {
  const format = props.format ?? formatNumber;
  return (
    <div class="stat" data-stat={props.id}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value" data-value={props.value ?? ''}>
        {format(props.value)}
      </div>
      {props.hint && <div class="stat-hint">{props.hint}</div>}
    </div>
  );
}
