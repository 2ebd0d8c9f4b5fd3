// The note under an answer that ended for a reason its text does not show.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { finishNotice } from './finish';
import type { Message } from './protocol';
import { CID, message, setup } from './testkit';

afterEach(() => history.replaceState(null, '', '/'));

describe('finishNotice', () => {
  const cases: Array<[string, Pick<Message, 'role' | 'status' | 'finishReason'>, string | null]> = [
    ['cut at the output limit', { role: 'assistant', status: 'complete', finishReason: 'length' }, 'Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.'],
    ['stopped by the content filter', { role: 'assistant', status: 'complete', finishReason: 'content_filter' }, "Stopped by the provider's content filter."],
    ['stopped by the filter, then stored as an error', { role: 'assistant', status: 'error', finishReason: 'content_filter' }, "Stopped by the provider's content filter."],
    ['a normal end', { role: 'assistant', status: 'complete', finishReason: 'stop' }, null],
    ['no reason', { role: 'assistant', status: 'complete' }, null],
    ['an empty reason', { role: 'assistant', status: 'complete', finishReason: '' }, null],
    ['a reason without a notice', { role: 'assistant', status: 'complete', finishReason: 'tool_calls' }, null],
    ['still streaming', { role: 'assistant', status: 'streaming', finishReason: 'length' }, null],
    ['a user message', { role: 'user', status: 'complete', finishReason: 'length' }, null],
  ];
  it.each(cases)('%s', (_name, m, want) => {
    expect(finishNotice(m)?.text ?? null).toBe(want);
  });
});

describe('finish reasons reach the shown answer', () => {
  it("a live answer's done frame brings its reason: length, and a content filter's stop with no text", async () => {
    const u1 = message('u1', '', 'user', 'hi', 'complete');
    const { socket, answer, thread } = setup({ snapshots: [[u1, message('a1', 'u1', 'assistant', 'Hello', 'streaming')]] });
    await vi.waitFor(() => expect(answer()?.content).toBe('Hello'));
    socket().open();
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 5, status: 'complete', finishReason: 'length' });
    await vi.waitFor(() => expect(answer()?.status).toBe('complete'));
    expect(finishNotice(answer()!)).toEqual({ kind: 'length', text: 'Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.' });

    socket().receive({ type: 'message', conversationId: CID, message: message('a22', 'u1', 'assistant', '', 'streaming') });
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a22', seq: 0, status: 'complete', finishReason: 'content_filter' });
    await vi.waitFor(() => expect(thread()?.messages.a22?.status).toBe('complete'));
    expect(finishNotice(thread()!.messages.a22!)?.kind).toBe('content_filter');
  });

  it('a reloaded conversation keeps the stored reason', async () => {
    const u1 = message('u1', '', 'user', 'hi', 'complete');
    const { answer } = setup({ snapshots: [[u1, message('a1', 'u1', 'assistant', 'Half an ans', 'complete', { finishReason: 'length' })]] });
    await vi.waitFor(() => expect(answer()?.content).toBe('Half an ans'));
    expect(finishNotice(answer()!)?.text).toBe('Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help.');
  });
});
