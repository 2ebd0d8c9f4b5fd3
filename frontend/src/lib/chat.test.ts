// ChatApp wiring: frames from a scripted socket and answers from a scripted
// fetch (stand-ins for the browser APIs; the real server is covered by e2e/).
// The list's tests are in conversationList.test.ts, one conversation's in
// conversationThread.test.ts.

import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ACCOUNT_DELETED_NOTICE, ACCOUNT_DELETING_NOTICE, ACCOUNT_DELETION_SIGNED_OUT, ACCOUNT_DELETION_UNKNOWN, ACCOUNT_NOT_DELETED } from './account';
import { SERVER_WAIT_MS } from './api';
import { ChatApp, KEPT_THREADS, NEW_CHAT_STARTING, NOT_KEPT, SESSION_ENDED, SETTINGS_NOT_LOADED, SIGNED_OUT_ELSEWHERE } from './chat';
import { saveBlob } from './download';
import { forgetRevealed, revealImage, revealKnown } from './images';
import { renderMarkdown } from './markdown';
import { STALE } from './conversationThread';
import { MODELS_REFRESH_MS, MODELS_STALE_MS } from './modelList';
import { unavailableNotice } from './models';
import { Persist, memoryKV, type KV } from './persist';
import { CID, conv, json, message, settle, setup, type FakeSocket } from './testkit';

// No file is offered in these tests: an export's download is only counted.
vi.mock('./download', () => ({ saveBlob: vi.fn() }));

afterEach(() => history.replaceState(null, '', '/'));

/**
 * reconnect cuts the app's socket from the far side, runs meanwhile once
 * it is down (reads start failing, or are held), asks for the connection
 * again and opens the new socket.
 */
async function reconnect(app: ChatApp, socket: () => FakeSocket, meanwhile: () => void): Promise<void> {
  const first = socket();
  first.cut();
  meanwhile();
  app.retryConnection();
  await vi.waitFor(() => expect(socket()).not.toBe(first));
  socket().open();
}

/**
 * recorded is kv as another tab writes it: each change it makes is kept in
 * events, as the storage events the other tabs get, in the order it made
 * them (the test delivers them).
 */
function recorded(kv: KV, events: StorageEvent[]): KV {
  const changed = (key: string, newValue: string | null, write: () => void) => {
    const oldValue = kv.getItem(key);
    write();
    if (oldValue !== newValue) events.push(new StorageEvent('storage', { key, oldValue, newValue }));
  };
  return {
    getItem: (key) => kv.getItem(key),
    setItem: (key, value) => changed(key, value, () => kv.setItem(key, value)),
    removeItem: (key) => changed(key, null, () => kv.removeItem(key)),
    get length() {
      return kv.length;
    },
    key: (i) => kv.key(i),
  };
}

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

  it('a sign-in by another user does not find the unsent text of the one before; the same user signing in again does', async () => {
    const users: Record<string, { id: string; email: string; name: string; createdAt: string; updatedAt: string }> = {
      'a@b.c': { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' },
      'b@b.c': { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' },
    };
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (url !== '/api/auth/login') return undefined;
        const { email } = JSON.parse(String(init?.body)) as { email: string };
        return json({ token: `tok-${email}`, user: users[email] });
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    app.setDraft('new', 'a private thought of A');
    app.setDraft(CID, 'more of A');
    socket().cut(4401); // A's session expires (a sign-out forgets the texts at once)
    expect(kv.getItem('chatd.draft.new')).toBe('a private thought of A'); // kept for A's return

    await app.login('b@b.c', 'password of B');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.draft('new')).toBe('');
    expect(app.draft(CID)).toBe('');
    expect([kv.getItem('chatd.draft.new'), kv.getItem(`chatd.draft.${CID}`)]).toEqual([null, null]);

    app.setDraft('new', 'B writes');
    socket().cut(4401); // B's session ends: B's text is kept for B
    expect(app.store.state.route).toEqual({ name: 'login' });
    await app.login('b@b.c', 'password of B');
    expect(app.draft('new')).toBe('B writes');
  });

  it('after an ended session its user signs in back to where it ended, another user to a new chat', async () => {
    const users: Record<string, { id: string; email: string; name: string; createdAt: string; updatedAt: string }> = {
      'a@b.c': { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' },
      'b@b.c': { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' },
    };
    const { app, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (url !== '/api/auth/login') return undefined;
        const { email } = JSON.parse(String(init?.body)) as { email: string };
        return json({ token: `tok-${email}`, user: users[email] });
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    socket().cut(4401); // A's session ends on A's conversation
    expect(app.store.state.route).toEqual({ name: 'login' });
    await app.login('b@b.c', 'password of B');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null }); // not A's conversation
    expect(location.pathname).toBe('/');

    app.navigate(`/c/${CID}`);
    socket().cut(4401);
    await app.login('b@b.c', 'password of B');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID }); // B's own return
  });

  it('a sign-in the full storage cannot keep signs in all the same, and says a reload will ask again', async () => {
    const user = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url) => (url === '/api/auth/login' ? json({ token: 'tok-b', user }) : undefined),
    });
    socket().open();
    await app.logout();
    kv.setItem = () => {
      throw new DOMException("Failed to execute 'setItem' on 'Storage': Setting the value of 'chatd.token' exceeded the quota.", 'QuotaExceededError');
    };
    await app.login('b@b.c', 'password of B'); // the server accepted it: no error
    expect(app.store.state.session).toEqual({ token: 'tok-b', user, notice: null });
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.store.state.toasts.map((t) => t.text)).toEqual([NOT_KEPT]);
  });

  it('deleting the account: a wrong password keeps the session; then everything of it is forgotten', async () => {
    let answer = () => json({ error: { code: 'unauthorized', message: 'wrong password' } }, 401);
    const { app, kv, calls, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/me' && init?.method === 'DELETE' ? answer() : undefined),
    });
    socket().open();
    app.setDraft(CID, 'words of a deleted account');
    app.setDraft('new', 'more of them');

    expect(await app.deleteAccount('not my password')).toEqual({ text: 'Wrong password.' });
    expect(app.store.state.session.token).toBe('tok');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });

    answer = () => new Response(null, { status: 204 });
    expect(await app.deleteAccount('my password 1')).toBeNull();
    expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.body)).toEqual([{ password: 'not my password' }, { password: 'my password 1' }]);
    expect(app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_DELETED_NOTICE });
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(app.transportKind()).toBeNull();
    expect(app.draft(CID)).toBe('');
    expect(app.draft('new')).toBe('');
    expect([kv.getItem('chatd.token'), kv.getItem('chatd.user'), kv.getItem(`chatd.draft.${CID}`), kv.getItem('chatd.draft.new')]).toEqual([null, null, null, null]);
    expect(kv.getItem('chatd.ended')).toBe('account-deleted'); // what other tabs read
    expect(location.pathname).toBe('/login');
  });

  it.each<[string, (app: ChatApp) => Promise<unknown>, string]>([
    ['deleting the account', (app) => app.deleteAccount('my password 1'), 'DELETE'],
    ['changing the password', (app) => app.changePassword('my password 1', 'a new password 2'), 'PATCH'],
  ])('%s answered 401 for the token (expired, revoked: its challenge says invalid_token) ends the session, drafts kept', async (_, ask, method) => {
    const refused = () =>
      json({ error: { code: 'unauthorized', message: 'invalid, expired or revoked token' } }, 401, {
        'WWW-Authenticate': 'Bearer realm="chatd", error="invalid_token", error_description="invalid, expired or revoked token"',
      });
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/me' && init?.method === method ? refused() : undefined),
    });
    socket().open();
    app.setDraft(CID, 'words not sent');
    expect(await ask(app)).toBeNull();
    expect(app.store.state.session).toEqual({ token: null, user: null, notice: SESSION_ENDED });
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('words not sent');
  });

  it('deleting the account answered 202 (its data still being removed) signs out and says the removal is still finishing', async () => {
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/me' && init?.method === 'DELETE' ? json({ status: 'deleting' }, 202) : undefined),
    });
    socket().open();
    app.setDraft(CID, 'words of a deleted account');
    expect(await app.deleteAccount('my password 1')).toBeNull();
    expect(app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_DELETING_NOTICE });
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(app.draft(CID)).toBe('');
    expect(kv.getItem('chatd.ended')).toBe('account-deleted');
  });

  it('a close with 4401 "account deleted" where no deletion was asked (another device\'s, which may still fail) signs out and keeps the drafts', async () => {
    const { app, kv, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    app.setDraft(CID, 'typed just now');
    socket().cut(4401, 'account deleted');
    expect(app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_DELETION_SIGNED_OUT });
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('typed just now');
    expect(kv.getItem('chatd.ended')).toBe('expired');
  });

  it.each<[string, () => Response | Promise<Response>, string, boolean]>([
    ['the server failed after it (503: the account in place, signed out)', () => json({ error: { code: 'unavailable', message: 'the store is unavailable' } }, 503), ACCOUNT_NOT_DELETED, true],
    ['the server failed after it (500)', () => json({ error: { code: 'internal', message: 'internal error' } }, 500), ACCOUNT_NOT_DELETED, true],
    ['a proxy answered 502 (the outcome unknown)', () => new Response('bad gateway', { status: 502 }), ACCOUNT_DELETION_UNKNOWN, true],
    ['the network failed (the outcome unknown)', () => Promise.reject(new TypeError('Failed to fetch')), ACCOUNT_DELETION_UNKNOWN, true],
    ['then deleted (204)', () => new Response(null, { status: 204 }), ACCOUNT_DELETED_NOTICE, false],
  ])('deleting the account, its socket closed "account deleted" before the answer: %s', async (_, answer, notice, kept) => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/me' && init?.method === 'DELETE' ? held.then(answer) : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    app.setDraft(CID, 'words not sent');
    const deleting = app.deleteAccount('my password 1');
    socket().cut(4401, 'account deleted');
    expect(app.store.state.session.notice).toBeNull(); // the answer decides
    expect(app.store.state.session.token).toBe('tok');
    release();
    expect(await deleting).toBeNull();
    expect(app.store.state.session).toEqual({ token: null, user: null, notice });
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe(kept ? 'words not sent' : null);
    expect(new Persist(kv).endReason()).toBe(kept ? 'expired' : 'accountDeleted');
  });

  it('deleting the account refused 503 before its socket\'s close "account deleted" came: the refusal is said, then the close ends the session saying the account was not deleted', async () => {
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/me' && init?.method === 'DELETE' ? json({ error: { code: 'unavailable', message: 'the store is unavailable' } }, 503) : undefined),
    });
    socket().open();
    app.setDraft(CID, 'words not sent');
    expect(await app.deleteAccount('my password 1')).toEqual({ text: 'The store is unavailable. Your account was not deleted.' });
    socket().cut(4401, 'account deleted');
    expect(app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_NOT_DELETED });
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('words not sent');
  });

  it.each<[string, () => Response | Promise<Response>, string, boolean]>([
    ['deleted (204)', () => new Response(null, { status: 204 }), ACCOUNT_DELETED_NOTICE, false],
    ['the server failed after the sign-out (503)', () => json({ error: { code: 'unavailable', message: 'the store is unavailable' } }, 503), ACCOUNT_NOT_DELETED, true],
    ['no answer (the network failed)', () => Promise.reject(new TypeError('Failed to fetch')), ACCOUNT_DELETION_UNKNOWN, true],
  ])('another tab of the browser asking for the deletion: this tab\'s close "account deleted" waits for its answer, and ends as it says: %s', async (_, answer, notice, kept) => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const b = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    b.socket().open();
    await vi.waitFor(() => expect(b.app.store.state.session.user?.id).toBe('u'));
    b.app.setDraft(CID, 'words typed in B');
    // A's writes reach B as storage events, in the order A made them (a browser's own order).
    const events: StorageEvent[] = [];
    const a = setup({ kv: recorded(b.kv, events), route: (url, init) => (url === '/api/auth/me' && init?.method === 'DELETE' ? held.then(answer) : undefined) });
    a.socket().open();
    const deleting = a.app.deleteAccount('my password 1');
    b.socket().cut(4401, 'account deleted');
    a.socket().cut(4401, 'account deleted');
    expect(b.app.store.state.session.token).toBe('tok');
    events.length = 0;
    release();
    expect(await deleting).toBeNull();
    expect(a.app.store.state.session.notice).toBe(notice);
    for (const e of events) window.dispatchEvent(e);
    expect(b.app.store.state.session).toEqual({ token: null, user: null, notice });
    expect(b.app.draft(CID)).toBe(kept ? 'words typed in B' : '');
  });

  it.each<[string, boolean]>([
    ['this tab waits past 30 s (the server\'s bound) and its latency', false],
    ['the asking tab holds another tab\'s expiry meanwhile until its answer', true],
  ])('another tab of the browser asking for the deletion, answered 202 after 30 s: it says it is deleting, this tab too (%s)', async (_, otherExpires) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    onTestFinished(() => void vi.useRealTimers());
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const aEvents: StorageEvent[] = [];
    const bEvents: StorageEvent[] = [];
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    const b = setup({ kv: recorded(kv, bEvents), snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    b.socket().open();
    const a = setup({
      kv: recorded(kv, aEvents),
      route: (url, init) => (url === '/api/auth/me' && init?.method === 'DELETE' ? held.then(() => json({ status: 'deleting' }, 202)) : undefined),
    });
    a.socket().open();
    await vi.advanceTimersByTimeAsync(0);
    const deleting = a.app.deleteAccount('my password 1');
    b.socket().cut(4401, 'account deleted');
    a.socket().cut(4401, 'account deleted');
    await vi.advanceTimersByTimeAsync(32_000);
    if (otherExpires) b.app.expire(); // another tab's own expiry (as before, its wait over)
    else expect(b.app.store.state.session.token).toBe('tok');
    for (const e of bEvents.splice(0)) window.dispatchEvent(e); // what B wrote reaches A
    expect(a.app.store.state.session.token).toBe('tok');
    aEvents.length = 0;
    release();
    expect(await deleting).toBeNull();
    for (const e of aEvents) window.dispatchEvent(e); // what A wrote reaches B
    expect(a.app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_DELETING_NOTICE });
    if (!otherExpires) expect(b.app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_DELETING_NOTICE });
  });

  it('changing the password refused for its token after another tab\'s change landed first (its new token adopted here): a refusal, not "changed"', async () => {
    const user = { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' };
    let release: (r: Response) => void = () => {};
    const held = new Promise<Response>((resolve) => (release = resolve));
    const b = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/me' && init?.method === 'PATCH' ? json({ token: 'tok2', user }) : undefined),
    });
    b.socket().open();
    await vi.waitFor(() => expect(b.app.store.state.session.user?.id).toBe('u'));
    const a = setup({ kv: b.kv, route: (url, init) => (url === '/api/auth/me' && init?.method === 'PATCH' ? held : undefined) });
    a.socket().open();
    await vi.waitFor(() => expect(a.app.store.state.session.user?.id).toBe('u'));
    const mine = a.app.changePassword('my password 1', 'password of A 3'); // sent with tok
    expect(await b.app.changePassword('my password 1', 'password of B 2')).toBeNull(); // lands first: tok revoked
    window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: 'tok2' }));
    expect(a.app.store.state.session.token).toBe('tok2');
    release(
      json({ error: { code: 'unauthorized', message: 'invalid, expired or revoked token' } }, 401, {
        'WWW-Authenticate': 'Bearer realm="chatd", error="invalid_token", error_description="invalid, expired or revoked token"',
      }),
    );
    expect(await mine).toEqual({ field: null, text: expect.stringMatching(/^Your password was not changed/) });
    expect(a.app.store.state.session).toMatchObject({ token: 'tok2', notice: null }); // still signed in, with B's token
  });

  it.each<[string, (app: ChatApp) => Promise<unknown>, string, string, unknown]>([
    ['deleting the account', (app) => app.deleteAccount('my password 1'), 'DELETE', ACCOUNT_DELETION_UNKNOWN, null],
    [
      'changing the password',
      (app) => app.changePassword('my password 1', 'a new password 2'),
      'PATCH',
      SESSION_ENDED,
      { field: null, text: expect.stringMatching(/^Your password may not have been changed/), unknown: true },
    ],
  ])('%s left unanswered after its socket\'s close (a half-open connection) is given up after SERVER_WAIT_MS: the session ends, the outcome unknown', async (_, ask, method, notice, result) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => void vi.useRealTimers());
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) =>
        url === '/api/auth/me' && init?.method === method
          ? new Promise<Response>((_, reject) => init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))
          : undefined,
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    app.setDraft(CID, 'words not sent');
    const asked = ask(app);
    socket().cut(4401, method === 'DELETE' ? 'account deleted' : '');
    await vi.advanceTimersByTimeAsync(SERVER_WAIT_MS - 1000); // a slow store: still waited for
    expect(app.store.state.session.token).toBe('tok');
    await vi.advanceTimersByTimeAsync(1000);
    expect(app.store.state.session).toEqual({ token: null, user: null, notice });
    expect(await asked).toEqual(result);
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('words not sent');
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

