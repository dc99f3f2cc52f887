/**
 * Debian's ClickHouse 18.16 reads a Float64 from text (JSONEachRow, the store's insert format) with its
 * "fast" parser: the integer and fraction digits are scaled separately and added, so a value can land
 * one unit in the last place (ulp) from the double the text names (`1.352` is stored as
 * 1.3519999999999999). chDB's current engine parses exactly. Tests that compare a stored fraction with
 * what was sent allow that one ulp on the server only, and nothing more.
 */
import type { ChEngine } from './engines.js';

const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

/** Doubles between a and b (same sign, finite): 0 when equal. */
export function ulpsApart(a: number, b: number): number {
  if (a === b) return 0;
  if (Math.sign(a) !== Math.sign(b)) return Infinity;
  f64[0] = a;
  const x = i64[0] as bigint;
  f64[0] = b;
  const y = i64[0] as bigint;
  return Number(x > y ? x - y : y - x);
}

/** Most ulps a stored fraction may be from the one sent, on `engine`. */
export const parseUlps = (engine: ChEngine): number => (engine === 'server' ? 1 : 0);

/**
 * `actual` with each number in `columns` replaced by the expected one when it is within parseUlps of
 * it (so a toEqual afterwards shows every other difference, and a wider one in those columns).
 */
export function withinParse(
  engine: ChEngine,
  actual: readonly (readonly unknown[])[],
  expected: readonly (readonly unknown[])[],
  columns: readonly number[],
): unknown[][] {
  const ulps = parseUlps(engine);
  return actual.map((row, i) => {
    const want = expected[i];
    if (!want || ulps === 0) return [...row];
    return row.map((cell, j) =>
      columns.includes(j) &&
      typeof cell === 'number' &&
      typeof want[j] === 'number' &&
      ulpsApart(cell, want[j] as number) <= ulps
        ? want[j]
        : cell,
    );
  });
}
