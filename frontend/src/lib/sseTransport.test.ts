// SSETransport against a scripted fetch (a stand-in for the browser's fetch
// and its streaming bodies; the real server is exercised by e2e/).

import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ApiClient } from './api';
import { SSETransport, eventsPath } from './sseTransport';
import { TOO_MANY_CONNECTIONS_DETAIL, TOO_MANY_CONNECTIONS_NOTICE, requestOrder, type AuthCheck, type Resume, type TransportHandlers, type TransportStatus } from './transport';

/** Call is one request the transport made; the test answers it. */
class Call {
  body: ReadableStreamDefaultController<Uint8Array> | null = null;
  aborted = false;
  private resolve!: (r: Response) => void;
  private reject!: (e: unknown) => void;
  readonly response: Promise<Response>;

  constructor(
    readonly url: string,
    readonly init: RequestInit,
  ) {
    this.response = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    init.signal?.addEventListener('abort', () => {
      this.aborted = true;
      const e = new DOMException('aborted', 'AbortError');
      this.reject(e);
      try {
        this.body?.error(e);
      } catch {
        // already closed
      }
    });
  }

  header(name: string): string | undefined {
    return (this.init.headers as Record<string, string>)[name];
  }

  /** comment writes a comment line (the server's keep-alive). */
  comment(): void {
    this.body!.enqueue(new TextEncoder().encode(': keep-alive\n\n'));
  }

  /** stream answers 200 with an event stream the test writes to. */
  stream(): void {
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (this.body = c) });
    this.resolve(new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }));
  }

  /** error answers with a JSON error (its message the code unless given). */
  error(status: number, code: string, headers: Record<string, string> = {}, message = code): void {
    this.resolve(new Response(JSON.stringify({ error: { code, message } }), { status, headers: { 'Content-Type': 'application/json', ...headers } }));
  }

  fail(): void {
    this.reject(new TypeError('Failed to fetch'));
  }

  /** answer answers with r as it is (a proxy's page, say). */
  answer(r: Response): void {
    this.resolve(r);
  }

  frame(f: { type: string; seq?: number; [field: string]: unknown }): void {
    const id = f.seq !== undefined ? `id: ${f.seq}\n` : '';
    this.body!.enqueue(new TextEncoder().encode(`event: ${f.type}\n${id}data: ${JSON.stringify(f)}\n\n`));
  }

  end(): void {
    this.body!.close();
  }
}

function setup(opts: { verdict?: Awaited<ReturnType<AuthCheck>>; resume?: Resume; resumed?: boolean } = {}) {
  const calls: Call[] = [];
  const fetchImpl = vi.fn((input: RequestInfo | URL, init?: RequestInit) => {
    const c = new Call(String(input), init ?? {});
    calls.push(c);
    return c.response;
  });
  const onUnauthorized = vi.fn();
  const api = new ApiClient({ token: () => 'tok', onUnauthorized, fetch: fetchImpl as typeof fetch });
  const statuses: TransportStatus[] = [];
  const frames: Array<Record<string, unknown>> = [];
  const handlers: TransportHandlers & Record<string, ReturnType<typeof vi.fn>> = {
    frame: vi.fn((f) => frames.push(f as unknown as Record<string, unknown>)),
    status: vi.fn((s: TransportStatus) => statuses.push(s)),
    reconnected: vi.fn(),
    unauthorized: vi.fn(),
    fallback: vi.fn(),
    resumePoint: vi.fn(() => opts.resume),
    subscribeFailed: vi.fn(),
    subscribed: vi.fn(),
    notify: vi.fn(),
  };
  const checkAuth = vi.fn(async () => opts.verdict ?? 'ok');
  const t = new SSETransport(api, handlers, { checkAuth, overlapMs: 500, stableAfterMs: 10000, resumed: opts.resumed });
  const events = () => calls.filter((c) => c.url.startsWith('/api/events'));
  return { t, calls, events, last: () => events().at(-1)!, handlers, statuses, frames, checkAuth, onUnauthorized };
}

const delta = (seq: number, text: string) => ({ type: 'delta', conversationId: 'c1', messageId: 'm1', seq, text });

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
});
afterEach(() => vi.useRealTimers());

/** settle lets fetch promises and stream reads run (no time passes). */
const settle = () => vi.advanceTimersByTimeAsync(0);

/** openStream starts the transport on conversation c1 and opens its event stream. */
async function openStream(t: { start(): void; subscribe(id: string): void }, last: () => { stream(): void }) {
  t.start();
  t.subscribe('c1');
  await settle();
  last().stream();
  await settle();
}

describe('eventsPath', () => {
  it('names the conversation and the resume point', () => {
    expect(eventsPath(null)).toBe('/api/events');
    expect(eventsPath('c1')).toBe('/api/events?conversationId=c1');
    expect(eventsPath('c1', { messageId: 'm1', lastSeq: 42 })).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=42');
    expect(eventsPath('c1', { messageId: 'm1', lastSeq: 0, lastReasoningSeq: 111 })).toBe(
      '/api/events?conversationId=c1&messageId=m1&lastSeq=0&lastReasoningSeq=111',
    );
  });
});

