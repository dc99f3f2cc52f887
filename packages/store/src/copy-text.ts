/**
 * One value in COPY's text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text
 * Format"): tab separates columns and newline rows, `\N` is NULL, and a backslash starts an escape, so
 * backslash, tab, newline and carriage return inside a value go as escapes; everything else as is.
 * A NUL character is left in: Postgres refuses it (SQLSTATE 22021) as it does in a query parameter.
 */
export function copyValue(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  const s = typeof value === 'string' ? value : String(value);
  // Most values need no escape: test first, so they are not copied.
  return SPECIAL.test(s) ? s.replace(SPECIALS, (c) => ESCAPES[c] as string) : s;
}

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
