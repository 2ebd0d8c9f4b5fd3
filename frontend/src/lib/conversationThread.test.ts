// One conversation through ChatApp: the send queue across a lost
// connection, paging of long conversations, and an answer ended by a server
// going away or with less text stored than was streamed.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { SERVER_WAIT_MS, type ApiClient } from './api';
import type { ChatApp } from './chat';
import { ConversationThread, PARENT_ANSWERED, PARENT_NOT_FOUND, REGEN_GIVEN_UP } from './conversationThread';
import type { Drafts } from './drafts';
import { memoryKV } from './persist';
import type { Message } from './protocol';
import type { AppState } from './state';
import { Store } from './store';
import type { Accepted, Transport } from './transport';
import { activePath, siblings } from './thread';
import { threadView } from '../hooks/useThreadView';
import { CID, conv, fixedPages, json, message, settle, setup } from './testkit';

afterEach(() => history.replaceState(null, '', '/'));

const u1 = message('u1', '', 'user', 'hi', 'complete');
const a1 = message('a1', 'u1', 'assistant', 'Hello', 'complete');

/** held is the stored text of a send on its way (Drafts.hold: this page's slot), or null. */
function held(kv: { getItem(k: string): string | null }, clientMessageId: unknown): string | null {
  const raw = kv.getItem(`chatd.slot.sending.page.${CID}.${String(clientMessageId)}`);
  return raw === null ? null : (JSON.parse(raw) as { text: string }).text;
}

/** connected starts the app on the test conversation with an open socket and the thread loaded. */
async function connected(opts: Parameters<typeof setup>[0] = { snapshots: [[u1, a1]] }) {
  const s = setup(opts);
  s.socket().open();
  await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
  return s;
}

describe('sending while the connection is down', () => {
  it('queues the message, keeps it out of the composer, and sends it with the same clientMessageId once reconnected', async () => {
    const { app, kv, socket, thread } = await connected();
    const first = socket();
    first.cut();
    expect(app.store.state.link.state).toBe('reconnecting');

    app.setDraft(CID, 'sent while offline');
    await app.send('sent while offline');
    const q = thread()!.queued;
    expect(q).toHaveLength(1);
    expect(activePath(thread()!).at(-1)).toMatchObject({ id: `local:${q[0]!.clientMessageId}`, content: 'sent while offline' });
    expect(app.store.state.drafts[CID]).toBe('');
    expect(held(kv, q[0]!.clientMessageId)).toBe('sent while offline'); // kept in storage until the server has it
    expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull(); // not in the composer's slot: typing there leaves it alone
    expect(first.framesOf('send')).toHaveLength(0);
    expect(app.store.state.toasts).toEqual([]);

    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const frame = socket().framesOf('send')[0]!;
    expect(frame).toMatchObject({ conversationId: CID, content: 'sent while offline', clientMessageId: q[0]!.clientMessageId, parentMessageId: 'a1' });
    socket().receive({ type: 'ack', id: frame.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
    socket().receive({ type: 'message', conversationId: CID, message: message('u2', 'a1', 'user', 'sent while offline', 'complete', { clientMessageId: q[0]!.clientMessageId }) });
    await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2']);
    expect(app.store.state.drafts[CID]).toBe('');
    await vi.waitFor(() => expect(held(kv, q[0]!.clientMessageId)).toBeNull());
    expect(app.store.state.toasts).toEqual([]);
  });

  it('a send cut off before its ack is queued and repeated, never given back to the composer', async () => {
    const { app, socket, thread } = await connected();
    const first = socket();
    const sending = app.send('lost on the way');
    await vi.waitFor(() => expect(first.framesOf('send')).toHaveLength(1));
    const cmid = first.framesOf('send')[0]!.clientMessageId;
    first.cut();
    await sending;
    expect(thread()!.queued.map((q) => q.clientMessageId)).toEqual([cmid]);
    expect(app.store.state.drafts[CID]).toBe('');
    expect(app.store.state.link.state).not.toBe('connected');

    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send').map((f) => f.clientMessageId)).toEqual([cmid]));
    expect(app.store.state.toasts).toEqual([]);
  });

  it('a message the server stored before the cut is not sent again', async () => {
    let stored: Message | null = null;
    const { app, kv, socket, thread, snapshotsFetched } = await connected({
      snapshots: [[u1, a1]],
      route: (url, init) => (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' && stored ? json({ conversation: { id: CID }, messages: [u1, a1, stored], activeMessageId: stored.id }) : undefined),
    });
    const first = socket();
    app.setDraft(CID, 'stored anyway');
    const sending = app.send('stored anyway');
    await vi.waitFor(() => expect(first.framesOf('send')).toHaveLength(1));
    const cmid = String(first.framesOf('send')[0]!.clientMessageId);
    stored = message('u2', 'a1', 'user', 'stored anyway', 'complete', { clientMessageId: cmid });
    first.cut();
    await sending;
    expect(thread()!.queued).toHaveLength(1);
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    const before = snapshotsFetched();
    socket().open(); // reconnected: the thread is reloaded and holds the stored message
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(before + 1));
    await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2']);
    expect(socket().framesOf('send').length).toBeLessThanOrEqual(1); // at most one repeat, which the server dedups
    expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull(); // the held draft is released: a page load would not offer it again
  });

  it('a message the server refuses is taken back into the composer with the reason', async () => {
    const { app, socket, thread } = await connected();
    const sending = app.send('too fast');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    socket().receive({ type: 'error', id: socket().framesOf('send')[0]!.id, code: 'rate_limited', message: 'Too many messages; wait a moment.' });
    await sending;
    expect(thread()!.queued).toHaveLength(0);
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(app.store.state.drafts[CID]).toBe('too fast');
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Message not sent: Too many messages; wait a moment.']);
  });

  it('a message larger than the server reads (the hello\'s maxFrameBytes) is not written: its text goes back to the composer, with why, the link kept', async () => {
    const { app, kv, socket, thread } = await connected();
    const long = '字'.repeat(30000); // 90 KB as UTF-8; the server reads 64 KiB (testkit's hello)
    app.setDraft(CID, long);
    await app.send(long);
    expect(socket().framesOf('send')).toHaveLength(0);
    expect(thread()!.queued).toHaveLength(0);
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(app.store.state.drafts[CID]).toBe(long);
    expect(app.store.state.toasts.map((t) => t.text)).toEqual([expect.stringMatching(/^Message not sent: This message is too large for the server: 90,\d{3} bytes to send, it takes at most 65,536\. Shorten it or send it in parts\.$/)]);
    expect(app.store.state.link.state).toBe('connected');
    expect(Array.from({ length: kv.length }, (_, i) => kv.key(i)!).filter((k) => k.startsWith('chatd.slot.'))).toEqual([]);
  });

  it('an edit the server refuses (an answer started in another tab meanwhile) is not lost: its text goes to the composer', async () => {
    const { app, socket, thread } = await connected();
    const editing = app.editAndResend('u1', 'hi, said better');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(socket().framesOf('send')[0]).toMatchObject({ parentMessageId: '', content: 'hi, said better' });
    socket().receive({ type: 'error', id: socket().framesOf('send')[0]!.id, code: 'generation_running', message: 'An answer is being written; stop it first.' });
    await editing;
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Message not sent: An answer is being written; stop it first.']);
    expect(app.store.state.drafts[CID]).toBe('hi, said better');
  });

  it('a refused edit keeps its text when the composer already holds some: both stay, the composer\'s first', async () => {
    const { app, socket } = await connected();
    app.setDraft(CID, 'a new thought');
    const editing = app.editAndResend('u1', 'hi, said better');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    socket().receive({ type: 'error', id: socket().framesOf('send')[0]!.id, code: 'generation_running', message: 'An answer is being written; stop it first.' });
    await editing;
    expect(app.store.state.drafts[CID]).toBe('a new thought\n\nhi, said better');
  });

  it('an edit sent while offline is kept in its own slot, not the composer\'s, until the server has it: a reload before finds it after the composer\'s text', async () => {
    const { app, kv, socket, thread } = await connected();
    app.setDraft(CID, 'a new thought');
    app.store.flush();
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('a new thought'));
    const first = socket();
    first.cut();
    await app.editAndResend('u1', 'hi, said better');
    const [q] = thread()!.queued;
    expect(q).toMatchObject({ content: 'hi, said better', draftKey: null });
    expect(app.store.state.drafts[CID]).toBe('a new thought'); // the composer is not the edit's
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('a new thought');
    expect(held(kv, q!.clientMessageId)).toBe('hi, said better');

    app.setDraft(CID, 'typed meanwhile'); // typing in the composer does not touch it
    app.store.flush();
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('typed meanwhile'));
    expect(held(kv, q!.clientMessageId)).toBe('hi, said better');

    // A reload now (this page gone) finds it in the composer, after what was typed there.
    const reload = setup({ kv, snapshots: [[u1, a1]], pages: fixedPages('page2', new Set(['page'])) });
    await vi.waitFor(() => expect(reload.app.store.state.drafts[CID]).toBe('typed meanwhile\n\nhi, said better'));
    expect(held(kv, q!.clientMessageId)).toBeNull();
  });

  it('an edit sent while offline is released once the server has it, the composer\'s slot untouched', async () => {
    const { app, kv, socket, thread } = await connected();
    app.setDraft(CID, 'a new thought');
    const first = socket();
    first.cut();
    await app.editAndResend('u1', 'hi, said better');
    const [q] = thread()!.queued;
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const frame = socket().framesOf('send')[0]!;
    expect(frame).toMatchObject({ content: 'hi, said better', parentMessageId: '' });
    socket().receive({ type: 'ack', id: frame.id, conversationId: CID, userMessageId: 'u1b', messageId: 'a1b' });
    await vi.waitFor(() => expect(held(kv, q!.clientMessageId)).toBeNull());
    expect(app.store.state.drafts[CID]).toBe('a new thought');
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('a new thought'));
  });

  it('an edit on its way while connected leaves the composer\'s storage alone: the other tabs do not show it in their composer', async () => {
    const { app, kv, socket } = await connected();
    app.setDraft(CID, 'a new thought');
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('a new thought'));
    const editing = app.editAndResend('u1', 'hi, said better');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('a new thought');
    socket().receive({ type: 'ack', id: socket().framesOf('send')[0]!.id, conversationId: CID, userMessageId: 'u1b', messageId: 'a1b' });
    await editing;
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('a new thought');
  });

  it('cancelling a queued message puts its text back', async () => {
    const { app, socket, thread } = await connected();
    socket().cut();
    await app.send('changed my mind');
    const [q] = thread()!.queued;
    app.cancelQueued(CID, q!.clientMessageId);
    expect(thread()!.queued).toHaveLength(0);
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(app.store.state.drafts[CID]).toBe('changed my mind');
  });
});