describe('a session ended in another tab of the browser', () => {
  type Tab = ReturnType<typeof setup>;
  it.each<[string, (a: Tab) => void | Promise<void>, string, boolean]>([
    ['its token refused (a 4401 close: expired, or revoked by a password change elsewhere)', (a) => a.socket().cut(4401), SESSION_ENDED, true],
    ['its token refused (a 401)', async (a) => {
      await a.app.loadThread(CID); // answered 401 (route below)
    }, SESSION_ENDED, true],
    ['signed out', (a) => a.app.logout(), SIGNED_OUT_ELSEWHERE, false], // a sign-out forgets the unsent texts
    ['its account deleted (asked there, answered 2xx)', async (a) => {
      await a.app.deleteAccount('my password 1');
    }, ACCOUNT_DELETED_NOTICE, false],
    ['a 4401 "account deleted" there, its deletion asked elsewhere (which may fail)', (a) => a.socket().cut(4401, 'account deleted'), SESSION_ENDED, true],
  ])('%s: this tab says why, as that tab did', async (_, end, notice, draftKept) => {
    const b = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    b.socket().open();
    await vi.waitFor(() => expect(b.app.store.state.session.user?.id).toBe('u'));
    b.app.setDraft(CID, 'unsent words');
    let refused = false;
    const a = setup({ kv: b.kv, route: (url) => (refused && url === `/api/conversations/${CID}` ? json({ error: { code: 'unauthorized', message: 'token expired' } }, 401) : undefined) });
    a.socket().open();
    await vi.waitFor(() => expect(a.app.store.state.threads[CID]?.loaded).toBe(true));
    refused = true;
    await end(a);
    expect(a.app.store.state.session.token).toBeNull();

    window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: null }));
    expect(b.app.store.state.session).toEqual({ token: null, user: null, notice });
    expect(b.app.store.state.route).toEqual({ name: 'login' });
    expect(b.app.draft(CID)).toBe(draftKept ? 'unsent words' : '');
  });
});

describe('the texts typed and not sent when the session ends', () => {
  type Tab = ReturnType<typeof setup>;
  /** unsent lists what storage keeps of them: composer texts, messages waiting to send, open edits. */
  const unsent = (kv: Tab['kv']) =>
    Array.from({ length: kv.length }, (_, i) => kv.key(i)!)
      .filter((k) => k.startsWith('chatd.draft.') || k.startsWith('chatd.slot.'))
      .sort();

  /** typed leaves each kind in storage, and one composer text typed a moment ago, its save not due yet. */
  async function typed(kv?: Tab['kv']): Promise<Tab> {
    const t = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete')]], kv });
    t.socket().open();
    await vi.waitFor(() => expect(t.app.store.state.threads[CID]?.loaded).toBe(true));
    t.socket().cut();
    await t.app.send('waiting for the connection');
    t.app.edits.open(CID, '', 'hi');
    t.app.edits.type(CID, '', 'hi, as I mean it');
    t.app.setDraft(CID, 'in the box');
    window.dispatchEvent(new Event('pagehide')); // the saves due are written now
    expect(unsent(t.kv)).toEqual([`chatd.draft.${CID}`, `chatd.slot.edit.page.${CID}.~`, expect.stringMatching(`^chatd\\.slot\\.sending\\.page\\.${CID}\\.`)]);
    t.app.setDraft('new', 'a new chat');
    return t;
  }

  it.each<[string, (t: Tab) => void | Promise<void>]>([
    ['signed out here', (t) => t.app.logout()],
    ['signed out in another tab', async (t) => {
      const other = setup({ kv: t.kv });
      await other.app.logout();
      window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: null }));
    }],
  ])('%s: they are forgotten, for whoever uses the browser next', async (_, end) => {
    const t = await typed();
    await end(t);
    expect(t.app.store.state.session.token).toBeNull();
    window.dispatchEvent(new Event('pagehide'));
    expect(unsent(t.kv)).toEqual([]);
    expect([t.app.draft(CID), t.app.draft('new')]).toEqual(['', '']);
  });

  it.each<[string, (t: Tab) => void]>([
    ['its token refused here (expired, revoked)', (t) => t.app.expire()],
    ['its token refused in a tab of the version before, which wrote no reason', (t) => {
      t.kv.removeItem('chatd.token');
      t.kv.removeItem('chatd.user');
      window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: null }));
    }],
    ['its token taken away by another tab whose save found storage full', (t) => {
      t.kv.setItem('chatd.ended', 'signed-out'); // an earlier sign-out's, say
      const set = t.kv.setItem;
      t.kv.setItem = (k, v) => {
        if (k === 'chatd.user') throw new DOMException('full', 'QuotaExceededError');
        set(k, v);
      };
      try {
        expect(new Persist(t.kv).saveSession('tok', { id: 'u' })).toBe(false);
      } finally {
        t.kv.setItem = set;
      }
      window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: null }));
    }],
  ])('%s: they are kept for the same user, who finds them at the next sign-in', async (_, end) => {
    const t = await typed();
    end(t);
    expect(t.app.store.state.session).toEqual({ token: null, user: null, notice: SESSION_ENDED }); // "… your unsent text is kept."
    expect(unsent(t.kv)).toEqual([`chatd.draft.${CID}`, 'chatd.draft.new', expect.stringMatching(`^chatd\\.slot\\.sending\\.page\\.${CID}\\.`)]);
    expect([t.kv.getItem('chatd.draft.new'), t.kv.getItem(`chatd.draft.${CID}`)]).toEqual(['a new chat', 'in the box\n\nhi, as I mean it']);
  });
});

describe('deleting the account answered once the session changed', () => {
  const userA = { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' };
  const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
  type App = ReturnType<typeof setup>;
  /** otherTab signs out (token null) or in, as another tab's Persist writes it. */
  const otherTab = (kv: App['kv'], token: string | null, user?: object) => {
    const oldValue = kv.getItem('chatd.token');
    if (token === null) new Persist(kv).clearSession('signedOut');
    else new Persist(kv).saveSession(token, user);
    window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue, newValue: token }));
  };
  /** The changes of session made while A's deletion waits for its answer. */
  const changes = {
    'A signed out here': async ({ app }: App) => app.logout(),
    'B signed in here': async ({ app }: App) => {
      await app.logout();
      await app.login('b@b.c', 'password of B');
    },
    'B signed in in another tab': async ({ kv }: App) => {
      otherTab(kv, null);
      otherTab(kv, 'tok-b', userB);
    },
    'A signed in again here': async ({ app }: App) => {
      await app.logout();
      await app.login('a@b.c', 'password of A');
    },
  };

  /** started signs A in; deleting waits for the answer the test gives. */
  async function started() {
    let release: (r: Response) => void = () => {};
    const held = new Promise<Response>((resolve) => (release = resolve));
    const t = setup({
      path: '/',
      route: (url, init) => {
        const method = init?.method ?? 'GET';
        const auth = (init?.headers as Record<string, string> | undefined)?.Authorization;
        if (url === '/api/auth/me' && method === 'DELETE') return held;
        if (url === '/api/auth/me' && method === 'GET') return json({ user: auth === 'Bearer tok-b' ? userB : userA });
        if (url !== '/api/auth/login') return undefined;
        const { email } = JSON.parse(String(init?.body)) as { email: string };
        return email === 'b@b.c' ? json({ token: 'tok-b', user: userB }) : json({ token: 'tok-a2', user: userA });
      },
    });
    t.socket().open();
    await vi.waitFor(() => expect(t.app.store.state.session.user?.id).toBe('u'));
    return { ...t, deleting: t.app.deleteAccount('my password 1'), release };
  }

  it.each<[keyof typeof changes, 'B stays' | 'ended']>([
    ['B signed in here', 'B stays'],
    ['B signed in in another tab', 'B stays'],
    ['A signed in again here', 'ended'], // the account is gone: that session ends too
  ])('%s', async (change, outcome) => {
    const t = await started();
    const { app, kv, socket } = t;
    await changes[change](t);
    expect(app.store.state.session.token).not.toBe('tok');
    app.setDraft('new', 'typed since');

    t.release(new Response(null, { status: 204 }));
    expect(await t.deleting).toBeNull();
    if (outcome === 'B stays') {
      expect(app.store.state.session).toEqual({ token: 'tok-b', user: userB, notice: null });
      expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
      expect([kv.getItem('chatd.token'), kv.getItem('chatd.user'), kv.getItem('chatd.ended')]).toEqual(['tok-b', JSON.stringify(userB), null]);
      expect(app.draft('new')).toBe('typed since');
      expect(socket().protocols).toContain('bearer.tok-b');
    } else {
      expect(app.store.state.session).toEqual({ token: null, user: null, notice: ACCOUNT_DELETED_NOTICE });
      expect(app.store.state.route).toEqual({ name: 'login' });
      expect(kv.getItem('chatd.ended')).toBe('account-deleted');
      expect(app.draft('new')).toBe('');
    }
  });

  it.each<[keyof typeof changes, boolean]>([
    ['A signed out here', false],
    ['B signed in here', false],
    ['B signed in in another tab', false],
    ['A signed in again here', true],
  ])('refused once %s: the refusal is for A alone (told: %s)', async (change, told) => {
    const t = await started();
    await changes[change](t);
    t.release(json({ error: { code: 'unauthorized', message: 'wrong password' } }, 401));
    expect(await t.deleting).toEqual(told ? { text: 'Wrong password.' } : null);
  });
});

describe('the open conversation deleted in another tab', () => {
  it('leaves for a new chat that keeps the text being written', async () => {
    const { app, kv, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    app.setDraft(CID, 'half of a long question');
    socket().receive({ type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } });
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.store.state.toasts.map((t) => t.text)).toContain('This conversation was deleted.');
    expect(app.draft(ChatApp.draftKey(null))).toBe('half of a long question');
    app.store.flush();
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull());
  });

  it('its message waiting goes after the new chat\'s saved text, not loaded here yet (the new chat never opened on this page)', async () => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.user', JSON.stringify({ id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' }));
    kv.setItem('chatd.draftsOwner', 'u');
    kv.setItem('chatd.draft.new', 'plan for tomorrow');
    const { app, socket, thread } = setup({ kv, snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    app.setDraft(CID, 'm1');
    const sending = app.send('m1');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    socket().receive({ type: 'error', id: socket().framesOf('send')[0]!.id, code: 'unavailable', message: 'the server is shutting down' });
    await sending;
    expect(thread()!.queued).toHaveLength(1);
    expect(app.store.state.drafts.new).toBeUndefined(); // not read from storage yet
    socket().receive({ type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } });
    expect(app.store.state.drafts.new).toBe('plan for tomorrow\n\nm1');
    await vi.waitFor(() => expect(kv.getItem('chatd.draft.new')).toBe('plan for tomorrow\n\nm1'));
  });
});

describe('the open conversation read again and not found (deleted where this tab did not hear of it)', () => {
  const OTHER = '0123456789abcdef0123bbbb';
  const notFound = () => json({ error: { code: 'not_found', message: 'conversation not found' } }, 404);
  it.each([
    ['chatd\'s not_found', notFound, { kept: false }],
    ['a proxy\'s 404 (no chatd body)', () => new Response('<html>404 Not Found</html>', { status: 404 }), { kept: true }],
  ])('answered %s after a reconnect', async (_, answer, want) => {
    let gone = false;
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      list: () => ({ conversations: [conv(CID, 't', '2026-01-01T00:00:02Z'), conv(OTHER, 'another', '2026-01-01T00:00:01Z')], nextCursor: '' }),
      route: (url, init) => (gone && url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? answer() : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.list.items.map((c) => c.id)).toEqual([CID, OTHER]));
    app.setDraft(CID, 'half of a long question');
    await reconnect(app, socket, () => (gone = true)); // deleted on another device while the link was down: no frame says it
    if (want.kept) {
      await vi.waitFor(() => expect(app.store.state.threadErrors[CID]).toBe('This conversation does not exist or was deleted.'));
      expect(app.store.state.list.items.map((c) => c.id)).toEqual([CID, OTHER]);
      expect(app.draft(CID)).toBe('half of a long question');
      return;
    }
    await vi.waitFor(() => expect(app.store.state.list.items.map((c) => c.id)).toEqual([OTHER]));
    expect(thread()).toBeUndefined();
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.draft(ChatApp.draftKey(null))).toBe('half of a long question');
    expect(app.store.state.toasts.map((t) => t.text)).toContain('This conversation does not exist or was deleted.');
  });

  it('opened from its address: it leaves the list, and the text its composer kept goes to the new chat\'s', async () => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.draftsOwner', 'u');
    kv.setItem(`chatd.draft.${CID}`, 'kept from the last visit');
    const { app, socket } = setup({
      kv,
      list: () => ({ conversations: [conv(CID, 't', '2026-01-01T00:00:02Z'), conv(OTHER, 'another', '2026-01-01T00:00:01Z')], nextCursor: '' }),
      route: (url, init) => (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? notFound() : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null }));
    await vi.waitFor(() => expect(app.store.state.list.items.map((c) => c.id)).toEqual([OTHER]));
    expect(app.draft(ChatApp.draftKey(null))).toBe('kept from the last visit');
  });
});

