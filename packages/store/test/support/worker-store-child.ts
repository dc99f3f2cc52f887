/**
 * For the exit test: opens a worker-backed PGlite store, hands its writer rows that wait in the worker
 * (a long batching interval), reports, and exits at once without closing anything.
 * `worker-store-child.ts <spoolDir> <rows>`
 */
import { createStore, createWriter } from '../../src/index.js';
import { eventRows } from './stores.js';

const [spoolDir, count] = process.argv.slice(2) as [string, string];
const store = await createStore({ kind: 'pglite', worker: true });
await store.migrate();
const writer = createWriter({ store, spoolDir, flushIntervalMs: 60_000 });
void writer.writeEvents(eventRows(Number(count)));
// One round trip after the write: the worker has the rows in its queue, not yet committed.
await store.sql.query('SELECT 1');
process.stdout.write('written\n');
process.exit(0);