/** at gives the n-th message a creation time n seconds after midnight. */
function at(n: number): string {
  return new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
}

/** chain builds a linear conversation of n messages, m0 (a root) to m{n-1}. */
function chain(n: number): Message[] {
  return Array.from({ length: n }, (_, i) =>
    message(`m${i}`, i === 0 ? '' : `m${i - 1}`, i % 2 === 0 ? 'user' : 'assistant', `text ${i}`, 'complete', { createdAt: at(i), updatedAt: at(i) }),
  );
}

describe('a send made while the open conversation is still loading (the composer does not wait for it)', () => {
  const stored = ['u1', 'a1', 'u2', 'a2'].map((id, i) =>
    message(id, i === 0 ? '' : ['u1', 'a1', 'u2'][i - 1]!, i % 2 === 0 ? 'user' : 'assistant', `text ${i}`, 'complete', { createdAt: at(i), updatedAt: at(i) }),
  );

  /** loading starts the app on the conversation, its snapshot held until release. */
  function loading() {
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const s = setup({
      route: (url, init) => {
        if ((init?.method ?? 'GET') !== 'GET' || url !== `/api/conversations/${CID}`) return undefined;
        return gate.then(() => json({ conversation: conv(CID, 't', ''), messages: stored, hasMore: false, activeMessageId: '' }));
      },
    });
    return { ...s, release };
  }

  for (const [name, linkUp] of [
    ['on its way', true],
    ['queued (the socket not open yet)', false],
  ] as const) {
    it(`${name}: shows after the newest message the snapshot brings, not as another version of the first, and goes with no parent`, async () => {
      const { app, thread, socket, release } = loading();
      if (linkUp) socket().open();
      const sending = app.send('sent early');
      if (!linkUp) await sending;
      await vi.waitFor(() => expect(Object.keys(thread()?.messages ?? {})).toHaveLength(1));
      const pending = Object.keys(thread()!.messages)[0]!;
      expect(thread()!.loaded).toBe(false);
      release();
      await vi.waitFor(() => expect(thread()!.loaded).toBe(true));
      expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', pending]);
      expect(siblings(thread()!, 'u1')).toHaveLength(1); // no "2/2" on the first message
      if (!linkUp) socket().open();
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      expect(socket().framesOf('send')[0]).not.toHaveProperty('parentMessageId'); // after the server's latest (protocol.md)
      expect(activePath(thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', pending]);
      await app.logout(); // no timer of this session is left for the tests after
    });
  }

  it('an edit of the first message is still a new first message: its own version, "2/2", after the snapshot too', async () => {
    const { app, thread, socket, release, snapshotsFetched } = loading();
    socket().open();
    release();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    void app.editAndResend('u1', 'hi, said better');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(socket().framesOf('send')[0]).toMatchObject({ parentMessageId: '' });
    const edit = activePath(thread()!)[0]!;
    expect(edit.content).toBe('hi, said better');
    const reads = snapshotsFetched();
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'unknown', seq: 5, text: 'hello' }); // a gap: read again
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(reads + 1));
    await settle();
    expect(activePath(thread()!).map((m) => m.id)).toEqual([edit.id]);
    expect(siblings(thread()!, edit.id)).toEqual(['u1', edit.id]);
    await app.logout();
  });
});

