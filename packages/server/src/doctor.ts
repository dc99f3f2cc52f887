/**
 * `tally doctor`: checks, in order, what a running Tally depends on, and prints one table. Each check
 * says what it found and, when it fails, what to do. Exit code 1 if anything failed.
 *
 * The round trip writes one `$doctor` event for tenant `tally-doctor` and reads it back from storage:
 * through JetStream and the running server's consumer when NATS is configured, otherwise through a
 * writer of its own. Embedded PGlite belongs to one process: when a server already holds it, doctor
 * asks the server (`/readyz`) instead of opening the database.
 */
import type { Writable } from 'node:stream';
import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import { checkStream, connect, jetstream, jetstreamManager, publishBatch } from '@tally/nats';
import { createStore, createWriter, loadMigrations, type Store, writeEnvelopes } from '@tally/store';
import { table } from './table.js';
import type { Config } from './config.js';

interface Check {
  name: string;
  ok: boolean | 'skip';
  detail: string;
}

export async function doctor(config: Config, out: Writable, options: { timeoutMs?: number } = {}): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const checks: Check[] = [];
  const add = (name: string, ok: boolean | 'skip', detail: string) => checks.push({ name, ok, detail });
  add(
    'config',
    true,
    `${config.store.kind === 'pglite' ? `PGlite in ${config.store.dataDir}` : `Postgres, schema ${config.store.schema}`}; ` +
      `transport ${config.nats ? `NATS (${config.nats.stream}, ${config.nats.prefix}.analytics.>)` : 'in-process'}`,
  );

  const serverUp = await probe(`http://${config.host}:${config.port}/readyz`);
  let store: Store | undefined;
  if (config.store.kind === 'pglite' && serverUp !== undefined) {
    add(
      'database',
      serverUp,
      `PGlite is held by the server on port ${config.port}; its /readyz says ${serverUp ? 'ready' : 'NOT ready'}`,
    );
  } else {
    try {
      store = await createStore(config.store);
      await store.sql.query('SELECT 1');
      add(
        'database',
        true,
        config.store.kind === 'pglite' ? 'PGlite opens' : `reachable (${new URL(config.store.url).host})`,
      );
    } catch (e) {
      add('database', false, `${(e as Error).message} — check DATABASE_URL, or that Postgres is running`);
    }
  }
  if (store) {
    try {
      const rows = await store.sql.query<{ version: number }>('SELECT version FROM tally_migrations');
      const have = new Set(rows.map((r) => Number(r.version)));
      const missing = loadMigrations().filter((m) => !have.has(m.version));
      add(
        'migrations',
        missing.length === 0,
        missing.length === 0
          ? `${have.size} applied`
          : `missing ${missing.map((m) => m.name).join(', ')}: run tally migrate`,
      );
    } catch {
      add('migrations', false, 'schema not created: run tally migrate (or tally serve, which migrates)');
    }
  }

  let natsOk = false;
  const probeEvent: TallyEvent = {
    id: uuidv7(),
    name: '$doctor',
    tenantId: 'tally-doctor',
    properties: { check: 'round trip' },
    context: { service: 'tally doctor' },
    timestamp: isoTime(Date.now()),
  };
  let sent = false;
  if (config.nats) {
    let nc: Awaited<ReturnType<typeof connect>> | undefined;
    try {
      nc = await connect({ servers: config.nats.servers, timeout: 3000, maxReconnectAttempts: 0 });
      add('nats', true, `connected to ${nc.getServer()} (server ${nc.info?.version ?? '?'})`);
      natsOk = true;
    } catch (e) {
      add(
        'nats',
        false,
        `${(e as Error).message} — is nats-server running with -js at ${config.nats.servers.join(',')}?`,
      );
    }
    if (nc && natsOk) {
      try {
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info(config.nats.stream);
        const problems = checkStream(info, config.nats);
        add(
          'stream',
          problems.length === 0,
          problems.length === 0
            ? `${config.nats.stream}: file storage, ${info.state.messages} messages, max age ${Math.round(info.config.max_age / 8.64e13)} d`
            : problems.join('; '),
        );
        if (problems.length === 0) {
          await publishBatch(
            jetstream(nc),
            config.nats.prefix,
            [probeEvent],
            nc.info?.max_payload ?? 1 << 20,
            timeoutMs,
          );
          sent = true;
        }
      } catch (e) {
        add('stream', false, `${config.nats.stream}: ${(e as Error).message} — tally serve creates it at start`);
      } finally {
        await nc.close();
      }
    }
  } else if (store) {
    const writer = createWriter({ store, spoolDir: config.spoolDir });
    const r = await writeEnvelopes(writer, [probeEvent]);
    await writer.close();
    sent = r.ok && r.rejected.length === 0;
    if (!sent) add('round trip', false, `the writer refused the test event: ${JSON.stringify(r)}`);
  }

  if (sent && store) {
    const deadline = Date.now() + timeoutMs;
    let found = false;
    while (!found && Date.now() < deadline) {
      found = (await store.sql.query('SELECT 1 FROM events WHERE id = $1', [probeEvent.id])).length === 1;
      if (!found) await new Promise((r) => setTimeout(r, 200));
    }
    add(
      'round trip',
      found,
      found
        ? `event ${probeEvent.id} written and read back`
        : `published, but not stored within ${timeoutMs / 1000} s: is tally serve running with the same NATS settings?`,
    );
  } else if (sent) {
    add('round trip', 'skip', 'published to JetStream; storage is held by the running server, not read back here');
  }
  await store?.close();

  out.write(
    table(
      ['check', 'result', 'detail'],
      checks.map((c) => [c.name, c.ok === 'skip' ? 'skip' : c.ok ? 'pass' : 'FAIL', c.detail]),
    ),
  );
  const failed = checks.filter((c) => c.ok === false).length;
  out.write(failed === 0 ? 'all checks passed\n' : `${failed} check(s) failed\n`);
  return failed === 0 ? 0 : 1;
}

/** true: ready, false: answering but not ready, undefined: nothing listening. */
async function probe(url: string): Promise<boolean | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return undefined;
  }
}
