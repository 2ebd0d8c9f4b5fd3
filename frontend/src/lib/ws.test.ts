// WSTransport against a scripted stand-in for the browser's WebSocket (the
// real server is exercised by the end-to-end tests in e2e/).

import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { TransportHandlers, TransportStatus } from './transport';
import { WSTransport, type AuthCheck } from './ws';

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.all.push(this);
  }
  /** On a dead link (half-open TCP) close() only starts the closing handshake: no close event comes. */
  dead = false;
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code = 1000) {
    if (this.dead) this.readyState = 2;
    else this.finish(code);
  }
  // ---- script ----
  /**
   * open opens the socket as the server does for a session it confirms:
   * the open event, then hello (the first frame, sent once the session is
   * confirmed).
   */
  open() {
    this.accept();
    this.hello();
  }
  /** hello receives the hello frame, session confirmed. */
  hello() {
    this.receive({ type: 'hello', protocol: 'chat.v1', userId: 'u1', maxFrameBytes: 65536, connectionId: 'conn1', session: 'confirmed' });
  }
  /** olderHello receives the hello of a server before session "confirmed": sent before its session check. */
  olderHello() {
    this.receive({ type: 'hello', protocol: 'chat.v1', userId: 'u1', maxFrameBytes: 65536, connectionId: 'conn1' });
  }
  /** accept fires only the open event: a socket the server accepted and has not greeted (yet). */
  accept() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(frame: object) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  finish(code: number, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  last() {
    return this.sent[this.sent.length - 1]!;
  }
  framesOf(type: string) {
    return this.sent.filter((f) => f.type === type);
  }
}

/** backoffMax is the longest pause of backoffDelay(attempt, 500). */
function backoffMax(attempt: number): number {
  return Math.min(30000, 500 * 2 ** attempt);
}