describe('a change answered not_found (deleted where this tab did not hear of it)', () => {
  const OTHER = '0123456789abcdef0123bbbb';
  const notFound = () => json({ error: { code: 'not_found', message: 'conversation not found' } }, 404);
  const proxy404 = () => new Response('<html>404 Not Found</html>', { status: 404 });
  it.each([
    ['a rename of the open one', CID, (app: ChatApp) => app.rename(CID, 'New'), notFound, { kept: false, left: true }],
    ['a model pick of the open one', CID, (app: ChatApp) => app.setModel('m'), notFound, { kept: false, left: true }],
    ['a rename of another', OTHER, (app: ChatApp) => app.rename(OTHER, 'New'), notFound, { kept: false, left: false }],
    ['a rename, a proxy\'s 404 (no chatd body)', CID, (app: ChatApp) => app.rename(CID, 'New'), proxy404, { kept: true, left: false }],
  ])('%s', async (_, id, act, answer, want) => {
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      list: () => ({ conversations: [conv(CID, 't', '2026-01-01T00:00:02Z'), conv(OTHER, 'another', '2026-01-01T00:00:01Z')], nextCursor: '' }),
      route: (url, init) => (url === `/api/conversations/${id}` && init?.method === 'PATCH' ? answer() : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.list.items.map((c) => c.id)).toEqual([CID, OTHER]));
    await act(app);
    const ids = app.store.state.list.items.map((c) => c.id);
    const toasts = app.store.state.toasts.map((t) => t.text);
    if (want.kept) {
      expect(ids).toEqual([CID, OTHER]);
      expect(toasts.some((t) => t.startsWith('Could not save'))).toBe(true);
      return;
    }
    expect(ids).toEqual([CID, OTHER].filter((x) => x !== id));
    expect(toasts.some((t) => t.startsWith('Could not save'))).toBe(false);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: want.left ? null : CID });
    expect(toasts.includes('This conversation was deleted.')).toBe(want.left);
    expect(app.store.state.modelPicks).toEqual({});
  });

  it.each([
    ['chatd\'s not_found', notFound, { refused: null, kept: false }],
    ['a proxy\'s 404 (no chatd body)', proxy404, { refused: { text: 'The server refused the settings: The server refused this request (HTTP 404). Reload the page and try again.' }, kept: true }],
  ])('a save of the open one\'s system prompt and parameters, %s', async (_, answer, want) => {
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      list: () => ({ conversations: [conv(CID, 't', '2026-01-01T00:00:02Z'), conv(OTHER, 'another', '2026-01-01T00:00:01Z')], nextCursor: '' }),
      route: (url, init) => (url === `/api/conversations/${CID}` && init?.method === 'PATCH' ? answer() : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.list.items.map((c) => c.id)).toEqual([CID, OTHER]));
    expect(await app.saveSettings('Be brief.', { temperature: 0.3 })).toEqual(want.refused);
    expect(app.store.state.list.items.map((c) => c.id)).toEqual(want.kept ? [CID, OTHER] : [OTHER]);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: want.kept ? CID : null });
    expect(app.store.state.toasts.map((t) => t.text).includes('This conversation was deleted.')).toBe(!want.kept);
  });
});

describe('another user signed in by another tab', () => {
  const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };

  it('while this tab slept through the sign-out (one storage event for both): nothing of the user before stays', async () => {
    const { app, kv, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'a secret of A', 'complete')]],
      list: () => ({ conversations: [conv(CID, 'A title', '')], nextCursor: '' }),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.list.items).toHaveLength(1));
    app.navigate('/');
    expect(await app.saveSettings('You are the assistant of A.', {})).toBeNull();
    app.navigate(`/c/${CID}`);
    vi.useFakeTimers();
    try {
      app.setDraft(CID, 'typing of A'); // its save is due in 200 ms
      app.toast('Could not save: a title of A', 'error');

      // The other tab signed A out and B in; this tab hears of it once, after both.
      kv.setItem('chatd.token', 'tok-b');
      kv.setItem('chatd.user', JSON.stringify(userB));
      kv.setItem('chatd.draftsOwner', 'v');
      kv.removeItem(`chatd.draft.${CID}`);
      window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: 'tok-b' }));

      expect(app.store.state.session.user?.id).toBe('v');
      expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
      expect(location.pathname).toBe('/');
      expect(app.store.state.threads).toEqual({});
      expect(app.store.state.list.items).toEqual([]);
      expect(app.draft(CID)).toBe('');
      expect(app.store.state.newChat.systemPrompt).toBe('');
      expect(app.store.state.toasts).toEqual([]); // A's 'Could not save: …' is not shown to B
      expect(socket().protocols).toContain('bearer.tok-b');
      vi.advanceTimersByTime(1000); // A's typing is not saved for B
      expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('after signing out here: the new chat\'s system prompt and parameters of the user before are not the next user\'s', async () => {
    const { app, socket, calls } = setup({
      path: '/',
      route: (url) => (url === '/api/auth/login' ? json({ token: 'tok-b', user: userB }) : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    expect(await app.saveSettings('You are the assistant of A.', { temperature: 0.3 })).toBeNull();
    await app.logout();
    await app.login('b@b.c', 'password of B');
    expect(app.store.state.newChat.systemPrompt).toBe('');
    expect(app.store.state.newChat.params).toBeUndefined();
    socket().open();
    await app.send('hello from B');
    const created = calls.find((c) => c.method === 'POST' && c.url === '/api/conversations');
    expect(created?.body).not.toHaveProperty('systemPrompt');
    expect(created?.body).not.toHaveProperty('params');
  });
});

describe('the answer of a send into a conversation not open', () => {
  it('ends the socket\'s following of that conversation once done; the open one stays followed', async () => {
    const { socket, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const other = 'c'.padEnd(24, '0');
    // A send into `other` made the server follow it for this socket (a new
    // chat left before it was made, a queued send flushed elsewhere).
    socket().receive({ type: 'done', conversationId: other, messageId: 'a9', seq: 0, status: 'complete' });
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 0, status: 'complete' });
    await settle();
    expect(socket().framesOf('unsubscribe')).toEqual([{ type: 'unsubscribe', conversationId: other }]);
  });
});

describe('conversations opened one after another', () => {
  it('keep a bounded number of threads in memory, never the open one nor one with a message waiting to be sent', async () => {
    const { app, socket, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    socket().cut(); // down: the next send waits in the queue
    await app.send('waits for the connection');
    expect(thread()!.queued).toHaveLength(1);
    const ids = Array.from({ length: 3 * KEPT_THREADS }, (_, i) => `c${String(i).padStart(23, '0')}`);
    for (const id of ids) app.navigate(`/c/${id}`);
    await vi.waitFor(() => expect(app.store.state.threadErrors[ids.at(-1)!]).toBeDefined()); // the loads answered (404 here)
    const kept = Object.keys(app.store.state.threads);
    expect(kept.length).toBeLessThanOrEqual(KEPT_THREADS + 1);
    expect(kept).toContain(CID); // its queued message is still to be sent
    expect(kept).toContain(ids.at(-1)); // the open one
    expect(kept).toContain(ids.at(-2)); // and the ones left last
    expect(kept).not.toContain(ids[0]);
    expect(Object.keys(app.store.state.threadErrors).every((id) => kept.includes(id))).toBe(true);
  });

  it('keep their composer texts, model picks and other tabs’ texts bounded too: a text typed in one trimmed is saved, and shown again when it is opened', async () => {
    const ids = Array.from({ length: KEPT_THREADS + 50 }, (_, i) => `c${String(i).padStart(23, '0')}`);
    const [first, last] = [ids[0]!, ids.at(-1)!];
    const never = 'n'.padEnd(24, '0'); // a conversation never opened in this tab
    const { app, kv, socket } = setup({
      route: (url, init) => (url === `/api/conversations/${first}` && init?.method === 'PATCH' ? new Promise<Response>(() => undefined) : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    kv.setItem('chatd.draftsOwner', 'u');
    app.navigate(`/c/${first}`);
    app.setDraft(first, 'typed in the first'); // its save still pending when it is trimmed
    void app.setModel('m'); // its PATCH never answered
    expect(app.store.state.modelPicks[first]).toBe('m');
    for (const id of ids.slice(1)) app.navigate(`/c/${id}`);
    await vi.waitFor(() => expect(app.store.state.threadErrors[last]).toBeDefined()); // the loads answered (404 here)
    expect(Object.keys(app.store.state.drafts).length).toBeLessThanOrEqual(KEPT_THREADS + 1);
    expect(app.store.state.drafts[first]).toBeUndefined();
    expect(kv.getItem(`chatd.draft.${first}`)).toBe('typed in the first'); // saved as it left memory
    expect(app.store.state.modelPicks).toEqual({});

    // Another tab's text: taken for the open conversation, not for one this tab does not keep.
    for (const id of [never, last]) {
      kv.setItem(`chatd.draft.${id}`, 'typed in another tab');
      window.dispatchEvent(new StorageEvent('storage', { key: `chatd.draft.${id}`, newValue: 'typed in another tab' }));
    }
    expect(app.store.state.drafts[never]).toBeUndefined();
    expect(app.store.state.drafts[last]).toBe('typed in another tab');

    app.navigate(`/c/${first}`);
    expect(app.draft(first)).toBe('typed in the first');
    expect(app.store.state.drafts[first]).toBe('typed in the first');
    app.navigate(`/c/${never}`);
    expect(app.draft(never)).toBe('typed in another tab');
  });

  it('nor one with an answer not confirmed saved (an unavailable done): it is read again until final', async () => {
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hel', 'streaming')]],
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 3, status: 'error', error: { code: 'unavailable', message: 'not saved' } });
    expect(thread()!.unsaved.a1).toBe(true);
    const ids = Array.from({ length: 2 * KEPT_THREADS }, (_, i) => `c${String(i).padStart(23, '0')}`);
    for (const id of ids) app.navigate(`/c/${id}`);
    await vi.waitFor(() => expect(app.store.state.threadErrors[ids.at(-1)!]).toBeDefined());
    expect(Object.keys(app.store.state.threads)).toContain(CID);
    expect(thread()!.unsaved.a1).toBe(true);
    await app.logout(); // its reads end with the session
  });

  it('nor one with a regenerate waiting to be asked again: it is asked once the connection is back', async () => {
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete')]],
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const first = socket();
    const regenerating = app.regenerate('a1');
    await vi.waitFor(() => expect(first.framesOf('regenerate')).toHaveLength(1));
    first.cut(); // cut off before its ack: asked again once connected
    await regenerating;
    const ids = Array.from({ length: 2 * KEPT_THREADS }, (_, i) => `c${String(i).padStart(23, '0')}`);
    for (const id of ids) app.navigate(`/c/${id}`);
    await vi.waitFor(() => expect(app.store.state.threadErrors[ids.at(-1)!]).toBeDefined());
    expect(Object.keys(app.store.state.threads)).toContain(CID);
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
    expect(socket().framesOf('regenerate')[0]).toMatchObject({ conversationId: CID, messageId: 'a1' });
  });
});

describe('a conversation\'s snapshot answered after the session ended', () => {
  it('is not taken into the next session (another user\'s)', async () => {
    let answer: (r: Response) => void = () => undefined;
    const held = new Promise<Response>((resolve) => (answer = resolve));
    const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
    const { app, calls } = setup({
      route: (url, init) => {
        if (url === '/api/auth/login') return json({ token: 'tok-b', user: userB });
        if (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET') return held;
        return undefined;
      },
    });
    await vi.waitFor(() => expect(calls.some((c) => c.url === `/api/conversations/${CID}`)).toBe(true));
    await app.logout();
    await app.login('b@b.c', 'password of B');
    const snapshot = json({ conversation: conv(CID, 'A title', ''), messages: [message('u1', '', 'user', 'a secret of A', 'complete')] });
    const read = snapshot.json.bind(snapshot);
    let body: Promise<unknown> | undefined;
    snapshot.json = () => (body = read());
    answer(snapshot);
    await vi.waitFor(() => expect(body).toBeDefined());
    await body;
    await new Promise((resolve) => setTimeout(resolve, 0)); // the load's last steps, all microtasks
    expect(app.store.state.threads).toEqual({});
    expect(app.store.state.list.items).toEqual([]);
  });
});

describe('a rename or settings answered after the session ended', () => {
  /** Starts act, signs out and in as user B while its PATCH is held, and
   * returns what act resolves to once the PATCH is answered with reply. */
  async function answeredToTheNextUser<T>(act: (app: ChatApp) => Promise<T>, reply: Response) {
    let answer: (r: Response) => void = () => undefined;
    const held = new Promise<Response>((resolve) => (answer = resolve));
    const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
    const { app, calls, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (url === '/api/auth/login') return json({ token: 'tok-b', user: userB });
        if (url === `/api/conversations/${CID}` && init?.method === 'PATCH') return held;
        return undefined;
      },
    });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const acting = act(app);
    await vi.waitFor(() => expect(calls.some((c) => c.method === 'PATCH')).toBe(true));
    await app.logout();
    await app.login('b@b.c', 'password of B');
    answer(reply);
    return { app, result: await acting };
  }

  it.each([
    ['a rename', (app: ChatApp) => app.rename(CID, 'A secret title')],
    ['a model pick', (app: ChatApp) => app.setModel('m')],
    ['system prompt and parameters', (app: ChatApp) => app.saveSettings('a secret prompt of A', {})],
  ])('%s: the conversation it returns is not put into the next user’s list, and no error is shown', async (_, act) => {
    const { app } = await answeredToTheNextUser<unknown>(
      act,
      json({ conversation: { ...conv(CID, 'A secret title', '2026-01-02T00:00:00Z'), systemPrompt: 'a secret prompt of A' } }),
    );
    expect(app.store.state.list.items).toEqual([]);
    expect(app.store.state.toasts).toEqual([]);
  });

  it.each([
    ['a rename', (app: ChatApp) => app.rename(CID, 'A secret title').then(() => null)],
    ['system prompt and parameters', (app: ChatApp) => app.saveSettings('a secret prompt of A', {})],
  ])('%s refused then: the refusal is not shown to the next user', async (_, act) => {
    const { app, result } = await answeredToTheNextUser<unknown>(act, json({ error: { code: 'internal', message: 'boom' } }, 500));
    expect(result).toBeNull(); // the settings dialog has nothing to say
    expect(app.store.state.toasts).toEqual([]);
  });
});

describe('a deletion or an export failed after the session ended', () => {
  it.each([
    ['a deletion', 'DELETE', `/api/conversations/${CID}`, (app: ChatApp) => app.remove(CID)],
    ['an export', 'GET', `/api/conversations/${CID}/export?format=markdown`, (app: ChatApp) => app.exportConversation(CID, 'markdown')],
  ])('%s: its error is not shown to the next user', async (_, method, path, act) => {
    let answer: (r: Response) => void = () => undefined;
    const held = new Promise<Response>((resolve) => (answer = resolve));
    const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
    const { app, calls, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (url === '/api/auth/login') return json({ token: 'tok-b', user: userB });
        if (url === '/api/auth/me') return json({ user: userB });
        if (url === path && (init?.method ?? 'GET') === method) return held;
        return undefined;
      },
    });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const acting = act(app);
    await vi.waitFor(() => expect(calls.some((c) => c.method === method && c.url === path)).toBe(true));
    await app.logout();
    await app.login('b@b.c', 'password of B');
    answer(json({ error: { code: 'internal', message: 'boom' } }, 500));
    await acting;
    expect(app.store.state.session.user?.id).toBe('v');
    expect(app.store.state.toasts).toEqual([]);
  });
});

