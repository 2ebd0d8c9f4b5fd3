// ChatApp.changePassword and the refusals a password change causes: the
// server closes every socket of the user opened with an older token (4401),
// this tab's own included, before or after it answers with the new token.
// This tab's change, another tab's (through the shared storage), and their
// failures, against the scripted socket and fetch of testkit.ts.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { SERVER_WAIT_MS } from './api';
import { NOT_KEPT } from './chat';
import { CHANGE_WAIT_MS } from './passwordChange';
import { CID, json, message, setup } from './testkit';

afterEach(() => {
  vi.useRealTimers();
  history.replaceState(null, '', '/');
});

const user = { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' };
const MARK = 'chatd.passwordChange';

/** Gate is a response the test gives when it chooses. */
function gate() {
  let open!: (r: Response) => void;
  const response = new Promise<Response>((resolve) => (open = resolve));
  return { response, open };
}

/** started opens an app on a conversation with a streaming answer; the test answers its PATCH /api/auth/me. */
async function started() {
  const patch = gate();
  const u1 = message('u1', '', 'user', 'hi', 'complete');
  const t = setup({
    snapshots: [[u1, message('a1', 'u1', 'assistant', 'Hello', 'streaming')]],
    route: (url, init) => (url === '/api/auth/me' && init?.method === 'PATCH' ? patch.response : undefined),
  });
  await vi.waitFor(() => expect(t.answer()?.content).toBe('Hello'));
  t.socket().open();
  const storage = (key: string, value: string | null) => {
    if (value === null) t.kv.removeItem(key);
    else t.kv.setItem(key, value);
    window.dispatchEvent(new StorageEvent('storage', { key, newValue: value }));
  };
  /** newToken is another tab storing the session a password change answered. */
  const newToken = (token: string) => {
    t.kv.setItem('chatd.user', JSON.stringify(user));
    storage('chatd.token', token);
  };
  return { ...t, patch, storage, newToken };
}

describe('ChatApp.changePassword', () => {
  it('holds the 4401 of its own socket; success adopts the new token and reconnects as after a cut', async () => {
    const { app, kv, calls, sockets, socket, answer, patch, snapshotsFetched } = await started();
    const first = socket();
    const done = app.changePassword('old password', 'new password 1');
    expect(kv.getItem(MARK)).not.toBeNull(); // what the other tabs read
    first.cut(4401, 'signed out');
    expect(app.store.state.session.token).toBe('tok');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });

    patch.open(json({ token: 'tok2', user }));
    expect(await done).toBeNull();
    const sent = calls.findIndex((c) => c.method === 'PATCH');
    expect(calls[sent]).toMatchObject({ url: '/api/auth/me', body: { currentPassword: 'old password', newPassword: 'new password 1' }, auth: 'Bearer tok' });
    expect(app.store.state.session).toEqual({ token: 'tok2', user, notice: null });
    expect([kv.getItem('chatd.token'), kv.getItem('chatd.user'), kv.getItem(MARK)]).toEqual(['tok2', JSON.stringify(user), null]);

    // The live channel again, with the new token, resuming the running answer.
    expect(sockets).toHaveLength(2);
    expect(socket().protocols).toContain('bearer.tok2');
    const fetched = snapshotsFetched();
    socket().open();
    expect(socket().sent.at(-1)).toMatchObject({ type: 'subscribe', conversationId: CID, messageId: 'a1', lastSeq: 5 });
    await vi.waitFor(() => expect(snapshotsFetched()).toBe(fetched + 1)); // whole messages missed meanwhile: reloaded
    socket().receive({ type: 'delta', conversationId: CID, messageId: 'a1', seq: 11, text: ' world' });
    await vi.waitFor(() => expect(answer()?.content).toBe('Hello world'));
    const after = calls.slice(sent + 1);
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((c) => c.auth)).toEqual(after.map(() => 'Bearer tok2'));
  });

  it('a new token the full storage cannot keep is adopted all the same: the change ends, and says a reload will ask to sign in', async () => {
    const { app, kv, patch } = await started();
    const done = app.changePassword('old password', 'new password 1');
    const set = kv.setItem;
    kv.setItem = (key, value) => {
      if (key === 'chatd.token' || key === 'chatd.user') throw new DOMException('exceeded the quota', 'QuotaExceededError');
      set(key, value);
    };
    patch.open(json({ token: 'tok2', user }));
    expect(await done).toBeNull();
    expect(app.store.state.session).toEqual({ token: 'tok2', user, notice: null });
    expect(kv.getItem(MARK)).toBeNull(); // the change ended: the other tabs are not held
    expect(app.store.state.toasts.map((t) => t.text)).toEqual([NOT_KEPT]);
  });

  it('a 4401 after the answer closes a socket already replaced: nothing happens', async () => {
    const { app, sockets, socket, patch } = await started();
    const first = socket();
    patch.open(json({ token: 'tok2', user }));
    expect(await app.changePassword('old password', 'new password 1')).toBeNull();
    expect(sockets).toHaveLength(2);
    first.cut(4401, 'signed out');
    expect(app.store.state.session.token).toBe('tok2');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });
    expect(sockets).toHaveLength(2);
  });

  it('a wrong current password keeps the session and its socket', async () => {
    const { app, kv, sockets, socket, patch } = await started();
    patch.open(json({ error: { code: 'unauthorized', message: 'wrong password' } }, 401));
    expect(await app.changePassword('not it', 'new password 1')).toEqual({ field: 'currentPassword', text: 'The current password is wrong.' });
    expect(app.store.state.session.token).toBe('tok');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });
    expect([kv.getItem('chatd.token'), kv.getItem(MARK)]).toEqual(['tok', null]);
    expect(sockets).toHaveLength(1);
    expect(socket().readyState).toBe(1);
  });

  it('a failed change ends the session when its socket was closed meanwhile, as a 4401 does', async () => {
    const { app, kv, socket, patch } = await started();
    app.setDraft(CID, 'unsent words');
    const done = app.changePassword('old password', 'new password 1');
    socket().cut(4401, 'signed out');
    patch.open(json({ error: { code: 'unavailable', message: 'the server is busy; retry in a moment' } }, 503));
    expect(await done).toEqual({ field: null, text: 'The server is busy; retry in a moment. Your password was not changed.' });
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.session.notice).toMatch(/session has ended/);
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(app.draft(CID)).toBe('unsent words');
    expect([kv.getItem('chatd.token'), kv.getItem(MARK)]).toEqual([null, null]);
  });
});

