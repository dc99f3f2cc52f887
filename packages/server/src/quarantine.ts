/**
 * Nothing refused is lost: every event the collector refuses one by one (unknown name, catalog
 * violation, too big, PII under `reject`, bad envelope) is kept in the store's quarantine before the
 * request is answered, and `tally rejected replay` re-checks them against the current catalog and
 * tenant settings, publishing what now passes through the same transport as fresh events, so each is
 * stored once, by id. Whole-request refusals (401, 400, 413, 429) are not kept: the client saw them.
 */
import { type BatchRejection, type Catalog, type PublishResult, type TallyEvent, UnreadableItem } from '@tally/core';
import {
  listQuarantine,
  listTenants,
  type QuarantineEntry,
  type QuarantineFilter,
  quarantineEvents,
  quarantineTenants,
  removeQuarantined,
  type Store,
  trimQuarantine,
  updateQuarantined,
} from '@tally/store';
import type { Config } from './config.js';
import { type Acceptor, collectorAcceptOptions, createAcceptor, type TenantPolicy } from './ingest/accept.js';
import { messageIdToUuid } from './ingest/formats.js';
import type { Metrics } from './metrics.js';

export interface QuarantineSettings {
  /** Refused events kept per tenant; beyond it the oldest are dropped (and counted). */
  maxRowsPerTenant: number;
}

export interface Quarantine {
  /** Keeps the refused items of one request; resolves once they are stored (rejects if they cannot be). */
  keep(request: RefusedBatch): Promise<void>;
}

export interface RefusedBatch {
  tenantId: string;
  keyId: string | null;
  source: string;
  /** The request's candidate envelopes, as the acceptor saw them. */
  items: readonly unknown[];
  rejected: readonly BatchRejection[];
  sentAt: unknown;
  receivedAt: number;
}

export function createQuarantine(store: Store, settings: QuarantineSettings, metrics?: Metrics): Quarantine {
  // Trimming counts a tenant's rows, so it runs once per 1% of the cap kept, not on every insert.
  const sinceTrim = new Map<string, number>();
  const trimEvery = Math.max(100, Math.floor(settings.maxRowsPerTenant / 100));
  return {
    async keep(r) {
      if (r.rejected.length === 0) return;
      const receivedAt = new Date(r.receivedAt).toISOString();
      const sentAt = typeof r.sentAt === 'string' ? r.sentAt : null;
      const entries: QuarantineEntry[] = r.rejected.map((x) => {
        const raw = r.items[x.index];
        const item = JSON.stringify(raw instanceof UnreadableItem ? raw.raw : raw) ?? 'null';
        const name = (raw as { name?: unknown } | null)?.name;
        return {
          tenantId: r.tenantId,
          eventId: eventIdOf(x.id, item, r.tenantId, r.receivedAt),
          name: typeof name === 'string' ? name.slice(0, 200) : null,
          code: x.code,
          message: x.message,
          item,
          source: r.source,
          keyId: r.keyId,
          sentAt,
          receivedAt,
        };
      });
      const kept = await quarantineEvents(store.sql, entries);
      for (const x of r.rejected) metrics?.quarantined(x.code);
      const pending = (sinceTrim.get(r.tenantId) ?? 0) + kept;
      if (pending < trimEvery) {
        sinceTrim.set(r.tenantId, pending);
        return;
      }
      sinceTrim.set(r.tenantId, 0);
      const dropped = await trimQuarantine(store.sql, r.tenantId, settings.maxRowsPerTenant);
      if (dropped > 0) metrics?.quarantineDropped(dropped);
    },
  };
}

/**
 * The event's own id when it is a UUID; otherwise one derived from the tenant and the item's text, so
 * the same malformed event sent twice is kept once.
 */
function eventIdOf(id: string | undefined, item: string, tenantId: string, now: number): string {
  return messageIdToUuid(id ?? `item:${item}`, tenantId, undefined, now);
}

export interface ReplayDeps {
  store: Store;
  accept: Acceptor;
  /** The server's defaults for tenants that have no setting of their own. */
  defaults: { acceptUnlisted: boolean; unplanned: TenantPolicy['unplanned'] };
  /** Where events that now pass go: the transport's publish (the same path as fresh events). */
  publish(events: TallyEvent[]): Promise<Pick<PublishResult, 'duplicates' | 'rejected'>>;
  metrics?: Metrics;
}

export interface QuarantineReplayOptions {
  dryRun?: boolean;
  /** Events re-checked per step. Default 500. */
  pageSize?: number;
  onProgress?: (line: string) => void;
}

