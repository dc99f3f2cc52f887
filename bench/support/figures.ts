/** Number formatting shared by the benchmarks: a fixed number of digits in tables, rounded figures in JSON. */

/** For tables: `digits` decimals, thousands separated; `—` when there is no figure. */
export function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v)
    ? '—'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** For the JSON line: rounded to `digits` decimals; null when there is no figure. */
export function round(v: number | null | undefined, digits: number): number | null {
  return v === null || v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(digits));
}
