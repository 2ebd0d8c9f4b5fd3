import { describe, expect, it } from 'vitest';
import { COLLAPSE_CHARS, MAX_MESSAGE_CHARS, MAX_SYSTEM_PROMPT_CHARS, charCount, clipChars, clipEdit, isLongMessage, lengthStatus } from './limits';

describe('lengthStatus', () => {
  const cases: Array<{ name: string; text: string; show: boolean; over: boolean; words?: RegExp }> = [
    { name: 'short', text: 'hello', show: false, over: false },
    { name: 'just below the counter', text: 'a'.repeat(27999), show: false, over: false },
    { name: 'near the limit', text: 'a'.repeat(31000), show: true, over: false, words: /^31,000 \/ 32,000 characters$/ },
    { name: 'at the limit', text: 'a'.repeat(MAX_MESSAGE_CHARS), show: true, over: false },
    { name: 'a 39,900-character paste', text: 'a'.repeat(39900), show: true, over: true, words: /^39,900 \/ 32,000 characters: too long to send\. Remove 7,900 characters/ },
    // 16,001 emoji are 32,002 UTF-16 units but 16,001 characters for the server.
    { name: 'emoji count once', text: '🙂'.repeat(16001), show: false, over: false },
    { name: 'emoji over the limit', text: '🙂'.repeat(32001), show: true, over: true, words: /^32,001 \/ 32,000 characters: too long to send\. Remove 1 character, or split it into several messages\.$/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = lengthStatus(c.text);
      expect(s.show).toBe(c.show);
      expect(s.over).toBe(c.over);
      if (c.words) expect(s.text).toMatch(c.words);
      // Said once as the text goes over: the same words however far over.
      expect(s.alert).toBe(c.over ? 'Over the limit of 32,000 characters: too long to send.' : '');
    });
  }

  it('counts code points as the server does', () => {
    expect(charCount('é🙂a')).toBe(3);
  });
});

describe('isLongMessage', () => {
  const cases: Array<[string, string, boolean]> = [
    ['short', 'hello', false],
    ['at the character limit', 'a'.repeat(COLLAPSE_CHARS), false],
    ['over the character limit', 'a'.repeat(COLLAPSE_CHARS + 1), true],
    ['20 lines', Array(20).fill('x').join('\n'), false],
    ['21 lines', Array(21).fill('x').join('\n'), true],
  ];
  for (const [name, text, long] of cases) it(name, () => expect(isLongMessage(text)).toBe(long));
});

describe('the system prompt limit', () => {
  it('is always counted and refused over 8,000 characters', () => {
    expect(lengthStatus('', MAX_SYSTEM_PROMPT_CHARS, 0)).toMatchObject({ show: true, over: false, text: '0 / 8,000 characters' });
    expect(lengthStatus('a'.repeat(8001), MAX_SYSTEM_PROMPT_CHARS, 0, 'systemPrompt')).toMatchObject({
      over: true,
      text: '8,001 / 8,000 characters: too long to save. Shorten it by 1 character.',
      alert: 'Over the limit of 8,000 characters: too long to save.',
    });
  });
});

describe('clipChars', () => {
  const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'; // 👨‍👩‍👧: 5 code points, 8 UTF-16 units
  it.each([
    ['under the limit in code points, over it in UTF-16 units: kept whole', '\u{1F600}'.repeat(150), 200, '\u{1F600}'.repeat(150)],
    ['over the limit: cut to it', 'a'.repeat(201), 200, 'a'.repeat(200)],
    ['an emoji family across the limit: left out whole, no dangling joiner', 'a'.repeat(197) + family, 200, 'a'.repeat(197)],
    ['an emoji family within the limit: kept', 'a'.repeat(195) + family, 200, 'a'.repeat(195) + family],
  ])('%s', (_name, text, max, want) => {
    expect(clipChars(text, max)).toBe(want);
  });
});

describe('clipEdit', () => {
  const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}';
  const full = 'a'.repeat(100) + 'b'.repeat(100);
  it.each([
    ['within the limit: as it is', 'abc', 'abXc', 3, 200, 'abXc', 3],
    ['a letter typed in the middle of a full field: refused, the caret where it was', full, 'a'.repeat(100) + 'x' + 'b'.repeat(100), 101, 200, full, 100],
    ['a paste in the middle: what fits of it, the end kept', 'a'.repeat(98) + 'b'.repeat(100), 'a'.repeat(98) + 'xyz' + 'b'.repeat(100), 101, 200, 'a'.repeat(98) + 'xy' + 'b'.repeat(100), 100],
    ['a paste over a selection: the selection replaced', 'a'.repeat(190) + 'SEL' + 'b'.repeat(7), 'a'.repeat(190) + 'x'.repeat(10) + 'b'.repeat(7), 200, 200, 'a'.repeat(190) + 'xxx' + 'b'.repeat(7), 193],
    ['a paste at the end, an emoji family across the limit: left out whole', '', 'a'.repeat(197) + family, 205, 200, 'a'.repeat(197), 197],
    ['an emoji typed after an emoji in a full field: no half of either', '\u{1F600}'.repeat(200), '\u{1F600}'.repeat(200) + '\u{1F601}', 402, 200, '\u{1F600}'.repeat(200), 400],
  ])('%s', (_name, before, value, caret, max, want, wantCaret) => {
    expect(clipEdit(before, value, caret, max)).toEqual({ value: want, caret: wantCaret });
  });
});

describe('a one-line field\'s limit', () => {
  it('is counted in code points and refused over it with the excess', () => {
    expect(lengthStatus('\u{1F600}'.repeat(150), 200, 180, 'field')).toMatchObject({ over: false, show: false });
    expect(lengthStatus('a'.repeat(202), 200, 180, 'field')).toMatchObject({
      over: true,
      text: '202 / 200 characters: too long. Shorten it by 2 characters.',
      alert: 'Over the limit of 200 characters.',
    });
  });
});