describe('long conversations are paged', () => {
  function paged(all: Message[], first: number, pageSize: number) {
    const olderCalls: URLSearchParams[] = [];
    const s = setup({
      snapshots: [all.slice(-first)],
      snapshotExtra: { hasMore: all.length > first, activeMessageId: all.at(-1)!.id },
      route: (url) => {
        if (!url.startsWith(`/api/conversations/${CID}/messages?`)) return undefined;
        const p = new URLSearchParams(url.slice(url.indexOf('?') + 1));
        olderCalls.push(p);
        const end = all.findIndex((m) => m.id === p.get('before'));
        const start = Math.max(0, end - Math.min(Number(p.get('limit')), pageSize));
        return json({ messages: all.slice(start, end), hasMore: start > 0 });
      },
    });
    s.socket().open();
    return { ...s, olderCalls, pageSize };
  }

  it('shows the newest messages first and joins older pages above them until none is left', async () => {
    const all = chain(250);
    const { app, thread, olderCalls } = paged(all, 200, 100);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    expect(thread()!.hasMore).toBe(true);
    let path = activePath(thread()!);
    expect(path).toHaveLength(200);
    expect(path[0]!.id).toBe('m50'); // its parent m49 is not loaded yet
    expect(path.at(-1)!.id).toBe('m249');

    await app.loadOlder(CID);
    expect(olderCalls.map((p) => [p.get('before'), p.get('limit')])).toEqual([['m50', '100']]);
    path = activePath(thread()!);
    expect(path).toHaveLength(250);
    expect(path[0]!.id).toBe('m0');
    expect(thread()!.hasMore).toBe(false);

    await app.loadOlder(CID); // nothing left: no request
    expect(olderCalls).toHaveLength(1);
  });

  it('Previous at the oldest loaded version of a first message edited 150 times loads older pages, then shows the version before', async () => {
    // 151 versions of the first message, each answered: the newest page (200) holds the newest 100.
    const all = Array.from({ length: 151 }, (_, i) => [
      message(`v${i}`, '', 'user', `version ${i}`, 'complete', { createdAt: at(2 * i), updatedAt: at(2 * i) }),
      message(`a${i}`, `v${i}`, 'assistant', `answer ${i}`, 'complete', { createdAt: at(2 * i + 1), updatedAt: at(2 * i + 1) }),
    ]).flat();
    const { app, thread, olderCalls } = paged(all, 200, 100);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const first = () => threadView(undefined, thread()!).shown[0]!;
    expect(first()).toMatchObject({ version: 100, versions: 100, moreVersions: true });
    for (let i = 150; i > 51; i--) app.switchVersion(`v${i}`, -1);
    expect(first()).toMatchObject({ version: 1, versions: 100, moreVersions: true });
    expect(olderCalls).toHaveLength(0); // the path runs from a first message: nothing loads by itself

    expect(await app.earlierVersion('v51')).toEqual({ version: 50, versions: 150, moreVersions: true });
    expect(olderCalls.map((p) => p.get('before'))).toEqual(['v51']);
    expect(first()).toMatchObject({ message: { id: 'v50' }, version: 50, versions: 150, moreVersions: true });

    for (let i = 50; i > 1; i--) app.switchVersion(`v${i}`, -1);
    expect(await app.earlierVersion('v1')).toEqual({ version: 1, versions: 151, moreVersions: false });
    expect(first()).toMatchObject({ message: { id: 'v0' }, version: 1, versions: 151, moreVersions: false });
    expect(await app.earlierVersion('v0')).toBe('none'); // none older: nothing asked, nothing changes
    expect(olderCalls).toHaveLength(2);
  });

  it('Previous at the oldest loaded version stops loading when the conversation is left, and changes nothing in it', async () => {
    // As above: pages of 2 reach v0 on the sixth.
    const all = [message('v0', '', 'user', 'first', 'complete', { createdAt: at(0), updatedAt: at(0) }), ...chain(11).slice(1).map((m) => ({ ...m, parentId: m.parentId === 'm0' ? 'v0' : m.parentId }))];
    all.push(message('v1', '', 'user', 'edited', 'complete', { createdAt: at(20), updatedAt: at(20) }), message('b1', 'v1', 'assistant', 'answer', 'complete', { createdAt: at(21), updatedAt: at(21) }));
    const olderCalls: string[] = [];
    const s = setup({
      snapshots: [all.slice(-2)],
      snapshotExtra: { hasMore: true, activeMessageId: 'b1' },
      route: (url) => {
        if (!url.startsWith(`/api/conversations/${CID}/messages?`)) return undefined;
        const p = new URLSearchParams(url.slice(url.indexOf('?') + 1));
        olderCalls.push(p.get('before')!);
        if (olderCalls.length === 1) s.app.navigate('/'); // the reader goes to a new chat while the first page loads
        const end = all.findIndex((m) => m.id === p.get('before'));
        const start = Math.max(0, end - 2);
        return json({ messages: all.slice(start, end), hasMore: start > 0 });
      },
    });
    s.socket().open();
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    const found = vi.fn();
    expect(await s.app.earlierVersion('v1', found)).toBe('left');
    expect(olderCalls).toEqual(['v1']); // not the five pages more
    expect(found).not.toHaveBeenCalled();
    expect(activePath(s.thread()!).map((m) => m.id)[0]).toBe('v1'); // the version chosen stays
  });

  it('Previous pressed again on the same message while its versions load waits for the same result, the latest press handed the version', async () => {
    const all = [message('v0', '', 'user', 'first', 'complete', { createdAt: at(0), updatedAt: at(0) }), ...chain(11).slice(1).map((m) => ({ ...m, parentId: m.parentId === 'm0' ? 'v0' : m.parentId }))];
    all.push(message('v1', '', 'user', 'edited', 'complete', { createdAt: at(20), updatedAt: at(20) }), message('b1', 'v1', 'assistant', 'answer', 'complete', { createdAt: at(21), updatedAt: at(21) }));
    const { app, thread } = paged(all, 2, 2);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const [first, second] = [vi.fn(), vi.fn()];
    const a = app.earlierVersion('v1', first);
    const b = app.earlierVersion('v1', second);
    expect(await app.earlierVersion('b1')).toBe('loading'); // another message's: told it is loading
    expect(await a).toEqual({ version: 1, versions: 2, moreVersions: false });
    expect(await b).toEqual(await a);
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);
    expect(activePath(thread()!).map((m) => m.id)[0]).toBe('v0'); // stepped once
  });

  it('Previous at the oldest loaded version loads pages until one holds an older version, waiting for a page already on its way', async () => {
    // v0, then 5 exchanges after it, then v1 (an edit of the first message) and its answer: pages of 2 reach v0 on the sixth.
    const all = [message('v0', '', 'user', 'first', 'complete', { createdAt: at(0), updatedAt: at(0) }), ...chain(11).slice(1).map((m) => ({ ...m, parentId: m.parentId === 'm0' ? 'v0' : m.parentId }))];
    all.push(message('v1', '', 'user', 'edited', 'complete', { createdAt: at(20), updatedAt: at(20) }), message('b1', 'v1', 'assistant', 'answer', 'complete', { createdAt: at(21), updatedAt: at(21) }));
    const { app, thread, olderCalls } = paged(all, 2, 2);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['v1', 'b1']);
    const scrolled = app.loadOlder(CID); // the reader scrolled up just before
    expect(await app.earlierVersion('v1')).toEqual({ version: 1, versions: 2, moreVersions: false });
    await scrolled;
    expect(olderCalls.map((p) => p.get('before'))).toEqual(['v1', 'm9', 'm7', 'm5', 'm3', 'm1']);
    expect(activePath(thread()!).map((m) => m.id)[0]).toBe('v0');
  });

  it('a message whose parent is not loaded waits in the tree and joins the path when the parent arrives', async () => {
    const all = chain(6);
    // An edit of m2 (a second version, parent m1) made elsewhere, newest of all.
    const edit = message('m2b', 'm1', 'user', 'edited', 'complete', { createdAt: at(10), updatedAt: at(10) });
    const { app, thread } = paged([...all, edit], 3, 100);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    // The newest page: m4, m5 and m2b; m2b's parent m1 is on the server.
    expect(thread()!.children.m1).toEqual(['m2b']);
    await app.loadOlder(CID);
    const path = activePath(thread()!).map((m) => m.id);
    expect(path).toEqual(['m0', 'm1', 'm2b']);
    expect(thread()!.children.m1).toEqual(['m2', 'm2b']);
  });

  it('an answer without hasMore (an unpaged server) is the whole conversation', async () => {
    const { app, thread, calls } = await connected({ snapshots: [chain(4)] });
    expect(thread()!.hasMore).toBe(false);
    await app.loadOlder(CID);
    expect(calls.some((c) => c.url.includes('/messages?'))).toBe(false);
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['m0', 'm1', 'm2', 'm3']);
  });

  it('a reload after everything was loaded keeps the conversation complete', async () => {
    const all = chain(8);
    const { app, thread, socket, snapshotsFetched } = paged(all, 4, 100);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await app.loadOlder(CID);
    expect(thread()!.hasMore).toBe(false);
    const first = socket();
    first.cut();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(2));
    expect(thread()!.hasMore).toBe(false);
    expect(activePath(thread()!)).toHaveLength(8);
  });

  it('a reload after more than a page was written elsewhere shows the newest messages, pages back to the old ones and sends after the newest', async () => {
    const all = chain(12);
    let stored = all.slice(0, 2); // what the server holds: m0, m1 at first
    const { app, thread, socket } = await connected({
      route: (url, init) => {
        if ((init?.method ?? 'GET') !== 'GET') return undefined;
        if (url === `/api/conversations/${CID}`) {
          const page = stored.slice(-4);
          return json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages: page, hasMore: stored.length > 4, activeMessageId: '' });
        }
        if (!url.startsWith(`/api/conversations/${CID}/messages?`)) return undefined;
        const p = new URLSearchParams(url.slice(url.indexOf('?') + 1));
        const end = stored.findIndex((m) => m.id === p.get('before'));
        const start = Math.max(0, end - Number(p.get('limit')));
        return json({ messages: stored.slice(start, end), hasMore: start > 0 });
      },
    });
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['m0', 'm1']);
    const first = socket();
    first.cut();
    stored = all; // m2..m11 written in another tab meanwhile: more than the page of 4
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()!.messages.m11).toBeDefined());
    expect(thread()!.hasMore).toBe(true);
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['m8', 'm9', 'm10', 'm11']);

    void app.send('next'); // its ack is not the point
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(socket().framesOf('send')[0]).toMatchObject({ content: 'next', parentMessageId: 'm11' });

    await app.loadOlder(CID);
    expect(thread()!.hasMore).toBe(false);
    expect(activePath(thread()!).map((m) => m.id).slice(0, 12)).toEqual(all.map((m) => m.id));
  });

  it('a reload whose page starts at a plain continuation of the last loaded message, the page limit falling between, joins the thread', async () => {
    const all = chain(4);
    let stored = all.slice(0, 2); // what the server holds: m0, m1 at first
    const asked: string[] = [];
    const { thread, socket } = await connected({
      route: (url, init) => {
        if ((init?.method ?? 'GET') !== 'GET') return undefined;
        if (url === `/api/conversations/${CID}`) {
          return json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages: stored.slice(-2), hasMore: stored.length > 2, activeMessageId: '' });
        }
        if (!url.startsWith(`/api/conversations/${CID}/messages?`)) return undefined;
        asked.push(url);
        const p = new URLSearchParams(url.slice(url.indexOf('?') + 1));
        const end = stored.findIndex((m) => m.id === p.get('before'));
        const start = Math.max(0, end - Number(p.get('limit')));
        return json({ messages: stored.slice(start, end), hasMore: start > 0 });
      },
    });
    expect(thread()!.hasMore).toBe(false);
    const first = socket();
    first.cut();
    stored = all; // m2, m3 written in another tab meanwhile: a page of 2, m1 before it
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()!.messages.m3).toBeDefined());
    expect(asked).toEqual([`/api/conversations/${CID}/messages?before=m2&limit=1`]);
    expect(thread()!.hasMore).toBe(false);
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['m0', 'm1', 'm2', 'm3']);
  });

  it('a message typed offline, sent on waking before the reload answers, keeps the message it was written after, and the reload shows it with its answer', async () => {
    const all = chain(12);
    let stored = all.slice(0, 2); // what the server holds: m0, m1 at first
    let release = () => {};
    let gate: Promise<void> = Promise.resolve();
    const { app, thread, socket } = await connected({
      route: (url, init) => {
        if ((init?.method ?? 'GET') !== 'GET' || url !== `/api/conversations/${CID}`) return undefined;
        return gate.then(() => json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages: stored.slice(-4), hasMore: stored.length > 4, activeMessageId: '' }));
      },
    });
    const first = socket();
    first.cut();
    await app.send('typed offline');
    expect(thread()!.queued).toHaveLength(1);
    stored = [...all]; // m2..m11 written in another tab meanwhile: more than the page of 4
    gate = new Promise((resolve) => (release = resolve)); // the reload is slow: the queue goes first
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const frame = socket().framesOf('send')[0]!;
    expect(frame.parentMessageId).toBe('m1'); // what the user saw last: with none the server could put it on another branch
    // The server does so, and its frames come before the reload's answer.
    const user = message('u9', String(frame.parentMessageId), 'user', 'typed offline', 'complete', { clientMessageId: String(frame.clientMessageId), createdAt: at(12), updatedAt: at(12) });
    const answer = message('a9', 'u9', 'assistant', 'answered', 'complete', { createdAt: at(13), updatedAt: at(13) });
    stored.push(user, answer);
    socket().receive({ type: 'ack', id: frame.id, conversationId: CID, userMessageId: 'u9', messageId: 'a9' });
    socket().receive({ type: 'message', conversationId: CID, message: user });
    socket().receive({ type: 'message', conversationId: CID, message: answer });
    await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
    release();
    await vi.waitFor(() => expect(thread()!.messages.m11).toBeDefined());
    expect(thread()!.hasMore).toBe(true);
    expect(activePath(thread()!).map((m) => m.id).slice(-2)).toEqual(['u9', 'a9']); // older pages reach m1 before it
    await app.logout(); // no timer of this session is left for the tests after
  });

  it('an older page asked before such a reload replaced the thread is not merged into it', async () => {
    const all = chain(20);
    let stored = all.slice(0, 6);
    let releaseOlder: (r: Response) => void = () => {};
    const older = new Promise<Response>((resolve) => (releaseOlder = resolve));
    const { app, thread, socket } = await connected({
      route: (url, init) => {
        if ((init?.method ?? 'GET') !== 'GET') return undefined;
        if (url === `/api/conversations/${CID}`) {
          return json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages: stored.slice(-4), hasMore: stored.length > 4, activeMessageId: '' });
        }
        return url.startsWith(`/api/conversations/${CID}/messages?before=m2`) ? older : undefined;
      },
    });
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['m2', 'm3', 'm4', 'm5']);
    const loading = app.loadOlder(CID); // m0, m1: answered after the reload below
    const first = socket();
    first.cut();
    stored = all; // m6..m19 written elsewhere meanwhile
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()!.messages.m19).toBeDefined());
    releaseOlder(json({ messages: all.slice(0, 2), hasMore: false }));
    await loading;
    expect(thread()!.hasMore).toBe(true);
    expect(thread()!.messages.m0).toBeUndefined();
    expect(activePath(thread()!).map((m) => m.id)).toEqual(['m16', 'm17', 'm18', 'm19']);
  });
});

describe('an answer ended by a server going away', () => {
  it('waits for the stored status after reconnecting instead of believing the shutdown frame', async () => {
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    const interrupted = message('a1', 'u1', 'assistant', 'Hello', 'interrupted', { error: 'The server restarted while answering; the text so far is kept.' });
    const { socket, thread, answer } = await connected({ snapshots: [[u1, streaming], [u1, interrupted]] });
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 5, text: 'lo' });
    socket().receive({
      type: 'done',
      conversationId: CID,
      messageId: 'a1',
      seq: 5,
      status: 'interrupted',
      error: { code: 'shutdown', message: 'The server restarted while answering; the text so far is kept.' },
    });
    expect(thread()!.unconfirmed.a1).toBe(true);
    const first = socket();
    first.cut(1001);
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()!.unconfirmed.a1).toBeUndefined());
    expect(answer()).toMatchObject({ status: 'interrupted', content: 'Hello' });
  });
});

