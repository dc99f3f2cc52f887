/**
 * The lines the ClickHouse lifecycle writes are built by hand for speed: they must be exactly what the
 * slow way gives (core's archiveTime and isoTime, JSON.stringify), for any time and any text.
 */
import { archiveTime, isoTime } from '@tally/core';
import { describe, expect, it } from 'vitest';
import {
  archiveUtc,
  eventArchiveLine,
  eventExportLine,
  isoUtc,
  requestLogArchiveLine,
  requestLogExportLine,
} from '../src/lifecycle-lines.js';

/** A small seeded generator, so a failure repeats. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = [
  '',
  'plain',
  'quote " and \\ backslash',
  'line\nbreak\r\ttab\u0000nul\u001f',
  'emoji 🎉 and ü',
  'lone \ud800 high',
  'lone \udc00 low',
  '\u2028\u2029 separators',
  '</script>',
];

describe('ClickHouse lifecycle lines', () => {
  it('times: the same text as core for whole seconds, milliseconds, day edges, before the epoch, up to year 9999', () => {
    const rand = random(7);
    const times = [0, 999, 1000, 86_399_999, 86_400_000, Date.parse('2026-03-10T12:00:00.120Z'), -1, -86_400_001];
    times.push(253402300799999);
    for (let i = 0; i < 20_000; i++) times.push(Math.floor(rand() * 4_102_444_800_000));
    for (const ms of times) {
      expect(isoUtc(ms), String(ms)).toBe(isoTime(ms));
      expect(archiveUtc(ms), String(ms)).toBe(archiveTime(ms));
    }
  });

  it('text: quoted exactly as JSON.stringify quotes it, the lines parse back to what was stored', () => {
    for (const s of HOSTILE) {
      const row = {
        uuid: '01a24336-b288-7526-b572-e84572165895',
        tenant_id: s,
        name: s,
        user_id: s,
        anonymous_id: s,
        properties: JSON.stringify({ s }),
        context: '{}',
        ts_ms: 1773144000123,
        received_ms: 1773144000000,
      };
      const archived = JSON.parse(eventArchiveLine(row)) as Record<string, unknown>;
      expect(eventArchiveLine(row)).toContain(`"name":${JSON.stringify(s)}`);
      expect(archived).toEqual({
        id: row.uuid,
        tenant_id: s,
        name: s,
        user_id: s === '' ? null : s,
        anonymous_id: s === '' ? null : s,
        properties: { s },
        context: {},
        ts: '2026-03-10T12:00:00.123+00:00',
        received_at: '2026-03-10T12:00:00+00:00',
      });
      expect(JSON.parse(eventExportLine(row))).toMatchObject({ name: s, timestamp: '2026-03-10T12:00:00.123Z' });
      const log = {
        uuid: row.uuid,
        tenant_id: 't',
        request_id: s,
        method: 'GET',
        route: s,
        url: s,
        status: 200,
        duration_ms: 1.5,
        request_bytes: null,
        response_bytes: 3,
        user_id: '',
        api_key_id: null,
        ip: null,
        user_agent: s,
        headers: JSON.stringify({ h: s }),
        request_body: s,
        response_body: null,
        body_truncated: 1,
        stream_body: null,
        aborted: 0,
        error: s,
        ts_ms: 1773144000123,
        received_ms: 1773144000123,
      };
      expect(JSON.parse(requestLogArchiveLine(log))).toMatchObject({
        request_id: s,
        route: s === '' ? null : s,
        url: s,
        headers: { h: s },
        body_truncated: true,
        aborted: false,
        user_id: null,
        request_bytes: null,
      });
      expect(JSON.parse(requestLogExportLine(log))).toMatchObject({ userAgent: s, error: s, bodyTruncated: true });
      expect(requestLogArchiveLine(log)).toContain(`"url":${JSON.stringify(s)}`);
    }
  });
});
