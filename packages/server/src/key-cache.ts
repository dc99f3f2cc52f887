/**
 * Write-key lookups for the collector, cached: a key is hashed and looked up once per TTL, not once per
 * request. Revoking a key therefore takes effect within `ttlMs` (30 s by default) on a running server.
 * Unknown keys are cached too (briefly), so a client hammering with a wrong key costs no queries.
 */
import { ErrorCodes, TallyError } from '@tally/core';
import { findKeyOwner, type KeyOwner, type Store } from '@tally/store';

export interface KeyCache {
  resolve(key: string): Promise<KeyOwner | undefined>;
  /** Drops the cached answers `select` picks (a revoked key, a changed tenant, unknown keys after a create). */
  forget(select: (owner: KeyOwner | undefined) => boolean): void;
}

const MAX_ENTRIES = 10_000;

export function createKeyCache(store: Store, options: { ttlMs?: number; missTtlMs?: number } = {}): KeyCache {
  const ttl = options.ttlMs ?? 30_000;
  const missTtl = options.missTtlMs ?? 2_000;
  const entries = new Map<string, { owner: KeyOwner | undefined; until: number }>();
  const pending = new Map<string, Promise<KeyOwner | undefined>>();
  let generation = 0;
  return {
    async resolve(key) {
      const now = Date.now();
      const hit = entries.get(key);
      if (hit && hit.until > now) return hit.owner;
      const asked = generation;
      let p = pending.get(key);
      if (!p) {
        p = findKeyOwner(store.sql, key).finally(() => pending.delete(key));
        pending.set(key, p);
      }
      const owner = await p;
      // A lookup that raced a forget() may hold the old answer: use it once, do not keep it.
      if (asked !== generation) return owner;
      if (entries.size >= MAX_ENTRIES) entries.clear();
      entries.set(key, { owner, until: now + (owner ? ttl : missTtl) });
      return owner;
    },
    forget(select) {
      generation++;
      pending.clear();
      for (const [key, entry] of entries) if (select(entry.owner)) entries.delete(key);
    },
  };
}

/**
 * The owner of a key a request carries: 401 when it is unknown or revoked; 503 with Retry-After when the
 * lookup itself fails (the database is unreachable), logged, so that a client retries instead of taking
 * its key for a bad one.
 */
export async function keyOwner(
  keys: KeyCache,
  key: string,
  log: { error(details: object, message: string): void },
): Promise<KeyOwner> {
  let owner: KeyOwner | undefined;
  try {
    owner = await keys.resolve(key);
  } catch (e) {
    log.error({ err: e }, 'key lookup failed');
    throw new TallyError(ErrorCodes.UNAVAILABLE, 'cannot check the key now (database unreachable)', {
      retryAfterS: 1,
    });
  }
  if (!owner) throw new TallyError(ErrorCodes.UNAUTHORIZED, 'unknown or revoked key');
  return owner;
}