describe('another tab changing the password', () => {
  it('holds a 4401 until the new token is stored, then adopts it and reconnects', async () => {
    const { app, sockets, socket, storage, newToken } = await started();
    storage(MARK, String(Date.now()));
    socket().cut(4401, 'signed out');
    expect(app.store.state.session.token).toBe('tok');
    newToken('tok2');
    expect(app.store.state.session).toEqual({ token: 'tok2', user, notice: null });
    expect(sockets).toHaveLength(2);
    expect(socket().protocols).toContain('bearer.tok2');
    storage(MARK, null);
    expect(app.store.state.session.token).toBe('tok2');
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: CID });
  });

  it('adopts a new token stored before its own socket is closed; the old socket\'s 4401 is then ignored', async () => {
    const { app, sockets, socket, newToken } = await started();
    const first = socket();
    newToken('tok2');
    expect(app.store.state.session.token).toBe('tok2');
    expect(sockets).toHaveLength(2);
    first.cut(4401, 'signed out');
    expect(app.store.state.session.token).toBe('tok2');
  });

  it('a 4401 that finds the new token in storage before its storage event adopts it', async () => {
    const { app, kv, sockets, socket } = await started();
    kv.setItem('chatd.token', 'tok2');
    kv.setItem('chatd.user', JSON.stringify(user));
    socket().cut(4401, 'signed out');
    expect(app.store.state.session).toEqual({ token: 'tok2', user, notice: null });
    expect(sockets).toHaveLength(2);
  });

  it('ends a held session when the change ends without a new token', async () => {
    const { app, socket, storage } = await started();
    storage(MARK, String(Date.now()));
    socket().cut(4401, 'signed out');
    expect(app.store.state.session.token).toBe('tok');
    storage(MARK, null);
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.route).toEqual({ name: 'login' });
  });

  it('holds for CHANGE_WAIT_MS from the change at most (past the asking tab\'s own wait for its answer)', async () => {
    expect(CHANGE_WAIT_MS).toBeGreaterThan(SERVER_WAIT_MS);
    const { app, kv, socket } = await started();
    vi.useFakeTimers();
    kv.setItem(MARK, String(Date.now() - 10000));
    socket().cut(4401, 'signed out');
    vi.advanceTimersByTime(CHANGE_WAIT_MS - 10001);
    expect(app.store.state.session.token).toBe('tok');
    vi.advanceTimersByTime(1);
    expect(app.store.state.session.token).toBeNull();
  });

  it('an older mark (a tab closed during its change) does not hold', async () => {
    const { app, kv, socket } = await started();
    kv.setItem(MARK, String(Date.now() - CHANGE_WAIT_MS - 1));
    socket().cut(4401, 'signed out');
    expect(app.store.state.session.token).toBeNull();
  });

  it('a 401 answering a request sent with the replaced token does not sign out', async () => {
    const stale = gate();
    let hold = false;
    const t = setup({
      route: (url, init) => {
        const auth = (init?.headers as Record<string, string> | undefined)?.Authorization;
        return hold && url.startsWith('/api/conversations?') && auth === 'Bearer tok' ? stale.response : undefined;
      },
    });
    t.socket().open();
    hold = true;
    const reload = t.app.reloadList();
    t.kv.setItem('chatd.user', JSON.stringify(user));
    t.kv.setItem('chatd.token', 'tok2');
    window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', newValue: 'tok2' }));
    stale.open(json({ error: { code: 'unauthorized', message: 'token revoked' } }, 401));
    await reload;
    expect(t.app.store.state.session.token).toBe('tok2');
  });
});

