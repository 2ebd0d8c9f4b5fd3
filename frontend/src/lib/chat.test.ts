// ChatApp wiring: frames from a scripted socket and answers from a scripted
// fetch (stand-ins for the browser APIs; the real server is covered by e2e/).
// The list's tests are in conversationList.test.ts, one conversation's in
// conversationThread.test.ts.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { CID, message, setup } from './testkit';

afterEach(() => history.replaceState(null, '', '/'));

describe('ChatApp', () => {
  it('applies deltas in order, reloads over REST on a gap, then resumes from the applied seq', async () => {
    const u1 = message('u1', '', 'user', 'hi', 'complete');
    const { socket, answer, snapshotsFetched } = setup({
      snapshots: [
        [u1, message('a1', 'u1', 'assistant', 'Hello', 'streaming')],
        [u1, message('a1', 'u1', 'assistant', 'Hello world and more', 'streaming')],
      ],
    });
    await vi.waitFor(() => expect(answer()?.content).toBe('Hello'));
    socket().open();
    expect(socket().sent.at(-1)).toMatchObject({ type: 'subscribe', conversationId: CID, messageId: 'a1', lastSeq: 5 });

    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' });
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' }); // duplicate
    await vi.waitFor(() => expect(answer()?.content).toBe('Hello world'));

    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 40, text: 'later text' }); // gap
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(2));
    await vi.waitFor(() => expect(socket().sent.at(-1)).toMatchObject({ type: 'subscribe', messageId: 'a1', lastSeq: 20 }));
    expect(answer()?.content).toBe('Hello world and more');

    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 24, text: ' end' });
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 24, status: 'complete' });
    await vi.waitFor(() => expect(answer()).toMatchObject({ content: 'Hello world and more end', status: 'complete' }));
  });

  it('a close with 4401 signs out and keeps the draft', async () => {
    const { app, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    app.setDraft(CID, 'unsent words');
    socket().onclose?.({ code: 4401 });
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(app.store.state.session.notice).toMatch(/session has ended/);
    expect(app.draft(CID)).toBe('unsent words');
  });

  it('a late copy of a conversation frame (two streams over SSE) does not undo a newer one', async () => {
    const { app, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    const conv = (title: string, updatedAt: string) => ({ id: CID, title, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt });
    const title = () => app.store.state.threads[CID]?.conversation?.title;
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('Renamed', '2026-01-01T00:00:02.5Z') });
    expect(title()).toBe('Renamed');
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('', '2026-01-01T00:00:01.123456789Z') });
    expect(title()).toBe('Renamed');
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('Renamed again', '2026-01-01T00:00:02.500000001Z') });
    expect(title()).toBe('Renamed again');
  });
});