describe('a done that says the stored answer differs, on a link that stays up', () => {
  const shutdownError = { code: 'shutdown', message: 'The server restarted while answering; the text so far is kept.' };

  it('reloads when its seq is below the applied text (a lost instance ended from its checkpoint) and shows the stored text', async () => {
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    const stored = message('a1', 'u1', 'assistant', 'Hel', 'interrupted', { error: 'lost', errorCode: 'shutdown' } as Partial<Message>);
    const { socket, thread, answer, snapshotsFetched } = await connected({ snapshots: [[u1, streaming], [u1, stored]] });
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: 'lo world' });
    expect(answer()!.content).toBe('Hello world');
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 3, status: 'interrupted', error: shutdownError });
    expect(answer()!.content).toBe('Hel'); // never more than is stored
    expect(snapshotsFetched()).toBe(2);
    await vi.waitFor(() => expect(thread()!.unconfirmed.a1).toBeUndefined());
    expect(answer()).toMatchObject({ status: 'interrupted', content: 'Hel', error: 'lost' });
  });

  it('reloads an answer that streamed here and ended with shutdown, so the notice does not stay on a connected link', async () => {
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    const stored = message('a1', 'u1', 'assistant', 'Hello', 'interrupted', { error: shutdownError.message });
    const { app, socket, thread, snapshotsFetched } = await connected({ snapshots: [[u1, streaming], [u1, stored]] });
    // Another instance relays the done of an answer whose instance went away (a rolling restart).
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 5, text: 'lo' });
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 5, status: 'interrupted', error: shutdownError });
    expect(thread()!.unconfirmed.a1).toBe(true);
    expect(snapshotsFetched()).toBe(2);
    await vi.waitFor(() => expect(thread()!.unconfirmed.a1).toBeUndefined());
    expect(app.store.state.link.state).toBe('connected');
    expect(app.store.state.threadErrors[CID]).toBeUndefined();
  });

  it('keeps the conversation shown, not an error, when the server that sent the shutdown is gone already', async () => {
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    const stored = message('a1', 'u1', 'assistant', 'Hello', 'interrupted', { error: shutdownError.message });
    let down = false;
    const { app, socket, thread, answer } = await connected({
      snapshots: [[u1, streaming], [u1, stored]],
      route: () => (down ? Promise.reject(new TypeError('Failed to fetch')) : undefined),
    });
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 5, text: 'lo' });
    down = true; // new connections are refused from now on
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 5, status: 'interrupted', error: shutdownError });
    const first = socket();
    first.cut(1001);
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    expect(thread()!.unconfirmed.a1).toBe(true);
    expect(app.store.state.threadErrors[CID]).toBeUndefined();
    down = false;
    socket().open();
    await vi.waitFor(() => expect(thread()!.unconfirmed.a1).toBeUndefined());
    expect(answer()).toMatchObject({ status: 'interrupted', content: 'Hello' });
  });

  it('changes nothing on the done of a resumed answer the reload already showed as ended', async () => {
    // hub/subscribe.go storedError: the done of a resumed, ended, interrupted answer carries code "shutdown".
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    const stored = message('a1', 'u1', 'assistant', 'Hello', 'interrupted', { error: shutdownError.message });
    const { socket, thread, answer, snapshotsFetched } = await connected({ snapshots: [[u1, streaming], [u1, stored]] });
    const first = socket();
    first.cut(); // a network drop; meanwhile the server restarted and stored the answer as interrupted
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    const sub = socket().framesOf('subscribe')[0]!;
    expect(sub).toMatchObject({ messageId: 'a1', lastSeq: 3 });
    await vi.waitFor(() => expect(answer()).toMatchObject({ status: 'interrupted', content: 'Hello' }));
    expect(snapshotsFetched()).toBe(2);
    // The resume's answer comes after the snapshot (a slower subscribe on the server).
    const before = thread();
    socket().receive({ type: 'ack', id: sub.id });
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 5, text: 'lo' });
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 5, status: 'interrupted', error: shutdownError });
    expect(thread()).toBe(before);
    expect(thread()!.unconfirmed.a1).toBeUndefined();
    expect(snapshotsFetched()).toBe(2);
  });
});

