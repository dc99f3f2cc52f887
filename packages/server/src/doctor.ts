/**
 * `tally doctor`: checks, in order, what a running Tally depends on, and prints one table. Each check
 * says what it found and, when it fails, what to do. Exit code 1 if anything failed.
 *
 * The round trip writes one `$doctor` event for tenant `tally-doctor` and reads it back from storage:
 * through JetStream and the running server's consumer when NATS is configured, otherwise through a
 * writer of its own. Embedded PGlite belongs to one process: when a server already holds it, doctor
 * asks the server (`/readyz`) instead of opening the database. With ClickHouse configured, the event is
 * read back from ClickHouse, which is also checked on its own: reachable, its version, its schema, no
 * id stored twice, and an insert and read of its own.
 */
import type { Writable } from 'node:stream';
import {
  type ClickHouseStore,
  createClickHouseStore,
  createServerClient,
  MIGRATIONS,
  serverVersion,
} from '@tally/clickhouse';
import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import { checkStream, connect, jetstream, jetstreamManager, publishBatch } from '@tally/nats';
import { createStore, createWriter, loadMigrations, type Store, writeEnvelopes } from '@tally/store';
import { analyticsStore, redactUrl } from './analytics.js';
import { table } from './table.js';
import type { ClickHouseConfig, Config } from './config.js';

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
      `transport ${config.nats ? `NATS (${config.nats.stream}, ${config.nats.prefix}.analytics.>)` : 'in-process'}` +
      (config.clickhouse ? `; analytics in ClickHouse (${config.clickhouse.database})` : ''),
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

  const clickhouse = config.clickhouse ? await checkClickHouse(config.clickhouse, add) : undefined;

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
  } else if (store && (clickhouse || !config.clickhouse)) {
    const writer = createWriter({
      store: clickhouse ? analyticsStore(store, clickhouse) : store,
      spoolDir: config.spoolDir,
    });
    const r = await writeEnvelopes(writer, [probeEvent]);
    await writer.close();
    sent = r.ok && r.rejected.length === 0;
    if (!sent) add('round trip', false, `the writer refused the test event: ${JSON.stringify(r)}`);
  }

  const stored = async (): Promise<boolean> =>
    clickhouse
      ? (await clickhouse.client.query(storedSql(clickhouse, probeEvent.id))).length === 1
      : (await (store as Store).sql.query('SELECT 1 FROM events WHERE id = $1', [probeEvent.id])).length === 1;
  if (sent && (store || clickhouse)) {
    const deadline = Date.now() + timeoutMs;
    let found = false;
    while (!found && Date.now() < deadline) {
      found = await stored();
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
  await clickhouse?.close();

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

/** The probe event's row in ClickHouse, by its id (a uuid: no user text reaches the statement). */
const storedSql = (clickhouse: ClickHouseStore, id: string) =>
  `SELECT 1 FROM ${clickhouse.database}.events WHERE tenant_id = 'tally-doctor' AND name = '$doctor' AND id = toUUID('${/^[0-9a-f-]{36}$/.test(id) ? id : '00000000-0000-0000-0000-000000000000'}')`;

/**
 * ClickHouse: reachable and its version, the schema migrated, no id stored twice, and a round trip of
 * its own (an insert and its read, straight into the store: the pipeline's round trip comes after).
 */
async function checkClickHouse(
  config: ClickHouseConfig,
  add: (name: string, ok: boolean | 'skip', detail: string) => void,
): Promise<ClickHouseStore | undefined> {
  const where = redactUrl(config.url);
  const clickhouse = createClickHouseStore({
    client: createServerClient({ url: config.url }),
    database: config.database,
  });
  try {
    const version = await serverVersion(clickhouse.client);
    const supported = version.major > 18 || (version.major === 18 && version.minor >= 16);
    add(
      'clickhouse',
      supported,
      supported
        ? `reachable at ${where}, version ${version.text}`
        : `version ${version.text} at ${where} is older than 18.16, the oldest Tally supports: upgrade it`,
    );
  } catch (e) {
    add('clickhouse', false, `${(e as Error).message} — check CLICKHOUSE_URL (${where}) and that the server runs`);
    await clickhouse.close().catch(() => undefined);
    return undefined;
  }
  try {
    const rows = await clickhouse.client.query<{ version: string }>(
      `SELECT version FROM ${clickhouse.database}.schema_migrations`,
    );
    const have = new Set(rows.map((r) => r.version));
    const missing = MIGRATIONS.filter((m) => !have.has(m.version)).map((m) => m.version);
    const duplicates = missing.length === 0 ? await clickhouse.duplicates() : { events: 0, requestLogs: 0 };
    const twice = duplicates.events + duplicates.requestLogs;
    add(
      'clickhouse schema',
      missing.length === 0 && twice === 0,
      missing.length > 0
        ? `missing ${missing.join(', ')}: run tally migrate`
        : twice > 0
          ? `${twice} rows stored twice (written around Tally's lock?): they merge away in time, or run OPTIMIZE TABLE … FINAL`
          : `database ${config.database}: ${have.size} migration(s) applied, no row stored twice`,
    );
    if (missing.length > 0) return clickhouse;
    const probe: TallyEvent & { receivedAt: string } = {
      id: uuidv7(),
      name: '$doctor',
      tenantId: 'tally-doctor',
      properties: { check: 'clickhouse' },
      context: { service: 'tally doctor' },
      timestamp: isoTime(Date.now()),
      receivedAt: isoTime(Date.now()),
    };
    const inserted = await clickhouse.insertEvents([probe]);
    const again = await clickhouse.insertEvents([probe]);
    const read = (await clickhouse.client.query(storedSql(clickhouse, probe.id))).length;
    const ok = inserted.length === 1 && again.length === 0 && read === 1;
    add(
      'clickhouse round trip',
      ok,
      ok
        ? 'an event inserted, read back, and refused a second time'
        : `inserted ${inserted.length}, again ${again.length}, read ${read}: expected 1, 0, 1`,
    );
  } catch (e) {
    add('clickhouse schema', false, `${(e as Error).message} — run tally migrate`);
  }
  return clickhouse;
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
