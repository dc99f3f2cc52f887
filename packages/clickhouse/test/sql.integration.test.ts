/**
 * The one escaping function (sql.ts) against both engines: any string a user or producer can send, as a
 * literal, reads back as exactly that string — quotes, backslashes, NUL, line breaks, SQL comments,
 * `FORMAT` and `SETTINGS` keywords, unicode, lone surrogates (as U+FFFD) — and a hostile value never
 * changes what a statement does. fast-check generates the strings; known attacks are tried by name.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '../src/client.js';
import { ident, int, num, str, strs } from '../src/sql.js';
import { engines, openClient } from './support/engines.js';

const ATTACKS = [
  "'",
  "\\'",
  "\\\\'",
  "' OR 1=1 --",
  "'); DROP TABLE t; --",
  "x' UNION ALL SELECT version() --",
  '\\',
  '\0',
  "a\0' OR '1'='1",
  '\n) FORMAT JSONEachRow',
  "' SETTINGS max_execution_time=1 --",
  '/* comment */',
  '`backtick`',
  '"double"',
  '\u2028\u2029',
  '\ud83d\ude00',
  '{x:String}',
  '\\x27',
  '\\0',
  '\r\n\t',
  'é\u0301',
];

/** What `str` promises to preserve: the string as UTF-8 carries it (a lone surrogate becomes U+FFFD). */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

describe.each(engines)('SQL literals on %s', (engine) => {
  let client: ClickHouseClient;
  beforeAll(async () => {
    client = await openClient(engine);
  });
  afterAll(async () => client?.close());

  const echo = async (values: string[]) => {
    const select = values.map((v, i) => `${str(v)} AS v${i}`).join(', ');
    const [row] = await client.query<Record<string, string>>(`SELECT ${select}`);
    return values.map((_, i) => row?.[`v${i}`]);
  };

  it('reads every known attack back as the same string', async () => {
    expect(await echo(ATTACKS)).toEqual(ATTACKS.map(wellFormed));
  });

  it('reads random strings back unchanged (fast-check, full unicode)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { minLength: 1, maxLength: 20 }),
        async (values) => {
          expect(await echo(values)).toEqual(values.map(wellFormed));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps an array of hostile strings one array, and a comparison one comparison', async () => {
    const [row] = await client.query<{ n: number; hit: number; miss: number }>(
      `SELECT length(${strs(ATTACKS)}) AS n, has(${strs(ATTACKS)}, ${str("' OR 1=1 --")}) AS hit,
              ${str("x' OR '1'='1")} = 'x' AS miss`,
    );
    expect(Number(row?.n)).toBe(ATTACKS.length);
    expect(Number(row?.hit)).toBe(1);
    expect(Number(row?.miss)).toBe(0);
  });

  it('writes numbers as numbers and refuses what is not one', async () => {
    const [row] = await client.query<Record<string, number>>(
      `SELECT ${num(-1.5)} AS a, 1 - ${num(-2)} AS b, ${int(-3)} AS c, ${num(1e21)} AS d`,
    );
    expect(row).toEqual({ a: -1.5, b: 3, c: -3, d: 1e21 });
    expect(() => num(Number.NaN)).toThrow(RangeError);
    expect(() => num(Infinity)).toThrow(RangeError);
    expect(() => int(1.5)).toThrow(RangeError);
  });

  it('takes plain identifiers only', () => {
    expect(ident('tally_1')).toBe('tally_1');
    for (const bad of ['', '1abc', 'a-b', 'a b', 'a;DROP', 'a`', 'ä']) expect(() => ident(bad)).toThrow(RangeError);
  });
});
