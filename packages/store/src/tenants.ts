/**
 * Tenants and their keys. A key is shown once, at creation; the database keeps only its SHA-256
 * (a leaked table yields no usable key) and a short prefix so people can tell keys apart.
 *
 * Scopes: `write` keys ingest and nothing else, so they can ship inside apps and browsers; `read` keys
 * read their tenant's analytics; `admin` keys manage keys, tenants, jobs and the quarantine, of one
 * tenant or (with no tenant) of the whole server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ErrorCodes, TallyError, TallyConfigError, type UnplannedPolicy } from '@tally/core';
import type { SqlClient } from './sql-client.js';

export interface Tenant {
  id: string;
  name: string;
  /** NULL: the server's `--unlisted` setting. */
  acceptUnlisted: boolean | null;
  /** Events per second; NULL: the server's `--rate-limit`. */
  rateLimit: number | null;
  /** Undeclared properties; NULL: the server's `--unplanned`. */
  unplanned: UnplannedPolicy | null;
}

export type KeyScope = 'write' | 'read' | 'admin';

export const KEY_SCOPES: readonly KeyScope[] = ['write', 'read', 'admin'];

export interface ApiKeyInfo {
  id: string;
  /** null: a server-wide admin key. */
  tenantId: string | null;
  scope: KeyScope;
  prefix: string;
  name: string | null;
  createdAt: string;
  revokedAt: string | null;
}

/** What a valid key resolves to: everything the collector needs to accept a batch. */
export interface KeyOwner {
  keyId: string;
  scope: KeyScope;
  /** null only for a server-wide admin key. */
  tenant: Tenant | null;
}

const KEY_PREFIX = 'tk_';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkTenantId(id: string): void {
  if (!TENANT_ID.test(id)) {
    throw new TallyError(
      ErrorCodes.CONFIG,
      `tenant id "${id}" must be 1–63 letters, digits, _ . - (starting with a letter or digit)`,
    );
  }
}

export async function ensureTenant(sql: SqlClient, id: string, name = id): Promise<void> {
  checkTenantId(id);
  await sql.query('INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, name]);
}

export async function updateTenant(
  sql: SqlClient,
  id: string,
  settings: { acceptUnlisted?: boolean | null; rateLimit?: number | null; unplanned?: UnplannedPolicy | null },
): Promise<Tenant> {
  const rows = await sql.query<TenantRow>(
    `UPDATE tenants SET
       accept_unlisted = CASE WHEN $2 THEN $3::boolean ELSE accept_unlisted END,
       rate_limit = CASE WHEN $4 THEN $5::integer ELSE rate_limit END,
       unplanned = CASE WHEN $6 THEN $7::text ELSE unplanned END
     WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
    [
      id,
      settings.acceptUnlisted !== undefined,
      settings.acceptUnlisted ?? null,
      settings.rateLimit !== undefined,
      settings.rateLimit ?? null,
      settings.unplanned !== undefined,
      settings.unplanned ?? null,
    ],
  );
  if (!rows[0]) throw new TallyError(ErrorCodes.NOT_FOUND, `no tenant "${id}"`);
  return toTenant(rows[0]);
}

export async function listTenants(sql: SqlClient): Promise<Tenant[]> {
  const rows = await sql.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY id`);
  return rows.map(toTenant);
}

/**
 * Creates a key (default scope `write`) for the tenant, creating the tenant too; `tenantId: null` makes
 * a server-wide admin key. The plain key is returned here and never again.
 */
export async function createApiKey(
  sql: SqlClient,
  tenantId: string | null,
  options: { name?: string; scope?: KeyScope } = {},
): Promise<{ key: string; info: ApiKeyInfo }> {
  const scope = options.scope ?? 'write';
  if (!KEY_SCOPES.includes(scope)) {
    throw new TallyConfigError(`key scope "${scope}" must be one of ${KEY_SCOPES.join(', ')}`);
  }
  if (tenantId === null && scope !== 'admin') {
    throw new TallyConfigError(`a ${scope} key belongs to one tenant: name it (--tenant <id>)`);
  }
  if (tenantId !== null) await ensureTenant(sql, tenantId);
  const key = KEY_PREFIX + randomBytes(24).toString('base64url');
  const id = `key_${randomBytes(6).toString('hex')}`;
  const rows = await sql.query<KeyRow>(
    `INSERT INTO api_keys (id, tenant_id, key_hash, prefix, name, scope) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${KEY_COLUMNS}`,
    [id, tenantId, hashKey(key), key.slice(0, 10), options.name ?? null, scope],
  );
  return { key, info: toKeyInfo(rows[0] as KeyRow) };
}

export async function listApiKeys(sql: SqlClient, tenantId?: string): Promise<ApiKeyInfo[]> {
  const rows = await sql.query<KeyRow>(
    `SELECT ${KEY_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR tenant_id = $1
     ORDER BY tenant_id NULLS FIRST, created_at`,
    [tenantId ?? null],
  );
  return rows.map(toKeyInfo);
}

/** Revokes by id or by the key's shown prefix; returns how many keys it revoked (0 or 1). */
export async function revokeApiKey(sql: SqlClient, idOrPrefix: string): Promise<number> {
  const rows = await sql.query(
    `UPDATE api_keys SET revoked_at = now()
     WHERE revoked_at IS NULL AND id IN (SELECT id FROM api_keys WHERE id = $1 OR prefix = $1)
     RETURNING id`,
    [idOrPrefix],
  );
  if (rows.length > 1) throw new TallyError(ErrorCodes.CONFIG, `"${idOrPrefix}" matches several keys; use the key id`);
  return rows.length;
}

/** The live key's owner, or undefined for unknown and revoked keys. */
export async function findKeyOwner(sql: SqlClient, key: string): Promise<KeyOwner | undefined> {
  const rows = await sql.query<Partial<TenantRow> & { key_id: string; scope: KeyScope }>(
    `SELECT k.id AS key_id, k.scope, t.id, t.name, t.accept_unlisted, t.rate_limit, t.unplanned
     FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id
     WHERE k.key_hash = $1 AND k.revoked_at IS NULL`,
    [hashKey(key)],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { keyId: row.key_id, scope: row.scope, tenant: row.id ? toTenant(row as TenantRow) : null };
}

export async function countApiKeys(sql: SqlClient): Promise<number> {
  const rows = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM api_keys');
  return Number(rows[0]?.n ?? 0);
}

interface TenantRow {
  id: string;
  name: string;
  accept_unlisted: boolean | null;
  rate_limit: number | null;
  unplanned: UnplannedPolicy | null;
}

const TENANT_COLUMNS = 'id, name, accept_unlisted, rate_limit, unplanned';

interface KeyRow {
  id: string;
  tenant_id: string | null;
  scope: KeyScope;
  prefix: string;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
}

const KEY_COLUMNS = `id, tenant_id, scope, prefix, name,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
  to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS revoked_at`;

function toTenant(r: TenantRow): Tenant {
  return {
    id: r.id,
    name: r.name,
    acceptUnlisted: r.accept_unlisted,
    rateLimit: r.rate_limit === null ? null : Number(r.rate_limit),
    unplanned: r.unplanned ?? null,
  };
}

function toKeyInfo(r: KeyRow): ApiKeyInfo {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    scope: r.scope,
    prefix: r.prefix,
    name: r.name,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}
