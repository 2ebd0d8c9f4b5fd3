// ChatApp wiring: frames from a scripted socket and answers from a scripted
// fetch (stand-ins for the browser APIs; the real server is covered by e2e/).

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChatApp } from './chat';
import { memoryKV } from './persist';
import type { Conversation, Message } from './protocol';

const CID = '0123456789abcdef01234567';

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  constructor() {
    FakeSocket.all.push(this);
  }
  send(d: string) {
    this.sent.push(JSON.parse(d) as Record<string, unknown>);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(f: object) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
}

function message(id: string, parentId: string, role: Message['role'], content: string, status: Message['status']): Message {
  return { id, conversationId: CID, parentId, role, content, status, createdAt: `2026-01-01T00:00:0${id.length}Z`, updatedAt: '' };
}

/** A list page the scripted server answers GET /api/conversations with. */
type ListAnswer = (params: URLSearchParams) => { conversations: Conversation[]; nextCursor: string };

function setup(snapshots: Array<Message[]>, list: ListAnswer = () => ({ conversations: [], nextCursor: '' })) {
  const calls: string[] = [];
  let snap = 0;
  const fetchImpl = vi.fn(async (input: RequestInfo | URL) => {
    const url = String(input);
    calls.push(url);
    const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
    if (url.startsWith('/api/models')) return json({ models: [{ id: 'm', name: 'M', demo: false, default: true }] });
    if (url.startsWith('/api/auth/me')) return json({ user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } });
    if (url.startsWith('/api/conversations?')) return json(list(new URLSearchParams(url.slice(url.indexOf('?') + 1))));
    if (url.startsWith(`/api/conversations/${CID}`)) {
      const messages = snapshots[Math.min(snap++, snapshots.length - 1)];
      return json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages, activeMessageId: 'a1' });
    }
    return new Response('{}', { status: 404 });
  });
  const kv = memoryKV();
  kv.setItem('chatd.token', 'tok');
  FakeSocket.all = [];
  history.replaceState(null, '', `/c/${CID}`);
  const app = new ChatApp({ kv, fetch: fetchImpl as typeof fetch, WebSocketImpl: FakeSocket as unknown as typeof WebSocket, socketUrl: 'ws://x/ws', throttleMs: 0 });
  app.start();
  const socket = () => FakeSocket.all[FakeSocket.all.length - 1]!;
  const answer = () => app.store.state.threads[CID]?.messages.a1;
  const snapshotsFetched = () => calls.filter((u) => u === `/api/conversations/${CID}`).length;
  return { app, socket, answer, snapshotsFetched };
}

afterEach(() => history.replaceState(null, '', '/'));

function conv(id: string, title: string, updatedAt: string): Conversation {
  return { id, title, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt };
}


describe('ChatApp', () => {
  it('applies deltas in order, reloads over REST on a gap, then resumes from the applied seq', async () => {
    const u1 = message('u1', '', 'user', 'hi', 'complete');
    const { socket, answer, snapshotsFetched } = setup([
      [u1, message('a1', 'u1', 'assistant', 'Hello', 'streaming')],
      [u1, message('a1', 'u1', 'assistant', 'Hello world and more', 'streaming')],
    ]);
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
    const { app, socket } = setup([[message('u1', '', 'user', 'hi', 'complete')]]);
    socket().open();
    app.setDraft(CID, 'unsent words');
    socket().onclose?.({ code: 4401 });
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(app.store.state.session.notice).toMatch(/session has ended/);
    expect(app.draft(CID)).toBe('unsent words');
  });

  it('a late copy of a conversation frame (two streams over SSE) does not undo a newer one', async () => {
    const { app, socket } = setup([[message('u1', '', 'user', 'hi', 'complete')]]);
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
  it('new activity in a conversation beyond the loaded pages brings it to the top; a delete removes it for good', async () => {
    // The sidebar holds the first page (newest first); older ones are on the next page.
    const first = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two', '2026-01-02T00:00:05.5Z')];
    const { app, socket } = setup([[message('u1', '', 'user', 'hi', 'complete')]], () => ({ conversations: first, nextCursor: 'page2' }));
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c2']));

    // Another tab sent a message in c1 (not loaded): the frame carries the whole conversation.
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c1', 'one', '2026-01-04T00:00:00Z') });
    expect(ids()).toEqual(['c1', 'c3', 'c2']);
    expect(app.store.state.list.items[0]!.title).toBe('one');

    // Same-second times with trailing zeros dropped order by value ("05Z" is before "05.5Z").
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c0', 'zero', '2026-01-02T00:00:05Z') });
    expect(ids()).toEqual(['c1', 'c3', 'c2']); // older than the oldest loaded: its page brings it
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c2', 'two', '2026-01-04T00:00:00.25Z') });
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c3', 'three', '2026-01-04T00:00:00.2Z') });
    expect(ids()).toEqual(['c2', 'c3', 'c1']);

    // Deleted elsewhere: gone, and a late copy of an update (SSE: two streams) does not bring it back.
    socket().receive({ type: 'conversation', action: 'deleted', conversation: conv('c1', 'one', '2026-01-04T00:00:00Z') });
    expect(ids()).toEqual(['c2', 'c3']);
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c1', 'one', '2026-01-04T00:00:01Z') });
    expect(ids()).toEqual(['c2', 'c3']);
  });

  it('search results are updated in place but never get conversations the server did not match', async () => {
    const all = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two topic', '2026-01-02T00:00:00Z')];
    const { app, socket } = setup([[message('u1', '', 'user', 'hi', 'complete')]], (q) => ({
      conversations: all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)),
      nextCursor: '',
    }));
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c2']));
    app.setQuery('topic');
    await vi.waitFor(() => expect(app.store.state.list.appliedQuery).toBe('topic'));
    await vi.waitFor(() => expect(ids()).toEqual(['c2']));

    socket().receive({ type: 'conversation', action: 'created', conversation: conv('c4', 'new', '2026-01-05T00:00:00Z') });
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c1', 'old', '2026-01-05T00:00:01Z') });
    expect(ids()).toEqual(['c2']);
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c2', 'two topic, renamed', '2026-01-05T00:00:02Z') });
    expect(app.store.state.list.items.map((c) => c.title)).toEqual(['two topic, renamed']);
    socket().receive({ type: 'conversation', action: 'deleted', conversation: conv('c2', 'two topic, renamed', '2026-01-05T00:00:02Z') });
    expect(ids()).toEqual([]);
  });
});
