// A message that shows nothing is not sent (lib/visible.ts, the server's
// rule): a message of U+0085 alone was sent, JavaScript's trim() keeping
// it, and refused by the server (a pending bubble and an error toast); one
// of U+200B, U+2800, U+3164 or U+FEFF was stored as a blank bubble.

import { describe, expect, it, vi } from 'vitest';
import { message, settle, setup } from './testkit';

describe('a send or an edit that shows nothing', () => {
  it.each([
    ['U+0085 next line', '\u0085'],
    ['U+200B zero width space', '\u200b'],
    ['U+2800 braille blank', '\u2800'],
    ['U+3164 Hangul filler', '\u3164'],
    ['U+FEFF byte order mark', ' \ufeff\n'],
  ])('%s: nothing is sent, no pending message shows', async (_name, text) => {
    const { app, socket, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'hello', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    void app.send(text); // not awaited: a send made waits for the server's answer
    void app.editAndResend('u1', text);
    await settle();
    expect(socket().framesOf('send')).toEqual([]);
    expect(Object.keys(thread()!.messages).sort()).toEqual(['a1', 'u1']);
    void app.send(`${text}x`); // the same with a letter is sent
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
  });
});
