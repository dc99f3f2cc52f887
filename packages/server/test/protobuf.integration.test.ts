/**
 * Protobuf batches from an encoder that is not Tally's (Debian's `protoc --encode`) into a real
 * `tally serve`: over HTTP (`POST /v1/events`, `Content-Type: application/x-protobuf`) and published
 * straight to JetStream with a `Content-Type` header, as a Rust or Go service would. The same batch as
 * JSON stores identical rows; a batch sent twice is stored once; malformed protobuf gets a typed 400, an
 * unreadable event is refused and quarantined alone, an unreadable NATS message is dead-lettered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ErrorCodes, isoTime, uuidv7 } from '@tally/core';
import { connect, HEADER_CONTENT_TYPE, headers as natsHeaders, jetstream } from '@tally/nats';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { needs, probeProtoc } from '../../node/test/support/service-gate.js';
import { type JsonBatch, protocEncode, sampleBatch, textFormat } from '../../core/test/support/protoc.js';
import { natsDeadLetterPath } from '../src/spool-files.js';
import { NATS_URL, nats, serveFor, type TestServer } from './support/services.js';

const protoc = probeProtoc();

async function post(s: TestServer, body: Uint8Array | string, type: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.server.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': type, authorization: `Bearer ${s.key}`, ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every stored row of both tables, without the arrival time (the server's clock). */
async function rows(s: TestServer) {
  const events = await s.server.store.sql.query(
    `SELECT id::text, tenant_id, name, user_id, anonymous_id, properties, context, ts
     FROM events ORDER BY id`,
  );
  const logs = await s.server.store.sql.query(`SELECT * FROM request_logs ORDER BY id`);
  return { events, logs: logs.map(({ received_at: _r, ...r }: Record<string, unknown>) => r) };
}

