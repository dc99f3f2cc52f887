/**
 * What the collector does to every event it is sent, whichever API it came through: check the
 * envelope, check the properties against the catalog (or take them unchecked for a tenant that accepts
 * unlisted names), bind the event to the write key's tenant, stamp the arrival time and correct the
 * producer's clock when it is far off. One bad event is rejected with a typed code; the rest go on.
 *
 * Clock rule: `skew = receivedAt − sentAt` of the batch. Within ±5 minutes (network delay, ordinary
 * drift) the producer's timestamps are kept as they are; beyond, every event of the batch is shifted by
 * the skew (the producer's clock is wrong, not the events' order). A timestamp still more than 23 h
 * ahead of the server is clamped to `receivedAt` and the original kept in `context.clientTimestamp`.
 * The id is never touched: a retried batch carries the same ids, so it dedupes whatever its times.
 */
import {
  type BatchRejection,
  canonicalTime,
  type Catalog,
  checkRequestLog,
  createPiiMatcher,
  createValidator,
  DEFAULT_MAX_PROPERTIES_BYTES,
  DEFAULT_PII_POLICY,
  type EventContext,
  ErrorCodes,
  isoTime,
  isUuid,
  type JsonValue,
  MAX_REQUEST_LOG_BYTES,
  type PiiPolicy,
  REQUEST_LOG_EVENT,
  type RequestLogRecord,
  sanitizeProperties,
  type TallyEvent,
  type UnplannedPolicy,
  UnreadableItem,
  utf8Length,
} from '@tally/core';

export const SKEW_TOLERANCE_MS = 5 * 60_000;
export const MAX_FUTURE_MS = 23 * 3600_000;
const MAX_CONTEXT_BYTES = 8 * 1024;
const MAX_ID_LENGTH = 200;

/** Event names every tenant may send without declaring them: Segment's and PostHog's built-in calls. */
export const SYSTEM_EVENTS: ReadonlySet<string> = new Set([
  '$identify',
  '$page',
  '$screen',
  '$group',
  '$alias',
  '$pageview',
]);

export interface AcceptOptions {
  catalog: Catalog;
  /** Limits for catalog events, unlisted events and contexts alike: one setting, one validator. */
  maxPropertiesBytes: number;
  pii: PiiPolicy;
}

/** The collector's limits for a catalog: the default payload limit and PII policy. */
export function collectorAcceptOptions(catalog: Catalog): AcceptOptions {
  return { catalog, maxPropertiesBytes: DEFAULT_MAX_PROPERTIES_BYTES, pii: DEFAULT_PII_POLICY };
}

export interface TenantPolicy {
  tenantId: string;
  acceptUnlisted: boolean;
  /** Properties a catalog event does not declare (an event's own `unplanned` setting wins). */
  unplanned: UnplannedPolicy;
}

export interface Accepted {
  events: TallyEvent[];
  /** Position in the request of each accepted event (to map the writer's rejections back). */
  positions: number[];
  rejected: BatchRejection[];
  /** The arrival time stamped on every event. */
  receivedAt: string;
  /**
   * Every item was accepted as it came: each event is its item's id, name, properties, context,
   * timestamp, userId and anonymousId (strings only) with the tenant, `receivedAt` and the batch's
   * `sentAt` (when it is a time) added, and nothing else. Then the request body says the same as the
   * events (see BatchSource in core), and a queueing transport can carry the body instead.
   */
  verbatim: boolean;
}

export type Acceptor = (items: readonly unknown[], sentAt: unknown, tenant: TenantPolicy, now: number) => Accepted;

