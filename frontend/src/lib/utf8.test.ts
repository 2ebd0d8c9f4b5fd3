import { describe, expect, it } from 'vitest';
import { utf8Length, utf8Prefix, utf8Suffix } from './utf8';

describe('utf8', () => {
  it.each([
    ['', 0],
    ['abc', 3],
    ['héllo', 6],
    ['中文', 6],
    ['🙂', 4],
    ['a🙂b', 6],
  ])('utf8Length(%j) = %i', (s, n) => {
    expect(utf8Length(s)).toBe(n);
    expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
  });

  it('takes the suffix after a byte offset on character boundaries', () => {
    expect(utf8Suffix('héllo', 3)).toBe('llo');
    expect(utf8Suffix('中文🙂', 6)).toBe('🙂');
    expect(utf8Suffix('abc', 0)).toBe('abc');
    expect(utf8Suffix('abc', 9)).toBe('');
  });

  it('takes the prefix of a byte length on character boundaries', () => {
    expect(utf8Prefix('héllo', 3)).toBe('hé');
    expect(utf8Prefix('中文🙂', 6)).toBe('中文');
    expect(utf8Prefix('abc', 0)).toBe('');
    expect(utf8Prefix('abc', 9)).toBe('abc');
  });

  it('keeps a U+FEFF at the cut: it is text the seq counts, not a byte order mark', () => {
    const s = 'ab\uFEFFcd\uFEFF';
    expect(utf8Suffix(s, 2)).toBe('\uFEFFcd\uFEFF');
    expect(utf8Suffix('\uFEFFx', 0)).toBe('\uFEFFx');
    expect(utf8Prefix('\uFEFFx', 3)).toBe('\uFEFF');
    expect(utf8Prefix(s, 5)).toBe('ab\uFEFF');
    expect(utf8Length(utf8Suffix(s, 2))).toBe(utf8Length(s) - 2);
  });
});
