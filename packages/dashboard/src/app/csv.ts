/**
 * CSV of what a chart or table shows, made in the browser from the rows on screen (core's csvTable: the
 * query API's own CSV, with its guard against cells a spreadsheet would run as formulas) and saved as a
 * file.
 */
export { type CsvCell, csvTable } from '@tally/core';

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
