/**
 * CSV of what a chart or table shows, made in the browser from the rows on screen and saved as a file.
 * Written as the query API writes CSV (RFC 4180, CRLF; a text cell starting with `=`, `+`, `-`, `@`, tab
 * or CR gets a leading `'`, so a spreadsheet shows it as text rather than running it as a formula: cells
 * hold what any holder of a write key sent).
 */

export type CsvCell = string | number | boolean | null | undefined | object;

const FORMULA = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  if (FORMULA.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvTable(header: readonly string[], rows: readonly (readonly CsvCell[])[]): string {
  return [header, ...rows].map((r) => `${r.map(csvField).join(',')}\r\n`).join('');
}

/** Saves `text` as a download named `filename` (a Blob URL: no request, nothing inline). */
export function download(filename: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has its own copy once started; the URL only has to outlive this task.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