async function waitForRows(s: TestServer, events: number, logs: number) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const t = await s.server.store.totals();
    if (t.events >= events && t.requestLogs >= logs) return;
    if (Date.now() > deadline) throw new Error(`stored ${JSON.stringify(t)}, waiting for ${events} + ${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A batch stamped now (the collector would move times more than 5 minutes off). */
function freshBatch(tenantId = 'default'): JsonBatch {
  const b = sampleBatch(tenantId);
  const shift = Date.now() - Date.parse(b.sentAt);
  const at = (iso: string) => isoTime(Date.parse(iso) + shift);
  return {
    ...b,
    sentAt: at(b.sentAt),
    batch: b.batch.map((e) => {
      const ts = Date.parse(e.timestamp) + shift;
      const id = uuidv7(ts);
      const properties = e.name === '$request' ? { ...e.properties, id, timestamp: isoTime(ts) } : e.properties;
      return { ...e, id, properties, timestamp: isoTime(ts) };
    }),
  };
}

needs(protoc).describe('protobuf batches over HTTP', () => {
  let json: TestServer;
  let proto: TestServer;
  beforeAll(async () => {
    [json, proto] = await Promise.all([serveFor('pglite'), serveFor('pglite')]);
  }, 60_000);
  afterAll(() => Promise.all([json?.dispose(), proto?.dispose()]));

  it('stores the rows the same batch stores as JSON, once when sent twice', async () => {
    const b = freshBatch();
    const bytes = protocEncode(textFormat(b));
    const a = await post(json, JSON.stringify(b), 'application/json');
    const p = await post(proto, bytes, 'application/x-protobuf');
    expect(a).toEqual({ status: 200, body: { accepted: 4, rejected: [], duplicates: 0 } });
    expect(p).toEqual(a);
    const again = await post(proto, gzipSync(bytes), 'application/x-protobuf', { 'content-encoding': 'gzip' });
    expect(again).toEqual({ status: 200, body: { accepted: 4, rejected: [], duplicates: 4 } });
    const want = await rows(json);
    expect(want.events).toHaveLength(3);
    expect(want.logs).toHaveLength(1);
    expect(await rows(proto)).toEqual(want);
  });

  it('refuses bytes that are not a batch with a typed 400, and protobuf on JSON-only routes with a 415', async () => {
    const garbage = await post(proto, Uint8Array.from([0x0a, 0xff, 0xff, 0x01]), 'application/x-protobuf');
    expect(garbage.status).toBe(400);
    expect(garbage.body).toEqual({
      error: { code: ErrorCodes.MALFORMED_BODY, message: expect.stringMatching(/^unreadable protobuf batch: /) },
    });
    const segment = await fetch(`${proto.server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${proto.key}` },
      body: protocEncode(textFormat(freshBatch())),
    });
    expect(segment.status).toBe(415);
    expect(((await segment.json()) as { error: { code: string } }).error.code).toBe(ErrorCodes.UNSUPPORTED_MEDIA_TYPE);
    // The server is none the worse.
    expect((await fetch(`${proto.server.url}/healthz`)).status).toBe(200);
  });

  it('refuses and quarantines an unreadable event and a bad one alone; the rest are stored', async () => {
    const b = freshBatch();
    // A property that is not JSON-safe (NaN), written by protoc: a bad event in a readable batch.
    const first = b.batch[0] as JsonBatch['batch'][number];
    first.properties = { ...first.properties, durationMs: Number.NaN };
    // One more `events` field holding an Event whose name is not UTF-8: an unreadable event.
    const bytes = Buffer.concat([protocEncode(textFormat(b)), Buffer.from([0x0a, 4, 0x12, 2, 0xff, 0xfe])]);
    const before = await proto.server.store.totals();
    const r = await post(proto, bytes, 'application/x-protobuf');
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(3);
    expect(r.body.rejected).toEqual([
      { index: 0, id: first.id, code: ErrorCodes.NOT_JSON_SAFE, message: expect.any(String) },
      { index: 4, code: ErrorCodes.INVALID_ENVELOPE, message: expect.stringMatching(/^event: .*utf-8/i) },
    ]);
    const after = await proto.server.store.totals();
    expect(after.events - before.events).toBe(2);
    expect(after.requestLogs - before.requestLogs).toBe(1);
    const kept = await proto.server.store.sql.query<{ code: string; item: string }>(
      `SELECT code, item FROM quarantine ORDER BY code`,
    );
    expect(kept.map((k) => k.code)).toEqual([ErrorCodes.INVALID_ENVELOPE, ErrorCodes.NOT_JSON_SAFE]);
    expect(JSON.parse(kept[0]?.item as string)).toEqual({
      protobuf: Buffer.from([0x12, 2, 0xff, 0xfe]).toString('base64'),
    });
  });
});

needs(protoc, nats).describe('protobuf batches published to NATS JetStream', () => {
  let json: TestServer;
  let proto: TestServer;
  beforeAll(async () => {
    [json, proto] = await Promise.all([serveFor('pglite+nats'), serveFor('pglite+nats')]);
  }, 60_000);
  afterAll(() => Promise.all([json?.dispose(), proto?.dispose()]));

  /** Publishes as a service in another language would: events and request logs on their subjects. */
  async function publish(s: TestServer, b: JsonBatch, as: 'json' | 'protobuf', msgId: string) {
    const nc = await connect({ servers: NATS_URL });
    try {
      const js = jetstream(nc);
      const prefix = s.flags['nats-prefix'] as string;
      for (const kind of ['events', 'requests'] as const) {
        const part = { ...b, batch: b.batch.filter((e) => (e.name === '$request') === (kind === 'requests')) };
        const h = natsHeaders();
        h.set('Nats-Msg-Id', `${msgId}-${kind}`);
        if (as === 'protobuf') h.set(HEADER_CONTENT_TYPE, 'application/x-protobuf');
        const data = as === 'protobuf' ? protocEncode(textFormat(part)) : Buffer.from(JSON.stringify(part));
        await js.publish(`${prefix}.analytics.${kind}`, data, { headers: h });
      }
    } finally {
      await nc.close();
    }
  }

  it('stores the rows the same batch stores as JSON, once when published twice', async () => {
    const b = freshBatch();
    await publish(json, b, 'json', 'a');
    await publish(proto, b, 'protobuf', 'a');
    // Again with another message id: past the stream's dedupe, the writer's dedupe by event id holds.
    await publish(proto, b, 'protobuf', 'b');
    await Promise.all([waitForRows(json, 3, 1), waitForRows(proto, 3, 1)]);
    await new Promise((r) => setTimeout(r, 500));
    const want = await rows(json);
    expect(want.events).toHaveLength(3);
    expect(await rows(proto)).toEqual(want);
  });

  it('dead-letters a message that is not a protobuf batch, and goes on', async () => {
    const nc = await connect({ servers: NATS_URL });
    try {
      const h = natsHeaders();
      h.set(HEADER_CONTENT_TYPE, 'application/x-protobuf');
      const prefix = proto.flags['nats-prefix'] as string;
      await jetstream(nc).publish(`${prefix}.analytics.events`, Uint8Array.from([0x0a, 0xff, 0xff, 0x01]), {
        headers: h,
      });
    } finally {
      await nc.close();
    }
    const file = natsDeadLetterPath(join(proto.dataDir, 'spool'));
    const deadline = Date.now() + 15_000;
    let lines: Record<string, unknown>[] = [];
    while (lines.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        lines = readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
      } catch {
        // not written yet
      }
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      reason: expect.stringMatching(/^unreadable message: not a tally.v1.Batch/),
      dataBase64: Buffer.from([0x0a, 0xff, 0xff, 0x01]).toString('base64'),
    });
    const before = await proto.server.store.totals();
    const b = freshBatch();
    await publish(proto, b, 'protobuf', 'c');
    await waitForRows(proto, before.events + 3, before.requestLogs + 1);
  });
});
