// Character references in link destinations and titles (jsdom): decoded as
// CommonMark reads them, and a message's names looked up once, not again at
// every token while it streams.

import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { decodeEntities } from './entities';

/** parses counts the HTML parses made while f runs (each name lookup is one). */
function parses(f: () => void): number {
  const spy = vi.spyOn(Element.prototype, 'innerHTML', 'set');
  onTestFinished(() => spy.mockRestore());
  spy.mockClear();
  f();
  const n = spy.mock.calls.length;
  spy.mockRestore();
  return n;
}

describe('decodeEntities', () => {
  it.each([
    ['?a=1&amp;b=2', '?a=1&b=2'],
    ['&eacute;t&eacute; &copy;', 'été ©'],
    ['&#x61;&#98;&#0;', 'ab\uFFFD'],
    ['&notit; &nosuchname; &amp', '&notit; &nosuchname; &amp'],
  ])('reads %s as %s', (written, decoded) => {
    expect(decodeEntities(written)).toBe(decoded);
  });

  it('looks a string\'s names up in one parse, and a list of many distinct names not again when it is rendered again', () => {
    const known = ['amp', 'lt', 'gt', 'quot', 'copy', 'eacute', 'hellip', 'mdash'];
    const unknown = Array.from({ length: 600 }, (_, i) => `zzname${i}`);
    // A streaming list of links, many distinct names: re-rendered at every token.
    const text = [...known, ...unknown].map((n) => `/p?x=&${n};`).join(' ');
    let first = '';
    expect(parses(() => (first = decodeEntities(text)))).toBeLessThanOrEqual(1);
    expect(first).toContain('/p?x=& /p?x=< /p?x=>');
    expect(first).toContain('/p?x=&zzname599;');
    for (let token = 0; token < 5; token++) {
      expect(parses(() => expect(decodeEntities(text)).toBe(first))).toBe(0);
    }
  });
});
