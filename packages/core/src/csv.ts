/**
 * CSV as RFC 4180 writes it, the same wherever Tally writes CSV (the query API, `tally query`, export, the
 * dashboard's downloads): fields joined by commas, records ended by CRLF, a field quoted (its quotes
 * doubled) when it holds a comma, a quote, CR or LF. Cells are data from events anyone with a write key
 * could send, and spreadsheets run a cell that starts with `=`, `+`, `-` or `@` as a formula (CSV
 * injection, OWASP): such a text cell, and one starting with a tab or CR, gets a leading `'`, which
 * spreadsheets show as text. Numbers and booleans are written as they are (a negative number is a number).
 */

export type CsvCell = string | number | boolean | null | undefined | object;

const FORMULA = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One field: null and undefined are empty, objects are their JSON, text is guarded and quoted as needed. */
export function csvField(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  if (FORMULA.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, CRLF-terminated. */
export function csvRecord(cells: readonly CsvCell[]): string {
  return `${cells.map(csvField).join(',')}\r\n`;
}

/** A header record and one record per row. */
export function csvTable(header: readonly string[], rows: readonly (readonly CsvCell[])[]): string {
  let out = csvRecord(header);
  for (const row of rows) out += csvRecord(row);
  return out;
}
