// How long an ended answer is said to be: its words in any script.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { answerAnnouncement, wordCount } from './announce';
import type { Message } from './protocol';

function answer(content: string): Message {
  return { id: 'a1', conversationId: 'c', parentId: 'u1', role: 'assistant', content, status: 'complete', createdAt: '', updatedAt: '' };
}

afterEach(() => void vi.unstubAllGlobals());

describe('answerAnnouncement counts words in any script', () => {
  it.each([
    ['English, punctuation not counted', 'Hello, world! It is 3.5 times — really.', 'Answer finished, 7 words.'],
    ['Hebrew', 'שלום עולם!', 'Answer finished, 2 words.'],
  ])('%s', (_name, content, said) => {
    expect(answerAnnouncement(answer(content))).toBe(said);
  });

  // Counted by spaces, a 1,080-character Chinese answer was "1 word". How a
  // dictionary splits these scripts differs between ICU versions: the
  // counts are bounded, not exact.
  it.each([
    ['Chinese, written without spaces', '我们讨论通道和锁。'.repeat(120), 240, 960],
    ['Japanese', 'こんにちは世界。今日は良い天気です。', 4, 15],
    ['Thai, spaces between phrases only', 'สวัสดีครับ วันนี้อากาศดีมาก', 4, 12],
  ])('%s', (_name, content, least, most) => {
    const said = /^Answer finished, (\d+) words\.$/.exec(answerAnnouncement(answer(content)));
    expect(said).not.toBeNull();
    const n = Number(said![1]);
    expect(n).toBeGreaterThanOrEqual(least);
    expect(n).toBeLessThanOrEqual(most);
  });

  it('without Intl.Segmenter, counts what spaces separate', () => {
    vi.stubGlobal('Intl', { ...Intl, Segmenter: undefined });
    expect(wordCount('one two, three')).toBe(3);
    expect(wordCount('')).toBe(0);
  });
});