describe('an export answered after the session ended', () => {
  const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
  const path = `/api/conversations/${CID}/export?format=markdown`;
  const file = () => new Response('# A secret conversation of A', { headers: { 'Content-Disposition': 'attachment; filename="a.md"' } });

  it.each([
    ['answered while its user is signed in: saved', async () => undefined, true],
    ['answered once its user signed out: dropped', async (app: ChatApp) => app.logout(), false],
    [
      'answered once another user signed in: dropped, nothing said to B',
      async (app: ChatApp) => {
        await app.logout();
        await app.login('b@b.c', 'password of B');
      },
      false,
    ],
  ])('%s', async (_, between, savedFile) => {
    vi.mocked(saveBlob).mockClear();
    let answer: (r: Response) => void = () => undefined;
    const held = new Promise<Response>((resolve) => (answer = resolve));
    const { app, calls, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url) => {
        if (url === '/api/auth/login') return json({ token: 'tok-b', user: userB });
        if (url === path) return held;
        return undefined;
      },
    });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const exporting = app.exportConversation(CID, 'markdown');
    await vi.waitFor(() => expect(calls.some((c) => c.url === path)).toBe(true));
    await between(app);
    answer(file());
    await exporting;
    expect(vi.mocked(saveBlob).mock.calls.map(([, name]) => name)).toEqual(savedFile ? ['a.md'] : []);
    expect(app.store.state.toasts).toEqual([]);
  });
});

describe('an export the server cut off mid-body', () => {
  // docs/api.md: a database failure after the first bytes aborts the
  // download, and the browser reports it failed: res.blob() rejected with a
  // raw TypeError, shown as "Export failed: Failed to fetch".
  it('says it was cut short and saves nothing', async () => {
    vi.mocked(saveBlob).mockClear();
    const path = `/api/conversations/${CID}/export?format=markdown`;
    const cut = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode('# The first part'));
            c.error(new TypeError('Failed to fetch'));
          },
        }),
        { headers: { 'Content-Disposition': 'attachment; filename="a.md"' } },
      );
    const { app, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], route: (url) => (url === path ? cut() : undefined) });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await app.exportConversation(CID, 'markdown');
    expect(vi.mocked(saveBlob)).not.toHaveBeenCalled();
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Export failed: The export was cut short before it ended; try again.']);
  });
});

describe('what failed to load while the server could not be reached', () => {
  it('at the start of the page: the list, the open conversation and the models load once connected, their errors gone', async () => {
    let down = true;
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      list: () => ({ conversations: [conv(CID, 't', '2026-01-01T00:00:00Z')], nextCursor: 'next' }),
      route: (url) => {
        if (down && (url.startsWith('/api/conversations') || url.startsWith('/api/models'))) throw new TypeError('Failed to fetch');
        return undefined;
      },
    });
    await vi.waitFor(() => expect(app.store.state.list.error).not.toBeNull());
    await vi.waitFor(() => expect(app.store.state.threadErrors[CID]).toBeDefined());
    down = false;
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.list).toMatchObject({ error: null, loaded: true, nextCursor: 'next' }));
    expect(app.store.state.threadErrors).toEqual({});
    await vi.waitFor(() => expect(app.store.state.models).toHaveLength(1));
  });

  it('during a cut: the list is loaded again once reconnected (its error gone, its next page known)', async () => {
    let down = false;
    const { app, socket } = setup({
      list: () => ({ conversations: [conv(CID, 't', '2026-01-01T00:00:00Z')], nextCursor: 'next' }),
      route: (url) => {
        if (down && url.startsWith('/api/conversations?')) throw new TypeError('Failed to fetch');
        return undefined;
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
    const first = socket();
    down = true;
    first.cut();
    await app.reloadList(); // the Retry pressed while the server cannot be reached
    expect(app.store.state.list.error).not.toBeNull();
    down = false;
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(app.store.state.list).toMatchObject({ error: null, loaded: true, nextCursor: 'next' }));
  });
});

describe('a conversation on screen read again while the server cannot answer it', () => {
  const OTHER = '0123456789abcdef0123bbbb';
  const u1 = message('u1', '', 'user', 'hi', 'complete');
  const a1 = message('a1', 'u1', 'assistant', 'Hello', 'complete');
  const u2 = message('u2', 'a1', 'user', 'more', 'complete');
  const otherRead = (url: string) => url === `/api/conversations/${OTHER}`;
  const readOf = (url: string, init: RequestInit | undefined) => url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET';
  const failures: Array<[string, () => Response]> = [
    ['chatd\'s 503 (a slow store)', () => json({ error: { code: 'unavailable', message: 'the store did not answer in time; retry' } }, 503)],
    ['a proxy\'s 502', () => new Response('<html>502 Bad Gateway</html>', { status: 502 })],
    ['a proxy\'s 504', () => new Response('<html>504 Gateway Timeout</html>', { status: 504 })],
    ['a 500', () => json({ error: { code: 'internal', message: 'internal server error' } }, 500)],
  ];
  afterEach(() => vi.useRealTimers());

  it.each(failures)('after a reconnect, answered %s: its messages stay shown, a toast says so, and it is read again by itself', async (_, fail) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let failing = false;
    const { app, socket, thread, snapshotsFetched } = setup({
      snapshots: [[u1, a1], [u1, a1, u2]],
      route: (url, init) => (failing && readOf(url, init) ? fail() : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await reconnect(app, socket, () => (failing = true));
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(2));
    await vi.waitFor(() => expect(app.store.state.toasts.map((t) => t.text)).toContain(STALE));
    expect(app.store.state.threadErrors[CID]).toBeUndefined();
    expect(Object.keys(thread()!.messages).sort()).toEqual(['a1', 'u1']);

    failing = false;
    await vi.advanceTimersByTimeAsync(2000); // the reload's pause
    await vi.waitFor(() => expect(thread()?.messages.u2?.content).toBe('more'));
    expect(app.store.state.threadErrors[CID]).toBeUndefined();
  });

  it('opened again while offline: its messages stay shown, and it is read again once reconnected', async () => {
    let down = false;
    const { app, socket, thread, snapshotsFetched } = setup({
      snapshots: [[u1, a1], [u1, a1, u2]],
      route: (url, init) => {
        if (down && (readOf(url, init) || otherRead(url))) throw new TypeError('Failed to fetch');
        return otherRead(url) ? json({ conversation: conv(OTHER, 'other', ''), messages: [] }) : undefined;
      },
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    app.navigate(`/c/${OTHER}`);
    await vi.waitFor(() => expect(app.store.state.threads[OTHER]?.loaded).toBe(true));
    const first = socket();
    down = true;
    first.cut();
    app.navigate(`/c/${CID}`);
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(2));
    await settle();
    expect(app.store.state.threadErrors[CID]).toBeUndefined();
    expect(Object.keys(thread()!.messages).sort()).toEqual(['a1', 'u1']);
    expect(app.store.state.toasts).toEqual([]); // the link's state says it

    down = false;
    app.retryConnection();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()?.messages.u2?.content).toBe('more'));
  });

  it('left while its reload was on its way, then answered 503: nothing is said, and it is not read again until opened', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let fail: ((r: Response) => void) | undefined;
    let holding = false;
    const { app, socket, thread, snapshotsFetched } = setup({
      snapshots: [[u1, a1], [u1, a1, u2]],
      route: (url, init) => {
        if (otherRead(url)) return json({ conversation: conv(OTHER, 'other', ''), messages: [] });
        if (holding && readOf(url, init)) return new Promise<Response>((resolve) => (fail = resolve));
        return undefined;
      },
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await reconnect(app, socket, () => (holding = true));
    await vi.waitFor(() => expect(fail).toBeDefined()); // the reconnect's reload, held
    holding = false;
    app.navigate(`/c/${OTHER}`);
    await vi.waitFor(() => expect(app.store.state.threads[OTHER]?.loaded).toBe(true));
    fail!(json({ error: { code: 'unavailable', message: 'the store did not answer in time; retry' } }, 503));
    await vi.advanceTimersByTimeAsync(10); // its failure handled
    expect(app.store.state.toasts.map((t) => t.text)).not.toContain(STALE);
    const reads = snapshotsFetched();
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    expect(snapshotsFetched()).toBe(reads);

    app.navigate(`/c/${CID}`); // opened again: read, and shown whole
    await vi.waitFor(() => expect(thread()?.messages.u2?.content).toBe('more'));
  });

  it('failed while an answer not confirmed stored was being read again: read again once that answer is confirmed live', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const streaming = message('a1', 'u1', 'assistant', 'Hel', 'streaming');
    const stored = message('a1', 'u1', 'assistant', 'Hello world', 'complete');
    const u2b = message('u2', 'a1', 'user', 'from another tab', 'complete');
    const a2 = message('a2', 'u2', 'assistant', 'other answer', 'complete');
    let mode: 'streaming' | 'fail' | 'full' = 'streaming';
    const { socket, thread, snapshotsFetched } = setup({
      route: (url, init) => {
        if (!readOf(url, init)) return undefined;
        if (mode === 'fail') return json({ error: { code: 'unavailable', message: 'the store did not answer in time; retry' } }, 503);
        const messages = mode === 'full' ? [u1, stored, u2b, a2] : [u1, streaming];
        return json({ conversation: conv(CID, 't', ''), messages, activeMessageId: messages.at(-1)!.id });
      },
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: 'lo world' });
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 3, status: 'error', error: { code: 'unavailable', message: 'not stored' } });
    await vi.waitFor(() => expect(thread()!.unsaved.a1).toBe(true));
    const before = snapshotsFetched();
    mode = 'fail'; // another tab's answer ends, its question never heard of here: the resync fails
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a2', seq: 12, status: 'complete' });
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(before + 1));
    await vi.advanceTimersByTimeAsync(10);
    socket().receive({ type: 'message', conversationId: CID, message: stored }); // a1's end confirmed live
    await vi.waitFor(() => expect(thread()!.unsaved.a1).toBeUndefined());
    mode = 'full';
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(thread()!.messages.a2?.content).toBe('other answer');
  });

  it.each(failures)('never loaded, answered %s: the error shows in its place', async (_, fail) => {
    const { app, socket, thread } = setup({ route: (url, init) => (readOf(url, init) ? fail() : undefined) });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threadErrors[CID]).toMatch(/^Could not load the conversation: /));
    expect(thread()?.loaded).toBe(false);
  });
});

describe('the list read before the session\'s first live channel came up', () => {
  const OTHER = '0123456789abcdef0123bbbb';
  const NEW_ID = '0123456789abcdef0123cccc';
  /** before is the first page as the page's start read it; after, as it stands once the channel is up. */
  const before = [conv(CID, 'untitled', '2026-01-01T00:00:02Z'), conv(OTHER, 'deleted on another device', '2026-01-01T00:00:01Z')];
  const after = [conv(NEW_ID, 'created on another device', '2026-01-01T00:00:05Z'), conv(CID, 'titled meanwhile', '2026-01-01T00:00:03Z')];
  const listReads = (calls: Array<{ url: string }>) => calls.filter((c) => c.url.startsWith('/api/conversations?')).length;

  afterEach(() => {
    vi.useRealTimers();
    sessionStorage.clear();
  });

  /** comesUp brings the channel up the way it says, the list loaded long before. */
  const ways: Array<{ name: string; kind: 'ws' | 'sse'; comesUp: (s: ReturnType<typeof setup>) => Promise<void> }> = [
    {
      name: 'the WebSocket, refused for a while as too many connections (1013)',
      kind: 'ws',
      comesUp: async ({ socket }) => {
        for (let i = 0; i < 3; i++) {
          socket().accept();
          socket().cut(1013, 'too many connections');
          await vi.advanceTimersByTimeAsync(30_000);
        }
        socket().open();
      },
    },
    {
      name: 'the SSE fallback (the WebSocket cannot be opened): its first stream',
      kind: 'sse',
      comesUp: async ({ app, socket }) => {
        for (let i = 0; i < 10 && app.transportKind() === 'ws'; i++) {
          if (socket().readyState === 0) socket().cut(); // never opened, while HTTP works
          await vi.advanceTimersByTimeAsync(5000);
        }
      },
    },
  ];

  it.each(ways)('is read again once it comes up: $name', async ({ kind, comesUp }) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    let changed = false;
    const streams: Array<ReadableStreamDefaultController<Uint8Array>> = [];
    const s = setup({
      path: '/',
      list: () => ({ conversations: changed ? after : before, nextCursor: '' }),
      route: (url) => {
        if (!url.startsWith('/api/events')) return undefined;
        const body = new ReadableStream<Uint8Array>({ start: (c) => void streams.push(c) });
        return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
      },
    });
    await vi.waitFor(() => expect(s.app.store.state.list.loaded).toBe(true));
    expect(listReads(s.calls)).toBe(1);
    changed = true; // on another device, while this tab has no channel: no frame says it
    await comesUp(s);
    await vi.waitFor(() => expect(s.app.store.state.link).toMatchObject({ state: 'connected', kind }));
    await vi.waitFor(() => expect(s.app.store.state.list.items.map((c) => c.title)).toEqual(['created on another device', 'titled meanwhile']));
    expect(listReads(s.calls)).toBe(2);
    streams.forEach((c) => c.close());
  });

  it('on its way when the channel comes up: read again once it is answered', async () => {
    const held: Array<(r: Response) => void> = [];
    const s = setup({
      path: '/',
      route: (url) => (url.startsWith('/api/conversations?') && held.length === 0 ? new Promise<Response>((r) => held.push(r)) : undefined),
      list: () => ({ conversations: after, nextCursor: '' }),
    });
    await vi.waitFor(() => expect(held).toHaveLength(1));
    s.socket().open();
    await settle();
    expect(listReads(s.calls)).toBe(1); // the refresh waits for the read on its way
    held[0]!(json({ conversations: before, nextCursor: '' }));
    await vi.waitFor(() => expect(s.app.store.state.list.items.map((c) => c.title)).toEqual(['created on another device', 'titled meanwhile']));
    expect(listReads(s.calls)).toBe(2);
  });

  it('is not read again when its first read failed: read once more, after the channel came up', async () => {
    let down = true;
    const s = setup({
      path: '/',
      list: () => ({ conversations: after, nextCursor: '' }),
      route: (url) => {
        if (down && url.startsWith('/api/conversations?')) throw new TypeError('Failed to fetch');
        return undefined;
      },
    });
    await vi.waitFor(() => expect(s.app.store.state.list.error).not.toBeNull());
    down = false;
    s.socket().open();
    await vi.waitFor(() => expect(s.app.store.state.list.items.map((c) => c.title)).toEqual(['created on another device', 'titled meanwhile']));
    await settle();
    expect(listReads(s.calls)).toBe(2);
  });

  it('is not read again when a reload asked for after the channel came up (a search, Retry) replaced the read on its way', async () => {
    const held: Array<(r: Response) => void> = [];
    const s = setup({
      path: '/',
      list: () => ({ conversations: after, nextCursor: '' }),
      route: (url) => (url.startsWith('/api/conversations?') && held.length === 0 ? new Promise<Response>((r) => held.push(r)) : undefined),
    });
    await vi.waitFor(() => expect(held).toHaveLength(1));
    s.socket().open();
    await s.app.reloadList();
    held[0]!(json({ conversations: before, nextCursor: '' })); // answered late: not taken
    await settle();
    expect(s.app.store.state.list.items.map((c) => c.title)).toEqual(['created on another device', 'titled meanwhile']);
    expect(listReads(s.calls)).toBe(2);
  });
});

