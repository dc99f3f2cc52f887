/**
 * Back-pressure through NATS, end to end: `tally serve` on Postgres and JetStream whose consumer cannot
 * store (another session holds the events table), so the stream's lag grows past its bound. The collector
 * must then answer 503 TALLY_OVERLOADED in its JSON with a Retry-After, instead of taking more than the
 * consumer stores; and every event it did acknowledge must be stored once the table is free again.
 */
import { isoTime, uuidv7 } from '@tally/core';
import type { NatsTransport } from '@tally/nats';
import postgres from 'postgres';
import { expect } from 'vitest';
import { needs } from '../../node/test/support/service-gate.js';
import { nats, PG_URL, pg, serveFor, type TestServer } from './support/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function body(n: number): { ids: string[]; text: string } {
  const batch = Array.from({ length: n }, () => ({
    id: uuidv7(),
    name: 'waitlist_joined',
    properties: { source: 'backpressure' },
    timestamp: isoTime(Date.now()),
  }));
  return { ids: batch.map((e) => e.id), text: JSON.stringify({ batch, sentAt: isoTime(Date.now()) }) };
}

async function send(s: TestServer, text: string) {
  const res = await fetch(`${s.server.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
    body: text,
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), json: (await res.json()) as unknown };
}

async function stored(s: TestServer, ids: string[]): Promise<number> {
  const rows = await s.server.store.sql.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM events WHERE id = ANY($1::uuid[])',
    [ids],
  );
  return Number(rows[0]?.n);
}

needs(pg, nats).it(
  'a consumer that cannot store: the collector answers 503 TALLY_OVERLOADED with Retry-After, and every event it acknowledged is stored',
  async () => {
    const s = await serveFor('postgres+nats', {}, { nats: { maxLagMs: 500, lagWaitMs: 400 } });
    const db = postgres(PG_URL, { max: 1, onnotice: () => undefined });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    try {
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const tx = db.begin(async (t) => {
        await t.unsafe(`LOCK TABLE "${s.flags.schema as string}".events IN ACCESS EXCLUSIVE MODE`);
        locked();
        await held;
      });
      await isLocked;

      const acknowledged: string[] = [];
      const refusedIds: string[] = [];
      let refusal: Awaited<ReturnType<typeof send>> | undefined;
      for (let i = 0; i < 60 && refusal === undefined; i++) {
        const b = body(10);
        const answer = await send(s, b.text);
        if (answer.status === 200) {
          expect(answer.json).toMatchObject({ accepted: 10 });
          acknowledged.push(...b.ids);
        } else {
          refusal = answer;
          refusedIds.push(...b.ids);
        }
        await sleep(50);
      }
      // The first batches were taken while the lag was under its bound, then the collector refused.
      expect(acknowledged.length).toBeGreaterThan(0);
      expect(refusal).toMatchObject({
        status: 503,
        json: { error: { code: 'TALLY_OVERLOADED', message: expect.stringMatching(/behind/) } },
      });
      expect(Number(refusal?.retryAfter)).toBeGreaterThanOrEqual(1);
      expect((s.server.transport as NatsTransport).lag()).toBeGreaterThan(500);

      release();
      await tx;
      const deadline = Date.now() + 20_000;
      while ((await stored(s, acknowledged)) < acknowledged.length && Date.now() < deadline) await sleep(100);
      expect(await stored(s, acknowledged)).toBe(acknowledged.length);
      expect(await stored(s, refusedIds)).toBe(0);

      // Caught up: the collector takes batches again.
      const after = body(5);
      expect((await send(s, after.text)).status).toBe(200);
      while ((await stored(s, after.ids)) < 5 && Date.now() < deadline) await sleep(100);
      expect(await stored(s, after.ids)).toBe(5);
    } finally {
      release();
      await db.end();
      await s.dispose();
    }
  },
  60_000,
);