describe('a send with no answer while the link looks up', () => {
  it('is queued and sent again with the same clientMessageId, not left waiting for a reconnect that never comes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, socket, thread } = setup({ snapshots: [[u1, a1]] });
      socket().open();
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      const sending = app.send('no ack');
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      const cmid = socket().framesOf('send')[0]!.clientMessageId;
      await vi.advanceTimersByTimeAsync(SERVER_WAIT_MS); // the ack timeout
      await sending;
      expect(thread()!.queued.map((q) => q.clientMessageId)).toEqual([cmid]);
      expect(app.store.state.link.state).toBe('connected');
      await vi.advanceTimersByTimeAsync(3000); // the retry
      expect(socket().framesOf('send').map((f) => f.clientMessageId)).toEqual([cmid, cmid]);
      const second = socket().framesOf('send')[1]!;
      socket().receive({ type: 'ack', id: second.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
      await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
      expect(app.store.state.drafts[CID]).toBe('');
      expect(app.store.state.toasts).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a regenerate with no answer says it is asked again in a moment (the link is up), and is', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, socket, thread } = setup({ snapshots: [[u1, a1]] });
      socket().open();
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      const acting = app.regenerate('a1');
      await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
      const key = socket().framesOf('regenerate')[0]!.clientMessageId;
      await vi.advanceTimersByTimeAsync(SERVER_WAIT_MS); // the ack timeout
      await acting;
      expect(app.store.state.link.state).toBe('connected');
      // It said "once the connection is back" of a connection that never went.
      expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Regenerate: The server did not answer in time. It is asked again in a moment.']);
      await vi.advanceTimersByTimeAsync(3000); // the retry
      expect(socket().framesOf('regenerate').map((f) => f.clientMessageId)).toEqual([key, key]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('releases its held draft once the server is known to have it, ack or not', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, kv, socket, thread } = setup({ snapshots: [[u1, a1]] });
      socket().open();
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      app.setDraft(CID, 'slow server');
      const sending = app.send('slow server');
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      const cmid = socket().framesOf('send')[0]!.clientMessageId as string;
      expect(held(kv, cmid)).toBe('slow server'); // held until the server has it
      await vi.advanceTimersByTimeAsync(SERVER_WAIT_MS); // no ack in time
      await sending;
      expect(thread()!.queued).toHaveLength(1);
      // The server did store it (a busy database): its frames arrive now, before the retry.
      socket().receive({ type: 'message', conversationId: CID, message: message('u2', 'a1', 'user', 'slow server', 'complete', { clientMessageId: cmid }) });
      expect(thread()!.queued).toHaveLength(0);
      expect(held(kv, cmid)).toBeNull();
      await vi.advanceTimersByTimeAsync(3000); // the retry has nothing left to send
      expect(socket().framesOf('send')).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a retry that finds the send stored releases its held draft', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, kv, socket, thread } = setup({ snapshots: [[u1, a1]] });
      socket().open();
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      app.setDraft(CID, 'stored while waiting');
      const sending = app.send('stored while waiting');
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      const cmid = socket().framesOf('send')[0]!.clientMessageId as string;
      // The stored message comes before the ack times out: the send is not queued yet.
      socket().receive({ type: 'message', conversationId: CID, message: message('u2', 'a1', 'user', 'stored while waiting', 'complete', { clientMessageId: cmid }) });
      await vi.advanceTimersByTimeAsync(SERVER_WAIT_MS); // then no ack in time: queued again
      await sending;
      expect(thread()!.queued).toHaveLength(1);
      expect(held(kv, cmid)).toBe('stored while waiting');
      await vi.advanceTimersByTimeAsync(3000); // the retry finds it stored
      expect(thread()!.queued).toHaveLength(0);
      expect(socket().framesOf('send')).toHaveLength(1);
      expect(held(kv, cmid)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a send or regenerate the WebSocket refuses unavailable (the hub shutting down; nothing stored), as SSE\'s 503', () => {
  const SHUTDOWN = 'the server is shutting down; try again in a moment';

  it('a send is queued, its draft cleared, the server\'s reason said once, and sent again with the same clientMessageId once reconnected', async () => {
    const { app, kv, socket, thread } = await connected();
    const first = socket();
    app.setDraft(CID, 'during the shutdown');
    const sending = app.send('during the shutdown');
    await vi.waitFor(() => expect(first.framesOf('send')).toHaveLength(1));
    const sent = first.framesOf('send')[0]!;
    first.receive({ type: 'error', id: sent.id, code: 'unavailable', message: SHUTDOWN });
    await sending;
    expect(thread()!.queued.map((q) => q.clientMessageId)).toEqual([sent.clientMessageId]);
    expect(app.store.state.drafts[CID]).toBe('');
    expect(held(kv, sent.clientMessageId)).toBe('during the shutdown');
    const told = [`Message not sent yet: The server is shutting down. It is sent when the server can take it.`];
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(told);

    first.cut(1001, 'server shutting down');
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const again = socket().framesOf('send')[0]!;
    expect(again).toMatchObject({ conversationId: CID, content: 'during the shutdown', clientMessageId: sent.clientMessageId });
    socket().receive({ type: 'ack', id: again.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
    await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
    expect(app.store.state.drafts[CID]).toBe('');
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(told);
    expect(thread()!.serverWait).toBeUndefined();
  });

  it('a regenerate waits with its key, said as a moment (not an error), and is asked again once reconnected', async () => {
    const { app, socket } = await connected();
    const first = socket();
    const acting = app.regenerate('a1');
    await vi.waitFor(() => expect(first.framesOf('regenerate')).toHaveLength(1));
    const asked = first.framesOf('regenerate')[0]!;
    first.receive({ type: 'error', id: asked.id, code: 'unavailable', message: SHUTDOWN });
    await acting;
    expect(app.store.state.toasts.map((t) => [t.text, t.kind])).toEqual([[`Regenerate: The server is shutting down. It is asked again when the server can take it.`, 'info']]);

    first.cut(1001, 'server shutting down');
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
    const again = socket().framesOf('regenerate')[0]!;
    expect(again).toMatchObject({ conversationId: CID, messageId: 'a1', clientMessageId: asked.clientMessageId });
    socket().receive({ type: 'ack', id: again.id, conversationId: CID, userMessageId: 'u1', messageId: 'a2' });
    await vi.waitFor(() => expect(app.store.state.busy[CID]).toBeUndefined());
    expect(app.store.state.toasts).toHaveLength(1);
  });
});

describe('a send refused unavailable while no model can be listed (the model providers cannot be reached): the link stays up', () => {
  const NO_MODEL = 'no model is available: Local cannot list its models: Could not reach the model provider; try again later';
  const TOLD = 'Message not sent yet: No model is available: Local cannot list its models: Could not reach the model provider. It is sent when the server can take it.';

  it('is queued with the server\'s reason, told once (not at each retry), and sent with its key once the server takes it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, socket, thread } = setup({ snapshots: [[u1, a1]] });
      socket().open();
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      const link = socket();
      const toast = vi.spyOn(app, 'toast'); // every toast shown, though each goes after a few seconds
      app.setDraft(CID, 'while the provider is down');
      const sending = app.send('while the provider is down');
      await vi.waitFor(() => expect(link.framesOf('send')).toHaveLength(1));
      const sent = link.framesOf('send')[0]!;
      link.receive({ type: 'error', id: sent.id, code: 'unavailable', message: NO_MODEL });
      await sending;
      expect(thread()!.queued.map((q) => q.clientMessageId)).toEqual([sent.clientMessageId]);
      expect(thread()!.serverWait).toBe(NO_MODEL); // the composer says the server, not the connection, is waited for
      expect(app.store.state.link.state).toBe('connected');
      expect(app.store.state.drafts[CID]).toBe('');
      expect(app.store.state.toasts.map((t) => [t.text, t.kind])).toEqual([[TOLD, 'info']]);

      await vi.advanceTimersByTimeAsync(3000); // the retry
      expect(link.framesOf('send').map((f) => f.clientMessageId)).toEqual([sent.clientMessageId, sent.clientMessageId]);
      link.receive({ type: 'error', id: link.framesOf('send')[1]!.id, code: 'unavailable', message: NO_MODEL });
      await vi.advanceTimersByTimeAsync(0);
      expect(thread()!.queued).toHaveLength(1);
      expect(thread()!.serverWait).toBe(NO_MODEL);
      expect(toast.mock.calls).toEqual([[TOLD, 'info']]); // not said again

      await vi.advanceTimersByTimeAsync(3000); // the next retry: the provider is back
      const third = link.framesOf('send')[2]!;
      expect(third).toMatchObject({ content: 'while the provider is down', clientMessageId: sent.clientMessageId });
      link.receive({ type: 'ack', id: third.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
      await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
      expect(thread()!.serverWait).toBeUndefined();
      expect(toast.mock.calls).toEqual([[TOLD, 'info']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a send that waits for a lost connection has no server reason: the composer keeps its connection notice', async () => {
    const { app, socket, thread } = await connected();
    socket().cut();
    await app.send('offline');
    expect(thread()!.queued).toHaveLength(1);
    expect(thread()!.serverWait).toBeUndefined();
    expect(app.store.state.toasts).toEqual([]);
  });
});

describe('a send the conversation is deleted under (in another tab or device)', () => {
  const deleted = { type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } };

  it('on its way: the refusal gives its text to the new chat\'s composer, where the tab lands', async () => {
    const { app, kv, socket } = await connected();
    app.setDraft(CID, 'a question');
    const sending = app.send('a question');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const frame = socket().framesOf('send')[0]!;
    socket().receive(deleted);
    socket().receive({ type: 'error', id: frame.id, code: 'not_found', message: `conversation ${CID} not found` });
    await sending;
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.draft('new')).toBe('a question');
    expect(app.store.state.toasts.map((t) => t.text)).toContain(`Message not sent: conversation ${CID} not found`);
    app.store.flush();
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull());
  });

  it('waiting for its retry: its text goes to the new chat\'s composer, after the text there, and nothing is sent', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, socket } = await connected();
      app.setDraft('new', 'begun elsewhere');
      const sending = app.send('no ack, then deleted');
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(SERVER_WAIT_MS); // no ack in time: queued for a retry
      await sending;
      socket().receive(deleted);
      expect(app.draft('new')).toBe('begun elsewhere\n\nno ack, then deleted');
      await vi.advanceTimersByTimeAsync(3000); // the retry finds nothing to send
      expect(socket().framesOf('send')).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a queued send into a conversation deleted while this tab was offline', () => {
  it('refused as not found, its text goes to the new chat\'s composer and the conversation is forgotten', async () => {
    let deletedOnServer = false;
    const { app, kv, socket, thread } = await connected({
      snapshots: [[u1, a1]],
      route: (url, init) => (deletedOnServer && url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? json({ error: { code: 'not_found', message: 'conversation not found' } }, 404) : undefined),
    });
    const first = socket();
    first.cut();
    await app.send('written offline');
    expect(thread()!.queued).toHaveLength(1);
    app.navigate('/'); // elsewhere when the link comes back
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    deletedOnServer = true;
    socket().receive({ type: 'error', id: socket().framesOf('send')[0]!.id, code: 'not_found', message: `conversation ${CID} not found` });
    await vi.waitFor(() => expect(app.draft('new')).toBe('written offline'));
    expect(thread()).toBeUndefined();
    expect(app.store.state.toasts.map((t) => t.text)).toContain(`Message not sent: conversation ${CID} not found`);
    app.store.flush();
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull());
  });
});

describe('a send refused as not found that names its parent (a reply after a message, an edit of a later one)', () => {
  const u2 = message('u2', 'a1', 'user', 'and then?', 'complete');
  const a2 = message('a2', 'u2', 'assistant', 'Then this.', 'complete');
  const acts = [
    ['a reply', (app: ChatApp) => app.send('one more thing'), 'one more thing', 'a2'],
    ['an edit', (app: ChatApp) => app.editAndResend('u2', 'and then, said better?'), 'and then, said better?', 'a1'],
  ] as const;
  const reloads = [
    // The server has the conversation, not the parent: kept, the text in its composer, the user told why.
    ['the conversation reloads', 'parent', 200, { kept: true, toast: PARENT_NOT_FOUND }],
    // Its reload is not found too: the conversation is gone, as a deletion frame would say.
    ['its reload is not found', 'conversation', 404, { kept: false, toast: `Message not sent: conversation ${CID} not found` }],
    // Nothing tells which: the conversation is kept, the server's word said.
    ['its reload fails', 'parent', 500, { kept: true, toast: 'Message not sent: message PARENT not found in this conversation' }],
  ] as const;

  it.each(acts.flatMap(([act, run, text, parent]) => reloads.map(([reload, missing, status, want]) => [`${act}, ${reload}`, run, text, parent, missing, status, want] as const)))(
    '%s',
    async (_, run, text, parent, missing, status, want) => {
      let refused = false;
      const { app, socket, thread } = await connected({
        snapshots: [[u1, a1, u2, a2]],
        route: (url, init) => {
          if (!refused || status === 200 || url !== `/api/conversations/${CID}` || (init?.method ?? 'GET') !== 'GET') return undefined;
          return status === 404 ? json({ error: { code: 'not_found', message: 'conversation not found' } }, 404) : json({ error: { code: 'internal', message: 'boom' } }, 500);
        },
      });
      const sending = run(app);
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      const frame = socket().framesOf('send')[0]!;
      expect(frame).toMatchObject({ parentMessageId: parent, content: text });
      refused = true;
      const message = missing === 'parent' ? `message ${parent} not found in this conversation` : `conversation ${CID} not found`;
      socket().receive({ type: 'error', id: frame.id, code: 'not_found', message });
      await sending;
      const toasts = app.store.state.toasts.map((t) => t.text);
      expect(toasts).toContain(want.toast.replace('PARENT', parent));
      if (want.kept) {
        expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });
        expect(thread()).toBeDefined();
        expect(app.draft(CID)).toBe(text);
        expect(toasts).not.toContain('This conversation was deleted.');
      } else {
        expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
        expect(thread()).toBeUndefined();
        expect(app.draft('new')).toBe(text);
      }
    },
  );
});

describe('a send refused because its parent was answered meanwhile (another tab answered the newest message here)', () => {
  it('loads the conversation again, gives the text back and says why, without the field name', async () => {
    const u2 = message('u2', 'a1', 'user', 'and then?', 'complete');
    const a2 = message('a2', 'u2', 'assistant', 'Then this.', 'complete');
    const { app, socket, thread, snapshotsFetched } = await connected({ snapshots: [[u1, a1, u2], [u1, a1, u2, a2]] });
    const sending = app.send('one more thing');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const frame = socket().framesOf('send')[0]!;
    expect(frame).toMatchObject({ parentMessageId: 'u2' });
    socket().receive({ type: 'error', id: frame.id, code: 'invalid_field', message: 'parentMessageId must name an answer' }); // hub/send.go
    await sending;
    expect(snapshotsFetched()).toBe(2);
    expect(thread()!.messages.a2).toBeDefined(); // the answer this page had not heard of
    expect(app.store.state.toasts.map((t) => t.text)).toEqual([PARENT_ANSWERED]);
    expect(app.draft(CID)).toBe('one more thing');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });
  });
});

describe('a send refused as not found, the session ending while its conversation is loaded again', () => {
  it.each<[string, (app: ChatApp) => void | Promise<void>, string]>([
    ['its token refused: its text is in its composer once the same user signs in again in this page', (app) => app.expire(), 'one more thing'],
    ['signed out: its text is forgotten, in storage too, however late the load answers', (app) => app.logout(), ''],
  ])('%s; nothing is said', async (_, end, found) => {
    const u2 = message('u2', 'a1', 'user', 'and then?', 'complete');
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.draftsOwner', 'u'); // as its sign-in made it
    let refused = false;
    let reload: ((r: Response) => void) | null = null;
    const { app, socket } = await connected({
      kv,
      snapshots: [[u1, a1, u2]],
      route: (url, init) => {
        if (url === '/api/auth/login') return json({ token: 'tok2', user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } });
        if (!refused || reload || url !== `/api/conversations/${CID}` || (init?.method ?? 'GET') !== 'GET') return undefined;
        return new Promise<Response>((resolve) => (reload = resolve));
      },
    });
    const sending = app.send('one more thing');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    refused = true;
    socket().receive({ type: 'error', id: socket().framesOf('send')[0]!.id, code: 'not_found', message: 'message u2 not found in this conversation' });
    await vi.waitFor(() => expect(reload).not.toBeNull());
    await end(app);
    reload!(json({ conversation: conv(CID, 't', ''), messages: [u1, a1], activeMessageId: 'a1' }));
    await sending;
    expect(app.store.state.toasts).toEqual([]);
    expect(app.store.state.drafts).toEqual({});
    const texts = () => Array.from({ length: kv.length }, (_, i) => kv.key(i)!).filter((k) => k.startsWith('chatd.draft.') || k.startsWith('chatd.slot.'));
    if (!found) expect(texts()).toEqual([]);
    await app.login('a@b.c', 'pw');
    app.navigate(`/c/${CID}`);
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.draft(CID)).toBe(found));
    if (!found) expect(texts()).toEqual([]);
  });
});