describe('a request of a conversation failed by the sign-out', () => {
  it.each([
    ['a Stop', (app: ChatApp) => app.stop(), 'cancel'],
    ['a regenerate', (app: ChatApp) => app.regenerate('a1'), 'regenerate'],
  ])('%s says nothing on the sign-in page', async (_, act, frame) => {
    const { app, socket, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'streaming')]],
    });
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const acting = act(app);
    await vi.waitFor(() => expect(socket().framesOf(frame)).toHaveLength(1));
    await app.logout();
    await acting;
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(app.store.state.toasts).toEqual([]);
  });
});

describe('images revealed by one user', () => {
  it('are not loaded without a click for the next user signing in on the page', async () => {
    const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
    const { app } = setup({ route: (url) => (url === '/api/auth/login' ? json({ token: 'tok-b', user: userB }) : undefined) });
    const page = document.createElement('div');
    page.innerHTML = renderMarkdown('![chart](https://img.example/track.png)');
    revealImage(page.querySelector<HTMLElement>('button.remote-image')!);
    try {
      await app.logout();
      await app.login('b@b.c', 'password of B');
      const next = document.createElement('div');
      next.innerHTML = renderMarkdown('![chart](https://img.example/track.png)');
      revealKnown(next);
      expect(next.querySelector('img')).toBeNull();
    } finally {
      forgetRevealed();
    }
  });
});

describe('the fallback to SSE after a cut', () => {
  afterEach(() => {
    vi.useRealTimers();
    sessionStorage.clear();
  });

  it('counts as a reconnect: the open conversation and the list are loaded again (frames may have been missed)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const u1 = message('u1', '', 'user', 'hi', 'complete');
    const a1 = message('a1', 'u1', 'assistant', 'Answer written in another tab while this one was away', 'complete');
    const streams: Array<ReadableStreamDefaultController<Uint8Array>> = [];
    const { app, socket, sockets, calls, snapshotsFetched } = setup({
      snapshots: [[u1], [u1, a1]],
      route: (url) => {
        if (!url.startsWith('/api/events')) return undefined;
        const body = new ReadableStream<Uint8Array>({ start: (c) => void streams.push(c) });
        return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    const lists = () => calls.filter((c) => c.url.startsWith('/api/conversations?')).length;
    const listsBefore = lists();
    expect(snapshotsFetched()).toBe(1);

    socket().cut(); // the link is lost; from now on the WebSocket cannot be opened while HTTP works (a proxy)
    for (let i = 0; i < 10 && app.transportKind() === 'ws'; i++) {
      await vi.advanceTimersByTimeAsync(5000); // the backoff
      if (app.transportKind() === 'ws' && socket().readyState === 0) socket().cut();
    }
    expect(sockets.length).toBe(4); // three that never opened, then the fallback
    await vi.waitFor(() => expect(app.store.state.link).toMatchObject({ state: 'connected', kind: 'sse' }));
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(2));
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.messages.a1?.content).toBe(a1.content));
    await vi.waitFor(() => expect(lists()).toBe(listsBefore + 1));
    streams.forEach((c) => c.close());
  });
});

describe('ChatApp with reasoning models (issue 13)', () => {
  const u1 = message('u1', '', 'user', 'why?', 'complete');
  const r = (rseq: number, text: string) => ({ type: 'reasoning', conversationId: CID, messageId: 'a1', rseq, text });
  const d = (seq: number, text: string) => ({ type: 'delta', conversationId: CID, messageId: 'a1', seq, text });

  it('resumes the reasoning after a cut from its own cursor: no gap, no duplicate', async () => {
    const { socket, answer } = setup({ snapshots: [[u1, message('a1', 'u1', 'assistant', '', 'streaming')]] });
    await vi.waitFor(() => expect(answer()?.status).toBe('streaming'));
    const first = socket();
    first.open();
    expect(first.sent.at(-1)).toEqual({ type: 'subscribe', id: expect.any(String), conversationId: CID, messageId: 'a1', lastSeq: 0 });
    first.receive(r(4, 'Let '));
    first.receive(r(7, 'me '));
    first.receive(r(13, 'think '));
    await vi.waitFor(() => expect(answer()?.reasoning).toBe('Let me think '));
    first.cut();

    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    expect(socket().sent.at(-1)).toMatchObject({ type: 'subscribe', conversationId: CID, messageId: 'a1', lastSeq: 0, lastReasoningSeq: 13 });
    // The server sends exactly what follows each cursor; a repeat of the old frame is dropped.
    socket().receive(r(13, 'think '));
    socket().receive(r(23, 'ünïcode ')); // 10 bytes
    socket().receive(d(6, 'Hello '));
    socket().receive({ type: 'done', conversationId: CID, messageId: 'a1', seq: 6, rseq: 23, status: 'complete', omittedMessages: 3 });
    await vi.waitFor(() => expect(answer()).toMatchObject({ status: 'complete', reasoning: 'Let me think ünïcode ', content: 'Hello ', omittedMessages: 3 }));
  });

  it('a reasoning frame after a hole reloads over REST and resumes both cursors from the snapshot', async () => {
    const { socket, answer, snapshotsFetched } = setup({
      snapshots: [
        [u1, message('a1', 'u1', 'assistant', '', 'streaming')],
        [u1, message('a1', 'u1', 'assistant', 'Hi', 'streaming', { reasoning: 'Let me think ' })],
      ],
    });
    await vi.waitFor(() => expect(answer()?.status).toBe('streaming'));
    socket().open();
    socket().receive(r(4, 'Let '));
    socket().receive(r(40, 'much later'));
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(2));
    await vi.waitFor(() => expect(socket().sent.at(-1)).toMatchObject({ type: 'subscribe', messageId: 'a1', lastSeq: 2, lastReasoningSeq: 13 }));
    expect(answer()).toMatchObject({ reasoning: 'Let me think ', content: 'Hi' });
  });

  it('keeps the upstreams of /api/models for the picker', async () => {
    const models = [
      { id: 'a', name: 'A', demo: false, default: true, upstream: 'one', upstreamLabel: 'One' },
      { id: 'b', name: 'B', demo: false, default: false, upstream: 'two', upstreamLabel: 'Two' },
    ];
    const upstreams = [
      { name: 'one', label: 'One' },
      { name: 'two', label: 'Two' },
    ];
    const { app } = setup({ route: (url) => (url.startsWith('/api/models') ? json({ models, upstreams }) : undefined) });
    await vi.waitFor(() => expect(app.store.state.upstreams).toEqual(upstreams));
    expect(app.store.state.models).toEqual(models);
  });
});

describe('the settings dialog\'s unsaved system prompts (settingsDraft)', () => {
  it.each([
    ['the session ends', async ({ app }: ReturnType<typeof setup>) => app.logout()],
    [
      'the conversation is deleted',
      async ({ socket }: ReturnType<typeof setup>) =>
        socket().receive({ type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } }),
    ],
  ])('are forgotten when %s', async (_name, end) => {
    const s = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    s.socket().open();
    await vi.waitFor(() => expect(s.thread()?.loaded).toBe(true));
    s.app.setSettingsDraft(CID, 'Be brief.');
    expect(s.app.settingsDraft(CID)).toBe('Be brief.');
    await end(s);
    expect(s.app.settingsDraft(CID)).toBeUndefined();
  });
});

describe('ChatApp.saveSettings', () => {
  const saved = (params: object | undefined, systemPrompt = '') => ({ id: CID, title: 't', model: 'm', systemPrompt, ...(params ? { params } : {}), createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:05Z' });

  it('PATCHes only what changed and shows the saved parameters', async () => {
    const patches: unknown[] = [];
    const { app, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (url === `/api/conversations/${CID}` && init?.method === 'PATCH') {
          const body = JSON.parse(String(init.body)) as { params?: object; systemPrompt?: string };
          patches.push(body);
          return json({ conversation: saved(body.params, body.systemPrompt ?? '') });
        }
        return undefined;
      },
    });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    expect(await app.saveSettings('', {})).toBeNull();
    expect(patches).toEqual([]); // nothing changed: no request
    expect(await app.saveSettings('', { temperature: 0.2, stop: ['\n\nUser:'] })).toBeNull();
    expect(patches).toEqual([{ params: { temperature: 0.2, stop: ['\n\nUser:'] } }]);
    expect(thread()?.conversation?.params).toEqual({ temperature: 0.2, stop: ['\n\nUser:'] });
  });

  it('returns the server\'s refusal on the field it names, and changes nothing', async () => {
    const { app, thread } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) =>
        url === `/api/conversations/${CID}` && init?.method === 'PATCH'
          ? json({ error: { code: 'invalid_field', message: 'params.maxTokens: must be at most 4096 for this model (got 999999)' } }, 400)
          : undefined,
    });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    expect(await app.saveSettings('', { maxTokens: 999999 })).toEqual({ field: 'maxTokens', text: 'Max answer tokens must be at most 4096 for this model (got 999999).' });
    expect(thread()?.conversation?.params).toBeUndefined();
    expect(app.store.state.toasts).toEqual([]);
  });

  it.each([
    ['has failed to load (503)', () => json({ error: { code: 'unavailable', message: 'shutting down' } }, 503), true],
    ['is still loading', () => new Promise<Response>(() => undefined), false],
  ])('refuses the settings of an open conversation that %s, and keeps them off the next new chat', async (_name, answer, fails) => {
    const { app, calls, thread } = setup({
      route: (url, init) => (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? answer() : undefined),
    });
    await vi.waitFor(() => expect(calls.some((c) => c.url === `/api/conversations/${CID}`)).toBe(true));
    if (fails) await vi.waitFor(() => expect(app.store.state.threadErrors[CID]).toBeDefined());
    expect(thread()?.conversation).toBeFalsy();
    expect(await app.saveSettings('Answer in French.', { temperature: 0.3 })).toEqual({ text: SETTINGS_NOT_LOADED });
    expect([app.store.state.newChat.systemPrompt, app.store.state.newChat.params]).toEqual(['', undefined]); // not the next new chat's
    expect(calls.filter((c) => c.method === 'PATCH')).toEqual([]);
  });

  it('keeps a new chat\'s settings and creates the conversation with them', async () => {
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => (url === '/api/conversations' && init?.method === 'POST' ? json({ conversation: saved({ topP: 0.9 }, 'Be brief.') }, 201) : undefined),
    });
    socket().open();
    expect(await app.saveSettings('Be brief.', { topP: 0.9 })).toBeNull();
    expect(app.store.state.newChat).toMatchObject({ systemPrompt: 'Be brief.', params: { topP: 0.9 } });
    void app.send('hello');
    await vi.waitFor(() => expect(calls.find((c) => c.method === 'POST')?.body).toMatchObject({ systemPrompt: 'Be brief.', params: { topP: 0.9 } }));
    await vi.waitFor(() => expect(app.store.state.newChat.params).toBeUndefined());
  });
});

describe('ChatApp after a wake', () => {
  afterEach(() => delete (document as { visibilityState?: unknown }).visibilityState);

  it('the page shown again checks the socket at once with a ping, and the browser going online does too', async () => {
    let visibility: DocumentVisibilityState = 'visible';
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
    const { app, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    const pings = () => socket().framesOf('ping');
    expect(pings()).toHaveLength(0);
    visibility = 'hidden';
    document.dispatchEvent(new Event('visibilitychange'));
    visibility = 'visible';
    document.dispatchEvent(new Event('visibilitychange'));
    expect(pings()).toHaveLength(1);
    socket().receive({ type: 'pong', id: pings()[0]!.id });
    window.dispatchEvent(new Event('online'));
    expect(pings()).toHaveLength(2);
    await app.logout(); // its listeners end with the session
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('online'));
    expect(pings()).toHaveLength(2);
  });
});

describe('ChatApp: a socket that does not open', () => {
  it.each([
    [
      'chatd, not now (its 503: it cannot check the token)',
      () => new Response('{"error":{"code":"unavailable","message":"cannot check the token now; retry"}}', { status: 503, headers: { 'Retry-After': '1' } }),
      { state: 'reconnecting', kind: 'ws', detail: 'Cannot check the token now.' },
    ],
    ['a proxy\'s 502 (no chatd body)', () => new Response('<html>502 Bad Gateway</html>', { status: 502 }), { state: 'offline', kind: 'ws', detail: 'The server cannot be reached.' }],
  ])('whose token check is answered by %s: the status says what answered', async (_, answer, link) => {
    const { app, socket } = setup({ path: '/', route: (url) => (url === '/api/auth/me' ? answer() : undefined) });
    socket().cut(1006); // never opened
    await vi.waitFor(() => expect(app.store.state.link).toEqual(link));
  });
});

