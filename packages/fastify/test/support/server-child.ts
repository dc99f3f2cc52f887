/**
 * An app as `tally serve` will run it, for the SIGTERM test: Fastify with the request logger, the tracker
 * on the direct sink, the writer and PGlite in a data directory. On SIGTERM it drains in order: stop
 * accepting and finish in-flight requests, then the tracker, then the writer, then the store.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineCatalog } from '@tally/core';
import { createTracker } from '@tally/node';
import { createDirectSink, createStore, createWriter } from '@tally/store';
import Fastify from 'fastify';
import { tallyRequestLog } from '../../src/index.js';

const [dataDir, spoolDir] = process.argv.slice(2) as [string, string];
const store = await createStore({ kind: 'pglite', dataDir });
await store.migrate();
const writer = createWriter({ store, spoolDir });
const tracker = createTracker({ catalog: defineCatalog({}), sink: createDirectSink(writer), spool: spoolDir });
const app = Fastify();
await app.register(tallyRequestLog, { tracker });
app.get('/slow', async (request, reply) => {
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
