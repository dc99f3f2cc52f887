import { TableBody, type TableColumn } from '../../components/table.js';

export interface SortableColumn<T, S extends string> extends TableColumn<T> {
  /** The order this column's header asks for (the server sorts, largest first). */
  sort?: S;
  /** Its header's full name for screen readers when the label is short (`p95` → `95th percentile`). */
  title?: string;
}

/**
 * A table whose sortable headers are buttons: pressing one asks for that order (the query's `sort`, so the
 * top N are the top N of that order, not a re-sort of the rows already shown). The header in effect has
 * `aria-sort="descending"`. Cells carry `data-col` and `data-value` (the raw value) as DataTable's do.
 */
export function SortableTable<T, S extends string>(props: {
  caption: string;
  columns: readonly SortableColumn<T, S>[];
  rows: readonly T[];
  sort: S;
  onSort(sort: S): void;
  empty?: string;
  rowKey(row: T): string;
}) {
  const { columns, rows } = props;
  return (
    <div class="table-wrap scroller">
      <table class="data-table">
        <caption class="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => {
              const active = c.sort !== undefined && c.sort === props.sort;
              return (
                <th
                  key={c.key}
                  scope="col"
                  class={c.numeric ? 'num' : undefined}
                  aria-sort={c.sort === undefined ? undefined : active ? 'descending' : 'none'}
                  data-col={c.key}
                >
                  {c.sort === undefined ? (
                    c.title ? (
                      <abbr title={c.title}>{c.label}</abbr>
                    ) : (
                      c.label
                    )
                  ) : (
                    <button
                      type="button"
                      class={active ? 'sort-button active' : 'sort-button'}
                      title={c.title}
                      data-sort={c.sort}
                      onClick={() => props.onSort(c.sort as S)}
                    >
                      {c.label}
                      <span aria-hidden="true">{active ? ' ↓' : ''}</span>
                      <span class="visually-hidden">{active ? ', sorted largest first' : ', sort largest first'}</span>
                    </button>
                  )}
                </th>
              );
            })}
          </tr>
        </thead>
        <TableBody columns={columns} rows={rows} empty={props.empty} rowKey={props.rowKey} />
      </table>
    </div>
  );
}