describe('a regenerate or a stop cut off before its ack', () => {
  it('a stop says it may have reached the server, so that it is not asked for twice in vain', async () => {
    const { app, socket } = await connected();
    const first = socket();
    const acting = app.stop();
    await vi.waitFor(() => expect(first.framesOf('cancel')).toHaveLength(1));
    first.cut();
    await acting;
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Could not stop: The connection was lost. The answer may still be running: press Stop again.']);
  });

  it('a regenerate is asked again with the same clientMessageId once reconnected (the server then answers with the answer the first made), and a new one gets a new key', async () => {
    const { app, socket } = await connected();
    const first = socket();
    const acting = app.regenerate('a1');
    await vi.waitFor(() => expect(first.framesOf('regenerate')).toHaveLength(1));
    const key = first.framesOf('regenerate')[0]!.clientMessageId;
    expect(key).toBeTruthy();
    first.cut();
    await acting;
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Regenerate: The connection was lost. It is asked again once the connection is back.']);

    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
    const again = socket().framesOf('regenerate')[0]!;
    expect(again).toMatchObject({ conversationId: CID, messageId: 'a1', clientMessageId: key });
    socket().receive({ type: 'ack', id: again.id, conversationId: CID, userMessageId: 'u1', messageId: 'a2' });
    await vi.waitFor(() => expect(app.store.state.busy[CID]).toBeUndefined());
    expect(app.store.state.toasts).toHaveLength(1); // told once

    const next = app.regenerate('a1');
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(2));
    const other = socket().framesOf('regenerate')[1]!;
    expect(other.clientMessageId).toBeTruthy();
    expect(other.clientMessageId).not.toBe(key);
    socket().receive({ type: 'ack', id: other.id, conversationId: CID, userMessageId: 'u1', messageId: 'a3' });
    await next;
  });

  it.each([
    ['a message', (app: ChatApp) => app.send('and then?')],
    ['an edit', (app: ChatApp) => app.editAndResend('u1', 'hi again')],
  ] as const)('%s sent while a regenerate waits gives the regenerate up, said: asked after it, it would stop its answer and hide it', async (_, sending) => {
    const { app, socket, thread } = await connected();
    const first = socket();
    const acting = app.regenerate('a1');
    await vi.waitFor(() => expect(first.framesOf('regenerate')).toHaveLength(1));
    first.cut();
    await acting;
    await sending(app);
    expect(thread()!.queued).toHaveLength(1);
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Regenerate: The connection was lost. It is asked again once the connection is back.', REGEN_GIVEN_UP]);

    await vi.waitFor(() => expect(socket()).not.toBe(first));
    const second = socket();
    second.open();
    await vi.waitFor(() => expect(second.framesOf('send')).toHaveLength(1));
    const send = second.framesOf('send')[0]!;
    second.receive({ type: 'ack', id: send.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
    await vi.waitFor(() => expect(thread()!.queued).toHaveLength(0));
    await settle();
    expect(second.framesOf('regenerate')).toHaveLength(0);
  });

  it('a regenerate refused by the server is not asked again', async () => {
    const { app, socket } = await connected();
    const acting = app.regenerate('a1');
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
    socket().receive({ type: 'error', id: socket().framesOf('regenerate')[0]!.id, code: 'unknown_model', message: 'model "x" is not available' });
    await acting;
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Could not regenerate: model "x" is not available']);
    const first = socket();
    first.cut();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(app.store.state.link.state).toBe('connected'));
    expect(socket().framesOf('regenerate')).toHaveLength(0);
  });
});

describe('stop names the answer it stops', () => {
  it('the cancel carries the messageId of the answer running when Stop was pressed, also when it goes out after a reconnect', async () => {
    const streaming = message('a2', 'u1', 'assistant', 'so far', 'streaming');
    const { app, socket } = await connected({ snapshots: [[u1, a1, streaming]] });
    const first = socket();
    first.cut(); // Stop pressed during a cut: the cancel goes out once the socket is back
    const stopping = app.stop();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('cancel')).toHaveLength(1));
    const cancel = socket().framesOf('cancel')[0]!;
    expect(cancel).toMatchObject({ conversationId: CID, messageId: 'a2' });
    socket().receive({ type: 'ack', id: cancel.id });
    await stopping;
  });

  describe('Stop pressed while a regenerate’s ack is pending (the answer shown is the one it replaces)', () => {
    const old = message('a2', 'u1', 'assistant', 'so far', 'streaming');

    /** regenerating asks to answer u1 again over the streaming a2 and presses Stop before the ack. */
    async function regenerating() {
      const s = await connected({ snapshots: [[u1, a1, old]] });
      const regen = s.app.regenerate('a2');
      await vi.waitFor(() => expect(s.socket().framesOf('regenerate')).toHaveLength(1));
      const stopping = s.app.stop();
      await Promise.resolve();
      await Promise.resolve();
      expect(s.socket().framesOf('cancel')).toHaveLength(0); // not the old answer's id
      return { ...s, regen, stopping, frame: s.socket().framesOf('regenerate')[0]! };
    }

    it('the cancel waits for the ack and names the new answer', async () => {
      const { socket, regen, stopping, frame } = await regenerating();
      socket().receive({ type: 'ack', id: frame.id, conversationId: CID, userMessageId: 'u1', messageId: 'a3' });
      await regen;
      await vi.waitFor(() => expect(socket().framesOf('cancel')).toHaveLength(1));
      const cancel = socket().framesOf('cancel')[0]!;
      expect(cancel).toMatchObject({ conversationId: CID, messageId: 'a3' });
      socket().receive({ type: 'ack', id: cancel.id });
      await stopping;
    });

    it('a regenerate refused leaves the running answer: the cancel names it', async () => {
      const { socket, regen, stopping, frame } = await regenerating();
      socket().receive({ type: 'error', id: frame.id, code: 'unknown_model', message: 'model "x" is not available' });
      await regen;
      await vi.waitFor(() => expect(socket().framesOf('cancel')).toHaveLength(1));
      const cancel = socket().framesOf('cancel')[0]!;
      expect(cancel).toMatchObject({ conversationId: CID, messageId: 'a2' });
      socket().receive({ type: 'ack', id: cancel.id });
      await stopping;
    });

    it('a regenerate cut off is not asked again, and the cancel names none (what it started is not known)', async () => {
      const { app, socket, regen, stopping } = await regenerating();
      const first = socket();
      first.cut();
      await regen;
      await vi.waitFor(() => expect(socket()).not.toBe(first));
      socket().open();
      await vi.waitFor(() => expect(socket().framesOf('cancel')).toHaveLength(1));
      const cancel = socket().framesOf('cancel')[0]!;
      expect(cancel).not.toHaveProperty('messageId');
      socket().receive({ type: 'ack', id: cancel.id });
      await stopping;
      await vi.waitFor(() => expect(app.store.state.link.state).toBe('connected'));
      expect(socket().framesOf('regenerate')).toHaveLength(0);
    });
  });

  it('with no answer shown running, the cancel names none (the server stops whichever runs)', async () => {
    const { app, socket } = await connected();
    const stopping = app.stop();
    await vi.waitFor(() => expect(socket().framesOf('cancel')).toHaveLength(1));
    const cancel = socket().framesOf('cancel')[0]!;
    expect(cancel).not.toHaveProperty('messageId');
    socket().receive({ type: 'ack', id: cancel.id });
    await stopping;
  });
});

describe('Stop waiting for a regenerate’s ack when the session ends', () => {
  it('sends no cancel on the next session’s connection', async () => {
    let ack: (a: Accepted) => void = () => undefined;
    const first = { regenerate: vi.fn(() => new Promise<Accepted>((resolve) => (ack = resolve))), cancel: vi.fn(async () => undefined) };
    const next = { regenerate: vi.fn(), cancel: vi.fn(async () => undefined) };
    let transport: unknown = first;
    let session = 1;
    const store = new Store<AppState>({ threads: {}, busy: {} } as unknown as AppState, { throttleMs: 0 });
    const t = new ConversationThread(CID, {
      store,
      api: {} as ApiClient,
      drafts: {} as Drafts,
      transport: () => transport as Transport,
      connected: () => true,
      toast: () => undefined,
      loadedConversation: () => undefined,
      session: () => session,
    });
    const regen = t.regenerate('a2');
    const stopping = t.stop();
    session = 2; // signed out, and in as the next user, before the ack
    transport = next;
    ack({ conversationId: CID, messageId: 'a3' });
    await regen;
    await stopping;
    expect([first.cancel.mock.calls, next.cancel.mock.calls]).toEqual([[], []]);
  });
});