export interface QuarantineReplayReport {
  examined: number;
  /** Stored now (or, in a dry run, that would be). */
  stored: number;
  /** Passed, but their id was stored already (a replay cut short earlier, or a resend). */
  duplicates: number;
  stillFailing: number;
  /** Still failing, by their current error code. */
  failing: Record<string, number>;
}

export async function replayQuarantine(
  deps: ReplayDeps,
  filter: Omit<QuarantineFilter, 'afterSeq' | 'limit'>,
  options: QuarantineReplayOptions = {},
): Promise<QuarantineReplayReport> {
  const report: QuarantineReplayReport = { examined: 0, stored: 0, duplicates: 0, stillFailing: 0, failing: {} };
  const pageSize = options.pageSize ?? 500;
  const tenants = new Map((await listTenants(deps.store.sql)).map((t) => [t.id, t]));
  for (const tenantId of await quarantineTenants(deps.store.sql, filter.tenantId)) {
    const t = tenants.get(tenantId);
    const policy: TenantPolicy = {
      tenantId,
      acceptUnlisted: t?.acceptUnlisted ?? deps.defaults.acceptUnlisted,
      unplanned: t?.unplanned ?? deps.defaults.unplanned,
    };
    let afterSeq: number | undefined;
    for (;;) {
      const page = await listQuarantine(deps.store.sql, { ...filter, tenantId, afterSeq, limit: pageSize }, 'oldest');
      if (page.length === 0) break;
      afterSeq = page[page.length - 1]?.seq;
      const passed: TallyEvent[] = [];
      const failed: { eventId: string; code: string; message: string }[] = [];
      for (const q of page) {
        if (q.truncated) {
          failed.push({ eventId: q.eventId, code: q.code, message: q.message });
          continue;
        }
        // The original arrival time: the acceptor corrects clocks and stamps receivedAt as it did then.
        const r = deps.accept([JSON.parse(q.item)], q.sentAt, policy, Date.parse(q.receivedAt));
        const event = r.events[0];
        if (event !== undefined && event.id === q.eventId) passed.push(event);
        else if (event !== undefined) {
          // An item without a usable id got a derived one; it passes now only with an id of its own.
          failed.push({ eventId: q.eventId, code: q.code, message: q.message });
        } else {
          const why = r.rejected[0] as BatchRejection;
          failed.push({ eventId: q.eventId, code: why.code, message: why.message });
        }
      }
      report.examined += page.length;
      let stored = passed.length;
      let duplicates = 0;
      if (!options.dryRun && passed.length > 0) {
        const published = await deps.publish(passed);
        const refused = new Set(published.rejected.map((x) => x.index));
        for (const x of published.rejected) {
          failed.push({ eventId: passed[x.index]?.id as string, code: x.code, message: x.message });
        }
        duplicates = published.duplicates ?? 0;
        stored = passed.length - refused.size - duplicates;
        const done = passed.filter((_, i) => !refused.has(i)).map((e) => e.id);
        await removeQuarantined(deps.store.sql, tenantId, done);
      }
      if (!options.dryRun) await updateQuarantined(deps.store.sql, tenantId, failed);
      report.stored += stored;
      report.duplicates += duplicates;
      report.stillFailing += failed.length;
      for (const f of failed) report.failing[f.code] = (report.failing[f.code] ?? 0) + 1;
      if (!options.dryRun) deps.metrics?.replayed({ stored, duplicates, stillFailing: failed.length });
      options.onProgress?.(
        `${tenantId}: ${report.examined} examined, ${report.stored} ${options.dryRun ? 'would be stored' : 'stored'}, ` +
          `${report.stillFailing} still failing`,
      );
      if (page.length < pageSize) break;
    }
  }
  return report;
}

export type Replayer = (
  filter: Omit<QuarantineFilter, 'afterSeq' | 'limit'>,
  options?: QuarantineReplayOptions,
) => Promise<QuarantineReplayReport>;

/** A replay that judges events as the collector of `config` and `catalog` does, and stores them through `publish`. */
export function createReplayer(parts: {
  store: Store;
  catalog: Catalog;
  config: Pick<Config, 'unlisted' | 'unplanned'>;
  publish: ReplayDeps['publish'];
  metrics?: Metrics;
}): Replayer {
  const deps: ReplayDeps = {
    store: parts.store,
    accept: createAcceptor(collectorAcceptOptions(parts.catalog)),
    defaults: { acceptUnlisted: parts.config.unlisted === 'accept', unplanned: parts.config.unplanned },
    publish: parts.publish,
    metrics: parts.metrics,
  };
  return (filter, options) => replayQuarantine(deps, filter, options);
}
