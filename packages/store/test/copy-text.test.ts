import { describe, expect, it } from 'vitest';
import { CopyBuffer, copyValue } from '../src/copy-text.js';

describe('copyValue', () => {
  it('escapes what COPY text format gives a meaning to, and nothing else', () => {
    expect(copyValue(null)).toBe('\\N');
    expect(copyValue(undefined)).toBe('\\N');
    expect(copyValue(42)).toBe('42');
    expect(copyValue('plain "quoted" {json}')).toBe('plain "quoted" {json}');
    expect(copyValue('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
  });
});

describe('CopyBuffer', () => {
  it('holds exactly the UTF-8 of its lines, growing past its estimate', () => {
    const lines = Array.from({ length: 500 }, (_, i) => `${i}\tnaïve ☃ 𝄞 ${'x'.repeat(i % 37)}\n`);
    const data = new CopyBuffer(16);
    for (const line of lines) data.line(line);
    expect(data.bytes().equals(Buffer.from(lines.join(''), 'utf8'))).toBe(true);
  });

  it('is empty until a line is written', () => {
    expect(new CopyBuffer(100).bytes().length).toBe(0);
  });
});
