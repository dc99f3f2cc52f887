/**
 * The services the server's tests talk to: Postgres (fresh schema per file) and NATS JetStream (a
 * fresh stream and subject prefix per test, deleted afterwards), plus a started `tally serve`.
 */
import { randomBytes } from 'node:crypto';
import { connect, jetstreamManager } from '@tally/nats';
import { dropSchema, freshSchema, PG_URL, pg } from '../../../store/test/support/stores.js';
import { tempDir } from '../../../node/test/support/helpers.js';
import { needs, probeNats } from '../../../node/test/support/service-gate.js';
import { loadConfig, type Flags } from '../../src/config.js';
import { type ServeOptions, type Server, startServer } from '../../src/serve.js';

export { PG_URL, pg };
export const NATS_URL = 'nats://127.0.0.1:4222';

/** NATS JetStream: `needs(nats)` guards its tests (skipped when it is down, failed in CI); Postgres is `pg`. */
export const nats = await probeNats();

/** A unique NATS namespace: stream name and subject prefix no other test uses. */
export function natsNamespace(): { stream: string; prefix: string; cleanup: () => Promise<void> } {
  const tag = randomBytes(5).toString('hex');
  const stream = `TEST_${tag.toUpperCase()}`;
  return {
    stream,
    prefix: `t${tag}`,
    cleanup: async () => {
      const nc = await connect({ servers: NATS_URL });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.delete(stream).catch(() => undefined);
      } finally {
        await nc.close();
      }
    },
  };
}

export type Backend = 'pglite' | 'postgres' | 'postgres+nats' | 'pglite+nats';

export const backends: Backend[] = [
  'pglite',
  ...(needs(pg).runs ? (['postgres'] as const) : []),
  ...(needs(nats).runs ? (['pglite+nats'] as const) : []),
  ...(needs(pg, nats).runs ? (['postgres+nats'] as const) : []),
];

export interface TestServer {
  server: Server;
  key: string;
  dataDir: string;
  flags: Flags;
  dispose(): Promise<void>;
}

/** `tally serve` on a free port, in a fresh data dir / schema / NATS namespace. */
export async function serveFor(backend: Backend, extra: Flags = {}, options: ServeOptions = {}): Promise<TestServer> {
  if (backend.startsWith('postgres')) pg.assertMet();
  if (backend.endsWith('+nats')) nats.assertMet();
  const tmp = tempDir('tally-serve-');
  const schema = freshSchema();
  const ns = backend.endsWith('+nats') ? natsNamespace() : undefined;
  const flags: Flags = { port: '0', 'data-dir': tmp.dir, schema, ...extra };
  if (backend.startsWith('postgres')) flags['database-url'] = PG_URL;
  if (ns) Object.assign(flags, { 'nats-url': NATS_URL, 'nats-stream': ns.stream, 'nats-prefix': ns.prefix });
  const server = await startServer(loadConfig(flags, {}), options);
  return {
    server,
    key: server.firstKey as string,
    dataDir: tmp.dir,
    flags,
    async dispose() {
      await server.close();
      if (backend.startsWith('postgres')) await dropSchema(schema);
      await ns?.cleanup();
      tmp.cleanup();
    },
  };
}