describe('SSETransport', () => {
  it("a wake reopens a stream silent for longer than the server's keep-alives, as after a cut, and leaves a live one", async () => {
    const { t, events, last, statuses, handlers } = setup({ resume: { messageId: 'm1', lastSeq: 5 } });
    await openStream(t, last);
    await vi.advanceTimersByTimeAsync(15_000);
    last().comment(); // a keep-alive: the stream is alive
    await settle();
    await vi.advanceTimersByTimeAsync(5_000);
    t.checkNow();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events()).toHaveLength(1);
    expect(last().aborted).toBe(false);

    // The laptop slept: nothing came for minutes, and the dead stream does not end by itself.
    vi.setSystemTime(Date.now() + 5 * 60_000);
    t.checkNow();
    await settle();
    expect(last().aborted).toBe(true);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(300);
    expect(events()).toHaveLength(2);
    expect(last().url).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=5');
    last().stream();
    await settle();
    expect(statuses.at(-1)?.state).toBe('connected');
    expect(handlers.reconnected).toHaveBeenCalledTimes(1); // frames were missed: reload
    t.stop();
  });

  it("times a stream's silence by the monotonic clock: a step of the wall clock neither hides a dead stream nor cuts a live one", async () => {
    // The wall clock set back 10 minutes: the silence still counts from the last keep-alive.
    const back = setup();
    await openStream(back.t, back.last);
    await vi.advanceTimersByTimeAsync(15_000);
    back.last().comment();
    await settle();
    vi.setSystemTime(Date.now() - 10 * 60_000);
    await vi.advanceTimersByTimeAsync(25_000);
    back.t.checkNow(); // a wake 25 s into the silence: dead
    await settle();
    expect(back.last().aborted).toBe(true);
    back.t.stop();

    const watched = setup();
    await openStream(watched.t, watched.last);
    await vi.advanceTimersByTimeAsync(15_000);
    watched.last().comment();
    await settle();
    vi.setSystemTime(Date.now() - 10 * 60_000);
    await vi.advanceTimersByTimeAsync(34_999);
    expect(watched.last().aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1); // the watchdog: 35 s of silence
    expect(watched.last().aborted).toBe(true);
    watched.t.stop();

    // The wall clock set forward 10 minutes: a stream whose keep-alives come stays.
    const ahead = setup();
    await openStream(ahead.t, ahead.last);
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(15_000);
      ahead.last().comment();
      await settle();
      vi.setSystemTime(Date.now() + 10 * 60_000);
    }
    await vi.advanceTimersByTimeAsync(15_000);
    expect(ahead.events()).toHaveLength(1);
    expect(ahead.last().aborted).toBe(false);
    ahead.t.stop();
  });

  it('an open stream that missed two keep-alives is cut and opened again, resuming, as after any cut', async () => {
    const { t, events, last, statuses, handlers } = setup({ resume: { messageId: 'm1', lastSeq: 5 } });
    await openStream(t, last);
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(15_000);
      last().comment(); // the server's keep-alives: alive
      await settle();
    }
    expect(events()).toHaveLength(1);
    // A half-open connection: nothing more comes, and the read never ends by itself.
    await vi.advanceTimersByTimeAsync(34_999);
    expect(last().aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(last().aborted).toBe(true);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(300);
    expect(events()).toHaveLength(2);
    expect(last().url).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=5');
    last().stream();
    await settle();
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
    t.stop();
  });

  it('a wake while the token is checked after a cut reopens at once, once', async () => {
    const { t, events, last, checkAuth } = setup();
    let answer: (v: 'ok') => void = () => undefined;
    checkAuth.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    t.start();
    await settle();
    last().stream();
    await settle();
    last().end(); // the stream ends: the token is being checked
    await settle();
    expect(checkAuth).toHaveBeenCalledTimes(1);
    t.checkNow();
    await settle();
    expect(events()).toHaveLength(2);
    answer('ok');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(events()).toHaveLength(2);
    t.stop();
  });

  it("a wake reopens at once a stream waiting out the client's backoff, never a pause the server asked for (429)", async () => {
    const { t, events, last } = setup();
    t.start();
    await settle();
    for (let i = 0; i < 5; i++) {
      last().fail(); // the network is down
      await settle();
      await vi.advanceTimersByTimeAsync(15_000);
    }
    last().fail();
    await settle();
    const n = events().length;
    t.checkNow();
    await settle();
    expect(events()).toHaveLength(n + 1);

    last().error(429, 'rate_limited', { 'Retry-After': '30' });
    await settle();
    t.checkNow();
    await vi.advanceTimersByTimeAsync(29_000);
    expect(events()).toHaveLength(n + 1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(events()).toHaveLength(n + 2);
    t.stop();
  });

  it('opens one event stream for the followed conversation, with the token and the resume point', async () => {
    const { t, events, last, statuses, frames } = setup({ resume: { messageId: 'm1', lastSeq: 5 } });
    t.start();
    t.subscribe('c1');
    await settle();
    expect(events()).toHaveLength(1);
    expect(last().url).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=5');
    expect(last().header('Authorization')).toBe('Bearer tok');
    expect(last().header('Accept')).toBe('text/event-stream');
    expect(statuses.at(-1)?.state).toBe('connecting');
    last().stream();
    await settle();
    expect(statuses.at(-1)).toMatchObject({ state: 'connected', kind: 'sse' });
    last().frame(delta(11, ' world'));
    last().frame({ type: 'conversation', action: 'updated', conversation: { id: 'c1', title: 'T' } } as never);
    await settle();
    expect(frames.map((f) => f.type)).toEqual(['delta', 'conversation']);
    t.stop();
  });

  it('resumed (a restart with a new token): the first stream resumes and is reported as a reconnect', async () => {
    const { t, last, statuses, handlers } = setup({ resume: { messageId: 'm1', lastSeq: 5 }, resumed: true });
    t.start();
    t.subscribe('c1');
    await settle();
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    expect(last().url).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=5');
    last().stream();
    await settle();
    expect(statuses.at(-1)).toMatchObject({ state: 'connected', kind: 'sse' });
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
    t.stop();
  });

  it('a switch opens one new stream and closes the old one only after the new one is open', async () => {
    const { t, events, frames } = setup();
    t.start();
    t.subscribe('c1');
    await settle();
    const first = events()[0]!;
    first.stream();
    await settle();

    t.unsubscribe('c1');
    t.subscribe('c2');
    await settle();
    expect(events().map((c) => c.url)).toEqual(['/api/events?conversationId=c1', '/api/events?conversationId=c2']);
    const second = events()[1]!;
    first.frame({ type: 'conversation', action: 'deleted', conversation: { id: 'x' } } as never); // still read
    await settle();
    expect(first.aborted).toBe(false);
    second.stream();
    await settle();
    expect(first.aborted).toBe(false); // read a little longer: nothing falls between the two
    await vi.advanceTimersByTimeAsync(500);
    expect(first.aborted).toBe(true);
    expect(second.aborted).toBe(false);
    expect(frames).toHaveLength(1);

    t.unsubscribe('c2'); // the user's frames keep coming without a conversation
    await settle();
    expect(events().at(-1)!.url).toBe('/api/events');
    t.stop();
    expect(events().every((c) => c.aborted)).toBe(true);
  });

  it('a stream that has not opened yet is given up for the next one', async () => {
    const { t, events } = setup();
    t.start();
    t.subscribe('c1');
    await settle();
    t.subscribe('c2');
    await settle();
    expect(events()[0]!.aborted).toBe(true);
    expect(events()[1]!.url).toBe('/api/events?conversationId=c2');
    t.stop();
  });

  it('when the server ends the stream it checks the token, then reopens with backoff and resumes', async () => {
    const resume = { messageId: 'm1', lastSeq: 0 };
    const { t, events, last, handlers, statuses, checkAuth } = setup({ resume });
    await openStream(t, last);
    resume.lastSeq = 17;
    last().end(); // shutdown or a full queue
    await settle();
    expect(checkAuth).toHaveBeenCalledTimes(1);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    expect(events()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(250);
    expect(events()).toHaveLength(2);
    expect(last().url).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=17');
    last().stream();
    await settle();
    expect(statuses.at(-1)?.state).toBe('connected');
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
    t.stop();
  });

  it('after a logout (the stream ends, /api/auth/me says 401) it asks for sign-in and stops', async () => {
    const { t, events, last, handlers } = setup({ verdict: 'unauthorized' });
    t.start();
    await settle();
    last().stream();
    await settle();
    last().end();
    await settle();
    expect(handlers.unauthorized).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(60000);
    expect(events()).toHaveLength(1);
    t.stop();
  });

  it.each([
    ['account deleted', 'accountDeleted'],
    ['signed out', undefined],
  ])('a stream the server ends with closed 4401 "%s" asks for sign-in at once, saying why, and stops', async (reason, ended) => {
    const { t, events, last, handlers, frames, checkAuth } = setup();
    t.start();
    await settle();
    last().stream();
    await settle();
    last().frame({ type: 'closed', closeCode: 4401, reason });
    last().end();
    await settle();
    expect(handlers.unauthorized).toHaveBeenCalledTimes(1);
    expect(handlers.unauthorized).toHaveBeenCalledWith(ended);
    expect(checkAuth).not.toHaveBeenCalled();
    expect(frames).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(60000);
    expect(events()).toHaveLength(1);
    t.stop();
  });

  it('a stream the server ends with closed 1001 (a shutdown, a rolling restart) is opened again, spread over 3 s, its token not checked', async () => {
    const rand = vi.spyOn(Math, 'random');
    onTestFinished(() => rand.mockRestore()); // also when an assertion fails: the file's later tests draw their own
    // [the random draw, when the reopen comes]: every tab closed at once comes back across the window, not within 250 ms.
    for (const [r, at] of [
      [0, 125], // never sooner than the backoff
      [0.5, 1500],
      [1, 3000],
    ] as const) {
      rand.mockReturnValue(r);
      const { t, events, last, handlers, statuses, frames, checkAuth } = setup();
      onTestFinished(() => t.stop());
      t.start();
      await settle();
      last().stream();
      await settle();
      last().frame({ type: 'closed', closeCode: 1001, reason: 'server shutting down' });
      last().end();
      await settle();
      expect(checkAuth).not.toHaveBeenCalled(); // the close says nothing of the token
      expect(handlers.unauthorized).not.toHaveBeenCalled();
      expect(frames).toHaveLength(0);
      expect(statuses.at(-1)?.state).toBe('reconnecting');
      await vi.advanceTimersByTimeAsync(at - 1);
      expect(events()).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(events()).toHaveLength(2);
      t.stop();
    }
    rand.mockRestore();
  });

  it('streams the server ends at once with closed 4408 (a resume that never fits its queue) are opened again with a growing backoff of their own, as a WebSocket closed so: no token check, never offline', async () => {
    const resume = { messageId: 'm1', lastSeq: 0 };
    const { t, events, last, statuses, checkAuth, handlers } = setup({ resume });
    onTestFinished(() => t.stop());
    await openStream(t, last);
    for (let i = 1; i <= 5; i++) {
      last().frame({ type: 'closed', closeCode: 4408, reason: 'too slow: send queue full; reconnect and resume' });
      last().end();
      await settle();
      const backoff = 2 ** (i - 1) * 250; // doubling from 250 ms, jittered down to half of it at most
      await vi.advanceTimersByTimeAsync(backoff / 2 - 1);
      expect(events()).toHaveLength(i);
      await vi.advanceTimersByTimeAsync(backoff / 2 + 1);
      expect(events()).toHaveLength(i + 1);
      last().stream();
      await settle();
    }
    expect(checkAuth).not.toHaveBeenCalled(); // a full queue says nothing of the token
    expect(statuses.filter((s) => s.state === 'offline')).toEqual([]);
    expect(handlers.reconnected).toHaveBeenCalledTimes(5); // each reopen catches up
    last().end(); // a cut after them: its own count, from the start
    await settle();
    expect(checkAuth).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(250);
    expect(events()).toHaveLength(7);
  });

  it('a 401 on opening is left to the API client', async () => {
    const { t, events, last, onUnauthorized } = setup();
    t.start();
    await settle();
    last().error(401, 'unauthorized');
    await settle();
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(60000);
    expect(events()).toHaveLength(1);
    t.stop();
  });

  it('a deleted conversation is reported and the stream reopens without it', async () => {
    const { t, events, last, handlers } = setup();
    t.start();
    t.subscribe('c1');
    await settle();
    last().error(404, 'not_found');
    await settle();
    expect(handlers.subscribeFailed).toHaveBeenCalledWith('c1', 'not_found', 'not_found');
    await settle();
    expect(events().map((c) => c.url)).toEqual(['/api/events?conversationId=c1', '/api/events']);
    t.stop();
  });

  it('a stream following a conversation reports it subscribed once the server answers 200, before any event; a refused one or one following none does not', async () => {
    const { t, last, handlers } = setup();
    t.start();
    await settle();
    last().stream(); // the user's stream, following no conversation
    await settle();
    expect(handlers.subscribed).not.toHaveBeenCalled();
    t.subscribe('c1');
    await settle();
    expect(handlers.subscribed).not.toHaveBeenCalled(); // still connecting
    last().error(400, 'invalid_field');
    await settle();
    expect(handlers.subscribeFailed).toHaveBeenCalledWith('c1', 'invalid_field', 'invalid_field');
    expect(handlers.subscribed).not.toHaveBeenCalled();
    t.subscribe('c1'); // a retry
    await settle();
    last().stream();
    await settle();
    expect(handlers.subscribed).toHaveBeenCalledExactlyOnceWith('c1', expect.any(Number));
    t.stop();
  });

  it('a subscribe is reported asked for when the caller made it, before the loads the caller makes right after, as a WebSocket writes its frame at once', async () => {
    const { t, last, handlers } = setup();
    t.start();
    await settle();
    last().stream();
    await settle();
    t.subscribe('c1');
    const loadAt = requestOrder(); // the caller's load, made after its subscribe
    await settle();
    last().stream();
    await settle();
    const subscribed = vi.mocked(handlers.subscribed!);
    expect(subscribed).toHaveBeenCalledOnce();
    const [, askedAt] = subscribed.mock.calls[0]!;
    expect(askedAt).toBeLessThan(loadAt);

    last().end(); // a cut: the stream opened again after a backoff is asked for then
    await vi.advanceTimersByTimeAsync(1000);
    const before = requestOrder();
    last().stream();
    await settle();
    expect(subscribed).toHaveBeenCalledTimes(2);
    expect(subscribed.mock.calls[1]![1]).toBeLessThan(before);
    expect(subscribed.mock.calls[1]![1]).toBeGreaterThan(loadAt);
    t.stop();
  });

  it('a conversation whose stream was refused is asked for again after a cut, as a WebSocket subscribes again on reconnect; leaving it ends that', async () => {
    const { t, events, last, handlers } = setup();
    t.start();
    t.subscribe('c1');
    await settle();
    last().error(400, 'invalid_field');
    await settle();
    expect(last().url).toBe('/api/events'); // the user's frames keep coming
    last().stream();
    await settle();
    last().end(); // a cut
    await vi.advanceTimersByTimeAsync(250);
    expect(last().url).toBe('/api/events?conversationId=c1');
    last().stream();
    await settle();
    expect(handlers.subscribed).toHaveBeenCalledExactlyOnceWith('c1', expect.any(Number));

    // Refused again, then left: a cut no longer asks for it.
    t.resubscribe('c1');
    await settle();
    last().error(400, 'invalid_field');
    await settle();
    last().stream();
    await settle();
    t.unsubscribe('c1');
    await settle();
    last().end();
    await vi.advanceTimersByTimeAsync(1000);
    expect(last().url).toBe('/api/events');
    expect(events().filter((c) => c.url.includes('c1'))).toHaveLength(3);
    t.stop();
  });

  it('a refused resume point (bad_seq) is reported and the conversation followed from the start of its answer', async () => {
    const { t, events, last, handlers } = setup({ resume: { messageId: 'm1', lastSeq: 99 } });
    t.start();
    t.subscribe('c1');
    await settle();
    last().error(400, 'bad_seq');
    await settle();
    expect(handlers.subscribeFailed).toHaveBeenCalledWith('c1', 'bad_seq', 'bad_seq');
    expect(events().map((c) => c.url)).toEqual([
      '/api/events?conversationId=c1&messageId=m1&lastSeq=99',
      '/api/events?conversationId=c1',
    ]);
    t.stop();
  });

  const refusedError = { type: 'error', code: 'bad_seq', message: 'lastSeq 11 is outside the answer (5 bytes)' };
  const refusedClose = { type: 'closed', closeCode: 1001, reason: 'resume cursor inside a character; reload' };
  it.each([
    ['the error, then the close', [refusedError, refusedClose], refusedError.message],
    ['the close alone', [refusedClose], refusedClose.reason],
    ['the error alone (the stream cut before its close)', [refusedError], refusedError.message],
  ])('a resume point refused after the 200 (a cluster: %s) is reported, not shown, and the reopen carries no cursor', async (_, sent, said) => {
    const { t, events, last, handlers, frames } = setup({ resume: { messageId: 'm1', lastSeq: 11 } });
    await openStream(t, last);
    for (const f of sent) last().frame(f);
    last().end();
    await settle();
    expect(handlers.subscribeFailed).toHaveBeenCalledWith('c1', 'bad_seq', said);
    expect(frames).toEqual([]); // no error for the user: the thread reloads
    await vi.advanceTimersByTimeAsync(3000);
    expect(events().map((c) => c.url)).toEqual(['/api/events?conversationId=c1&messageId=m1&lastSeq=11', '/api/events?conversationId=c1']);
    t.stop();
  });

  it('network failures back off, go offline, and reconnectNow retries at once', async () => {
    const { t, events, last, statuses } = setup();
    t.start();
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(i === 0 ? 0 : 2000);
      expect(events()).toHaveLength(i + 1);
      last().fail();
      await settle();
    }
    expect(statuses.at(-1)?.state).toBe('offline');
    t.reconnectNow();
    expect(events()).toHaveLength(5);
    last().stream();
    await settle();
    expect(statuses.at(-1)?.state).toBe('connected');
    t.stop();
  });

  it('offline stays offline through a Retry and a wake that fail (no "Reconnecting…" again), until a stream opens', async () => {
    const { t, events, last, statuses } = setup();
    t.start();
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(i === 0 ? 0 : 2000);
      last().fail();
      await settle();
    }
    const from = statuses.length - 1;
    expect(statuses[from]?.state).toBe('offline');
    t.reconnectNow(); // the reader's Retry
    last().fail();
    await settle();
    t.checkNow(); // a wake
    last().fail();
    await settle();
    expect(events()).toHaveLength(6);
    expect(statuses.slice(from).map((s) => s.state)).toEqual(['offline', 'offline', 'offline']);
    t.reconnectNow();
    last().stream();
    await settle();
    expect(statuses.at(-1)?.state).toBe('connected');
    t.stop();
  });

  it('Retry while offline replaces a request whose headers never come (a dead route, a phone changing networks) with a new one at once', async () => {
    const { t, events, last, statuses } = setup();
    t.start();
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(i === 0 ? 0 : 2000);
      last().fail();
      await settle();
    }
    expect(statuses.at(-1)?.state).toBe('offline');
    await vi.advanceTimersByTimeAsync(15_000); // the next attempt: never answered
    expect(events()).toHaveLength(5);
    const hung = last();
    t.reconnectNow(); // the reader's Retry
    await settle();
    expect(hung.aborted).toBe(true);
    expect(events()).toHaveLength(6);
    last().stream();
    await settle();
    expect(statuses.at(-1)?.state).toBe('connected');
    t.reconnectNow(); // an open stream is kept
    await settle();
    expect(events()).toHaveLength(6);
    expect(last().aborted).toBe(false);
    t.stop();
  });

  it('a request whose headers do not come within 45 s (as a WebSocket its hello) is given up and asked again with backoff', async () => {
    const { t, events, last, statuses } = setup();
    t.start();
    await settle();
    const hung = last();
    await vi.advanceTimersByTimeAsync(44_999); // the server may take 30 s to check the session
    expect(hung.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(hung.aborted).toBe(true);
    expect(statuses.at(-1)?.state).toBe('reconnecting');
    expect(events()).toHaveLength(1); // not at once: the backoff first
    await vi.advanceTimersByTimeAsync(250);
    expect(events()).toHaveLength(2);
    const slow = last();
    await vi.advanceTimersByTimeAsync(10_000);
    slow.stream(); // its headers in time
    await settle();
    await vi.advanceTimersByTimeAsync(20_000);
    slow.comment();
    await vi.advanceTimersByTimeAsync(20_000); // past 45 s since the request: an open stream is the watchdog's
    expect(slow.aborted).toBe(false);
    expect(events()).toHaveLength(2);
    t.stop();
  });

  it('chatd answering not now (its 503 unavailable, at the stream or at the token check after one ended) says its reason, never offline, and is retried', async () => {
    const { t, events, last, statuses } = setup({ verdict: { unavailable: 'cannot check the token now; retry' } });
    t.start();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(i === 0 ? 0 : 20_000);
      expect(events()).toHaveLength(i + 1);
      last().error(503, 'unavailable', { 'Retry-After': '1' }, 'the server is shutting down; retry');
      await settle();
    }
    expect(statuses.filter((s) => s.state === 'offline')).toEqual([]);
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'sse', detail: 'The server is shutting down.' });
    await vi.advanceTimersByTimeAsync(20_000);
    last().stream();
    await settle();
    last().end(); // ended: the token check answers not now
    await settle();
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'sse', detail: 'Cannot check the token now.' });
    t.stop();
  });

  it('a proxy\'s 503 (no chatd body) counts as a cut: offline after three', async () => {
    const { t, events, last, statuses } = setup();
    t.start();
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(i === 0 ? 0 : 20_000);
      expect(events()).toHaveLength(i + 1);
      last().answer(new Response('<html>503</html>', { status: 503 }));
      await settle();
    }
    expect(statuses.at(-1)?.state).toBe('offline');
    t.stop();
  });

  it('rate limiting waits for Retry-After', async () => {
    const { t, events, last } = setup();
    t.start();
    await settle();
    last().error(429, 'rate_limited', { 'Retry-After': '7' });
    await settle();
    await vi.advanceTimersByTimeAsync(6900);
    expect(events()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(events()).toHaveLength(2);
    t.stop();
  });

  it('too many open connections (its 429) is said as the WebSocket says its 1013: the detail, and the notice once until a stream opens', async () => {
    const { t, events, last, handlers, statuses } = setup();
    t.start();
    await settle();
    last().error(429, 'rate_limited', { 'Retry-After': '10' }, 'too many open connections for this user'); // transport/sse/stream.go
    await settle();
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'sse', detail: TOO_MANY_CONNECTIONS_DETAIL });
    expect(vi.mocked(handlers.notify).mock.calls).toEqual([[TOO_MANY_CONNECTIONS_NOTICE]]);
    await vi.advanceTimersByTimeAsync(9_999); // never before Retry-After
    expect(events()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5_001); // jittered up to half as long again
    expect(events()).toHaveLength(2);
    last().error(429, 'rate_limited', { 'Retry-After': '10' }, 'too many open connections for this user');
    await settle();
    expect(handlers.notify).toHaveBeenCalledTimes(1); // once, not at each retry
    await vi.advanceTimersByTimeAsync(15_000);
    last().error(429, 'rate_limited', { 'Retry-After': '10' }, 'too many frames; slow down'); // another limit: its own words
    await settle();
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'sse', detail: 'Too many frames; slow down.' });
    expect(handlers.notify).toHaveBeenCalledTimes(1);
    t.stop();
  });

  it('a switch refused for too many open connections closes the old stream and asks again at once in the slot it freed, with no notice, and catches up once it opens', async () => {
    const { t, events, handlers, statuses } = setup();
    t.start();
    t.subscribe('c1');
    await settle();
    const first = events()[0]!;
    first.stream();
    await settle();

    t.unsubscribe('c1');
    t.subscribe('c2');
    await settle();
    const second = events()[1]!;
    expect(second.url).toBe('/api/events?conversationId=c2');
    const from = statuses.length;
    second.error(429, 'rate_limited', { 'Retry-After': '10' }, 'too many open connections for this user'); // the old stream holds the last slot
    await settle();
    expect(first.aborted).toBe(true); // its slot freed for the retry
    await vi.advanceTimersByTimeAsync(250); // not Retry-After: the slot is this tab's own
    expect(events()).toHaveLength(3);
    expect(handlers.notify).not.toHaveBeenCalled(); // not too many tabs
    expect(statuses.slice(from).map((s) => s.state)).toEqual([]); // no "Reconnecting…" for a switch
    const third = events()[2]!;
    expect(third.url).toBe('/api/events?conversationId=c2');
    third.stream();
    await settle();
    expect(statuses.at(-1)).toMatchObject({ state: 'connected', kind: 'sse' });
    expect(handlers.subscribed).toHaveBeenLastCalledWith('c2', expect.any(Number));
    expect(handlers.reconnected).toHaveBeenCalledTimes(1); // what the old stream would have carried is loaded again
    expect(third.aborted).toBe(false);
    t.stop();
  });

  it('a switch refused again after its old stream was closed is real crowding: the notice, and Retry-After with jitter; a stream that opens allows the quick retry again', async () => {
    const rand = vi.spyOn(Math, 'random').mockReturnValue(1);
    onTestFinished(() => rand.mockRestore());
    const { t, events, handlers, statuses } = setup();
    onTestFinished(() => t.stop());
    t.start();
    t.subscribe('c1');
    await settle();
    events()[0]!.stream();
    await settle();
    t.unsubscribe('c1');
    t.subscribe('c2');
    await settle();
    const crowded = () => events().at(-1)!.error(429, 'rate_limited', { 'Retry-After': '10' }, 'too many open connections for this user');
    crowded();
    await settle();
    await vi.advanceTimersByTimeAsync(250);
    expect(events()).toHaveLength(3);
    crowded(); // another tab took the slot: the user does have too many
    await settle();
    expect(vi.mocked(handlers.notify).mock.calls).toEqual([[TOO_MANY_CONNECTIONS_NOTICE]]);
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', kind: 'sse', detail: TOO_MANY_CONNECTIONS_DETAIL });
    await vi.advanceTimersByTimeAsync(14_999); // Retry-After, and half of it again at the most
    expect(events()).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(events()).toHaveLength(4);
    events().at(-1)!.stream();
    await settle();
    expect(statuses.at(-1)).toMatchObject({ state: 'connected', kind: 'sse' });
    t.unsubscribe('c2');
    t.subscribe('c1'); // a stream that opened allows one quick retry again
    await settle();
    crowded();
    await settle();
    await vi.advanceTimersByTimeAsync(250);
    expect(events()).toHaveLength(6);
    expect(handlers.notify).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['account deleted', 'accountDeleted'],
    ['signed out', undefined],
  ])('a closed 4401 "%s" on the stream a switch is replacing asks for sign-in at once, saying why, and closes the new stream', async (reason, ended) => {
    const { t, events, handlers, checkAuth } = setup();
    onTestFinished(() => t.stop());
    t.start();
    t.subscribe('c1');
    await settle();
    const first = events()[0]!;
    first.stream();
    await settle();
    t.unsubscribe('c1');
    t.subscribe('c2');
    await settle();
    const second = events()[1]!;
    second.stream(); // registered before the logout: its own closed may come, or not
    await settle();
    first.frame({ type: 'closed', closeCode: 4401, reason }); // within the overlap
    first.end();
    await settle();
    expect(handlers.unauthorized).toHaveBeenCalledTimes(1);
    expect(handlers.unauthorized).toHaveBeenCalledWith(ended);
    expect(checkAuth).not.toHaveBeenCalled();
    expect(second.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(events()).toHaveLength(2);
    expect(handlers.unauthorized).toHaveBeenCalledTimes(1);
  });

  it('drop cuts the stream and the posts; the stream comes back resuming', async () => {
    const { t, calls, events, last, handlers } = setup({ resume: { messageId: 'm1', lastSeq: 8 } });
    await openStream(t, last);
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    await settle();
    const post = calls.find((c) => c.url.endsWith('/messages'))!;
    post.stream();
    post.frame({ type: 'ack', conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' } as never);
    await expect(sent).resolves.toEqual({ conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' });
    t.drop();
    await settle();
    expect(post.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(250);
    expect(events()).toHaveLength(2);
    expect(last().url).toBe('/api/events?conversationId=c1&messageId=m1&lastSeq=8');
    last().stream();
    await settle();
    expect(handlers.reconnected).toHaveBeenCalledTimes(1);
    t.stop();
  });

  it('a send whose ack names the model it replaced resolves with it', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    await settle();
    const post = calls.find((c) => c.url === '/api/conversations/c1/messages')!;
    post.stream();
    post.frame({ type: 'ack', conversationId: 'c1', userMessageId: 'u1', messageId: 'm1', replacedModel: 'gone', model: 'm' } as never);
    post.end();
    await expect(sent).resolves.toEqual({ conversationId: 'c1', userMessageId: 'u1', messageId: 'm1', replacedModel: 'gone', model: 'm' });
    t.stop();
  });

  it('a send posts with Accept: text/event-stream, hands its frames over and rejects on an error frame', async () => {
    const { t, calls, frames } = setup();
    t.start();
    await settle();
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k', parentMessageId: '' });
    await settle();
    const post = calls.find((c) => c.url === '/api/conversations/c1/messages')!;
    expect(post.init.method).toBe('POST');
    expect(post.header('Accept')).toBe('text/event-stream');
    expect(JSON.parse(String(post.init.body))).toEqual({ content: 'hi', clientMessageId: 'k', parentMessageId: '' });
    post.stream();
    post.frame({ type: 'ack', conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' } as never);
    post.frame(delta(3, 'abc'));
    post.end();
    await expect(sent).resolves.toMatchObject({ messageId: 'm1' });
    await settle();
    expect(frames.map((f) => f.type)).toEqual(['ack', 'delta']);

    const refused = t.regenerate({ conversationId: 'c1', clientMessageId: 'r' });
    await settle();
    const again = calls.find((c) => c.url === '/api/conversations/c1/regenerate')!;
    expect(JSON.parse(String(again.init.body))).toEqual({ clientMessageId: 'r' });
    again.stream();
    again.frame({ type: 'error', code: 'generation_running', message: 'busy' } as never);
    again.end();
    await expect(refused).rejects.toMatchObject({ code: 'generation_running' });
    t.stop();
  });

  it('a regenerate an instance of the version before refuses for its key (unknown field) is asked again without it; any other refusal is not', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const posts = () => calls.filter((c) => c.url === '/api/conversations/c1/regenerate');
    const regen = t.regenerate({ conversationId: 'c1', clientMessageId: 'r1', model: 'm' });
    await settle();
    posts()[0]!.error(400, 'bad_request', {}, 'unknown field "clientMessageId"');
    await settle();
    expect(posts()).toHaveLength(2);
    expect(JSON.parse(String(posts()[1]!.init.body))).toEqual({ model: 'm' });
    posts()[1]!.stream();
    posts()[1]!.frame({ type: 'ack', conversationId: 'c1', messageId: 'm2' } as never);
    posts()[1]!.end();
    await expect(regen).resolves.toMatchObject({ messageId: 'm2' });

    const other = t.regenerate({ conversationId: 'c1', clientMessageId: 'r2' });
    await settle();
    posts()[2]!.error(400, 'bad_request', {}, 'unknown field "model"');
    await expect(other).rejects.toMatchObject({ code: 'bad_request' });
    expect(posts()).toHaveLength(3);
    t.stop();
  });

  it('a send without its ack in time (a half-open connection) fails as a lost connection, so it is queued and repeated; an acked one streams on', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const posts = () => calls.filter((c) => c.url === '/api/conversations/c1/messages');

    // Given up past the server's own bound (CHATD_REQUEST_TIMEOUT, 30 s by default) and a margin: 45 s.
    const hung = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    const hungFails = expect(hung).rejects.toMatchObject({ status: 0, code: 'timeout' });
    await vi.advanceTimersByTimeAsync(44_999);
    expect(posts()[0]!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await hungFails;
    expect(posts()[0]!.aborted).toBe(true);

    const silent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    const silentFails = expect(silent).rejects.toMatchObject({ code: 'timeout' });
    await settle();
    posts()[1]!.stream(); // headers, then nothing
    await vi.advanceTimersByTimeAsync(45_000);
    await silentFails;

    const acked = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    await settle();
    posts()[2]!.stream();
    await vi.advanceTimersByTimeAsync(25_000); // a slow store, within the server's bound
    expect(posts()[2]!.aborted).toBe(false);
    posts()[2]!.frame({ type: 'ack', conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' } as never);
    await expect(acked).resolves.toMatchObject({ messageId: 'm1' });
    await vi.advanceTimersByTimeAsync(60_000); // a long answer
    expect(posts()[2]!.aborted).toBe(false);
    t.stop();
  });

  it('a send or cancel waiting for its answer while the event stream misses two keep-alives fails then as lost with the connection, not 45 s later; over a live stream a slow ack is waited for', async () => {
    const { t, calls, events, last } = setup();
    await openStream(t, last);
    const posts = () => calls.filter((c) => !c.url.startsWith('/api/events'));

    // Keep-alives arrive: the link is alive, a slow store's ack is waited for.
    const slow = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k1' });
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(15_000);
      last().comment();
    }
    await vi.advanceTimersByTimeAsync(10_000); // 40 s: past deadAfterMs, within SERVER_WAIT_MS
    expect(posts()[0]!.aborted).toBe(false);
    posts()[0]!.stream();
    posts()[0]!.frame({ type: 'ack', conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' } as never);
    await expect(slow).resolves.toMatchObject({ messageId: 'm1' });

    // The link dies (half-open): nothing more comes on the event stream.
    last().comment();
    await settle();
    const stream = last();
    const sent = t.send({ conversationId: 'c1', content: 'again', clientMessageId: 'k2' });
    const sendFails = expect(sent).rejects.toMatchObject({ status: 0, code: 'network' });
    const cancelled = t.cancel('c1', 'm1');
    const cancelFails = expect(cancelled).rejects.toMatchObject({ status: 0, code: 'network' });
    await vi.advanceTimersByTimeAsync(34_999);
    expect(stream.aborted).toBe(false);
    expect(posts().slice(1).map((c) => c.aborted)).toEqual([false, false]);
    await vi.advanceTimersByTimeAsync(1); // two keep-alives missed, and a margin
    expect(stream.aborted).toBe(true);
    await sendFails;
    await cancelFails;
    expect(posts()[0]!.aborted).toBe(false); // the acked answer streams on
    expect(events()).toHaveLength(1);
    t.stop();
  });

  it('a wake that finds the event stream silent fails the send waiting for its ack with it, as lost with the connection', async () => {
    const { t, calls, last } = setup();
    await openStream(t, last);
    const stream = last();
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    const sendFails = expect(sent).rejects.toMatchObject({ status: 0, code: 'network' });
    await vi.advanceTimersByTimeAsync(20_000); // the laptop slept: no keep-alive came
    t.checkNow();
    await settle();
    expect(stream.aborted).toBe(true);
    await sendFails;
    expect(calls.find((c) => c.url === '/api/conversations/c1/messages')!.aborted).toBe(true);
    t.stop();
  });

  it('a send answered 202 with the ids (no event stream: a proxy dropped the Accept header) resolves with them, never repeated', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    await settle();
    const post = calls.find((c) => c.url === '/api/conversations/c1/messages')!;
    (post as unknown as { resolve: (r: Response) => void }).resolve(
      new Response(JSON.stringify({ conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' }), { status: 202, headers: { 'Content-Type': 'application/json' } }),
    );
    await expect(sent).resolves.toEqual({ conversationId: 'c1', userMessageId: 'u1', messageId: 'm1' });
    t.stop();
  });

  it('a send answered 202 naming the model it replaced resolves with it', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    await settle();
    const post = calls.find((c) => c.url === '/api/conversations/c1/messages')!;
    const ids = { conversationId: 'c1', userMessageId: 'u1', messageId: 'm1', replacedModel: 'gone', model: 'm' };
    (post as unknown as { resolve: (r: Response) => void }).resolve(
      new Response(JSON.stringify(ids), { status: 202, headers: { 'Content-Type': 'application/json' } }),
    );
    await expect(sent).resolves.toEqual(ids);
    t.stop();
  });

  it('a send cut off by a restart of the channel (a new token) fails as a lost connection, so it is queued and repeated, not given back', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const sent = t.send({ conversationId: 'c1', content: 'hi', clientMessageId: 'k' });
    sent.catch(() => undefined);
    await settle();
    expect(calls.some((c) => c.url === '/api/conversations/c1/messages')).toBe(true);
    t.stop(); // the body may have reached the server: only its clientMessageId makes a repeat safe
    await expect(sent).rejects.toMatchObject({ code: 'network' });
  });
});

describe('SSETransport cancel', () => {
  it('names its answer in the body when given one, and sends no body without', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const cancels = () => calls.filter((c) => c.url === '/api/conversations/c1/cancel');
    const named = t.cancel('c1', 'a1');
    await settle();
    expect(JSON.parse(String(cancels()[0]!.init.body))).toEqual({ messageId: 'a1' });
    (cancels()[0] as unknown as { resolve: (r: Response) => void }).resolve(new Response(null, { status: 204 }));
    await named;
    const any = t.cancel('c1');
    await settle();
    expect(cancels()[1]!.init.body).toBeUndefined();
    (cancels()[1] as unknown as { resolve: (r: Response) => void }).resolve(new Response(null, { status: 204 }));
    await any;
    t.stop();
  });

  it('fails with timeout when the server does not answer in time, as a WebSocket request does; an answered one resolves', async () => {
    const { t, calls } = setup();
    t.start();
    await settle();
    const cancels = () => calls.filter((c) => c.url === '/api/conversations/c1/cancel');

    const hung = t.cancel('c1');
    const hungFails = expect(hung).rejects.toMatchObject({ status: 0, code: 'timeout', message: 'The server did not answer in time.' });
    await vi.advanceTimersByTimeAsync(44_999);
    expect(cancels()[0]!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await hungFails;
    expect(cancels()[0]!.aborted).toBe(true);

    const answered = t.cancel('c1');
    await settle();
    (cancels()[1] as unknown as { resolve: (r: Response) => void }).resolve(new Response(null, { status: 204 }));
    await expect(answered).resolves.toBeUndefined();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(cancels()[1]!.aborted).toBe(false);

    const cut = t.cancel('c1');
    const cutFails = expect(cut).rejects.toMatchObject({ code: 'network' });
    await settle();
    t.stop(); // a restart of the channel: the cancel is not left hanging either
    await cutFails;
  });
});
