import { formatNumber } from '../format.js';

/** A horizontal bar of `fraction` (0–1) of its cell: an SVG rect, since the CSP allows no inline style. */
export function Bar({ fraction }: { fraction: number }) {
  const w = 64;
  return (
    <svg class="bar-svg" width={w} height={6} aria-hidden="true" focusable="false">
      <rect width={w} height={6} rx={3} class="bar-track" />
      <rect width={Math.max(1, Math.round(fraction * w))} height={6} rx={3} class="bar-fill" />
    </svg>
  );
}

/** A table cell's number with a bar of its share of `max` (the column's largest). */
export function BarCell({ value, max }: { value: unknown; max: number }) {
  return (
    <span class="bar-cell">
      {formatNumber(value)}
      <Bar fraction={Number(value ?? 0) / max} />
    </span>
  );
}
