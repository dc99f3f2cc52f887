/**
 * A writer process for the SIGKILL test: receives batches over IPC, writes them, and acknowledges a
 * batch only when the writer says it is committed, as a NATS consumer or an HTTP collector would.
 */
import { createStore, createWriter } from '../../src/index.js';
import type { EventRow } from '../../src/index.js';

const [url, schema, spoolDir] = process.argv.slice(2) as [string, string, string];
const store = await createStore({ kind: 'postgres', url, schema });
const writer = createWriter({ store, spoolDir, retry: { initialMs: 20, maxMs: 500 } });

process.on('message', (m: { seq: number; rows: EventRow[] }) => {
  void writer.writeEvents(m.rows).then((r) => {
    process.send?.(r.ok && r.spooled === 0 && r.rejected.length === 0 ? { ack: m.seq } : { nack: m.seq });
  });
});
process.send?.({ ready: true });