function setup(verdict: Awaited<ReturnType<AuthCheck>> = 'ok', resumed = false, pingIntervalMs = 1_000_000) {
  const statuses: TransportStatus[] = [];
  const handlers: TransportHandlers & Record<string, ReturnType<typeof vi.fn>> = {
    frame: vi.fn(),
    status: vi.fn((s: TransportStatus) => statuses.push(s)),
    reconnected: vi.fn(),
    unauthorized: vi.fn(),
    fallback: vi.fn(),
    resumePoint: vi.fn(() => ({ messageId: 'm1', lastSeq: 42 })),
    subscribeFailed: vi.fn(),
    notify: vi.fn(),
  };
  const checkAuth = vi.fn(async () => verdict);
  const t = new WSTransport(handlers, {
    token: () => 'tok',
    checkAuth,
    url: 'ws://host/ws',
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    pingIntervalMs,
    resumed,
  });
  return { t, handlers, statuses, checkAuth, socket: () => FakeSocket.all[FakeSocket.all.length - 1]! };
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe('WSTransport', () => {
  it('passes the token as the bearer subprotocol and subscribes with the resume point on open', () => {
    const { t, handlers, statuses, socket } = setup();
    t.subscribe('c1');
    t.start();
    expect(socket().url).toBe('ws://host/ws');
    expect(socket().protocols).toEqual(['chat.v1', 'bearer.tok']);
    socket().open();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
    expect(socket().last()).toMatchObject({ type: 'subscribe', conversationId: 'c1', messageId: 'm1', lastSeq: 42 });
    expect(handlers.reconnected).not.toHaveBeenCalled();
  });

  it('resumed (a restart with a new token): the first open is a reconnect', () => {
    const { t, handlers, statuses, socket } = setup('ok', true);
    t.subscribe('c1');
    t.start();
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'ws' });
    socket().open();
    expect(socket().last()).toMatchObject({ type: 'subscribe', conversationId: 'c1', messageId: 'm1', lastSeq: 42 });
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['30,000 CJK characters (90 KB): refused too_large, not written, the socket kept', '字'.repeat(30000), false],
    ['20,000 ASCII characters: written', 'a'.repeat(20000), true],
  ])('a send larger than the hello\'s maxFrameBytes (64 KiB) is refused before it is written: %s', async (_name, content, written) => {
    const { t, statuses, socket } = setup();
    t.start();
    socket().open();
    const sending = t.send({ conversationId: 'c1', content, clientMessageId: 'x' });
    sending.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(socket().framesOf('send')).toHaveLength(written ? 1 : 0);
    if (!written) {
      await expect(sending).rejects.toMatchObject({
        code: 'too_large',
        message: expect.stringMatching(/^This message is too large for the server: 90,\d{3} bytes to send, it takes at most 65,536\./),
      });
    }
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
    expect(socket().readyState).toBe(1);
  });

  it('resolves a send on its ack and rejects on its error', async () => {
    const { t, socket } = setup();
    t.start();
    socket().open();
    const ok = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'x' });
    await vi.advanceTimersByTimeAsync(0);
    const sent = socket().last();
    socket().receive({ type: 'ack', id: sent.id, conversationId: 'c1', userMessageId: 'u', messageId: 'a' });
    await expect(ok).resolves.toEqual({ conversationId: 'c1', userMessageId: 'u', messageId: 'a' });

    const bad = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'y' });
    await vi.advanceTimersByTimeAsync(0);
    socket().receive({ type: 'error', id: socket().last().id, code: 'generation_running', message: 'busy' });
    await expect(bad).rejects.toMatchObject({ code: 'generation_running' });
  });

  it('waits for an ack past the server’s own bound (CHATD_REQUEST_TIMEOUT, 30 s: a slow store) and a margin: 45 s', async () => {
    const { t, socket } = setup();
    t.start();
    socket().open();
    const slow = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'x' });
    await vi.advanceTimersByTimeAsync(25_000);
    socket().receive({ type: 'ack', id: socket().last().id, conversationId: 'c1', userMessageId: 'u', messageId: 'a' });
    await expect(slow).resolves.toMatchObject({ messageId: 'a' });

    const lost = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'y' });
    const lostFails = expect(lost).rejects.toMatchObject({ code: 'timeout' });
    let settled = false;
    lost.catch(() => undefined).finally(() => (settled = true));
    await vi.advanceTimersByTimeAsync(44_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await lostFails;
  });

  it('a request made while reconnecting goes out once the socket is open', async () => {
    const { t, socket } = setup();
    t.start();
    const p = t.cancel('c1');
    await vi.advanceTimersByTimeAsync(100);
    socket().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(socket().last()).toMatchObject({ type: 'cancel', conversationId: 'c1' });
    socket().receive({ type: 'ack', id: socket().last().id });
    await expect(p).resolves.toBeUndefined();
  });

  it('a cancel names its answer when given one, and a regenerate carries its clientMessageId', async () => {
    const { t, socket } = setup();
    t.start();
    socket().open();
    await vi.advanceTimersByTimeAsync(0);
    const named = t.cancel('c1', 'a1');
    await vi.advanceTimersByTimeAsync(0);
    expect(socket().last()).toMatchObject({ type: 'cancel', conversationId: 'c1', messageId: 'a1' });
    socket().receive({ type: 'ack', id: socket().last().id });
    await expect(named).resolves.toBeUndefined();
    const any = t.cancel('c1');
    await vi.advanceTimersByTimeAsync(0);
    expect(socket().last()).not.toHaveProperty('messageId');
    socket().receive({ type: 'ack', id: socket().last().id });
    await any;
    const regen = t.regenerate({ conversationId: 'c1', messageId: 'a1', clientMessageId: 'k' });
    await vi.advanceTimersByTimeAsync(0);
    expect(socket().last()).toMatchObject({ type: 'regenerate', conversationId: 'c1', messageId: 'a1', clientMessageId: 'k' });
    socket().receive({ type: 'ack', id: socket().last().id, conversationId: 'c1', userMessageId: 'u', messageId: 'a2' });
    await expect(regen).resolves.toMatchObject({ messageId: 'a2' });
  });

  it('a request fails when the socket stays down', async () => {
    const { t } = setup();
    t.start();
    const p = t.cancel('c1');
    const check = expect(p).rejects.toMatchObject({ code: 'network' });
    await vi.advanceTimersByTimeAsync(6000);
    await check;
  });

  it('reconnects with backoff after a cut and resumes every subscription', async () => {
    const { t, handlers, statuses, socket } = setup();
    t.subscribe('c1');
    t.start();
    socket().open();
    const pending = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'x' });
    await vi.advanceTimersByTimeAsync(0);
    socket().finish(1006);
    await expect(pending).rejects.toMatchObject({ code: 'network' });
    expect(FakeSocket.all.length).toBe(1);
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.all.length).toBe(2);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    socket().open();
    expect(socket().last()).toMatchObject({ type: 'subscribe', conversationId: 'c1', messageId: 'm1', lastSeq: 42 });
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
  });

  it('reconnects when a pong is missed, without waiting for the close event of a dead link', async () => {
    const { t, handlers, statuses, socket } = setup('ok', false, 25_000);
    t.subscribe('c1');
    t.start();
    const dead = socket();
    dead.open();
    await vi.advanceTimersByTimeAsync(25_000);
    expect(dead.last()).toMatchObject({ type: 'ping' });
    dead.receive({ type: 'pong', id: dead.last().id });
    await vi.advanceTimersByTimeAsync(15_000);
    expect(statuses.at(-1)?.state).toBe('connected'); // answered in time
    dead.dead = true; // the network is gone: nothing comes back, close() never completes
    await vi.advanceTimersByTimeAsync(10_000); // the next ping
    const pending = expect(t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'x' })).rejects.toMatchObject({ code: 'network' });
    await vi.advanceTimersByTimeAsync(15_000); // its pong deadline
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await pending;
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.all.length).toBe(2);
    socket().open();
    expect(socket().last()).toMatchObject({ type: 'subscribe', conversationId: 'c1', messageId: 'm1', lastSeq: 42 });
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
    dead.finish(1006); // the browser gives up on the old one at last: nothing happens
    await vi.advanceTimersByTimeAsync(1_000);
    expect(FakeSocket.all.length).toBe(2);
    expect(statuses.at(-1)?.state).toBe('connected');
  });

  it('a wake pings at once and reconnects and resumes when the pong is not back within a few seconds', async () => {
    const { t, handlers, statuses, socket } = setup('ok', false, 25_000);
    t.subscribe('c1');
    t.start();
    const s = socket();
    s.open();
    await vi.advanceTimersByTimeAsync(1_000);
    t.checkNow(); // a healthy link: the pong comes
    expect(s.last()).toMatchObject({ type: 'ping' });
    s.receive({ type: 'pong', id: s.last().id });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(statuses.at(-1)?.state).toBe('connected');
    expect(FakeSocket.all.length).toBe(1);

    s.dead = true; // the laptop slept: the link died without a word
    t.checkNow();
    expect(s.last()).toMatchObject({ type: 'ping' });
    await vi.advanceTimersByTimeAsync(3_999);
    expect(statuses.at(-1)?.state).toBe('connected');
    await vi.advanceTimersByTimeAsync(1); // 4 s, long before the next interval ping
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.all.length).toBe(2);
    socket().open();
    expect(socket().last()).toMatchObject({ type: 'subscribe', conversationId: 'c1', messageId: 'm1', lastSeq: 42 });
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
  });

  it('a wake replaces a socket opening for longer than a few seconds (made before the sleep), without counting a failed open', async () => {
    const { t, handlers, checkAuth, socket } = setup();
    t.start();
    const stale = socket();
    await vi.advanceTimersByTimeAsync(1_000);
    t.checkNow(); // opening for 1 s: left alone
    expect(FakeSocket.all.length).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    t.checkNow();
    expect(FakeSocket.all.length).toBe(2);
    expect(stale.readyState).toBe(3);
    stale.finish(1006); // its close event, late: nothing follows
    await vi.advanceTimersByTimeAsync(0);
    expect(checkAuth).not.toHaveBeenCalled();
    socket().open();
    expect(handlers.status).toHaveBeenLastCalledWith({ state: 'connected', kind: 'ws' });
    expect(handlers.fallback).not.toHaveBeenCalled();
    expect(FakeSocket.all.length).toBe(2);
  });

  it('a wake leaves alone a socket open and waiting for its hello (the server checking the session), which the hello deadline bounds', async () => {
    const { t, statuses, socket } = setup();
    t.start();
    socket().accept(); // open, no hello yet: the server's session check is slow
    await vi.advanceTimersByTimeAsync(10_000);
    t.checkNow();
    expect(FakeSocket.all.length).toBe(1);
    socket().hello();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
  });

  it("a wake does not put off the deadline of an earlier ping", async () => {
    const { t, statuses, socket } = setup('ok', false, 25_000);
    t.start();
    socket().open();
    await vi.advanceTimersByTimeAsync(25_000 + 13_000); // the interval's ping: its pong is due in 2 s
    const pings = () => socket().sent.filter((f) => f.type === 'ping').length;
    expect(pings()).toBe(1);
    t.checkNow(); // its own deadline, 4 s, is later: the ping on its way stands for it
    expect(pings()).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
  });

  it('wakes in a row while a pong is awaited send one ping (pings count against the frame budget)', async () => {
    const { t, socket } = setup('ok', false, 25_000);
    t.start();
    socket().open();
    const pings = () => socket().sent.filter((f) => f.type === 'ping');
    for (let i = 0; i < 5; i++) t.checkNow(); // the tab shown, hidden, shown again…
    expect(pings()).toHaveLength(1);
    socket().receive({ type: 'pong', id: pings()[0]!.id });
    t.checkNow();
    expect(pings()).toHaveLength(2);
  });

  it("a wake retries at once a socket waiting out the client's backoff", async () => {
    const { t, socket } = setup('offline');
    t.start();
    for (let i = 0; i < 5; i++) {
      socket().finish(1006); // the network is down: the backoff grows
      await vi.advanceTimersByTimeAsync(backoffMax(i));
    }
    socket().finish(1006);
    await vi.advanceTimersByTimeAsync(0);
    const n = FakeSocket.all.length;
    t.checkNow(); // online again: the rest of a 16 s backoff is not waited out
    expect(FakeSocket.all.length).toBe(n + 1);
  });

  it('a wake while the token check after a failed open hangs (a dead link) retries at once; the late verdict decides nothing', async () => {
    const { t, statuses, checkAuth, socket } = setup();
    let answer: (v: 'offline') => void = () => undefined;
    checkAuth.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    t.start();
    socket().finish(1006); // the open failed: the token is being checked, no answer comes
    await vi.advanceTimersByTimeAsync(0);
    expect(statuses.at(-1)?.state).toBe('connecting');
    t.checkNow(); // online again
    expect(FakeSocket.all).toHaveLength(2);
    socket().finish(1006); // failed too: checked again, ok
    await vi.advanceTimersByTimeAsync(0);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    answer('offline'); // the first check, at last: its socket was replaced
    await vi.advanceTimersByTimeAsync(0);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(backoffMax(0));
    expect(FakeSocket.all).toHaveLength(3);
    socket().open();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
  });

  it.each([
    ['a pause the server asked for (4429)', 4429],
    ['a close that ends the retries (1008)', 1008],
  ])('a wake keeps %s', async (_name, code) => {
    const { t, socket } = setup();
    t.start();
    socket().open();
    socket().finish(code);
    t.checkNow();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(FakeSocket.all.length).toBe(1);
  });

  it('a retry made while a failed open is checked leaves one socket, which gets each frame once', async () => {
    const { t, handlers, statuses, checkAuth, socket } = setup();
    let answer: (v: 'ok') => void = () => undefined;
    checkAuth.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    t.start();
    socket().finish(1006); // the open failed: the token is being checked
    t.reconnectNow(); // the user's retry, meanwhile
    const retry = socket();
    retry.open();
    answer('ok');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all.length).toBe(2);
    expect(statuses.at(-1)?.state).toBe('connected');
    expect(handlers.fallback).not.toHaveBeenCalled();
    retry.receive({ type: 'conversation', action: 'created', conversation: { id: 'c9' } });
    const conversations = vi.mocked(handlers.frame).mock.calls.filter(([f]) => f.type === 'conversation');
    expect(conversations).toHaveLength(1);
  });

  it('a socket the server accepts and closes without hello (too many connections) is never taken for a connection', async () => {
    const { t, handlers, statuses, socket } = setup();
    t.start();
    socket().open();
    t.subscribe('c1');
    expect(socket().framesOf('subscribe')).toHaveLength(1);
    socket().finish(1006); // a cut: reconnecting
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(60_000);
      const s = socket();
      s.accept(); // open event, no hello
      expect(s.framesOf('subscribe')).toHaveLength(0);
      s.finish(1013, 'too many connections');
    }
    expect(statuses.filter((st) => st.state === 'connected')).toHaveLength(1); // the first socket's only
    expect(handlers.reconnected).not.toHaveBeenCalled();
    expect(handlers.fallback).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(60_000);
    socket().open(); // a slot is free: hello
    expect(statuses.at(-1)?.state).toBe('connected');
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
    expect(socket().framesOf('subscribe')).toHaveLength(1);
  });

  it('a socket opened whose hello never comes (a link cut right after the upgrade) is given up and another opened', async () => {
    const { t, handlers, statuses, socket } = setup();
    t.start();
    const first = socket();
    first.dead = true; // half-open: no frame and no close event will ever come
    first.accept(); // open event, no hello
    await vi.advanceTimersByTimeAsync(44_000); // the server may take 30 s to check the session before hello
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(1_000); // the reconnect's backoff
    expect(FakeSocket.all).toHaveLength(2);
    expect(handlers.fallback).not.toHaveBeenCalled();
    socket().open();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
    first.onmessage?.({ data: JSON.stringify({ type: 'hello', protocol: 'chat.v1' }) }); // detached: ignored
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(2); // the greeted socket is kept
  });

  it('a ping refused for the frame budget (rate_limited) proves the link alive: no reconnect', async () => {
    const { t, statuses, socket } = setup('ok', false, 25_000);
    t.start();
    socket().open();
    await vi.advanceTimersByTimeAsync(25_000);
    const ping = socket().last();
    expect(ping).toMatchObject({ type: 'ping' });
    socket().receive({ type: 'error', id: ping.id, code: 'rate_limited', message: 'too many frames; slow down' });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(statuses.at(-1)?.state).toBe('connected');
    expect(FakeSocket.all.length).toBe(1);
  });

  it('drop reconnects at once on a dead link too', async () => {
    const { t, statuses, socket } = setup();
    t.start();
    const dead = socket();
    dead.open();
    dead.dead = true;
    t.drop();
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.all.length).toBe(2);
  });

  it.each([
    ['goes away (1001: a shutdown, a rolling restart)', 1001],
    ['restarts (1012)', 1012],
  ])('when the server %s, the first retry is spread over 3 s, not within 250 ms, and the token is not checked', async (_name, code) => {
    const rand = vi.spyOn(Math, 'random');
    onTestFinished(() => rand.mockRestore()); // also when an assertion fails: the file's later tests draw their own
    // [the random draw, when the retry comes]: every tab of every user closed at once comes back across the window.
    for (const [r, at] of [
      [0, 125], // never sooner than the backoff
      [0.5, 1500],
      [1, 3000],
    ] as const) {
      FakeSocket.all = [];
      rand.mockReturnValue(r);
      const { t, statuses, checkAuth, socket } = setup();
      onTestFinished(() => t.stop());
      t.start();
      socket().open();
      socket().finish(code, 'server shutting down');
      expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'ws' });
      await vi.advanceTimersByTimeAsync(at - 1);
      expect(FakeSocket.all).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(FakeSocket.all).toHaveLength(2);
      expect(checkAuth).not.toHaveBeenCalled();
      t.stop();
    }
    rand.mockRestore();
  });

  it('reconnects at once after 4408 (too slow)', async () => {
    const { t, socket } = setup();
    t.start();
    socket().open();
    socket().finish(4408);
    await vi.advanceTimersByTimeAsync(300);
    expect(FakeSocket.all.length).toBe(2);
  });

  it('backs off across repeated 4408 closes (a resume that never fits the server queue) instead of reopening every quarter second; a pong ends the run', async () => {
    const { t, socket } = setup('ok', true);
    t.subscribe('c1');
    t.start();
    for (let i = 1; i <= 6; i++) {
      socket().open(); // hello; the subscribe resumes, and its catch-up overflows the queue
      socket().finish(4408, 'too slow: send queue full; reconnect and resume');
      const backoff = 2 ** (i - 1) * 250; // doubling from 250 ms, jittered down to half of it at most
      await vi.advanceTimersByTimeAsync(backoff / 2 - 1);
      expect(FakeSocket.all.length).toBe(i);
      await vi.advanceTimersByTimeAsync(backoff / 2 + 1);
      expect(FakeSocket.all.length).toBe(i + 1);
    }
    // A pong (all queued before it was written) starts the count again.
    socket().open();
    socket().receive({ type: 'pong', id: 'p1', serverTime: 1 });
    socket().finish(4408);
    await vi.advanceTimersByTimeAsync(250);
    expect(FakeSocket.all.length).toBe(8);
    t.stop();
  });

  it('against an older server the pong confirming the session does not end a run of 4408 closes', async () => {
    const { t, socket } = setup('ok', true);
    t.subscribe('c1');
    t.start();
    for (let i = 1; i <= 3; i++) {
      socket().accept();
      socket().olderHello();
      const ping = socket().framesOf('ping')[0]!;
      socket().receive({ type: 'pong', id: ping.id, serverTime: 1 }); // confirmed: then it subscribes
      expect(socket().framesOf('subscribe')).toHaveLength(1);
      socket().finish(4408);
      const backoff = 2 ** (i - 1) * 250;
      await vi.advanceTimersByTimeAsync(backoff / 2 - 1);
      expect(FakeSocket.all.length).toBe(i);
      await vi.advanceTimersByTimeAsync(backoff / 2 + 1);
      expect(FakeSocket.all.length).toBe(i + 1);
    }
    t.stop();
  });

  it('a socket closed before its hello because its session cannot be checked (1013) or has ended (4401) never says connected', async () => {
    const { t, handlers, statuses, socket } = setup('ok', true);
    t.subscribe('c1');
    t.start();
    socket().accept(); // the server checks the session before hello ...
    socket().finish(1013, 'cannot check the session right now; reconnect'); // ... and closes without one
    expect(socket().sent).toHaveLength(0);
    expect(statuses.map((s) => s.state)).not.toContain('connected');
    expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', detail: expect.stringMatching(/session/i) });
    expect(handlers.reconnected).not.toHaveBeenCalled(); // no reload of the conversations at every retry

    await vi.advanceTimersByTimeAsync(1000);
    socket().accept();
    socket().finish(4401, 'signed out');
    expect(statuses.map((s) => s.state)).not.toContain('connected');
    expect(handlers.unauthorized).toHaveBeenCalledTimes(1);
  });

  it('a socket is connected on its hello alone (the server sends it once the session is confirmed): no ping round trip first', () => {
    const { t, handlers, statuses, socket } = setup('ok', true);
    t.subscribe('c1');
    t.start();
    socket().accept();
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    socket().hello();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
    expect(socket().framesOf('ping')).toHaveLength(0);
    expect(socket().framesOf('subscribe')).toHaveLength(1);
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
  });

  it('backs off across repeated 1013 closes (the session cannot be checked) instead of reopening every quarter second', async () => {
    const { t, statuses, socket } = setup();
    t.start();
    // The server opens each socket, then closes it with 1013 while its store is down.
    for (let i = 1; i <= 4; i++) {
      socket().accept(); // no hello: the session was not confirmed
      socket().finish(1013, 'cannot check the session right now; reconnect');
      expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', detail: expect.stringMatching(/session/i) });
      const backoff = 2 ** (i - 1) * 1000; // doubling from 1 s, jittered down to half of it at most
      await vi.advanceTimersByTimeAsync(backoff / 2 - 1);
      expect(FakeSocket.all.length).toBe(i);
      await vi.advanceTimersByTimeAsync(backoff / 2 + 1);
      expect(FakeSocket.all.length).toBe(i + 1);
    }
    // A pong (the session checked, the link healthy) starts the count again.
    socket().open();
    socket().receive({ type: 'pong', id: 'p1', serverTime: 1 });
    socket().finish(1013);
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.all.length).toBe(6);
  });

  it('against an older server (hello sent before its session check, then 1013) the backoff still grows: only a pong ends the run of 1013 closes', async () => {
    const { t, handlers, socket } = setup();
    t.start();
    for (let i = 1; i <= 4; i++) {
      socket().accept();
      socket().olderHello(); // hello without session "confirmed" ...
      socket().finish(1013, 'cannot check the session right now; reconnect'); // ... then closed
      const backoff = 2 ** (i - 1) * 1000;
      await vi.advanceTimersByTimeAsync(backoff / 2 - 1);
      expect(FakeSocket.all.length).toBe(i);
      await vi.advanceTimersByTimeAsync(backoff / 2 + 1);
      expect(FakeSocket.all.length).toBe(i + 1);
    }
    expect(handlers.fallback).not.toHaveBeenCalled();
  });

  it('a hello without session "confirmed" (an older server, which checks the session after it) says connected only at the next frame, the pong of the ping it sends', () => {
    const { t, handlers, statuses, socket } = setup('ok', true);
    t.subscribe('c1');
    t.start();
    socket().accept();
    socket().olderHello(); // sent before the session check ...
    expect(statuses.map((s) => s.state)).not.toContain('connected');
    expect(socket().framesOf('ping')).toHaveLength(1);
    expect(socket().framesOf('subscribe')).toHaveLength(0);
    socket().finish(4401, 'signed out'); // ... which then failed
    expect(statuses.map((s) => s.state)).not.toContain('connected');
    expect(handlers.reconnected).not.toHaveBeenCalled();
    expect(handlers.unauthorized).toHaveBeenCalledTimes(1);

    // A session the older server confirms: its pong makes the socket connected.
    const again = setup('ok', true);
    again.t.subscribe('c1');
    again.t.start();
    again.socket().accept();
    again.socket().olderHello();
    // A frame to the user's sockets before the pong is no confirmation:
    // the older server may still close after it.
    again.socket().receive({ type: 'conversation', action: 'updated', conversation: { id: 'c2', title: 't' } } as never);
    expect(again.statuses.map((s) => s.state)).not.toContain('connected');
    const ping = again.socket().framesOf('ping')[0]!;
    again.socket().receive({ type: 'pong', id: ping.id, serverTime: 1 });
    expect(again.statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
    expect(again.socket().framesOf('subscribe')).toHaveLength(1);
    expect(again.handlers.reconnected).toHaveBeenCalledTimes(1);
  });

  it('a 1013 close for too many connections reconnects with backoff on the WebSocket and tells the user once', async () => {
    const { t, handlers, statuses, checkAuth, socket } = setup();
    t.start();
    for (let i = 1; i <= 6; i++) {
      // The server accepts the socket and closes it at once; the last close comes before the open event.
      if (i < 6) socket().accept();
      socket().finish(1013, 'too many connections');
      expect(statuses.at(-1)).toMatchObject({ state: 'reconnecting', kind: 'ws', detail: expect.stringMatching(/too many tabs or devices/i) });
      const backoff = Math.min(30_000, 2 ** (i - 1) * 1000);
      await vi.advanceTimersByTimeAsync(backoff / 2 - 1);
      expect(FakeSocket.all.length).toBe(i);
      await vi.advanceTimersByTimeAsync(backoff / 2 + 1);
      expect(FakeSocket.all.length).toBe(i + 1);
    }
    expect(handlers.notify).toHaveBeenCalledTimes(1);
    expect(handlers.notify).toHaveBeenCalledWith(expect.stringMatching(/too many tabs or devices.*keep trying/i));
    expect(handlers.fallback).not.toHaveBeenCalled();
    expect(checkAuth).not.toHaveBeenCalled();

    // A tab closed elsewhere: this socket stays (its pong proves it), and a later crowd is told again.
    socket().open();
    socket().receive({ type: 'pong', id: 'p1' });
    socket().finish(1013, 'too many connections');
    expect(handlers.notify).toHaveBeenCalledTimes(2);
    expect(handlers.fallback).not.toHaveBeenCalled();
  });

  it('sends the user to sign in on 4401 and does not reconnect', async () => {
    const { t, handlers, socket } = setup();
    t.start();
    socket().open();
    socket().finish(4401, 'signed out');
    expect(handlers.unauthorized).toHaveBeenCalledWith(undefined);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all.length).toBe(1);
  });

  it('says the account was deleted when the 4401 says so', async () => {
    const { t, handlers, socket } = setup();
    t.start();
    socket().open();
    socket().finish(4401, 'account deleted');
    expect(handlers.unauthorized).toHaveBeenCalledWith('accountDeleted');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all.length).toBe(1);
  });

  it.each([1008, 1009])('shows an error and stops on %i', async (code) => {
    const { t, statuses, socket } = setup();
    t.start();
    socket().open();
    socket().finish(code);
    expect(statuses.at(-1)?.state).toBe('offline');
    expect(statuses.at(-1)?.detail).toBeTruthy();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all.length).toBe(1);
  });

  it('asks for the fallback after sockets that never open while HTTP works', async () => {
    const { t, handlers, checkAuth, socket } = setup('ok');
    t.start();
    for (let i = 0; i < 3; i++) {
      socket().finish(1006);
      await vi.advanceTimersByTimeAsync(5000);
    }
    expect(checkAuth).toHaveBeenCalledTimes(3);
    expect(handlers.fallback).toHaveBeenCalledTimes(1);
  });

  it('a refused token before the upgrade means sign in, not fallback', async () => {
    const { t, handlers, socket } = setup('unauthorized');
    t.start();
    socket().finish(1006);
    await vi.advanceTimersByTimeAsync(10);
    expect(handlers.unauthorized).toHaveBeenCalled();
    expect(handlers.fallback).not.toHaveBeenCalled();
  });

  it('an unreachable server is offline and retried, never a fallback', async () => {
    const { t, handlers, statuses, socket } = setup('offline');
    t.start();
    for (let i = 0; i < 5; i++) {
      socket().finish(1006);
      await vi.advanceTimersByTimeAsync(40_000);
    }
    expect(statuses.some((s) => s.state === 'offline')).toBe(true);
    expect(handlers.fallback).not.toHaveBeenCalled();
    expect(FakeSocket.all.length).toBe(6);
  });

  it('an outage says offline once, then stays offline while the retries run, until connected', async () => {
    const { t, statuses, socket } = setup('offline', true);
    t.start();
    socket().finish(1006); // never opened: the server cannot be reached
    await vi.advanceTimersByTimeAsync(10);
    const first = statuses.length;
    expect(statuses.at(-1)).toEqual({ state: 'offline', kind: 'ws', detail: 'The server cannot be reached.' });
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(40_000); // the next attempt
      socket().finish(1006);
      await vi.advanceTimersByTimeAsync(10);
    }
    t.reconnectNow(); // the reader's Retry
    expect(FakeSocket.all.length).toBe(6);
    // Every status since is the same offline: nothing new to announce, and the Retry stays.
    expect(new Set(statuses.slice(first - 1).map((s) => JSON.stringify(s)))).toEqual(new Set([JSON.stringify(statuses[first - 1])]));
    socket().open();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
  });

  it('Retry while offline replaces an attempt that hangs unanswered (a dead route, a phone changing networks) with a new socket at once', async () => {
    const { t, statuses, checkAuth, socket } = setup('offline');
    t.start();
    socket().finish(1006); // the server cannot be reached
    await vi.advanceTimersByTimeAsync(10);
    expect(statuses.at(-1)?.state).toBe('offline');
    await vi.advanceTimersByTimeAsync(backoffMax(0)); // the next attempt ...
    expect(FakeSocket.all).toHaveLength(2);
    const hung = socket();
    hung.dead = true; // ... never answered, and never closed by the browser for minutes
    t.reconnectNow(); // the reader's Retry
    expect(FakeSocket.all).toHaveLength(3);
    expect(hung.readyState).toBe(2); // given up
    hung.finish(1006); // its close event, late: nothing follows
    await vi.advanceTimersByTimeAsync(0);
    expect(checkAuth).toHaveBeenCalledTimes(1);
    socket().open();
    expect(statuses.at(-1)).toEqual({ state: 'connected', kind: 'ws' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(3);
  });

  it('Retry leaves a socket open and awaiting its hello (the server checking the session) to the hello deadline', () => {
    const { t, socket } = setup();
    t.start();
    socket().accept();
    t.reconnectNow();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('a token check chatd answers not now (its 503: it cannot check the token) says its reason, never offline, and is retried on the WebSocket, never a fallback', async () => {
    const { t, handlers, statuses, socket } = setup({ unavailable: 'cannot check the token now; retry' });
    t.start();
    for (let i = 0; i < 5; i++) {
      socket().finish(1006);
      await vi.advanceTimersByTimeAsync(40_000);
    }
    expect(statuses.filter((s) => s.state === 'offline')).toEqual([]);
    // Each failed open says chatd's reason, which stays while the next attempt runs.
    expect(statuses.filter((s) => s.detail)).toEqual(Array(5).fill({ state: 'reconnecting', kind: 'ws', detail: 'Cannot check the token now.' }));
    expect(handlers.fallback).not.toHaveBeenCalled();
    expect(FakeSocket.all.length).toBe(6);
  });

  it('routes subscribe errors to the store', async () => {
    const { t, handlers, socket } = setup();
    t.start();
    socket().open();
    t.subscribe('c2');
    socket().receive({ type: 'error', id: socket().last().id, code: 'bad_seq', message: 'no' });
    await vi.advanceTimersByTimeAsync(0);
    expect(handlers.subscribeFailed).toHaveBeenCalledWith('c2', 'bad_seq', 'no');
  });

  const refusedError = { type: 'error', code: 'bad_seq', message: 'lastSeq 42 falls inside a character' };
  const refusedClose: [number, string] = [1001, 'resume cursor inside a character; reload'];
  it.each([
    ['the error, then the close 1001', true, refusedClose, refusedError.message],
    ['the close alone', false, refusedClose, refusedClose[1]],
    ['the error, then a cut without a close frame', true, [1006, ''] as [number, string], refusedError.message],
  ])('a resume point refused after its ack (a cluster: %s): reported bad_seq for each conversation resumed, not shown, and not subscribed again until its resubscribe', async (_, withError, [code, reason], said) => {
    const { t, handlers, socket } = setup();
    vi.mocked(handlers.resumePoint).mockImplementation((id: string) => (id === 'c1' ? { messageId: 'm1', lastSeq: 42 } : undefined));
    t.subscribe('c1');
    t.subscribe('c2'); // no answer streaming: not refused
    t.start();
    const first = socket();
    first.open();
    for (const f of first.framesOf('subscribe')) first.receive({ type: 'ack', id: f.id });
    if (withError) first.receive(refusedError);
    first.finish(code, reason);
    expect(vi.mocked(handlers.subscribeFailed).mock.calls).toEqual([['c1', 'bad_seq', said]]);
    expect(handlers.frame).not.toHaveBeenCalledWith(expect.objectContaining({ type: 'error' }));
    await vi.advanceTimersByTimeAsync(5000);
    const second = socket();
    expect(second).not.toBe(first);
    second.open();
    expect(second.framesOf('subscribe').map((f) => f.conversationId)).toEqual(['c2']); // c1 waits for its reload
    vi.mocked(handlers.resumePoint).mockImplementation((id: string) => (id === 'c1' ? { messageId: 'm1', lastSeq: 5 } : undefined));
    t.resubscribe('c1');
    expect(second.framesOf('subscribe').at(-1)).toMatchObject({ conversationId: 'c1', messageId: 'm1', lastSeq: 5 });
    t.stop();
  });

  it('asks again, with backoff, for a subscribe the server could not take now (unavailable, rate_limited), so a resumed answer does not stay streaming', async () => {
    const { t, handlers, socket } = setup();
    t.subscribe('c1');
    t.start();
    socket().open();
    const subscribes = () => socket().sent.filter((f) => f.type === 'subscribe');
    expect(subscribes()).toHaveLength(1);
    socket().receive({ type: 'error', id: socket().last().id, code: 'unavailable', message: 'the bus between instances is unavailable' });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(subscribes()).toHaveLength(2);
    expect(socket().last()).toMatchObject({ type: 'subscribe', conversationId: 'c1', messageId: 'm1', lastSeq: 42 });
    socket().receive({ type: 'error', id: socket().last().id, code: 'rate_limited', message: 'slow down' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(subscribes()).toHaveLength(3);
    socket().receive({ type: 'ack', id: socket().last().id });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(subscribes()).toHaveLength(3); // taken: nothing more
    expect(handlers.subscribeFailed).not.toHaveBeenCalled();

    // Refused again, then unsubscribed (another conversation opened): no retry for it.
    t.resubscribe('c1');
    socket().receive({ type: 'error', id: socket().last().id, code: 'unavailable', message: 'x' });
    t.unsubscribe('c1');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(subscribes()).toHaveLength(4);
  });
});