describe('ChatApp with too many connections', () => {
  it('a socket closed with 1013 "too many connections" is retried on the WebSocket, never the event stream, and a toast says so once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const { app, calls, sockets, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
      const toast = vi.spyOn(app, 'toast');
      for (let i = 0; i < 5; i++) {
        socket().accept(); // accepted and closed at once, before any frame
        socket().cut(1013, 'too many connections');
        expect(app.store.state.link).toMatchObject({ state: 'reconnecting', kind: 'ws', detail: expect.stringMatching(/too many tabs or devices/i) });
        await vi.advanceTimersByTimeAsync(30_000);
      }
      expect(sockets.length).toBe(6);
      expect(app.transportKind()).toBe('ws');
      expect(calls.filter((c) => c.url.startsWith('/api/events'))).toEqual([]);
      expect(toast.mock.calls.filter(([text]) => /too many tabs or devices/i.test(text))).toHaveLength(1);
      expect(toast).toHaveBeenCalledWith(expect.stringMatching(/too many tabs or devices/i), 'info');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('ChatApp: a model picked while its PATCH is on its way', () => {
  const models = [
    { id: 'm', name: 'M', demo: false, default: true },
    { id: 'o3', name: 'O3', demo: false, default: false },
  ];
  /** pickSetup holds every PATCH until the test answers it. */
  function pickSetup() {
    const patches: Array<(r: Response) => void> = [];
    const streams: Array<ReadableStreamDefaultController<Uint8Array>> = [];
    const t = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete', { model: 'm' })]],
      route: (url, init) => {
        if (url.startsWith('/api/models')) return json({ models });
        if (url === `/api/conversations/${CID}` && init?.method === 'PATCH') return new Promise<Response>((resolve) => patches.push(resolve));
        if (url.startsWith('/api/events') || init?.method === 'POST') {
          const body = new ReadableStream<Uint8Array>({ start: (c) => void streams.push(c) });
          return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
        }
        return undefined;
      },
    });
    return { ...t, patches };
  }
  const saved = (model: string) => json({ conversation: { id: CID, title: 't', model, systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:09Z' } });

  afterEach(() => sessionStorage.clear());

  it('regenerate and send carry the picked model over the WebSocket, and the picker shows it', async () => {
    const { app, socket, thread, patches } = pickSetup();
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded && app.store.state.models.length).toBe(2));
    const picking = app.setModel('o3');
    expect(app.store.state.modelPicks[CID]).toBe('o3'); // shown at once
    await vi.waitFor(() => expect(patches).toHaveLength(1));
    void app.regenerate('a1');
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
    expect(socket().framesOf('regenerate')[0]).toMatchObject({ conversationId: CID, messageId: 'a1', model: 'o3' });
    socket().receive({ type: 'ack', id: socket().framesOf('regenerate')[0]!.id, conversationId: CID });
    await vi.waitFor(() => expect(app.store.state.busy[CID]).toBeUndefined());
    void app.send('and again');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(socket().framesOf('send')[0]).toMatchObject({ content: 'and again', model: 'o3' });

    patches[0]!(saved('o3'));
    await picking;
    expect(app.store.state.modelPicks).toEqual({});
    expect(thread()?.conversation?.model).toBe('o3');
    // Stored: the server knows it now, and a regenerate leaves it to the server.
    socket().receive({ type: 'ack', id: socket().framesOf('send')[0]!.id, conversationId: CID });
    await vi.waitFor(() => expect(app.store.state.busy[CID]).toBeUndefined());
    void app.regenerate('a1');
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(2));
    expect(socket().framesOf('regenerate')[1]).not.toHaveProperty('model');
  });

  it('is the conversation\'s alone: the model for new chats changes only with a pick on the new chat\'s page', async () => {
    const { app, kv, socket, thread, patches } = pickSetup();
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded && app.store.state.models.length).toBe(2));
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    const picking = app.setModel('o3');
    await vi.waitFor(() => expect(patches).toHaveLength(1));
    patches[0]!(saved('o3'));
    await picking;
    expect(thread()?.conversation?.model).toBe('o3');
    expect(app.store.state.newChat.model).toBe(''); // the server's default, as before
    expect(kv.getItem('chatd.modelPick')).toBeNull(); // nor the next page load's
    app.navigate('/');
    expect(app.store.state.newChat.model).toBe('');
    await app.setModel('o3');
    expect(app.store.state.newChat.model).toBe('o3');
    expect(JSON.parse(kv.getItem('chatd.modelPick') ?? 'null')).toEqual({ user: 'u', model: 'o3' });
    expect(patches).toHaveLength(1); // the new chat's pick is no conversation's
  });

  it('a refused PATCH drops the pick: the next regenerate names no model (the conversation\'s, as stored)', async () => {
    const { app, socket, thread, patches } = pickSetup();
    socket().open();
    await vi.waitFor(() => expect(thread()?.loaded && app.store.state.models.length).toBe(2));
    const picking = app.setModel('o3');
    await vi.waitFor(() => expect(patches).toHaveLength(1));
    patches[0]!(json({ error: { code: 'unavailable', message: 'database down' } }, 503));
    await picking;
    expect(app.store.state.modelPicks).toEqual({});
    void app.regenerate('a1');
    await vi.waitFor(() => expect(socket().framesOf('regenerate')).toHaveLength(1));
    expect(socket().framesOf('regenerate')[0]).not.toHaveProperty('model');
  });

  it('regenerate carries the picked model over the SSE fallback', async () => {
    sessionStorage.setItem('chatd.transport', 'sse');
    const { app, calls, thread, patches } = pickSetup();
    await vi.waitFor(() => expect(thread()?.loaded && app.store.state.models.length).toBe(2));
    await vi.waitFor(() => expect(app.store.state.link).toMatchObject({ state: 'connected', kind: 'sse' }));
    void app.setModel('o3');
    await vi.waitFor(() => expect(patches).toHaveLength(1));
    void app.regenerate('a1');
    await vi.waitFor(() => expect(calls.find((c) => c.url.endsWith('/regenerate'))?.body).toEqual({ messageId: 'a1', model: 'o3', clientMessageId: expect.any(String) }));
    void app.send('more');
    await vi.waitFor(() => expect(calls.find((c) => c.url.endsWith('/messages') && c.method === 'POST')?.body).toMatchObject({ content: 'more', model: 'o3' }));
  });
});

