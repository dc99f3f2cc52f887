import { type CsvCell, csvTable, download } from '../csv.js';

/** Downloads the rows shown as CSV (`header` names the columns; cells as the API gave them). */
export function CsvButton(props: {
  filename: string;
  header: readonly string[];
  rows: readonly (readonly CsvCell[])[];
  /** What is exported, for screen readers: "Download events over time as CSV". */
  what: string;
}) {
  return (
    <button
      type="button"
      class="button small"
      aria-label={`Download ${props.what} as CSV`}
      disabled={props.rows.length === 0}
      onClick={() =>
        download(
          props.filename.endsWith('.csv') ? props.filename : `${props.filename}.csv`,
          csvTable(props.header, props.rows),
        )
      }
    >
      CSV
    </button>
  );
}