describe('ChatApp.changePassword answered once another user is signed in', () => {
  const userB = { id: 'v', email: 'b@b.c', name: 'B', createdAt: '', updatedAt: '' };
  type App = ReturnType<typeof setup>;
  /** The ways A signs out and B signs in while A's change waits for its answer. */
  const signInB: Array<[string, (t: App) => Promise<void>]> = [
    [
      'here',
      async ({ app }) => {
        await app.logout();
        await app.login('b@b.c', 'password of B');
      },
    ],
    [
      'in another tab',
      async ({ kv }) => {
        kv.removeItem('chatd.token');
        window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: 'tok', newValue: null }));
        kv.setItem('chatd.token', 'tok-b');
        kv.setItem('chatd.user', JSON.stringify(userB));
        window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.token', oldValue: null, newValue: 'tok-b' }));
      },
    ],
  ];

  function started() {
    const patch = gate();
    const t = setup({
      path: '/',
      route: (url, init) => {
        const method = init?.method ?? 'GET';
        const auth = (init?.headers as Record<string, string> | undefined)?.Authorization;
        if (url === '/api/auth/me' && method === 'PATCH') return patch.response;
        if (url === '/api/auth/me' && method === 'GET') return json({ user: auth === 'Bearer tok-b' ? userB : user });
        if (url === '/api/auth/login') return json({ token: 'tok-b', user: userB });
        return undefined;
      },
    });
    return { ...t, patch };
  }

  it.each(signInB)('signed in %s: A\'s new token is not stored, B stays signed in everywhere', async (_, signIn) => {
    const t = started();
    const { app, kv, sockets, socket, patch } = t;
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    const done = app.changePassword('old password', 'new password 1');
    await signIn(t);
    expect(app.store.state.session).toMatchObject({ token: 'tok-b', user: { id: 'v' } });
    const socketsOfB = sockets.length;

    patch.open(json({ token: 'tok-a2', user }));
    expect(await done).toBeNull();
    expect(app.store.state.session).toEqual({ token: 'tok-b', user: userB, notice: null });
    expect([kv.getItem('chatd.token'), kv.getItem('chatd.user'), kv.getItem(MARK)]).toEqual(['tok-b', JSON.stringify(userB), null]);
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
    expect(sockets).toHaveLength(socketsOfB); // B's channel is not restarted
    expect(socket().protocols).toContain('bearer.tok-b');
  });

  it.each(signInB)('signed in %s: a refusal of A\'s change is not said to B', async (_, signIn) => {
    const t = started();
    const { app, patch } = t;
    t.socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    const done = app.changePassword('not it', 'new password 1');
    await signIn(t);
    patch.open(json({ error: { code: 'unauthorized', message: 'wrong password' } }, 401));
    expect(await done).toBeNull(); // nothing for the dialog, closed or B's, to say (a toast to B)
    expect(app.store.state.session).toEqual({ token: 'tok-b', user: userB, notice: null });
  });

  it('a refusal answered once A signed out is not said on the sign-in page', async () => {
    const t = started();
    const { app, patch } = t;
    t.socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    const done = app.changePassword('not it', 'new password 1');
    await app.logout();
    patch.open(json({ error: { code: 'unauthorized', message: 'wrong password' } }, 401));
    expect(await done).toBeNull();
  });

  it.each(signInB)('signed in %s: a refusal of B\'s token held for A\'s change ends B\'s session once it is answered', async (_, signIn) => {
    const t = started();
    const { app, kv, socket, patch } = t;
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    const done = app.changePassword('old password', 'new password 1');
    await signIn(t);
    socket().open();
    socket().cut(4401, 'signed out'); // held: a change is in flight here
    expect(app.store.state.session.token).toBe('tok-b');

    patch.open(json({ token: 'tok-a2', user }));
    expect(await done).toBeNull();
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.session.notice).toMatch(/session has ended/);
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect([kv.getItem('chatd.token'), kv.getItem(MARK)]).toEqual([null, null]);
  });
});