describe('ChatApp: a subscribe refused', () => {
  it.each([
    ['invalid_field', 'lastSeq: must not be negative', { missing: 'lastSeq: must not be negative', error: undefined, reloads: false }],
    ['some_new_code', '', { missing: 'some_new_code', error: undefined, reloads: false }],
    ['not_found', 'conversation not found', { missing: undefined, error: /does not exist/, reloads: false }],
    ['bad_seq', 'lastSeq beyond the answer', { missing: undefined, error: undefined, reloads: true }],
    ['unauthorized', 'token revoked', { missing: undefined, error: undefined, reloads: false }],
  ])('with %s: the user is told, or the client acts', async (code, text, want) => {
    const { app, socket, thread, snapshotsFetched } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    const toast = vi.spyOn(app, 'toast');
    socket().open();
    const sub = socket().framesOf('subscribe').at(-1)!;
    const before = snapshotsFetched();
    socket().receive({ type: 'error', id: sub.id, code, message: text });
    if (want.reloads) await vi.waitFor(() => expect(snapshotsFetched()).toBe(before + 1));
    else {
      await settle(); // vi.waitFor would see the count unchanged before the client acted on the error
      expect(snapshotsFetched()).toBe(before);
    }
    expect(app.store.state.liveMissing[CID]).toBe(want.missing);
    expect(toast).not.toHaveBeenCalled(); // a toast would be gone long before the updates are back
    if (want.error) expect(app.store.state.threadErrors[CID]).toMatch(want.error);
    else expect(app.store.state.threadErrors[CID]).toBeUndefined();
  });

  it('updates missing are said for as long as they last: until a retry, or the subscribe of a reconnect, is taken', async () => {
    const { app, socket, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    socket().open();
    const missing = () => app.store.state.liveMissing[CID];
    const settled = () => new Promise((r) => setTimeout(r, 0)); // the transport's promise of the subscribe
    const refuse = async () => {
      socket().receive({ type: 'error', id: socket().framesOf('subscribe').at(-1)!.id, code: 'invalid_field', message: 'lastSeq: must not be negative' });
      await settled();
    };
    const take = async () => {
      socket().receive({ type: 'ack', id: socket().framesOf('subscribe').at(-1)!.id });
      await settled();
    };
    await refuse();
    expect(missing()).toBe('lastSeq: must not be negative');

    app.retryLive(CID);
    expect(socket().framesOf('subscribe')).toHaveLength(2);
    expect(missing()).toBeDefined(); // said while the retry is on its way
    await refuse(); // refused again: still said
    expect(missing()).toBeDefined();
    app.retryLive(CID);
    await take();
    expect(missing()).toBeUndefined();

    app.retryLive(CID); // (a stand-in for a later refusal)
    await refuse();
    expect(missing()).toBeDefined();
    socket().cut(1006); // a reconnect subscribes again, and is taken
    await vi.waitFor(() => expect(socket().readyState).toBe(0));
    socket().open();
    expect(missing()).toBeDefined();
    await take();
    expect(missing()).toBeUndefined();
  });

  it('over the SSE fallback: the notice stays while a retry is on its way and goes once a stream for the conversation opens, after a retry or a reconnect', async () => {
    sessionStorage.setItem('chatd.transport', 'sse');
    try {
      let refuse = true;
      const streams: string[] = [];
      const open: Array<ReadableStreamDefaultController<Uint8Array>> = [];
      const { app, thread } = setup({
        snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
        route: (url) => {
          if (!url.startsWith('/api/events')) return undefined;
          streams.push(url);
          if (refuse && url.includes(CID)) return json({ error: { code: 'invalid_field', message: 'lastSeq: must not be negative' } }, 400);
          const body = new ReadableStream<Uint8Array>({ start: (c) => void open.push(c) });
          return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
        },
      });
      const ofConversation = () => streams.filter((u) => u.includes(CID)).length;
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      await vi.waitFor(() => expect(app.store.state.liveMissing[CID]).toBe('lastSeq: must not be negative'));
      const seen: Array<string | undefined> = [];
      const stopWatching = app.store.subscribe(() => seen.push(app.store.state.liveMissing[CID]));
      const before = ofConversation();
      app.retryLive(CID); // refused again: the notice never went meanwhile
      await vi.waitFor(() => expect(ofConversation()).toBe(before + 1));
      await vi.waitFor(() => expect(app.store.state.link.state).toBe('connected'));
      expect(seen).not.toContain(undefined);
      expect(app.store.state.liveMissing[CID]).toBeDefined();
      stopWatching();

      refuse = false;
      app.retryLive(CID);
      await vi.waitFor(() => expect(app.store.state.liveMissing[CID]).toBeUndefined());
      expect(ofConversation()).toBe(before + 2);

      // Refused once more; a reconnect asks for the conversation again, and is taken.
      refuse = true;
      app.navigate('/');
      await vi.waitFor(() => expect(streams.at(-1)).toBe('/api/events'));
      app.navigate(`/c/${CID}`);
      await vi.waitFor(() => expect(app.store.state.liveMissing[CID]).toBeDefined());
      await vi.waitFor(() => expect(streams.at(-1)).toBe('/api/events'));
      refuse = false;
      const reopened = ofConversation();
      open.at(-1)!.close(); // the stream is cut
      await vi.waitFor(() => expect(ofConversation()).toBe(reopened + 1));
      await vi.waitFor(() => expect(app.store.state.liveMissing[CID]).toBeUndefined());
    } finally {
      sessionStorage.clear();
    }
  });

  it('leaving the conversation ends the notice: opening it again subscribes afresh', async () => {
    const { app, socket, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    socket().open();
    socket().receive({ type: 'error', id: socket().framesOf('subscribe').at(-1)!.id, code: 'invalid_field', message: 'x' });
    await vi.waitFor(() => expect(app.store.state.liveMissing[CID]).toBe('x'));
    app.navigate('/');
    expect(app.store.state.liveMissing).toEqual({});
  });

  it('for now (unavailable) is asked again by the transport, without a word to the user', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const { app, socket, thread } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      const toast = vi.spyOn(app, 'toast');
      socket().open();
      socket().receive({ type: 'error', id: socket().framesOf('subscribe').at(-1)!.id, code: 'unavailable', message: 'the database is unavailable' });
      await vi.advanceTimersByTimeAsync(30_000);
      expect(socket().framesOf('subscribe')).toHaveLength(2);
      expect(toast).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('ChatApp: Stop over the SSE fallback', () => {
  afterEach(() => sessionStorage.clear());

  it('a cancel the server does not answer within 45 s (its own bound, 30 s, and a margin) says so, and that Stop may be pressed again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      sessionStorage.setItem('chatd.transport', 'sse');
      const cancels: string[] = [];
      const { app, thread } = setup({
        snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hel', 'streaming')]],
        route: (url, init) => {
          if (url.startsWith('/api/events')) return new Response(new ReadableStream<Uint8Array>(), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
          if (url.endsWith('/cancel')) {
            cancels.push(url);
            return new Promise<Response>((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
          }
          return undefined;
        },
      });
      await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
      const toast = vi.spyOn(app, 'toast');
      const stopping = app.stop();
      await vi.advanceTimersByTimeAsync(44_000);
      expect(cancels).toHaveLength(1);
      expect(toast).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1_000);
      await stopping;
      expect(toast).toHaveBeenCalledWith('Could not stop: The server did not answer in time. The answer may still be running: press Stop again.', 'error');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('ChatApp: a model picked while the conversation loads', () => {
  it('is the conversation\'s pick, saved with a PATCH, not the next new chat\'s', async () => {
    const patches: unknown[] = [];
    let loaded!: (r: Response) => void;
    const models = [
      { id: 'm', name: 'M', demo: false, default: true },
      { id: 'o3', name: 'O3', demo: false, default: false },
    ];
    const { app } = setup({
      route: (url, init) => {
        if (url.startsWith('/api/models')) return json({ models });
        if (url === `/api/conversations/${CID}` && init?.method === 'PATCH') {
          patches.push(JSON.parse(String(init.body)));
          return json({ conversation: { id: CID, title: 't', model: 'o3', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:09Z' } });
        }
        if (url === `/api/conversations/${CID}`) return new Promise<Response>((resolve) => (loaded = resolve));
        return undefined;
      },
    });
    await vi.waitFor(() => expect(app.store.state.models).toHaveLength(2));
    const newChatModel = app.store.state.newChat.model;
    const picking = app.setModel('o3');
    expect(app.store.state.modelPicks[CID]).toBe('o3');
    await picking;
    expect(patches).toEqual([{ model: 'o3' }]);
    expect(app.store.state.newChat.model).toBe(newChatModel);
    loaded(json({ conversation: { id: CID, title: 't', model: 'o3', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:09Z' }, messages: [] }));
  });
});

describe('ChatApp: a new chat started while the server cannot be reached', () => {
  const NEW_ID = '0123456789abcdef0123aaaa';
  const created = { id: NEW_ID, title: '', model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' };
  /** posts are the creations asked for, in order. */
  const posts = (calls: Array<{ method: string; url: string; body?: unknown }>) =>
    calls.filter((c) => c.method === 'POST' && c.url === '/api/conversations').map((c) => c.body as { clientId?: string });

  it('is made with a max answer tokens within the bound of the model picked since it was set (the server refuses one over it)', async () => {
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url.startsWith('/api/models')) {
          return json({ models: [{ id: 'a', name: 'A', demo: false, default: true, maxOutputTokens: 8192 }, { id: 'b', name: 'B', demo: false, default: false, maxOutputTokens: 4096 }] });
        }
        return url === '/api/conversations' && init?.method === 'POST' ? json({ conversation: created }, 201) : undefined;
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.models).toHaveLength(2));
    expect(await app.saveSettings('', { maxTokens: 8000, temperature: 0.3 })).toBeNull(); // set for a, the default
    app.setModel('b');
    void app.send('hello'); // its ack is not the point
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(1));
    expect(posts(calls)[0]).toMatchObject({ model: 'b', params: { maxTokens: 4096, temperature: 0.3 } });
  });

  it('waits for the connection, then is created with the key of its first attempt and its message sent', async () => {
    let attempts = 0;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts === 1) throw new TypeError('Failed to fetch'); // offline
        return json({ conversation: created }, 200); // the first attempt had reached it: its conversation
      },
    });
    app.setDraft('new', 'hello offline');
    await app.send('hello offline');
    expect(posts(calls)).toHaveLength(1);
    expect(app.store.state.busy.new).toBe(true); // queued: the composer keeps its text, Send waits
    expect(app.draft('new')).toBe('hello offline');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['The new conversation will start as soon as the server can be reached.']);

    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const [first, second] = posts(calls);
    expect(first?.clientId).toBeTruthy();
    expect(second?.clientId).toBe(first?.clientId);
    expect(posts(calls)).toHaveLength(2);
    expect(socket().framesOf('send')[0]).toMatchObject({ conversationId: NEW_ID, content: 'hello offline' });
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID });
    expect(app.store.state.busy.new).toBeUndefined();
    expect(app.draft('new')).toBe('');
  });

  it('while the link is up, a 503 is asked again after its Retry-After, with the same key', async () => {
    let attempts = 0;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts === 1) return new Response('{"error":{"code":"unavailable","message":"try again"}}', { status: 503, headers: { 'Retry-After': '0' } });
        return json({ conversation: created }, 201);
      },
    });
    socket().open();
    await app.send('hello');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const [first, second] = posts(calls);
    expect(second?.clientId).toBe(first?.clientId);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID });
  });

  it.each([
    [
      'chatd shutting down (its 503 unavailable)',
      () => new Response('{"error":{"code":"unavailable","message":"the server is shutting down; retry"}}', { status: 503, headers: { 'Retry-After': '0' } }),
      'the server is shutting down; retry',
      'The new conversation has not started yet: The server is shutting down. It starts when the server can take it.',
    ],
    [
      'chatd waiting for an earlier attempt with its key (its 503 unavailable)',
      () => new Response('{"error":{"code":"unavailable","message":"an earlier creation with this clientId is still being handled; retry"}}', { status: 503, headers: { 'Retry-After': '0' } }),
      'an earlier creation with this clientId is still being handled; retry',
      'The new conversation has not started yet: An earlier creation with this clientId is still being handled. It starts when the server can take it.',
    ],
    [
      'too many new conversations (429)',
      () => new Response('{"error":{"code":"rate_limited","message":"too many new conversations; wait a moment"}}', { status: 429, headers: { 'Retry-After': '0' } }),
      'too many new conversations; wait a moment',
      'The new conversation has not started yet: Too many new conversations. It starts when the server can take it.',
    ],
    [
      'a proxy\'s 503 (no chatd body): the server was not reached',
      () => new Response('<html>503 Service Unavailable</html>', { status: 503, headers: { 'Retry-After': '0' } }),
      undefined,
      'The new conversation will start as soon as the server can be reached.',
    ],
  ])('while the link is up, %s: said once, asked again with the same key until created', async (_, refusal, serverWait, toast) => {
    let attempts = 0;
    let answer!: (r: Response) => void;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts <= 2) return refusal();
        return new Promise<Response>((resolve) => (answer = resolve));
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.link.state).toBe('connected'));
    app.setDraft('new', 'hello');
    void app.send('hello');
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(3)); // refused twice, asked again each time
    expect(app.store.state.newChat.waiting).toBe(true);
    expect(app.store.state.newChat.serverWait).toBe(serverWait);
    expect(app.store.state.busy.new).toBe(true);
    expect(app.store.state.toasts.map((t) => t.text)).toEqual([toast]); // once, not at each refusal
    answer(json({ conversation: created }, 201));
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(new Set(posts(calls).map((b) => b.clientId)).size).toBe(1);
    expect(app.store.state.newChat.waiting).toBe(false);
    expect(app.store.state.newChat.serverWait).toBeUndefined();
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID });
  });

  it('an attempt left unanswered (a half-open connection) is given up after 45 s (the server’s own bound, 30 s, and a margin) and asked again with the same key', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => void vi.useRealTimers());
    let attempts = 0;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts > 1) return json({ conversation: created }, 200); // the first one had made it
        // Never answered; given up, fetch rejects as a browser's does.
        return new Promise<Response>((_, reject) => init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.link.state).toBe('connected'));
    app.setDraft('new', 'hello');
    void app.send('hello');
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(1));
    await vi.advanceTimersByTimeAsync(25_000); // a slow store: still waited for
    expect(posts(calls)).toHaveLength(1);
    expect(app.store.state.newChat.waiting).toBeFalsy();
    await vi.advanceTimersByTimeAsync(20_000); // given up (CREATE_TIMEOUT_MS)
    expect(app.store.state.newChat.waiting).toBe(true);
    await vi.advanceTimersByTimeAsync(3000); // asked again (CREATE_RETRY_MS)
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const [first, second] = posts(calls);
    expect(second?.clientId).toBe(first?.clientId);
    expect(posts(calls)).toHaveLength(2);
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['The new conversation will start as soon as the server can be reached.']);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID });
    expect(app.store.state.newChat.waiting).toBe(false);
  });

  it('a refusal is not asked again: the text stays in the composer, a toast says why', async () => {
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) =>
        url === '/api/conversations' && init?.method === 'POST'
          ? new Response('{"error":{"code":"invalid_field","message":"model: unknown model"}}', { status: 400 })
          : undefined,
    });
    app.setDraft('new', 'hello');
    await app.send('hello');
    expect(app.store.state.busy.new).toBeUndefined();
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['Could not start a conversation: model: unknown model']);
    socket().open();
    expect(posts(calls)).toHaveLength(1);
    expect(socket().framesOf('send')).toHaveLength(0);
    expect(app.draft('new')).toBe('hello');
  });

  it.each([
    ['an instance of the version before refuses its key: asked once more without it, created and its message sent', 'unknown field "clientId"', 2, true],
    ['another unknown field is a refusal as any other: not asked again', 'unknown field "title"', 1, false],
  ])('%s', async (_name, refusal, asked, made) => {
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if ('clientId' in (JSON.parse(String(init.body)) as object)) return json({ error: { code: 'bad_request', message: refusal } }, 400); // strict decoding
        return json({ conversation: created }, 201);
      },
    });
    socket().open();
    app.setDraft('new', 'hello');
    await app.send('hello');
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(asked));
    expect(posts(calls)[0]?.clientId).toBeTruthy();
    if (made) {
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      expect(posts(calls)[1]).not.toHaveProperty('clientId');
      expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID });
      expect(app.store.state.toasts).toEqual([]);
    } else {
      expect(app.store.state.toasts.map((t) => t.text)).toEqual([`Could not start a conversation: ${refusal}`]);
      expect(socket().framesOf('send')).toHaveLength(0);
      expect(app.draft('new')).toBe('hello');
    }
  });

  it('a new chat sent in the next session while the last one\'s creation is still unanswered is created once that ends', async () => {
    let hang!: (r: Response) => void;
    let attempts = 0;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url === '/api/auth/login') return json({ token: 'tok2', user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } });
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts === 1) return new Promise<Response>((resolve) => (hang = resolve)); // the server is slow to answer
        return json({ conversation: created }, 201);
      },
    });
    socket().open();
    void app.send('before the sign-out');
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(1));
    await app.logout();
    await app.login('a@b.c', 'password');
    socket().open();
    await app.send('after the sign-in');
    hang(json({ conversation: { ...created, id: '0123456789abcdef0123bbbb' } }, 201)); // the last session's, ignored
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(posts(calls)).toHaveLength(2);
    expect(socket().framesOf('send')[0]).toMatchObject({ conversationId: NEW_ID, content: 'after the sign-in' });
    expect(app.store.state.busy.new).toBeUndefined();
  });

  it('while it waits its model and settings are read-only: it is made with those it was sent with, which stay shown until it is, then cleared; nothing asks to change them', async () => {
    let attempts = 0;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts === 1) throw new TypeError('Failed to fetch'); // offline
        return json({ conversation: { ...created, systemPrompt: 'Be brief.', params: { temperature: 0.2 } } }, 201);
      },
    });
    await vi.waitFor(() => expect(app.store.state.models).toHaveLength(1));
    expect(await app.saveSettings('Be brief.', { temperature: 0.2 })).toBeNull();
    await app.setModel('m');
    app.setDraft('new', 'hello offline');
    await app.send('hello offline');
    expect(app.store.state.newChat.waiting).toBe(true);
    expect(await app.saveSettings('Answer in French.', { temperature: 0.9 })).toEqual({ text: NEW_CHAT_STARTING });
    await app.setModel('other');
    expect(app.store.state.newChat).toMatchObject({ model: 'm', systemPrompt: 'Be brief.', params: { temperature: 0.2 } });

    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(posts(calls).map((b) => ({ ...b, clientId: undefined }))).toEqual([
      { model: 'm', systemPrompt: 'Be brief.', params: { temperature: 0.2 } },
      { model: 'm', systemPrompt: 'Be brief.', params: { temperature: 0.2 } },
    ]);
    expect(calls.filter((c) => c.method === 'PATCH')).toEqual([]);
    expect(app.store.state.newChat).toMatchObject({ model: 'm', systemPrompt: '', params: undefined }); // the next new chat's start afresh
  });

  it('while it waits its composer is shown waiting; Cancel gives it up: nothing is created once the link is back, the text stays to be sent again', async () => {
    let attempts = 0;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts === 1) throw new TypeError('Failed to fetch'); // offline
        return json({ conversation: created }, 201);
      },
    });
    app.setDraft('new', 'hello offline');
    await app.send('hello offline');
    expect(app.store.state.newChat.waiting).toBe(true);
    app.cancelNewChat();
    expect(app.store.state.newChat.waiting).toBe(false);
    expect(app.store.state.busy.new).toBeUndefined(); // Send works again
    expect(app.draft('new')).toBe('hello offline'); // not lost

    socket().open();
    await vi.waitFor(() => expect(app.store.state.link.state).toBe('connected'));
    expect(posts(calls)).toHaveLength(1);
    app.setDraft('new', 'hello, changed');
    const sending = app.send('hello, changed');
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    const [first, second] = posts(calls);
    expect(second?.clientId).not.toBe(first?.clientId); // another chat, not the one given up
    const frame = socket().framesOf('send')[0]!;
    expect(frame).toMatchObject({ conversationId: NEW_ID, content: 'hello, changed' });
    socket().receive({ type: 'ack', id: frame.id, conversationId: NEW_ID, userMessageId: 'u1', messageId: 'a1' });
    await sending;
    expect(app.draft('new')).toBe('');
  });

  it('cancelled while an attempt is on its way: the conversation it makes is deleted, nothing is sent into it', async () => {
    let hang!: (r: Response) => void;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url === '/api/conversations' && init?.method === 'POST') return new Promise<Response>((resolve) => (hang = resolve));
        if (url === `/api/conversations/${NEW_ID}` && init?.method === 'DELETE') return new Response(null, { status: 204 });
        return undefined;
      },
    });
    socket().open();
    app.setDraft('new', 'hello');
    const sending = app.send('hello');
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(1));
    app.cancelNewChat();
    hang(json({ conversation: created }, 201));
    await sending;
    await vi.waitFor(() => expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.url)).toEqual([`/api/conversations/${NEW_ID}`]));
    expect(socket().framesOf('send')).toHaveLength(0);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(app.draft('new')).toBe('hello');
  });

  // cancelledNewChat sends a new chat's first message, cancels the new
  // chat while its creation is on its way, then lets the creation answer
  // 201: the conversation made after all is deleted, each DELETE answered
  // by deleted(). Timers are faked (setTimeout) until the test ends.
  async function cancelledNewChat(deleted: () => Response) {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    let hang!: (r: Response) => void;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url === '/api/conversations' && init?.method === 'POST') return new Promise<Response>((resolve) => (hang = resolve));
        if (url !== `/api/conversations/${NEW_ID}` || init?.method !== 'DELETE') return undefined;
        return deleted();
      },
    });
    const deletes = () => calls.filter((c) => c.method === 'DELETE').length;
    socket().open();
    app.setDraft('new', 'hello');
    const sending = app.send('hello');
    await vi.waitFor(() => expect(posts(calls)).toHaveLength(1));
    app.cancelNewChat();
    hang(json({ conversation: created }, 201));
    await sending;
    return { app, socket, deletes };
  }

  it('cancelled while an attempt is on its way, its deletion refused 429: asked again after Retry-After, until it is deleted', async () => {
    let refusals = 2;
    const { socket, deletes } = await cancelledNewChat(() => {
      if (refusals-- > 0) {
        const limited = { error: { code: 'rate_limited', message: 'too many changes to conversations; try again in a moment' } };
        return new Response(JSON.stringify(limited), { status: 429, headers: { 'Content-Type': 'application/json', 'Retry-After': '7' } });
      }
      return new Response(null, { status: 204 });
    });
    await vi.waitFor(() => expect(deletes()).toBe(1));
    await vi.advanceTimersByTimeAsync(6900);
    expect(deletes()).toBe(1); // not before the server's Retry-After
    await vi.advanceTimersByTimeAsync(100);
    await vi.waitFor(() => expect(deletes()).toBe(2));
    await vi.advanceTimersByTimeAsync(7000);
    await vi.waitFor(() => expect(deletes()).toBe(3)); // deleted
    await vi.advanceTimersByTimeAsync(60_000);
    expect(deletes()).toBe(3);
    expect(socket().framesOf('send')).toHaveLength(0);
  });

  it('cancelled while an attempt is on its way, its deletion refused 429 each time: asked again a bounded number of times', async () => {
    const { deletes } = await cancelledNewChat(
      () => new Response('{"error":{"code":"rate_limited","message":"slow down"}}', { status: 429, headers: { 'Retry-After': '1' } }),
    );
    for (let i = 0; i < 10; i++) await vi.advanceTimersByTimeAsync(1000);
    expect(deletes()).toBe(5);
  });

  it.each([
    { use: 'a message frame (a send in another tab)', frame: { type: 'message', conversationId: NEW_ID, message: { id: 'u1', conversationId: NEW_ID, parentId: '', role: 'user', content: 'hi', status: 'complete', createdAt: '2026-01-01T00:00:05Z' } } },
    { use: 'its conversation moved up (updated)', frame: { type: 'conversation', action: 'updated', conversation: { ...created, updatedAt: '2026-01-01T00:00:05Z' } } },
    { use: 'opened here', open: true },
  ])('cancelled while an attempt is on its way, its deletion refused 503, then in use ($use): not deleted again', async ({ frame, open }) => {
    const { app, socket, deletes } = await cancelledNewChat(() => new Response('{"error":{"code":"unavailable","message":"not now"}}', { status: 503 }));
    await vi.waitFor(() => expect(deletes()).toBe(1));
    socket().receive({ type: 'conversation', action: 'created', conversation: created });
    if (frame) socket().receive(frame);
    if (open) app.navigate(`/c/${NEW_ID}`);
    for (let i = 0; i < 60; i++) await vi.advanceTimersByTimeAsync(1000);
    expect(deletes()).toBe(1);
  });

  it.each([
    { ends: 'with a conversation (deleted)', answer: () => json({ conversation: { ...created, id: '0123456789abcdef0123bbbb' } }, 201) },
    { ends: 'with a failure', answer: () => new Response('{}', { status: 502 }) },
  ])('sent again after Cancel while the retry given up is on its way (it ends $ends): read-only at once, created with the text shown', async ({ answer }) => {
    let attempts = 0;
    let hang!: (r: Response) => void;
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url === '/api/conversations/0123456789abcdef0123bbbb' && init?.method === 'DELETE') return new Response(null, { status: 204 });
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        attempts++;
        if (attempts === 1) throw new TypeError('Failed to fetch');
        if (attempts === 2) return new Promise<Response>((resolve) => (hang = resolve)); // the server is slow
        return json({ conversation: created }, 201);
      },
    });
    app.setDraft('new', 'a');
    await app.send('a');
    socket().open();
    await vi.waitFor(() => expect(attempts).toBe(2));
    app.cancelNewChat();
    expect(app.store.state.busy.new).toBeUndefined();
    const sending = app.send('a');
    expect(app.store.state.busy.new).toBe(true); // read-only: the text sent is the one shown
    expect(app.store.state.newChat.waiting).toBe(true); // behind the attempt given up: Cancel is offered
    await app.send('a'); // a second Enter is ignored: one new chat at a time
    hang(answer());
    await sending;
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(posts(calls)).toHaveLength(3);
    const [, given, next] = posts(calls);
    expect(next?.clientId).not.toBe(given?.clientId);
    expect(socket().framesOf('send')[0]).toMatchObject({ conversationId: NEW_ID, content: 'a' });
    expect(app.draft('new')).toBe('');
    expect(app.store.state.busy.new).toBeUndefined();
    expect(app.store.state.newChat.waiting).toBe(false);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID });
  });

  it('a text given to its composer while it waits (a conversation deleted elsewhere) stays there, without the text sent', async () => {
    let attempts = 0;
    let hang!: (r: Response) => void;
    const { app, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url !== '/api/conversations' || init?.method !== 'POST') return undefined;
        if (++attempts === 1) throw new TypeError('Failed to fetch');
        return new Promise<Response>((resolve) => (hang = resolve));
      },
    });
    app.setDraft('new', 'hello offline');
    await app.send('hello offline');
    app.setDraft(CID, 'typed in the other one');
    socket().open();
    await vi.waitFor(() => expect(attempts).toBe(2));
    socket().receive({ type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } });
    expect(app.draft('new')).toBe('hello offline\n\ntyped in the other one');
    hang(json({ conversation: created }, 201));
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    expect(socket().framesOf('send')[0]).toMatchObject({ content: 'hello offline' });
    expect(app.draft('new')).toBe('typed in the other one');
  });

  it('created and its message taken: its text is out of storage at once, not after the composer\'s save delay (a page killed then shows it no more)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { app, kv, socket } = setup({
        path: '/',
        route: (url, init) => (url === '/api/conversations' && init?.method === 'POST' ? json({ conversation: created }, 201) : undefined),
      });
      socket().open();
      await vi.advanceTimersByTimeAsync(0);
      app.setDraft('new', 'hello');
      await vi.advanceTimersByTimeAsync(200);
      expect(kv.getItem('chatd.draft.new')).toBe('hello');
      const sending = app.send('hello');
      await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
      const frame = socket().framesOf('send')[0]!;
      socket().receive({ type: 'ack', id: frame.id, conversationId: NEW_ID, userMessageId: 'u1', messageId: 'a1' });
      await sending;
      expect(app.draft('new')).toBe('');
      expect(kv.getItem('chatd.draft.new')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('is forgotten at sign-out: the connection back after the next sign-in creates nothing', async () => {
    const { app, calls, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url === '/api/conversations' && init?.method === 'POST') throw new TypeError('Failed to fetch');
        if (url === '/api/auth/login') return json({ token: 'tok2', user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } });
        return undefined;
      },
    });
    await app.send('hello');
    await app.logout();
    await app.login('a@b.c', 'password');
    socket().open();
    expect(posts(calls)).toHaveLength(1);
  });
});

