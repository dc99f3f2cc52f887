import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  ErrorTable,
  httpStatusOf,
  isRetryable,
  isTallyError,
  TallyConfigError,
  TallyError,
  TallyValidationError,
} from '../src/index.js';

const table = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const rows = [...table.matchAll(/^\|\s*`(TALLY_[A-Z_]+)`\s*\|.*\|\s*(yes|no)\s*\|\s*(\d{3}|—)\s*\|\s*$/gm)];
const documented = new Set(rows.map((m) => m[1]));

describe('error codes', () => {
  it('every code is documented in docs/errors.md, and only real codes are', () => {
    const codes = new Set<string>(Object.values(ErrorCodes));
    for (const code of codes) expect(documented, `${code} missing from docs/errors.md`).toContain(code);
    for (const code of documented) expect(codes, `${code} documented but not defined`).toContain(code);
  });

  it("the documented HTTP status and retryability are the table's", () => {
    expect(rows.length).toBe(Object.keys(ErrorTable).length);
    for (const [, code, retryable, status] of rows) {
      const spec = Object.values(ErrorTable).find((s) => s.code === code);
      expect(spec?.retryable ? 'yes' : 'no', `${code} retryable`).toBe(retryable);
      expect(spec?.status === null ? '—' : String(spec?.status), `${code} status`).toBe(status);
    }
    expect(httpStatusOf(ErrorCodes.FORBIDDEN)).toBe(403);
    expect(isRetryable(ErrorCodes.UNAVAILABLE)).toBe(true);
    expect(new TallyError(ErrorCodes.RATE_LIMITED, 'slow down').status).toBe(429);
    expect(httpStatusOf('TALLY_NO_SUCH_CODE')).toBe(500);
  });

  it('codes are unique and prefixed', () => {
    const values = Object.values(ErrorCodes);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v).toMatch(/^TALLY_[A-Z_]+$/);
  });

  it('errors carry code, details and serialize to JSON', () => {
    const e = new TallyValidationError(ErrorCodes.INVALID_TYPE, 'bad', { event: 'x', path: 'properties.a' });
    expect(e).toBeInstanceOf(TallyError);
    expect(isTallyError(e)).toBe(true);
    expect(isTallyError(new Error('x'))).toBe(false);
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      code: 'TALLY_INVALID_TYPE',
      message: 'bad',
      details: { event: 'x', path: 'properties.a' },
    });
    expect(new TallyConfigError('nope').code).toBe('TALLY_CONFIG');
  });
});
