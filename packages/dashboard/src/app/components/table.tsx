import type { ComponentChildren } from 'preact';
import type { CsvCell } from '../csv.js';

export interface TableColumn<T> {
  /** Column name in the CSV (and the key tests find cells by: `data-col`). */
  key: string;
  label: string;
  /** The raw value: what the CSV holds and `data-value` carries. */
  value: (row: T) => CsvCell;
  /** What the cell shows; default: the value as text. */
  render?: (row: T) => ComponentChildren;
  /** Numbers align right. */
  numeric?: boolean;
}

/**
 * A table of rows with a caption (its accessible name). Each cell carries `data-col` and `data-value` (the
 * raw value) so tests read what the API answered, not the formatting. Wide tables scroll inside their
 * card at phone width instead of widening the page.
 */
export function DataTable<T>(props: {
  caption: string;
  columns: readonly TableColumn<T>[];
  rows: readonly T[];
  /** Shown instead of an empty body. */
  empty?: string;
  /** Show the caption (otherwise it is for screen readers only: the card's heading says it). */
  showCaption?: boolean;
  rowKey?: (row: T, i: number) => string;
}) {
  const { columns, rows } = props;
  return (
    // Focusable and named: at phone width the table scrolls sideways, and keyboard users must reach it.
    <div class="table-wrap" tabIndex={0} role="region" aria-label={props.caption}>
      <table class="data-table">
        <caption class={props.showCaption ? undefined : 'visually-hidden'}>{props.caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.key} scope="col" class={c.numeric ? 'num' : undefined}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <TableBody columns={columns} rows={rows} empty={props.empty} rowKey={props.rowKey} />
      </table>
    </div>
  );
}

/**
 * A table's rows: a cell per column carrying `data-col` and `data-value` (the raw value; objects as JSON),
 * showing `render` or the value as text; `empty` in one cell when there are no rows.
 */
export function TableBody<T>(props: {
  columns: readonly TableColumn<T>[];
  rows: readonly T[];
  empty?: string | undefined;
  rowKey?: ((row: T, i: number) => string) | undefined;
}) {
  const { columns, rows } = props;
  return (
    <tbody>
      {rows.length === 0 ? (
        <tr>
          <td colSpan={columns.length} class="muted empty">
            {props.empty ?? 'Nothing in this range.'}
          </td>
        </tr>
      ) : (
        rows.map((row, i) => (
          <tr key={props.rowKey ? props.rowKey(row, i) : i}>
            {columns.map((c) => {
              const v = c.value(row);
              return (
                <td
                  key={c.key}
                  class={c.numeric ? 'num' : undefined}
                  data-col={c.key}
                  data-value={
                    v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)
                  }
                >
                  {c.render ? c.render(row) : v === null || v === undefined ? '–' : String(v)}
                </td>
              );
            })}
          </tr>
        ))
      )}
    </tbody>
  );
}

/** The CSV of a table: its column keys and raw values. */
export function tableCsv<T>(columns: readonly TableColumn<T>[], rows: readonly T[]) {
  return { header: columns.map((c) => c.key), rows: rows.map((r) => columns.map((c) => c.value(r))) };
}