describe('an edit box open when its message goes away with the conversation or the session', () => {
  async function editing() {
    const s = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete')]] });
    s.socket().open();
    await vi.waitFor(() => expect(s.app.store.state.threads[CID]?.loaded).toBe(true));
    s.app.setDraft(CID, 'in the box');
    s.app.edits.open(CID, '', 'hi'); // the edit box of u1 (a root: parent "")
    s.app.edits.type(CID, '', 'hi, as I mean it');
    return s;
  }

  it('the session expires: the edit is kept with the composer texts, in storage', async () => {
    const { app, kv } = await editing();
    app.expire();
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('in the box\n\nhi, as I mean it');
    expect(app.edits.conversations()).toEqual([]);
  });

  it('another conversation opened: the edit goes to its conversation’s composer', async () => {
    const { app } = await editing();
    app.navigate('/');
    expect(app.draft(CID)).toBe('in the box\n\nhi, as I mean it');
    expect(app.edits.get(CID, '')).toBeUndefined();
  });

  it('the conversation deleted in another tab: the edit goes to the new chat, after the composer’s text', async () => {
    const { app, socket } = await editing();
    socket().receive({ type: 'conversation', action: 'deleted', conversation: { id: CID, title: 't', model: 'm', systemPrompt: '', createdAt: '', updatedAt: '' } });
    expect(app.draft(ChatApp.draftKey(null))).toBe('in the box\n\nhi, as I mean it');
  });

  it('the account deleted: the edit is forgotten with the drafts', async () => {
    const { app, kv } = await editing();
    await app.deleteAccount('my password 1');
    await vi.waitFor(() => expect(app.store.state.session.user).toBeNull());
    expect(kv.getItem(`chatd.draft.${CID}`)).toBeNull();
    expect(app.edits.conversations()).toEqual([]);
  });
});

describe('ChatApp: the model picked for new chats on a shared browser', () => {
  const users: Record<string, { id: string; email: string; name: string; createdAt: string; updatedAt: string }> = {
    'a@b.c': { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' },
    'b@b.c': { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' },
  };
  const models = [
    { id: 'm', name: 'M', demo: false, default: true },
    { id: 'secret-model', name: 'Secret', demo: false, default: false },
  ];
  /** saved lists the storage keys whose value holds text. */
  const saved = (kv: ReturnType<typeof memoryKV>, text: string) =>
    Array.from({ length: kv.length }, (_, i) => kv.key(i)!).filter((k) => kv.getItem(k)?.includes(text));

  it.each([
    ['another user signing in after a sign-out does not get it, and it is forgotten', 'b@b.c', '', false],
    ['the same user signing in again after a sign-out finds it', 'a@b.c', 'secret-model', true],
  ])('%s', async (_name, email, expected, kept) => {
    const { app, kv, socket } = setup({
      path: '/',
      route: (url, init) => {
        if (url.startsWith('/api/models')) return json({ models });
        if (url !== '/api/auth/login') return undefined;
        const { email: who } = JSON.parse(String(init?.body)) as { email: string };
        return json({ token: `tok-${who}`, user: users[who] });
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    await vi.waitFor(() => expect(app.store.state.models).toHaveLength(2));
    await app.setModel('secret-model');
    expect(app.store.state.newChat.model).toBe('secret-model');
    await app.logout();
    await app.login(email, 'password');
    expect(app.store.state.newChat.model).toBe(expected);
    expect(saved(kv, 'secret-model').length > 0).toBe(kept);
  });

  it('is forgotten with a deleted account', async () => {
    const { app, kv, socket } = setup({ path: '/', route: (url) => (url.startsWith('/api/models') ? json({ models }) : undefined) });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    await app.setModel('secret-model');
    expect(saved(kv, 'secret-model')).toHaveLength(1);
    await app.deleteAccount('my password 1');
    await vi.waitFor(() => expect(app.store.state.session.user).toBeNull());
    expect(saved(kv, 'secret-model')).toEqual([]);
    expect(app.store.state.newChat.model).toBe('');
  });
});

describe('ChatApp: the list of models missing an upstream\'s models when the page loaded', () => {
  const byDefault = { id: 'd', name: 'D', demo: false, default: true };
  const theirs = { id: 'm', name: 'M', demo: false, default: false, upstream: 'local', upstreamLabel: 'Local' };
  const NEW_ID = '0123456789abcdef0123bbbb';

  /** start opens a new chat whose saved pick is m, the server listing m once back is set. */
  function start() {
    let back = false;
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.model', 'm');
    const s = setup({
      kv,
      path: '/',
      route: (url, init) => {
        if (url.startsWith('/api/models')) return json({ models: back ? [byDefault, theirs] : [byDefault] });
        if (url === '/api/conversations' && init?.method === 'POST') {
          return json({ conversation: { id: NEW_ID, title: '', model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' } }, 201);
        }
        return undefined;
      },
    });
    const models = () => s.app.store.state.models.map((m) => m.id);
    return { ...s, models, comeBack: () => (back = true) };
  }

  it('keeps the saved pick, loads the list again after a reconnect, and a new chat is created with the pick', async () => {
    const { app, socket, calls, models, comeBack } = start();
    socket().open();
    await vi.waitFor(() => expect(models()).toEqual(['d']));
    expect(app.store.state.newChat.model).toBe('m'); // not replaced by the default while the list lacks it

    comeBack();
    const first = socket();
    first.cut();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(models()).toEqual(['d', 'm']));
    expect(app.store.state.newChat.model).toBe('m');

    app.setDraft('new', 'hello');
    void app.send('hello'); // its message then waits for an ack no one gives
    await vi.waitFor(() => expect(calls.filter((c) => c.method === 'POST' && c.url === '/api/conversations').map((c) => (c.body as { model?: string }).model)).toEqual(['m']));
  });

  it('loads the list again every few minutes while the page is shown, and when it is shown again after a while', async () => {
    let visibility: DocumentVisibilityState = 'visible';
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const { app, socket, calls, models, comeBack } = start();
      await vi.waitFor(() => expect(models()).toEqual(['d']));
      socket().open();
      const loads = () => calls.filter((c) => c.url.startsWith('/api/models')).length;
      expect(loads()).toBe(1);

      comeBack();
      vi.advanceTimersByTime(MODELS_REFRESH_MS);
      await vi.waitFor(() => expect(models()).toEqual(['d', 'm']));
      expect(loads()).toBe(2);

      visibility = 'hidden';
      document.dispatchEvent(new Event('visibilitychange'));
      vi.advanceTimersByTime(MODELS_REFRESH_MS); // not while hidden
      expect(loads()).toBe(2);
      visibility = 'visible';
      document.dispatchEvent(new Event('visibilitychange'));
      expect(loads()).toBe(3); // shown again, the list older than MODELS_STALE_MS
      document.dispatchEvent(new Event('visibilitychange'));
      expect(loads()).toBe(3); // not again at once

      await app.logout(); // the refreshes end with the session
      vi.advanceTimersByTime(MODELS_REFRESH_MS + MODELS_STALE_MS);
      document.dispatchEvent(new Event('visibilitychange'));
      expect(loads()).toBe(3);
    } finally {
      vi.useRealTimers();
      delete (document as { visibilityState?: unknown }).visibilityState;
    }
  });
});

describe('ChatApp: the model picked for new chats no longer offered', () => {
  const byDefault = { id: 'd', name: 'D', demo: false, default: true };
  const gone = { id: 'x', name: 'X', demo: false, default: false };
  const NEW_ID = '0123456789abcdef0123cccc';

  /** start opens a new chat whose saved pick is x; the server lists (and takes) x once back is set, and the tab's list may say it does before. */
  function start(listed: boolean) {
    let back = false;
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.model', 'x');
    const s = setup({
      kv,
      path: '/',
      route: (url, init) => {
        if (url.startsWith('/api/models')) return json({ models: back || listed ? [byDefault, gone] : [byDefault] });
        if (url === '/api/conversations' && init?.method === 'POST') {
          const { model = '' } = JSON.parse(String(init.body)) as { model?: string };
          if (model === 'x' && !back) return json({ error: { code: 'invalid_field', message: 'model: unknown model "x"; see GET /api/models' } }, 400);
          return json({ conversation: { id: NEW_ID, title: '', model: model || 'd', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' } }, 201);
        }
        return undefined;
      },
    });
    const posted = () => s.calls.filter((c) => c.method === 'POST' && c.url === '/api/conversations').map((c) => (c.body as { model?: string }).model);
    return { ...s, posted, comeBack: () => (back = true) };
  }

  it.each([
    ['the list lacks it: created with the default at once', false, [undefined]],
    ['the list, stale, offers it: refused, then created with the default', true, ['x', undefined]],
  ])('%s, the user told; the pick is kept and used once offered again', async (_name, listed, asked) => {
    const { app, socket, posted, comeBack } = start(listed);
    socket().open();
    await vi.waitFor(() => expect(app.store.state.models.length).toBeGreaterThan(0));
    app.setDraft('new', 'hello');
    void app.send('hello');
    await vi.waitFor(() => expect(app.store.state.route).toEqual({ name: 'chat', conversationId: NEW_ID }));
    expect(posted()).toEqual(asked);
    expect(app.store.state.toasts.map((t) => t.text)).toEqual([unavailableNotice('x')]);
    expect(app.store.state.newChat.model).toBe('x');

    comeBack();
    const first = socket();
    first.cut();
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(app.store.state.models.map((m) => m.id)).toEqual(['d', 'x']));
    app.navigate('/');
    app.setDraft('new', 'again');
    void app.send('again');
    await vi.waitFor(() => expect(posted()).toHaveLength(asked.length + 1));
    expect(posted().at(-1)).toBe('x');
  });

  it('a token kept without its user (a version before) gets the user\'s pick once the server says who it is', async () => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.modelPick', JSON.stringify({ user: 'u', model: 'x' }));
    const { app } = setup({ kv, path: '/', route: (url) => (url.startsWith('/api/models') ? json({ models: [byDefault, gone] }) : undefined) });
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    expect(app.store.state.newChat.model).toBe('x');
  });
});
