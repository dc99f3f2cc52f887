/**
 * The logs cursor without Node's Buffer: the same text as Buffer's base64url for any input (so cursors
 * the engines gave before still read), round trips, and anything else refused naming the field.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeLogCursor,
  encodeLogCursor,
  ErrorCodes,
  logPositionMicros,
  logPositionTs,
  TallyError,
  uuidv7,
} from '../src/index.js';

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('logs cursor', () => {
  it("encodes as Buffer's base64url of the JSON position, and decodes what it encodes", () => {
    for (let i = 0; i < 300; i++) {
      const ms = Date.parse('2020-01-01T00:00:00Z') + Math.floor(Math.random() * 2e11);
      const position = {
        ts: new Date(ms).toISOString().replace('Z', `${String(i % 1000).padStart(3, '0')}Z`),
        id: uuidv7(ms),
      };
      const cursor = encodeLogCursor(position);
      expect(cursor).toBe(b64(JSON.stringify(position)));
      expect(decodeLogCursor(cursor)).toEqual(position);
    }
  });

  it('reads cursors whose JSON has other text, of every length modulo 3', () => {
    const id = uuidv7();
    for (const extra of ['', 'x', 'xy', 'ü', '∑', '😀', 'ab😀c']) {
      const json = JSON.stringify({ ts: '2026-03-01T00:00:00.000000Z', id, extra });
      expect(decodeLogCursor(b64(json))).toEqual({ ts: '2026-03-01T00:00:00.000000Z', id });
    }
  });

  it('refuses what it did not make, naming the field', () => {
    const id = uuidv7();
    const bad = [
      'x',
      '!!!!',
      'ab==',
      b64('not json'),
      b64('null'),
      b64('[]'),
      b64('{}'),
      b64(JSON.stringify({ ts: '2026-03-01T00:00:00.000000Z' })),
      b64(JSON.stringify({ ts: '2026-02-30T00:00:00.000000Z', id })),
      b64(JSON.stringify({ ts: '2026-03-01', id })),
      b64(JSON.stringify({ ts: '2026-03-01T00:00:00.000Z', id })),
      b64(JSON.stringify({ ts: '2026-03-01T00:00:00.000000Z', id: id.toUpperCase() })),
      b64(JSON.stringify({ ts: 1, id })),
      // Not UTF-8.
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url'),
    ];
    for (const cursor of bad) {
      const error = (() => {
        try {
          decodeLogCursor(cursor);
        } catch (e) {
          return e;
        }
      })();
      expect(error, cursor).toBeInstanceOf(TallyError);
      expect((error as TallyError).code).toBe(ErrorCodes.BAD_QUERY);
      expect((error as TallyError).details).toEqual({ path: 'cursor' });
    }
  });

  it('reads a position as epoch microseconds, and writes an epoch ms as a position time', () => {
    const ms = Date.parse('2026-03-01T12:34:56.789Z');
    expect(logPositionTs(ms)).toBe('2026-03-01T12:34:56.789000Z');
    const id = uuidv7();
    expect(logPositionMicros({ ts: logPositionTs(ms), id })).toBe(ms * 1000);
    expect(logPositionMicros({ ts: '2026-03-01T12:34:56.789123Z', id })).toBe(ms * 1000 + 123);
    expect(logPositionMicros({ ts: '1970-01-01T00:00:00.000001Z', id })).toBe(1);
  });
});
