/**
 * Key scopes over real HTTP: a write key (the one apps carry) can only send events; a read key can
 * only read, and only its own tenant; an admin key of one tenant manages only that tenant, and no key
 * but a server-wide admin one (or the loopback token) manages the server.
 */
import { isoTime, uuidv7 } from '@tally/core';
import { createApiKey } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveFor, type TestServer } from './support/services.js';

describe('key scopes', () => {
  let s: TestServer;
  const keys: Record<string, string> = {};

  async function call(method: string, path: string, key: string, body?: unknown) {
    const res = await fetch(`${s.server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
  }
  const send = (key: string, tenantTag: string) =>
    call('POST', '/v1/events', key, {
      batch: [
        { id: uuidv7(), name: 'waitlist_joined', properties: { source: tenantTag }, timestamp: isoTime(Date.now()) },
      ],
    });
  const forbidden = { status: 403, body: { error: { code: 'TALLY_FORBIDDEN' } } };

  beforeAll(async () => {
    s = await serveFor('pglite', { 'snapshot-every': '1' });
    const sql = s.server.store.sql;
    keys.writeA = (await createApiKey(sql, 'acme')).key;
    keys.readA = (await createApiKey(sql, 'acme', { scope: 'read' })).key;
    keys.writeB = (await createApiKey(sql, 'globex')).key;
    keys.readB = (await createApiKey(sql, 'globex', { scope: 'read' })).key;
    keys.adminA = (await createApiKey(sql, 'acme', { scope: 'admin' })).key;
    keys.admin = (await createApiKey(sql, null, { scope: 'admin' })).key;
  });
  afterAll(() => s?.dispose());

  it('a write key sends events and cannot read anything', async () => {
    expect(await send(keys.writeA as string, 'acme')).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(await call('GET', '/v1/snapshots/latest', keys.writeA as string)).toMatchObject(forbidden);
    expect(await call('GET', '/v1/admin/rejected', keys.writeA as string)).toMatchObject(forbidden);
    expect(await call('GET', '/v1/admin/keys', keys.writeA as string)).toMatchObject(forbidden);
  });

  it('a read key cannot write, cannot create keys, and reads its own tenant only', async () => {
    expect(await send(keys.readA as string, 'acme')).toMatchObject(forbidden);
    const basic = `Basic ${Buffer.from(`${keys.readA}:`).toString('base64')}`;
    const segment = await fetch(`${s.server.url}/v1/batch`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ batch: [{ type: 'track', event: 'waitlist_joined', userId: 'u', properties: {} }] }),
    });
    expect(segment.status).toBe(403);
    expect(await call('POST', '/v1/admin/keys', keys.readA as string, { tenant: 'acme' })).toMatchObject(forbidden);

    expect(await send(keys.writeB as string, 'globex')).toMatchObject({ status: 200 });
    // The snapshot follows writer batches; wait until it has both tenants.
    const deadline = Date.now() + 20_000;
    let a: { status: number; body: Record<string, unknown> } = { status: 0, body: {} };
    let b = a;
    while (Date.now() < deadline) {
      a = await call('GET', '/v1/snapshots/latest', keys.readA as string);
      b = await call('GET', '/v1/snapshots/latest', keys.readB as string);
      if (JSON.stringify(a.body).includes('waitlist_joined') && JSON.stringify(b.body).includes('waitlist_joined'))
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(a).toMatchObject({ status: 200, body: { tenantId: 'acme' } });
    expect(b).toMatchObject({ status: 200, body: { tenantId: 'globex' } });
    // Both tenants sent the same event: each read key sees its own count of it, never the other's.
    expect(JSON.stringify(a.body)).toContain('waitlist_joined');
    expect(JSON.stringify(b.body)).toContain('waitlist_joined');
    expect(JSON.stringify(a.body)).not.toContain('globex');
    expect(JSON.stringify(b.body)).not.toContain('acme');
  });

  it("a tenant's admin key manages that tenant only; a server-wide admin key manages the server", async () => {
    const adminA = keys.adminA as string;
    expect(await send(adminA, 'acme')).toMatchObject(forbidden);
    expect(await call('POST', '/v1/admin/keys', adminA, { tenant: 'acme', scope: 'read' })).toMatchObject({
      status: 200,
      body: { info: { tenantId: 'acme', scope: 'read' } },
    });
    expect(await call('POST', '/v1/admin/keys', adminA, { tenant: 'globex' })).toMatchObject(forbidden);
    expect(await call('GET', '/v1/admin/rejected?tenant=globex', adminA)).toMatchObject(forbidden);
    expect(await call('GET', '/v1/admin/rejected', adminA)).toMatchObject({ status: 200, body: { counts: {} } });
    expect(await call('GET', '/v1/admin/tenants', adminA)).toMatchObject(forbidden);

    const admin = keys.admin as string;
    expect(await send(admin, 'none')).toMatchObject(forbidden);
    const tenants = await call('GET', '/v1/admin/tenants', admin);
    expect(tenants.status).toBe(200);
    expect(tenants.body.tenants.map((t: { id: string }) => t.id)).toEqual(
      expect.arrayContaining(['acme', 'globex', 'default']),
    );
    expect(await call('POST', '/v1/admin/keys', admin, { tenant: 'globex', scope: 'write' })).toMatchObject({
      status: 200,
    });
  });

  it('no key or an unknown key is 401, before any scope is looked at', async () => {
    expect(await call('GET', '/v1/snapshots/latest', 'tk_unknown')).toMatchObject({
      status: 401,
      body: { error: { code: 'TALLY_UNAUTHORIZED' } },
    });
    const none = await fetch(`${s.server.url}/v1/admin/keys`);
    expect(none.status).toBe(401);
  });
});
