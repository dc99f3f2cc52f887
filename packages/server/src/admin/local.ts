/**
 * AdminOps over a Store this process holds. Inside `tally serve` it shares the server's store, writer,
 * archive target and key cache (so a revoked key or a changed tenant takes effect at once); in the CLI
 * it works on a store the CLI opened because no server holds the database.
 *
 * Inputs are checked here too: the admin routes hand over what a remote caller sent.
 */
import { createClickHouseStore, createServerClient } from '@tally/clickhouse';
import {
  ErrorCodes,
  isTallyError,
  parseQuery,
  parseRangeTime,
  TallyConfigError,
  TallyError,
  UNPLANNED_POLICIES,
} from '@tally/core';
import {
  countQuarantine,
  createApiKey,
  detailOf,
  listApiKeys,
  listJobRuns,
  listManifests,
  listQuarantine,
  listTenants,
  rebuildRollups,
  revokeApiKey,
  saveStorageStats,
  type Store,
  updateTenant,
  type Writer,
} from '@tally/store';
import type { Config } from '../config.js';
import type { KeyCache } from '../key-cache.js';
import { runCleanup } from '../lifecycle/cleanup.js';
import { runJob, takeStorageStats } from '../lifecycle/jobs.js';
import { runRestore } from '../lifecycle/restore.js';
import type { ArchiveTarget } from '../lifecycle/targets/index.js';
import type { Replayer } from '../quarantine.js';
import type { AdminOps, OpsTarget, RejectedFilter } from './ops.js';

export interface LocalOpsDeps {
  store: Store;
  config: Config;
  target: OpsTarget;
  /** The archive target; opened on first use when the CLI works alone. */
  archiveTarget: () => Promise<ArchiveTarget>;
  /** The writer replays go through; the CLI makes one for the call. */
  writer: () => Writer;
  /** Replays refused events: through the server's transport inside it, through `writer` in the CLI. */
  replayRejected: Replayer;
  /** The catalog's event names: an explore of events marks each listed or not. */
  listedEvents?: readonly string[];
  /** The running server's key cache: changes made here drop what it cached. */
  keys?: KeyCache;
  /** Called once by close() (the CLI closes what it opened; the server closes its own at shutdown). */
  release?: () => Promise<void>;
}

