/**
 * An app as `tally serve` will run it, for the SIGTERM test: Fastify with the request logger, the tracker
 * on the direct sink, the writer and PGlite in a data directory. On SIGTERM it drains in order: stop
 * accepting and finish in-flight requests, then the tracker, then the writer, then the store.
 * `server-child.ts <dataDir> <spoolDir> [worker]`: with `worker`, PGlite and the writer run on a worker
 * thread (`createStore({ worker: true })`), the README's recommended wiring.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineCatalog } from '@tally/core';
import { createTracker } from '@tally/node';
import { createDirectSink, createStore, createWriter } from '@tally/store';
import Fastify from 'fastify';
import { tallyRequestLog } from '../../src/index.js';

const [dataDir, spoolDir, mode] = process.argv.slice(2) as [string, string, string | undefined];
const store = await createStore({ kind: 'pglite', dataDir, worker: mode === 'worker' });
await store.migrate();
const writer = createWriter({ store, spoolDir });
const tracker = createTracker({ catalog: defineCatalog({}), sink: createDirectSink(writer), spool: spoolDir });
const app = Fastify();
await app.register(tallyRequestLog, { tracker });
let started = 0;
app.get('/slow', async (request, reply) => {
  // Tells the test how many requests are inside a handler, so it signals with all of them in flight.
  process.stdout.write(`in flight ${++started}\n`);
  await sleep(300);
  reply.header('x-request-id', String(request.id));
  return { ok: true };
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.once('SIGTERM', async () => {
  await app.close();
  await tracker.shutdown({ timeoutMs: 5000 });
  await writer.close({ timeoutMs: 5000 });
  await store.close();
  process.exit(0);
});
process.stdout.write(`listening ${(app.server.address() as { port: number }).port}\n`);
