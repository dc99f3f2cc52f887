import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isTallyError, TallyConfigError, TallyError, TallyValidationError } from '../src/index.js';

const table = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Set([...table.matchAll(/^\|\s*`(TALLY_[A-Z_]+)`\s*\|/gm)].map((m) => m[1]));

describe('error codes', () => {
  it('every code is documented in docs/errors.md, and only real codes are', () => {
    const codes = new Set<string>(Object.values(ErrorCodes));
    for (const code of codes) expect(documented, `${code} missing from docs/errors.md`).toContain(code);
    for (const code of documented) expect(codes, `${code} documented but not defined`).toContain(code);
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