export const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function createLocalOps(deps: LocalOpsDeps): AdminOps {
  const { store, config } = deps;
  const sql = store.sql;
  let released: Promise<void> | undefined;
  return {
    target: deps.target,

    async migrate() {
      const { applied } = await store.migrate();
      if (!config.clickhouse) return { applied };
      // The ClickHouse schema too: its migrations named as such, beside the relational ones.
      const clickhouse = createClickHouseStore({
        client: createServerClient({ url: config.clickhouse.url }),
        database: config.clickhouse.database,
      });
      try {
        const ch = await clickhouse.migrate();
        return { applied: [...applied, ...ch.applied.map((v) => `clickhouse ${v}`)] };
      } finally {
        await clickhouse.close();
      }
    },

    async createKey({ tenant, scope, name }) {
      // createApiKey refuses an unknown scope and a server-wide key that is not an admin key.
      const created = await createApiKey(sql, tenant, { name, scope });
      // A client may have tried the key before it existed (a deploy racing `keys create`).
      deps.keys?.forget((owner) => owner === undefined);
      return created;
    },

    async listKeys({ tenant }) {
      return listApiKeys(sql, tenant);
    },

    async revokeKey({ key, tenant }) {
      const matches = (await listApiKeys(sql, tenant)).filter(
        (k) => k.revokedAt === null && (k.id === key || k.prefix === key),
      );
      if (matches.length === 0) throw new TallyError(ErrorCodes.NOT_FOUND, `no live key with id or prefix "${key}"`);
      if (matches.length > 1) throw new TallyConfigError(`"${key}" matches several keys; use the key id`);
      const id = (matches[0] as { id: string }).id;
      await revokeApiKey(sql, id);
      deps.keys?.forget((owner) => owner?.keyId === id);
      return { revoked: id };
    },

    async listTenants() {
      return listTenants(sql);
    },

    async setTenant({ id, settings }) {
      const { acceptUnlisted, rateLimit, unplanned } = settings;
      if (acceptUnlisted !== undefined && acceptUnlisted !== null && typeof acceptUnlisted !== 'boolean') {
        throw new TallyConfigError('acceptUnlisted must be true, false or null (the server default)');
      }
      if (rateLimit !== undefined && rateLimit !== null && !(Number.isInteger(rateLimit) && rateLimit >= 0)) {
        throw new TallyConfigError('rateLimit must be a whole number of events per second (0: unlimited) or null');
      }
      if (unplanned !== undefined && unplanned !== null && !UNPLANNED_POLICIES.includes(unplanned)) {
        throw new TallyConfigError(`unplanned must be ${UNPLANNED_POLICIES.join(', ')} or null`);
      }
      const t = await updateTenant(sql, id, { acceptUnlisted, rateLimit, unplanned });
      // Cached key owners carry the tenant's settings.
      deps.keys?.forget((owner) => owner?.tenant?.id === id);
      return t;
    },

    async stats() {
      const s = await takeStorageStats(store);
      await saveStorageStats(sql, s);
      return s;
    },

    async jobs({ job, limit }) {
      const n = limit ?? 30;
      if (!(Number.isInteger(n) && n >= 1 && n <= 1000)) throw new TallyConfigError('limit must be 1 to 1000');
      return listJobRuns(sql, job, n);
    },

    async listArchive({ tenant }) {
      return listManifests(sql, { tenantId: tenant });
    },

    async runArchive({ olderThanDays }, onProgress) {
      const days = olderThanDays ?? config.lifecycle.archiveAfterDays;
      if (!(Number.isInteger(days) && days >= 1))
        throw new TallyConfigError('--older-than-days must be a whole number ≥ 1');
      const target = await deps.archiveTarget();
      onProgress(`archiving detail older than ${days} days to ${target.location}…`);
      const outcome = await runJob('archive', {
        store,
        target,
        archiveAfterDays: days,
        keepSnapshots: config.lifecycle.keepSnapshots,
        onProgress,
      });
      return { location: target.location, olderThanDays: days, outcome };
    },

    async restoreArchive({ tenant, day }, onProgress) {
      if (typeof tenant !== 'string' || tenant === '' || typeof day !== 'string' || !DAY.test(day)) {
        throw new TallyConfigError('restore needs a tenant and a day (YYYY-MM-DD)');
      }
      if ((await listManifests(sql, { tenantId: tenant, day })).length === 0) {
        throw new TallyError(
          ErrorCodes.NOT_FOUND,
          `no archive of tenant "${tenant}" for ${day} (see tally archive list)`,
        );
      }
      return tallyErrors(async () => runRestore(store, await deps.archiveTarget(), tenant, day, onProgress));
    },

    async cleanup({ dryRun, includeRestored }, onProgress) {
      const target = await deps.archiveTarget();
      if (dryRun === true || includeRestored === true) {
        const report = await tallyErrors(() =>
          runCleanup(store, target, { dryRun: dryRun === true, includeRestored: includeRestored === true, onProgress }),
        );
        return { mode: 'direct', report };
      }
      const outcome = await runJob('cleanup', {
        store,
        target,
        archiveAfterDays: config.lifecycle.archiveAfterDays,
        keepSnapshots: config.lifecycle.keepSnapshots,
        quarantineDays: config.quarantine.days,
        onProgress,
      });
      return { mode: 'job', outcome };
    },

    async replay({ file }) {
      const writer = deps.writer();
      const report = await tallyErrors(() => writer.replay(file));
      return { ...report, deadLetterFile: writer.deadLetterFile };
    },

    async listRejected(input) {
      const filter = rejectedFilter(input);
      const limit = input.limit ?? 50;
      if (!(Number.isInteger(limit) && limit >= 1 && limit <= 10_000)) {
        throw new TallyConfigError('--limit must be 1 to 10000');
      }
      const [events, counts] = await Promise.all([
        listQuarantine(sql, { ...filter, limit }),
        countQuarantine(sql, filter),
      ]);
      return { events, counts };
    },

    async replayRejected(input, onProgress) {
      return deps.replayRejected(rejectedFilter(input), { dryRun: input.dryRun === true, onProgress });
    },

    async query({ tenant, query }) {
      if (typeof tenant !== 'string' || !(await listTenants(sql)).some((t) => t.id === tenant)) {
        throw new TallyError(ErrorCodes.NOT_FOUND, `no tenant ${JSON.stringify(tenant)} (see tally tenants list)`);
      }
      const parsed = parseQuery(query);
      if (!parsed.ok) throw parsed.error;
      return store.query(tenant, parsed.query, {
        timeoutMs: config.query.timeoutMs,
        maxRows: config.query.maxRows,
        listedEvents: deps.listedEvents,
      });
    },

    async rebuildRollups({ from, to }, onProgress) {
      const at = (text: string | undefined, flag: string): Date | undefined => {
        if (text === undefined) return undefined;
        const ms = typeof text === 'string' ? parseRangeTime(text, 'UTC') : undefined;
        if (ms === undefined)
          throw new TallyConfigError(`--${flag} "${text}" is not an ISO date or time (e.g. 2026-03-01)`);
        return new Date(ms);
      };
      const range = { from: at(from, 'from'), to: at(to, 'to') };
      if (range.from && range.to && range.to <= range.from) throw new TallyConfigError('--to must be after --from');
      const detail = detailOf(store);
      if (detail.sealRollups) {
        // ClickHouse: its hourly counts are built per (tenant, day) once the day is over; a day built
        // for the current dimensions and not marked dirty since is already exact, whatever the range.
        onProgress(
          `building the hourly counts of every day that is over and not built for the current dimensions${from || to ? ' (--from/--to do not apply on ClickHouse)' : ''}…`,
        );
        const r = await detail.sealRollups({ onProgress });
        return { days: r.built, events: r.events, requestLogs: 0, archived: 0 };
      }
      onProgress(
        `rebuilding the hourly rollups from detail, ${from ?? 'the oldest day'} to ${to ?? 'the newest'}, a UTC day at a time…`,
      );
      return rebuildRollups(store, {
        ...range,
        onProgress: (p) => onProgress(`${p.day}: ${p.events} events, ${p.requestLogs} request logs`),
      });
    },

    close: () => (released ??= deps.release?.() ?? Promise.resolve()),
  };
}

/** The store's filter for a caller's; a `since` that is not a time is refused here, not by the database. */
function rejectedFilter(input: RejectedFilter): { tenantId?: string; code?: string; name?: string; since?: string } {
  let since: string | undefined;
  if (input.since !== undefined) {
    const ms = Date.parse(input.since);
    if (!Number.isFinite(ms)) throw new TallyConfigError(`--since "${input.since}" is not a time (e.g. 2026-12-01)`);
    since = new Date(ms).toISOString();
  }
  return { tenantId: input.tenant, code: input.code, name: input.name, since };
}

/** Failures of the lifecycle code are plain Errors; callers on both sides of the wire get a code. */
async function tallyErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isTallyError(e)) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new TallyError(ErrorCodes.NOT_FOUND, err.message, {}, { cause: e });
    throw new TallyError(ErrorCodes.INTERNAL, err.message, {}, { cause: e });
  }
}
