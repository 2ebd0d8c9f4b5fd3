// A sign-out made offline reaches the server once the network is back.

import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ApiClient } from './api';
import { ChatApp } from './chat';
import { Persist, memoryKV } from './persist';
import { Revocations } from './revocation';
import { resetServerClock } from './serverClock';
import { json, message, setup } from './testkit';

afterEach(() => {
  history.replaceState(null, '', '/');
  resetServerClock();
});

const LOGOUT = '/api/auth/logout';

/** network scripts the answers of POST /api/auth/logout: offline (a fetch that fails), a status, or hanging. */
function network() {
  let mode: 'offline' | 'hang' | number = 'offline';
  const revoked: string[] = [];
  const route = (url: string, init: RequestInit | undefined): Response | Promise<Response> | undefined => {
    if (url !== LOGOUT) return undefined;
    if (mode === 'offline') throw new TypeError('Failed to fetch');
    if (mode === 'hang') return new Promise<Response>(() => undefined);
    revoked.push((init?.headers as Record<string, string>).Authorization ?? '');
    return mode === 204 ? new Response(null, { status: 204 }) : json({ error: { code: 'x', message: 'x' } }, mode);
  };
  return { route, revoked, set: (m: typeof mode) => (mode = m) };
}

describe('sign-out', () => {
  it('offline: this browser signs out at once, and the token is revoked on the server at the next start once online, then forgotten', async () => {
    const net = network();
    const { app, kv, calls, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], route: net.route });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    await app.logout();
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(calls.filter((c) => c.url === LOGOUT)).toHaveLength(1); // tried, failed
    expect(kv.getItem('chatd.token')).toBeNull();
    expect(kv.getItem('chatd.revoke')).toContain('"tok"'); // kept through a reload

    // The page is loaded again later, online.
    net.set(204);
    const fetchAgain = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => (await net.route(String(input), init)) ?? new Response('{}', { status: 404 }));
    new ChatApp({ kv, fetch: fetchAgain as typeof fetch }).start();
    await vi.waitFor(() => expect(net.revoked).toEqual(['Bearer tok']));
    await vi.waitFor(() => expect(kv.getItem('chatd.revoke')).toBeNull());
  });

  it('offline: the browser going online sends it; a server error keeps it for the next time, an already dead token (401) is forgotten', async () => {
    const net = network();
    const { app, kv, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], route: net.route });
    socket().open();
    await app.logout();
    expect(kv.getItem('chatd.revoke')).toContain('"tok"');

    net.set(503);
    window.dispatchEvent(new Event('online'));
    await vi.waitFor(() => expect(net.revoked).toHaveLength(1));

    // Sent again on the next sign of the network: the 503 kept it.
    net.set(401);
    await vi.waitFor(() => {
      window.dispatchEvent(new Event('online'));
      expect(net.revoked).toEqual(['Bearer tok', 'Bearer tok']);
    });
    await vi.waitFor(() => expect(kv.getItem('chatd.revoke')).toBeNull());
  });

  it.each([
    ['the server’s clock read from its answers', true],
    ['the server’s clock not known (no Date header)', false],
  ])('sent with this device’s clock two hours ahead, %s', async (_name, dated) => {
    // JWT_TTL=1h, signed in 10 min ago: the server takes the token 50 min more.
    const server = Date.UTC(2026, 11, 7, 12, 0, 0);
    vi.useFakeTimers({ now: server + 2 * 3600_000, toFake: ['Date'] });
    try {
      const token = jwt((server + 50 * 60_000) / 1000);
      const kv = memoryKV();
      kv.setItem('chatd.token', token);
      const net = network();
      net.set(204);
      const date = (r: Response) => {
        if (dated) r.headers.set('Date', new Date(server).toUTCString());
        return r;
      };
      const me = { user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } };
      const { app, socket } = setup({
        kv,
        snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
        route: (url, init) => (url.startsWith('/api/auth/me') ? date(json(me)) : net.route(url, init)),
      });
      socket().open();
      await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
      await app.logout();
      expect(net.revoked).toEqual([`Bearer ${token}`]);
      expect(kv.getItem('chatd.revoke')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('an offline sign-out with the clock 2 h ahead and the server’s clock unknown is sent once online', async () => {
    // JWT_TTL=1h, signed in 10 min ago: by this device's clock the token's
    // grace is over already. The offline try never reached the server, so
    // it does not use up the sign-out's one try.
    const server = Date.UTC(2026, 11, 7, 12, 0, 0);
    vi.useFakeTimers({ now: server + 2 * 3600_000, toFake: ['Date'] });
    try {
      const token = jwt((server + 50 * 60_000) / 1000);
      const kv = memoryKV();
      kv.setItem('chatd.token', token);
      const net = network();
      const me = { user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } };
      const { app, socket } = setup({
        kv,
        snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
        route: (url, init) => (url.startsWith('/api/auth/me') ? json(me) : net.route(url, init)),
      });
      socket().open();
      await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
      await app.logout(); // offline: the fetch fails
      expect(kv.getItem('chatd.revoke')).toContain(token);

      net.set(204);
      window.dispatchEvent(new Event('online'));
      await vi.waitFor(() => expect(net.revoked).toEqual([`Bearer ${token}`]));
      await vi.waitFor(() => expect(kv.getItem('chatd.revoke')).toBeNull());
    } finally {
      vi.useRealTimers();
    }
  });

  it('a sign-out whose request hangs is immediate here', () => {
    const net = network();
    net.set('hang');
    const { app, kv } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], route: net.route });
    void app.logout();
    expect(app.store.state.session.token).toBeNull();
    expect(app.store.state.route).toEqual({ name: 'login' });
    expect(kv.getItem('chatd.token')).toBeNull();
  });

  it('a sign-in sends a pending sign-out first, and drops one of the same user it could not send, which would end the new session', async () => {
    const net = network();
    const login = { user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' }, token: 'tok2' };
    const { app, kv, calls, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/login' ? json(login) : net.route(url, init)),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    await app.logout();

    net.set(204);
    await app.login('a@b.c', 'pw');
    const order = calls.map((c) => c.url).filter((u) => u === LOGOUT || u === '/api/auth/login');
    expect(order).toEqual([LOGOUT, LOGOUT, '/api/auth/login']); // the failed try, the one sent before signing in
    expect(net.revoked).toEqual(['Bearer tok']);
    expect(kv.getItem('chatd.revoke')).toBeNull();

    // Offline again, then the server fails the revocation but takes the sign-in: the old token's revocation is dropped.
    login.token = 'tok3';
    net.set('offline');
    await app.logout();
    net.set(503);
    await app.login('a@b.c', 'pw');
    expect(app.store.state.session.token).toBe('tok3');
    expect(kv.getItem('chatd.revoke')).toBeNull();
    window.dispatchEvent(new Event('online'));
    await new Promise((r) => setTimeout(r, 0));
    expect(net.revoked).toEqual(['Bearer tok', 'Bearer tok2']); // tok2's try at sign-in, none after
    expect(app.store.state.route).toEqual({ name: 'chat', conversationId: null });
  });

  it('a sign-in waits for a slow revocation (a slow store, within the server’s own bound of 30 s) instead of giving it up, where it could end the new session', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    onTestFinished(() => void vi.useRealTimers());
    const login = { user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' }, token: 'tok2' };
    let answerLogout: (r: Response) => void = () => undefined;
    let aborted = false;
    const { app, calls, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (url === '/api/auth/login') return json(login);
        if (url !== LOGOUT) return undefined;
        init?.signal?.addEventListener('abort', () => (aborted = true));
        return new Promise<Response>((r) => (answerLogout = r));
      },
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    void app.logout();
    const signingIn = app.login('a@b.c', 'pw');
    await vi.advanceTimersByTimeAsync(25_000);
    expect(aborted).toBe(false);
    expect(calls.some((c) => c.url === '/api/auth/login')).toBe(false);
    answerLogout(new Response(null, { status: 204 }));
    await signingIn;
    expect(calls.map((c) => c.url).filter((u) => u === LOGOUT || u === '/api/auth/login')).toEqual([LOGOUT, '/api/auth/login']);
    expect(app.store.state.session.token).toBe('tok2');
  });

  it('a sign-out pending is not sent while a sign-in of its user is on its way, where it would end the new session', async () => {
    const net = network();
    const login = { user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' }, token: 'tok2' };
    let answerLogin: (r: Response) => void = () => undefined;
    const { app, kv, calls, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => (url === '/api/auth/login' ? new Promise<Response>((r) => (answerLogin = r)) : net.route(url, init)),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    await app.logout(); // offline: kept
    net.set(503);
    const signingIn = app.login('a@b.c', 'pw'); // its own try first: refused for now
    await vi.waitFor(() => expect(calls.some((c) => c.url === '/api/auth/login')).toBe(true));
    expect(net.revoked).toHaveLength(1);
    net.set(204); // the server is back, and issues tok2 ...
    window.dispatchEvent(new Event('online')); // ... while the sign-in is on its way
    await new Promise((r) => setTimeout(r, 0));
    answerLogin(json(login));
    await signingIn;
    await new Promise((r) => setTimeout(r, 0));
    expect(net.revoked).toEqual(['Bearer tok']); // the try before signing in, none during it or after
    expect(kv.getItem('chatd.revoke')).toBeNull();
    expect(app.store.state.session.token).toBe('tok2');
  });
});

describe('Revocations', () => {
  it('tries again with backoff while the server cannot take it (the network up, the server down), until it does', async () => {
    vi.useFakeTimers();
    try {
      const answers = [503, 502, 204];
      const sent: number[] = [];
      const fetchImpl = vi.fn(async () => {
        sent.push(Date.now());
        const status = answers.shift() ?? 204;
        return status === 204 ? new Response(null, { status }) : json({ error: { code: 'x', message: 'x' } }, status);
      });
      const persist = new Persist(memoryKV());
      const api = new ApiClient({ token: () => null, onUnauthorized: () => undefined, fetch: fetchImpl as typeof fetch });
      const r = new Revocations({ persist, api, retryMs: 30_000 });
      r.keep({ token: 'old', userId: 'u' });
      const t0 = Date.now();
      await r.flush();
      expect(persist.revocations()).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(29_999);
      expect(sent).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(sent).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(sent.map((at) => at - t0)).toEqual([0, 30_000, 90_000]);
      expect(persist.revocations()).toEqual([]);
      await vi.advanceTimersByTimeAsync(10 * 60_000);
      expect(sent).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a sign-out kept while a pass is on its way', () => {
  it.each([
    ['the pass’s request answered 503', 503],
    ['the pass’s request taken', 204],
  ])('is sent when that pass ends, not after the 30 s retry: %s', async (_name, first) => {
    vi.useFakeTimers();
    try {
      const sent: string[] = [];
      let answer: (status: number) => void = () => undefined;
      const fetchImpl = vi.fn((_url: string, init?: RequestInit) => {
        const token = (init?.headers as Record<string, string>).Authorization ?? '';
        sent.push(token);
        const reply = (status: number) => (status === 204 ? new Response(null, { status }) : json({ error: { code: 'x', message: 'x' } }, status));
        if (token === 'Bearer old') return new Promise<Response>((resolve) => (answer = (status) => resolve(reply(status))));
        return Promise.resolve(reply(204));
      });
      const persist = new Persist(memoryKV());
      const api = new ApiClient({ token: () => null, onUnauthorized: () => undefined, fetch: fetchImpl as unknown as typeof fetch });
      const r = new Revocations({ persist, api, retryMs: 30_000 });
      r.keep({ token: 'old', userId: 'a' });
      const pass = r.flush(); // a slow server: the request hangs
      await vi.waitFor(() => expect(sent).toEqual(['Bearer old']));
      r.keep({ token: 'new', userId: 'b' }); // user b signs out meanwhile (app.logout flushes)
      const again = r.flush();
      answer(first);
      await pass;
      await again;
      expect(sent).toEqual(['Bearer old', 'Bearer new']);
      expect(persist.revocations().map((x) => x.token)).toEqual(first === 204 ? [] : ['old']);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** jwt makes a token whose payload carries exp (seconds since the epoch); the signature is not read. */
function jwt(expSeconds: number): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'u', exp: expSeconds })}.sig`;
}

describe('a pending revocation is kept only while its token could still be used', () => {
  const now = Date.UTC(2026, 11, 6, 9, 0, 0);
  const hour = 3600_000;
  // Once tried (the first try failed for now): kept until its expiry plus an hour's grace.
  const cases: Array<{ name: string; token: string; at: number; kept: boolean }> = [
    { name: 'a token valid for an hour, an hour later', token: jwt((now + hour) / 1000), at: now + hour - 1, kept: true },
    { name: 'a token valid for an hour, within the grace after it expired', token: jwt((now + hour) / 1000), at: now + 2 * hour - 1, kept: true },
    { name: 'a token valid for an hour, past the grace after it expired', token: jwt((now + hour) / 1000), at: now + 2 * hour + 1, kept: false },
    { name: 'a token long expired when signing out', token: jwt((now - 2 * hour) / 1000), at: now, kept: false },
    { name: 'a token whose expiry cannot be read, within a year', token: 'opaque', at: now + 300 * 24 * hour, kept: true },
    { name: 'a token whose expiry cannot be read, after a year', token: 'opaque', at: now + 366 * 24 * hour, kept: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const kv = memoryKV();
      const p = new Persist(kv);
      p.addRevocation({ token: c.token, userId: 'u' }, now);
      expect(p.revocations(c.at).map((r) => r.token)).toEqual([c.token]); // never tried yet: kept
      p.markTried(c.token);
      expect(p.revocations(c.at).map((r) => r.token)).toEqual(c.kept ? [c.token] : []);
      if (!c.kept) expect(kv.getItem('chatd.revoke')).toBeNull(); // dropped from storage, not only skipped
    });
  }

  it('an entry stored before expiries were recorded is read from its token', () => {
    const kv = memoryKV();
    kv.setItem('chatd.revoke', JSON.stringify([{ token: jwt((Date.now() - 2 * hour) / 1000), userId: 'u' }, { token: 'opaque', userId: 'v' }]));
    expect(new Persist(kv).revocations().map((r) => r.userId)).toEqual(['v']);
    expect(kv.getItem('chatd.revoke')).not.toContain('"u"');
  });

  it('a token that expired while pending is not sent past its grace, and no retry is left waiting', async () => {
    vi.useFakeTimers();
    try {
      const sent: number[] = [];
      const fetchImpl = vi.fn(async () => {
        sent.push(Date.now());
        return json({ error: { code: 'x', message: 'x' } }, 503);
      });
      const persist = new Persist(memoryKV());
      const api = new ApiClient({ token: () => null, onUnauthorized: () => undefined, fetch: fetchImpl as typeof fetch });
      const r = new Revocations({ persist, api, retryMs: 30_000 });
      const t0 = Date.now();
      r.keep({ token: jwt(Math.floor(t0 / 1000) + 60), userId: 'u' });
      await r.flush(); // 503: kept, retried in 30 s, ... then every 5 min
      expect(sent).toHaveLength(1);
      // The token expires at 60 s, past its grace an hour later: the tries stop there.
      await vi.advanceTimersByTimeAsync(3 * hour);
      expect(persist.revocations()).toEqual([]);
      expect(sent.at(-1)! - t0).toBeGreaterThan(hour - 5 * 60_000);
      expect(sent.at(-1)! - t0).toBeLessThanOrEqual(hour + 60_000);
      const tries = sent.length;
      await vi.advanceTimersByTimeAsync(3 * hour);
      expect(sent).toHaveLength(tries);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a sign-in on its way in one tab holds back the sign-outs of every tab', () => {
  /** tabs makes two Revocations over one storage, as two tabs of a browser, and a server that takes every logout. */
  function tabs() {
    const kv = memoryKV();
    const sent: string[] = [];
    const fetchImpl = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
      sent.push((init?.headers as Record<string, string>).Authorization ?? '');
      return new Response(null, { status: 204 });
    });
    const tab = () =>
      new Revocations({
        persist: new Persist(kv),
        api: new ApiClient({ token: () => null, onUnauthorized: () => undefined, fetch: fetchImpl as typeof fetch }),
        signInMarkMs: 60_000,
      });
    return { kv, sent, a: tab(), b: tab(), persist: new Persist(kv) };
  }

  it('another tab’s retry waits for the end of the sign-in, then sends', async () => {
    const { sent, a, b, persist } = tabs();
    persist.addRevocation({ token: 'old', userId: 'v' });
    const resume = a.pause(); // tab A signs in
    await b.flush(); // tab B's retry (a timer, the online event)
    expect(sent).toEqual([]);
    resume();
    b.signInsChanged(); // the storage event of A's mark going
    await vi.waitFor(() => expect(persist.revocations()).toEqual([]));
    expect(sent).toEqual(['Bearer old']);
  });

  it('the app holds its retry while another tab signs in, and sends once that tab’s mark goes (its storage event)', async () => {
    const net = network();
    const { app, kv, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], route: net.route });
    socket().open();
    await app.logout(); // offline: kept
    net.set(204);
    const other = new Persist(kv);
    other.markSignIn('other-tab', Date.now() + 60_000);
    window.dispatchEvent(new Event('online'));
    await new Promise((r) => setTimeout(r, 0));
    expect(net.revoked).toEqual([]);
    other.unmarkSignIn('other-tab');
    window.dispatchEvent(new StorageEvent('storage', { key: 'chatd.signingIn', newValue: null }));
    await vi.waitFor(() => expect(net.revoked).toEqual(['Bearer tok']));
  });

  it('a long sign-in keeps its mark renewed; a tab that crashed mid-sign-in holds them back only until its mark lapses', async () => {
    vi.useFakeTimers();
    try {
      const { kv, sent, a, b, persist } = tabs();
      persist.addRevocation({ token: 'old', userId: 'v' });
      const resume = a.pause();
      await vi.advanceTimersByTimeAsync(5 * 60_000); // the sign-in still on its way, renewed
      await b.flush();
      expect(sent).toEqual([]);
      resume();

      // A tab crashes while signing in: its mark stays in storage, never removed.
      persist.markSignIn('crashed', Date.now() + 60_000);
      const marked = kv.getItem('chatd.signingIn');
      expect(marked).toContain('crashed');
      await b.flush();
      expect(sent).toEqual([]);
      await vi.advanceTimersByTimeAsync(60_000 + 1);
      expect(sent).toEqual(['Bearer old']);
    } finally {
      vi.useRealTimers();
    }
  });
});