describe('an answer whose end a slow database did not confirm stored (an unavailable done)', () => {
  const unavailable = { code: 'unavailable', message: 'The answer could not be saved.' };
  const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
  const stored = message('a1', 'u1', 'assistant', 'Hello world', 'complete');

  /** ended starts the app, streams "Hello world" and ends it with an unavailable done claiming only the checkpoint. */
  async function ended(snapshots: Message[][]) {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = setup({ snapshots });
    s.socket().open();
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    s.socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: 'lo world' });
    s.socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 3, status: 'error', error: unavailable });
    return s;
  }

  afterEach(() => vi.useRealTimers());

  /** settle lets the pending fetches and their answers run without moving the fake clock. */
  async function settle() {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  }

  it('keeps the text shown, marked unsaved, and reads the conversation again with backoff until the stored answer is final', async () => {
    const { thread, answer, snapshotsFetched } = await ended([[u1, streaming], [u1, streaming], [u1, streaming], [u1, stored]]);
    expect(answer()!.content).toBe('Hello world');
    expect(thread()!.unsaved.a1).toBe(true);
    await settle(); // vi.waitFor would move the fake clock
    expect(snapshotsFetched()).toBe(2); // the reload at once finds it still streaming
    await vi.advanceTimersByTimeAsync(0);
    expect(answer()!.content).toBe('Hello world');
    expect(thread()!.unsaved.a1).toBe(true);
    await vi.advanceTimersByTimeAsync(1999);
    expect(snapshotsFetched()).toBe(2);
    await vi.advanceTimersByTimeAsync(1); // 2 s
    expect(snapshotsFetched()).toBe(3);
    expect(thread()!.unsaved.a1).toBe(true);
    await vi.advanceTimersByTimeAsync(4000); // then 4 s: stored, final
    expect(snapshotsFetched()).toBe(4);
    expect(thread()!.unsaved.a1).toBeUndefined();
    expect(answer()).toMatchObject({ status: 'complete', content: 'Hello world' });
    await vi.advanceTimersByTimeAsync(600_000);
    expect(snapshotsFetched()).toBe(4);
  });

  it('shows what the server kept, shorter, once it gave up and stored the answer interrupted', async () => {
    const kept = message('a1', 'u1', 'assistant', 'Hel', 'interrupted', { error: 'The answer could not be saved.' });
    const { thread, answer } = await ended([[u1, streaming], [u1, streaming], [u1, kept]]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(thread()!.unsaved.a1).toBeUndefined();
    expect(answer()).toMatchObject({ status: 'interrupted', content: 'Hel' });
  });

  /**
   * slowDatabase ends the answer as `ended` does, against a server whose
   * stored answer stays `streaming` until final() is called (the database
   * recovered: the complete answer), or which answers 404 once deleted().
   */
  async function slowDatabase() {
    let answer: 'streaming' | 'final' | 'deleted' = 'streaming';
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = setup({
      route: (url, init) => {
        if (url !== `/api/conversations/${CID}` || (init?.method ?? 'GET') !== 'GET') return undefined;
        if (answer === 'deleted') return json({ error: { code: 'not_found', message: 'not found' } }, 404);
        const messages = [u1, answer === 'final' ? stored : streaming];
        return json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages, activeMessageId: 'a1' });
      },
    });
    s.socket().open();
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    s.socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: 'lo world' });
    s.socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 3, status: 'error', error: unavailable });
    await settle();
    return { ...s, final: () => (answer = 'final'), deleted: () => (answer = 'deleted') };
  }

  /** FAST_TRIES is the time of the doubling pauses, 2 s to the minute: 6 reads. */
  const FAST_TRIES = 2000 + 4000 + 8000 + 16000 + 32000 + 60000;

  it('after the pause has doubled to a minute, reads once a minute for as long as it takes, and stops once the stored answer is final', async () => {
    const { thread, answer, snapshotsFetched, final } = await slowDatabase();
    expect(snapshotsFetched()).toBe(2); // the load and the reload at the done
    await vi.advanceTimersByTimeAsync(FAST_TRIES - 1);
    expect(snapshotsFetched()).toBe(2 + 5);
    await vi.advanceTimersByTimeAsync(1);
    expect(snapshotsFetched()).toBe(2 + 6);
    await vi.advanceTimersByTimeAsync(3_600_000); // an hour later: still reading, every minute
    expect(snapshotsFetched()).toBe(2 + 6 + 60);
    expect(thread()!.unsaved.a1).toBe(true);
    final(); // the database is back and the server stored the answer
    await vi.advanceTimersByTimeAsync(60_000);
    expect(snapshotsFetched()).toBe(2 + 6 + 61);
    expect(thread()!.unsaved.a1).toBeUndefined();
    expect(answer()).toMatchObject({ status: 'complete', content: 'Hello world' });
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(snapshotsFetched()).toBe(2 + 6 + 61);
  });

  describe('reads at once, in the slow phase, on a sign that the server or the link may be back', () => {
    afterEach(() => delete (document as { visibilityState?: unknown }).visibilityState);

    const signs: Array<{ name: string; sign: (s: Awaited<ReturnType<typeof slowDatabase>>) => Promise<void> | void }> = [
      {
        name: 'the page shown again',
        sign: () => {
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
          document.dispatchEvent(new Event('visibilitychange'));
        },
      },
      { name: 'the browser online again', sign: () => void window.dispatchEvent(new Event('online')) },
      {
        name: 'a reconnect, the conversation not open',
        sign: async ({ app, socket }) => {
          app.navigate('/');
          socket().cut();
          app.retryConnection();
          socket().open();
        },
      },
      {
        name: 'the conversation opened again',
        sign: ({ app }) => {
          app.navigate('/');
          app.navigate(`/c/${CID}`);
        },
      },
    ];
    it.each(signs)('$name', async ({ sign }) => {
      const s = await slowDatabase();
      await vi.advanceTimersByTimeAsync(FAST_TRIES + 30_000); // half way to the next read
      const before = s.snapshotsFetched();
      s.final();
      await sign(s);
      await settle();
      expect(s.snapshotsFetched()).toBe(before + 1);
      expect(s.thread()!.unsaved.a1).toBeUndefined();
      expect(s.answer()).toMatchObject({ status: 'complete', content: 'Hello world' });
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(s.snapshotsFetched()).toBe(before + 1);
    });
  });

  it('stops reading once the server says the conversation is gone (deleted while this tab did not hear of it)', async () => {
    const { snapshotsFetched, deleted, app, thread } = await slowDatabase();
    await vi.advanceTimersByTimeAsync(FAST_TRIES);
    deleted();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(snapshotsFetched()).toBe(2 + 7);
    expect(thread()).toBeUndefined(); // forgotten, as a deletion frame would
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(snapshotsFetched()).toBe(2 + 7);
  });

  it('stops reading once a deletion frame says the conversation is gone', async () => {
    const { snapshotsFetched, socket } = await slowDatabase();
    await vi.advanceTimersByTimeAsync(FAST_TRIES);
    socket().receive({ type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } });
    await settle();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(snapshotsFetched()).toBe(2 + 6);
  });

  it('leaves no timer behind after a logout: nothing is read or sent afterwards', async () => {
    const { app, calls, sockets } = await slowDatabase();
    await vi.advanceTimersByTimeAsync(FAST_TRIES);
    await app.logout();
    await settle();
    // The sign-out's own requests end on real I/O (their bodies are read
    // as streams), which a loaded machine may not have run yet: wait for
    // them, up to 10 s of real time (a count of turns ran out under load),
    // without moving the fake clock.
    for (const until = performance.now() + 10_000; vi.getTimerCount() !== 0 && performance.now() < until; ) {
      await new Promise((r) => setImmediate(r));
    }
    expect(vi.getTimerCount()).toBe(0);
    const made = calls.length;
    const sent = sockets.map((x) => x.sent.length);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(calls.length).toBe(made);
    expect(sockets.map((x) => x.sent.length)).toEqual(sent);
  });

  it('stops reading once signed out', async () => {
    const { app, snapshotsFetched } = await ended([[u1, streaming]]);
    await settle(); // vi.waitFor would move the fake clock
    expect(snapshotsFetched()).toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(snapshotsFetched()).toBe(3);
    app.expire();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(snapshotsFetched()).toBe(3);
  });
});

describe('a second resync asked for during one (a gap while reloading)', () => {
  afterEach(() => vi.useRealTimers());

  /** gapTwice starts the app, then brings two gaps, the second while the first one's reload is on its way. */
  async function gapTwice() {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    let release: (() => void) | undefined;
    let loads = 0;
    const s = setup({
      route: (url, init) => {
        if (url !== `/api/conversations/${CID}` || (init?.method ?? 'GET') !== 'GET') return undefined;
        const answer = () => json({ conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' }, messages: [u1, streaming], activeMessageId: 'a1' });
        if (++loads !== 2) return answer();
        return new Promise<Response>((r) => (release = () => r(answer()))); // the resync's load, held
      },
    });
    s.socket().open();
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    s.socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 20, text: 'x' }); // a gap: resync
    await vi.waitFor(() => expect(release).toBeDefined());
    s.socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 21, text: 'y' }); // another, during it
    release!();
    for (let i = 0; i < 50; i++) await Promise.resolve(); // the first resync ends, the second waits 500 ms
    return s;
  }

  it('is made 500 ms after the first ended, while the session lasts', async () => {
    const { snapshotsFetched, socket } = await gapTwice();
    const resubscribes = socket().framesOf('subscribe').length;
    expect(snapshotsFetched()).toBe(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(snapshotsFetched()).toBe(3);
    expect(socket().framesOf('subscribe').length).toBeGreaterThan(resubscribes);
  });

  it('is not made once the session ended: after a logout, nothing is read or sent', async () => {
    const { app, sockets, calls } = await gapTwice();
    await app.logout();
    const made = calls.length;
    const sent = sockets.map((x) => x.sent.length);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls.slice(made)).toEqual([]);
    expect(sockets.map((x) => x.sent.length)).toEqual(sent);
  });
});

