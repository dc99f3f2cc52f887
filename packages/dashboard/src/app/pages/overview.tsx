import { records, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { CsvButton } from '../components/csv-button.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { formatNumber, formatTime } from '../format.js';
import type { PageProps } from './registry.js';

type Row = Record<string, unknown>;

export default function Overview({ view }: PageProps) {
  const events = useQuery({ kind: 'explore', what: 'events', limit: 100 });
  const rows = events.data ? records(events.data) : [];
  const columns: TableColumn<Row>[] = [
    { key: 'name', label: 'Event', value: (r) => r.name as string },
    {
      key: 'count',
      label: 'Events',
      numeric: true,
      value: (r) => r.count as number,
      render: (r) => formatNumber(r.count),
    },
    {
      key: 'last_seen',
      label: 'Last seen',
      value: (r) => r.last_seen as string,
      render: (r) => formatTime(r.last_seen, view.tz),
    },
  ];
  const csv = tableCsv(columns, rows);
  return (
    <>
      <h1>Overview</h1>
      <div class="grid">
        <Card
          title="Top events"
          id="top-events"
          state={events}
          actions={<CsvButton filename="top-events" what="top events" {...csv} />}
        >
          <DataTable caption="Top events" columns={columns} rows={rows} />
        </Card>
      </div>
    </>
  );
}