export function createAcceptor(options: AcceptOptions): Acceptor {
  // reuseInput: the collector owns what it hands over (JSON.parse made it, for this request alone), so
  // a payload that is already clean becomes the event's own instead of being copied (GC was a fifth of
  // the collector's CPU). The acceptor never changes an object it was given (see ownContext).
  const sanitizeOptions = {
    maxBytes: options.maxPropertiesBytes,
    pii: options.pii.mode,
    isPii: createPiiMatcher(options.pii.keys),
    reuseInput: true,
  };
  const contextOptions = { ...sanitizeOptions, maxBytes: MAX_CONTEXT_BYTES };
  const validator = createValidator(options.catalog, {
    maxPropertiesBytes: options.maxPropertiesBytes,
    pii: options.pii,
    reuseInput: true,
  });

  return (items, sentAt, tenant, now) => {
    const receivedAt = isoTime(now);
    const sent = typeof sentAt === 'string' ? Date.parse(sentAt) : NaN;
    const skew = Number.isFinite(sent) && Math.abs(now - sent) > SKEW_TOLERANCE_MS ? now - sent : 0;
    const out: Accepted = { events: [], positions: [], rejected: [], receivedAt, verbatim: true };

    for (let index = 0; index < items.length; index++) {
      const item = items[index];
      const problem = acceptOne(item);
      if (problem !== undefined) {
        const id = (item as { id?: unknown } | null)?.id;
        out.rejected.push({
          index,
          ...(typeof id === 'string' ? { id } : {}),
          code: problem.code,
          message: problem.message,
        });
        out.verbatim = false;
      } else out.positions.push(index);
    }
    return out;

    /** Pushes the event made of `item` onto out.events, or says why there is none. */
    function acceptOne(item: unknown): { code: string; message: string } | undefined {
      if (item instanceof UnreadableItem) return { code: ErrorCodes.INVALID_ENVELOPE, message: item.reason };
      if (!item || typeof item !== 'object' || Array.isArray(item)) {
        return { code: ErrorCodes.INVALID_ENVELOPE, message: 'an event must be a JSON object' };
      }
      const e = item as Record<string, unknown>;
      if (!isUuid(e.id)) {
        return { code: ErrorCodes.INVALID_ENVELOPE, message: 'id must be a UUID (UUIDv7, born with the event)' };
      }
      const name = e.name;
      if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
        return { code: ErrorCodes.INVALID_ENVELOPE, message: 'name must be a string of 1–200 characters' };
      }
      for (const key of ID_KEYS) {
        const v = e[key];
        if (v !== undefined && v !== null && (typeof v !== 'string' || v.length > MAX_ID_LENGTH)) {
          return {
            code: ErrorCodes.INVALID_ENVELOPE,
            message: `${key} must be a string of at most ${MAX_ID_LENGTH} characters`,
          };
        }
      }
      const given = e.timestamp;
      // Producers send the form isoTime prints: then the text is kept as it is, unless the time moves.
      let born = typeof given === 'string' ? canonicalTime(given) : NaN;
      const canonical = !Number.isNaN(born);
      if (!canonical && typeof given === 'string') born = Date.parse(given);
      if (!Number.isFinite(born)) {
        return { code: ErrorCodes.INVALID_ENVELOPE, message: 'timestamp must be an ISO 8601 time' };
      }

      const context = sanitizeProperties(e.context, contextOptions, name);
      if (!context.ok) return { code: context.error.code, message: `context: ${context.error.message}` };
      let ctx = context.value as EventContext;
      let ts = born + skew;
      if (ts > now + MAX_FUTURE_MS) {
        ctx = ownContext(ctx, e.context);
        ctx.clientTimestamp = given as string;
        ts = now;
      }

      let properties: Record<string, JsonValue>;
      if (name === REQUEST_LOG_EVENT) {
        const log = e.properties as RequestLogRecord;
        const problem = checkRequestLog(log);
        if (problem) return { code: problem.code, message: problem.message };
        if (log.id !== e.id) {
          return { code: ErrorCodes.INVALID_ENVELOPE, message: 'request log: id must equal the envelope id' };
        }
        if (utf8Length(JSON.stringify(log)) > MAX_REQUEST_LOG_BYTES) {
          return { code: ErrorCodes.PAYLOAD_TOO_LARGE, message: `request log over ${MAX_REQUEST_LOG_BYTES} bytes` };
        }
        // The key decides the tenant, whatever the producer wrote.
        properties = { ...log, tenantId: tenant.tenantId, timestamp: isoTime(ts) } as unknown as Record<
          string,
          JsonValue
        >;
      } else {
        const checked = validator(name, e.properties, tenant.unplanned);
        if (checked.ok) {
          properties = checked.properties;
          if (checked.unplanned !== undefined) {
            // The keys say what to declare in the catalog (allowed) or what was dropped (stripped).
            ctx = ownContext(ctx, e.context);
            ctx[checked.unplanned.policy === 'allow' ? 'unplanned' : 'stripped'] = checked.unplanned.keys;
          }
        } else if (
          checked.error.code === ErrorCodes.UNKNOWN_EVENT &&
          (tenant.acceptUnlisted || SYSTEM_EVENTS.has(name))
        ) {
          const clean = sanitizeProperties(e.properties, sanitizeOptions, name);
          if (!clean.ok) return { code: clean.error.code, message: clean.error.message };
          properties = clean.value;
          if (!SYSTEM_EVENTS.has(name)) {
            ctx = ownContext(ctx, e.context);
            ctx.unlisted = true;
          }
        } else return { code: checked.error.code, message: checked.error.message };
      }

      const event: TallyEvent = {
        id: e.id as string,
        name,
        tenantId: tenant.tenantId,
        properties,
        context: ctx,
        timestamp: canonical && ts === born ? (given as string) : isoTime(ts),
        receivedAt,
      };
      if (typeof e.userId === 'string') event.userId = e.userId;
      if (typeof e.anonymousId === 'string') event.anonymousId = e.anonymousId;
      if (Number.isFinite(sent)) event.sentAt = sentAt as string;
      if (
        out.verbatim &&
        !(
          name !== REQUEST_LOG_EVENT &&
          event.timestamp === given &&
          asGiven(properties, e.properties) &&
          asGiven(ctx, e.context)
        )
      ) {
        out.verbatim = false;
      }
      out.events.push(event);
      return undefined;
    }
  };
}

const ID_KEYS = ['userId', 'anonymousId'] as const;

/** The object an event carries is the one its item carried, or a fresh empty one for none given. */
function asGiven(value: object, given: unknown): boolean {
  if (value === given) return true;
  if (given !== undefined && given !== null) return false;
  for (const _ in value) return false;
  return true;
}

/** The context to add a key to: a copy when it is the producer's own object (reused as it was). */
function ownContext(ctx: EventContext, given: unknown): EventContext {
  return ctx === given ? { ...ctx } : ctx;
}