describe('what was stored between a load and the subscribe that follows it', () => {
  const u2 = message('u2', 'a1', 'user', 'from another tab', 'complete');
  const a2 = message('a2', 'u2', 'assistant', 'Strea', 'streaming');
  const ack = (s: ReturnType<typeof setup>) => s.socket().receive({ type: 'ack', id: s.socket().framesOf('subscribe').at(-1)!.id });

  it('a conversation loaded before the socket opened is loaded again once its subscribe is taken, and shows the question asked meanwhile', async () => {
    const s = setup({ snapshots: [[u1, a1], [u1, a1, u2, a2]] });
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    s.socket().open();
    ack(s);
    // The catch-up of the subscribe: the answer running, whose question the first load predates.
    s.socket().receive({ type: 'message', conversationId: CID, message: a2 });
    await vi.waitFor(() => expect(activePath(s.thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2']));
    s.socket().receive({ type: 'delta', conversationId: CID, messageId: 'a2', seq: 9, text: 'ming' });
    await vi.waitFor(() => expect(s.thread()!.messages.a2!.content).toBe('Streaming'));
  });

  it('a whole exchange stored meanwhile is shown, with no live frame to tell of it', async () => {
    const s = setup({ snapshots: [[u1, a1], [u1, a1, u2, { ...a2, content: 'Done', status: 'complete' }]] });
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    s.socket().open();
    expect(s.snapshotsFetched()).toBe(1);
    ack(s);
    await vi.waitFor(() => expect(activePath(s.thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2']));
    expect(s.snapshotsFetched()).toBe(2);
  });

  it('a load made after the subscribe was asked for (a reconnect) or while the conversation was followed (a resync) is not made again', async () => {
    const s = await connected({ snapshots: [[u1, a1]] });
    ack(s); // the first load came before the socket opened: loaded again
    await vi.waitFor(() => expect(s.snapshotsFetched()).toBe(2));

    s.socket().cut();
    await vi.waitFor(() => expect(s.sockets.length).toBe(2));
    s.socket().open(); // subscribes, then loads again (onReconnected)
    await vi.waitFor(() => expect(s.snapshotsFetched()).toBe(3));
    ack(s);
    await settle();
    expect(s.snapshotsFetched()).toBe(3);

    s.socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 99, text: 'x' }); // a gap: a resync, while followed
    await vi.waitFor(() => expect(s.snapshotsFetched()).toBe(4));
    await vi.waitFor(() => expect(s.socket().framesOf('subscribe')).toHaveLength(2));
    ack(s);
    await settle();
    expect(s.snapshotsFetched()).toBe(4);
  });

  it('a subscribe refused, then taken on a retry, loads again what the refusal may have hidden', async () => {
    const s = await connected({ snapshots: [[u1, a1], [u1, a1, u2, a2]] });
    s.socket().receive({ type: 'error', id: s.socket().framesOf('subscribe').at(-1)!.id, code: 'invalid_field', message: 'x' });
    await settle();
    expect(s.snapshotsFetched()).toBe(1);
    s.app.retryLive(CID);
    ack(s);
    await vi.waitFor(() => expect(activePath(s.thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2']));
  });

  it('a message whose parent the tab never got reads the conversation again', async () => {
    const s = await connected({ snapshots: [[u1, a1], [u1, a1, u2, a2]] });
    expect(s.snapshotsFetched()).toBe(1);
    s.socket().receive({ type: 'message', conversationId: CID, message: a2 });
    await vi.waitFor(() => expect(activePath(s.thread()!).map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2']));
    expect(s.snapshotsFetched()).toBe(2);
    s.socket().receive({ type: 'message', conversationId: CID, message: message('u3', 'a2', 'user', 'next', 'complete') });
    await settle();
    expect(s.snapshotsFetched()).toBe(2); // its parent is known: nothing read
  });

  it('with older pages not loaded, a message whose parent was made well before the oldest loaded one reads nothing; one made within the clocks\' margin of it does', async () => {
    const idAt = (iso: string, n: number) => (Date.parse(iso) / 1000).toString(16).padStart(8, '0') + n.toString(16).padStart(16, '0');
    const s = await connected({ snapshots: [[u1, a1]], snapshotExtra: { hasMore: true } });
    const old = idAt('2025-12-31T00:00:00Z', 1); // on an older page: u1 was made 2026-01-01T00:00:02Z
    s.socket().receive({ type: 'message', conversationId: CID, message: message('a9', old, 'assistant', '', 'streaming') });
    await settle();
    expect(s.snapshotsFetched()).toBe(1);
    // Made a minute before the oldest loaded by its id, within the clocks'
    // margin (another instance's clock may run a minute behind): missed, not paged.
    const missed = idAt('2025-12-31T23:59:00Z', 2);
    s.socket().receive({ type: 'message', conversationId: CID, message: message('a8', missed, 'assistant', '', 'streaming') });
    await vi.waitFor(() => expect(s.snapshotsFetched()).toBe(2));
  });
});

describe('a resume point refused (bad_seq): the text shown is longer than the stored one (a checkpoint behind a lost instance)', () => {
  afterEach(() => vi.useRealTimers());

  it('the next subscribe resumes from the stored text, shown as stored, and a refusal again waits before asking again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const stored = message('a1', 'u1', 'assistant', 'Hello', 'streaming');
    const { socket, thread } = await connected({ snapshots: [[u1, stored]] });
    const first = socket();
    first.receive({ type: 'ack', id: first.framesOf('subscribe')[0]!.id });
    first.receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' });
    await vi.waitFor(() => expect(thread()!.messages.a1!.content).toBe('Hello world'));
    first.cut();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    const second = socket();
    second.open();
    const subscribes = () => second.framesOf('subscribe').filter((f) => f.conversationId === CID);
    const refuse = (f: Record<string, unknown>) => second.receive({ type: 'error', id: f.id, code: 'bad_seq', message: 'lastSeq 11 is outside the answer (5 bytes)' });
    await vi.waitFor(() => expect(subscribes()).toHaveLength(1));
    expect(subscribes()[0]).toMatchObject({ messageId: 'a1', lastSeq: 11 });

    refuse(subscribes()[0]!);
    await vi.waitFor(() => expect(subscribes()).toHaveLength(2));
    expect(subscribes()[1]).toMatchObject({ messageId: 'a1', lastSeq: 5 }); // the stored length, not the refused point
    expect(thread()!.messages.a1!.content).toBe('Hello'); // what follows comes in the resume's catch-up

    refuse(subscribes()[1]!);
    for (let i = 0; i < 50; i++) await Promise.resolve(); // vi.waitFor would move the fake clock
    expect(subscribes()).toHaveLength(2); // not at once
    await vi.advanceTimersByTimeAsync(2000);
    await vi.waitFor(() => expect(subscribes()).toHaveLength(3));
    second.receive({ type: 'ack', id: subscribes()[2]!.id });
    second.receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' });
    await vi.waitFor(() => expect(thread()!.messages.a1!.content).toBe('Hello world'));
  });
});

describe('a resume point refused after its subscribe was taken (a cluster: an error without id, then the close 1001)', () => {
  afterEach(() => vi.useRealTimers());

  it('the reconnect resumes from the stored text, never the refused cursor, a refusal again waits, and the user is not told of it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const stored = message('a1', 'u1', 'assistant', 'Hello', 'streaming');
    const { app, socket, thread } = await connected({ snapshots: [[u1, stored]] });
    const subscribes = (s: ReturnType<typeof socket>) => s.framesOf('subscribe').filter((f) => f.conversationId === CID);
    /** reopen waits for the socket after `was` and opens it at once (before any reload ends). */
    const reopen = async (was: ReturnType<typeof socket>) => {
      await vi.waitFor(() => expect(socket()).not.toBe(was));
      socket().open();
      return socket();
    };
    /** refuse takes the socket's subscribe (ack) then refuses its cursor as hub/remote.go's refuseCursor does. */
    const refuse = (s: ReturnType<typeof socket>) => {
      s.receive({ type: 'ack', id: subscribes(s).at(-1)!.id });
      s.receive({ type: 'error', code: 'bad_seq', message: 'lastSeq 11 is outside the answer (5 bytes)' });
      s.cut(1001, 'resume cursor inside a character; reload');
    };
    const first = socket();
    first.receive({ type: 'ack', id: subscribes(first)[0]!.id });
    first.receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' });
    await vi.waitFor(() => expect(thread()!.messages.a1!.content).toBe('Hello world'));
    first.cut();
    const second = await reopen(first);
    await vi.waitFor(() => expect(subscribes(second)).toHaveLength(1));
    expect(subscribes(second)[0]).toMatchObject({ messageId: 'a1', lastSeq: 11 });

    refuse(second);
    const third = await reopen(second);
    await vi.waitFor(() => expect(subscribes(third)).toHaveLength(1));
    expect(subscribes(third)[0]).toMatchObject({ messageId: 'a1', lastSeq: 5 }); // the stored length, not the refused 11
    expect(thread()!.messages.a1!.content).toBe('Hello');

    refuse(third); // refused again: the next subscribe waits
    const fourth = await reopen(third);
    for (let i = 0; i < 50; i++) await Promise.resolve(); // vi.waitFor would move the fake clock
    expect(subscribes(fourth)).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2000);
    await vi.waitFor(() => expect(subscribes(fourth)).toHaveLength(1));
    expect(subscribes(fourth)[0]).toMatchObject({ messageId: 'a1', lastSeq: 5 });
    fourth.receive({ type: 'ack', id: subscribes(fourth)[0]!.id });
    fourth.receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' });
    await vi.waitFor(() => expect(thread()!.messages.a1!.content).toBe('Hello world'));
    expect(app.store.state.toasts.map((t) => t.text)).not.toContain('lastSeq 11 is outside the answer (5 bytes)');
  });
});
