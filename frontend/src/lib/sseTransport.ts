// The fallback transport for when a WebSocket cannot be opened: the SSE
// routes of protocol.md read with fetch + ReadableStream (EventSource cannot
// send the Authorization header).
//
// One long-lived GET /api/events carries the user's `conversation` frames
// (new chats, titles, renames, deletes in other tabs) and, with
// ?conversationId=, every frame a WebSocket subscribe to the open
// conversation would receive. Opening another conversation opens a new
// stream for it; the previous one is closed shortly after the new one is
// open, so no user frame falls between the two. A stream the server ends
// because the session did (logout, the account deleted) says so in a last
// closed event (4401 and its reason, as a WebSocket's close): sign-in
// follows at once, also when it is the replaced stream that says so. A
// stream ended for a full queue (closed 4408) or a shutdown (closed 1001)
// is opened again with a backoff of its own, as a WebSocket closed so is.
// When a stream ends otherwise (a network cut) the token is checked with
// /api/auth/me and the stream is opened again with backoff, resuming the
// streaming answer by messageId + lastSeq (+ lastReasoningSeq).
//
// Sends and regenerations are POSTs that stream their own frames too; a frame
// that arrives on both streams is applied once by the store (seq rules for
// deltas and done, upserts for messages and conversations).

import { ApiError, SERVER_WAIT_MS, type ApiClient } from './api';
import { refusedField, serverUnavailable, waitReason } from './errors';
import {
  ACCOUNT_DELETED_REASON,
  CloseCode,
  RESUME_REFUSED_REASON,
  TOO_MANY_STREAMS_MESSAGE,
  parseServerFrame,
  type ClosedFrame,
  type ErrorFrame,
  type ServerFrame,
} from './protocol';
import { readSSE } from './sse';
import {
  TOO_MANY_CONNECTIONS_DETAIL,
  TOO_MANY_CONNECTIONS_NOTICE,
  backoffDelay,
  goingAwayDelay,
  isGoingAway,
  requestOrder,
  type Accepted,
  type AuthCheck,
  type RegenerateRequest,
  type Resume,
  type SendRequest,
  type Transport,
  type TransportHandlers,
} from './transport';

/** SSEOptions configure an SSETransport. */
export interface SSEOptions {
  /** Asked when the event stream ends, to tell a revoked token (logout) from a cut; defaults to "ok". */
  checkAuth?: AuthCheck;
  /** How long a replaced stream is still read after its successor opened; defaults to 500 ms. */
  overlapMs?: number;
  /** A stream open this long resets the backoff when it ends; defaults to 10 s. */
  stableAfterMs?: number;
  /** The first stream follows an earlier channel (a restart with a new token): it opens as a reconnect; defaults to false. */
  resumed?: boolean;
  /**
   * A stream from which nothing came for this long is taken as dead by
   * checkNow (a wake); defaults to 20 s: the server writes a keep-alive
   * comment every 15 s.
   */
  silentMs?: number;
  /**
   * An open stream from which nothing came for this long is cut and
   * opened again, as after any cut: a half-open connection (a network
   * changed under it) would otherwise never end; defaults to 35 s, two of
   * the server's keep-alives (every 15 s) missed and a margin. The
   * requests still waiting for their answer fail with it, as lost with the
   * connection, rather than wait out ackTimeoutMs.
   */
  deadAfterMs?: number;
  /**
   * How long a send or regenerate waits for its ack before it is given up
   * as a lost connection (and repeated), and a cancel for its answer before
   * it fails (the user may press Stop again); defaults to SERVER_WAIT_MS
   * (45 s), as the WebSocket's requests: the server answers once the message
   * is stored, which may take up to its CHATD_REQUEST_TIMEOUT.
   */
  ackTimeoutMs?: number;
  /**
   * How long an event stream's request waits for its response headers
   * before it counts as cut (aborted, and asked again with backoff), as a
   * WebSocket waits for its hello; defaults to SERVER_WAIT_MS (45 s), as the WebSocket's
   * helloTimeoutMs: the server answers once it has checked the session and
   * subscribed the stream, which may take up to its CHATD_REQUEST_TIMEOUT
   * (30 s by default) while its database is slow. The watchdog of
   * deadAfterMs starts only once the headers came.
   */
  headersTimeoutMs?: number;
}

const STATUS_DETAIL = 'live updates via HTTP streaming';

/**
 * SWITCH_RETRY_MS is how long a switch refused for too many connections
 * waits before it asks again, once its replaced stream was closed: time for
 * the server to see that stream's connection go and free its slot.
 */
const SWITCH_RETRY_MS = 250;

/**
 * monotonic is the clock a stream's silence is timed by: unlike Date.now(),
 * it is not stepped when the system clock is set (NTP, a user, a VM
 * restored), so a step back does not hide a dead stream for as long as the
 * step, nor a step forward cut a live one.
 */
const monotonic = (): number => performance.now();

/** One GET /api/events request. */
interface EventStream {
  readonly ctrl: AbortController;
  readonly conversationId: string | null;
  /** When the response headers arrived (monotonic); undefined while connecting. */
  openedAt?: number;
  /** When the request was made, its headers came, or its last bytes (monotonic). */
  heardAt: number;
  /** heardAt by the wall clock (Date.now()), for checkNow: a sleep stops the monotonic clock on some systems. */
  heardAtWall: number;
  /** The server's closed event, when it said why it ended the stream. */
  closed?: ClosedFrame;
  /**
   * The server's message when it refused the stream's resume point after
   * its 200 (several instances: an error bad_seq without id, then closed
   * 1001 RESUME_REFUSED_REASON, protocol.md's Close codes).
   */
  refused?: string;
  /** When its subscribe was asked for (requestOrder): the retarget's caller, or the open. */
  readonly askedAt: number;
}

/** heard notes that s was heard from now. */
function heard(s: EventStream): void {
  s.heardAt = monotonic();
  s.heardAtWall = Date.now();
}

/** eventsPath is the URL of the event stream following conversationId (if any) from resume. */
export function eventsPath(conversationId: string | null, resume?: Resume): string {
  if (!conversationId) return '/api/events';
  const q = new URLSearchParams({ conversationId });
  if (resume) {
    q.set('messageId', resume.messageId);
    q.set('lastSeq', String(resume.lastSeq));
    if (resume.lastReasoningSeq) q.set('lastReasoningSeq', String(resume.lastReasoningSeq));
  }
  return `/api/events?${q.toString()}`;
}

/** isEventStream says whether a response is an event stream (else: the JSON of a 202). */
function isEventStream(res: Response): boolean {
  return res.status !== 202 || (res.headers.get('Content-Type') ?? '').startsWith('text/event-stream');
}

/** SSETransport implements Transport with HTTP requests and event streams. */
export class SSETransport implements Transport {
  readonly kind = 'sse' as const;
  private stopped = true;
  /** The conversation the event stream should follow. */
  private target: string | null = null;
  /** The newest event stream (connecting or open); null between attempts. */
  private current: EventStream | null = null;
  /** Every event stream not yet ended, current included. */
  private readonly streams = new Set<EventStream>();
  private readonly posts = new Set<AbortController>();
  /** The requests of posts still waiting for their answer (a send's ack, a cancel's status). */
  private readonly awaiting = new Set<AbortController>();
  private reopenTimer: ReturnType<typeof setTimeout> | undefined;
  /** What the pending reopen waits out: a backoff of ours (a wake cuts it short) or a pause the server asked for. */
  private reopenWait: 'backoff' | 'server' | null = null;
  private retargetQueued = false;
  private forceReopen = false;
  /** When the queued retarget was asked for (requestOrder), by a subscribe made before the caller's loads. */
  private retargetAskedAt: number | undefined;
  /** The next open asks without a resume point (the last one was refused). */
  private skipResume = false;
  /**
   * The conversation followed until the server refused its stream for good:
   * the streams since follow none (the user's frames keep coming), and the
   * next one after a cut asks for it again, as a WebSocket subscribes again
   * on reconnect.
   */
  private refused: string | null = null;
  private failures = 0;
  /**
   * Streams ended with closed 4408 (too slow) in a row, as the WebSocket
   * counts its closes: a resume whose catch-up cannot fit the server's
   * queue is ended so again at each reopen. A stream open for stableAfterMs
   * ends the run.
   */
  private slowCloses = 0;
  /**
   * A switch refused for too many connections was asked again at once,
   * once, its replaced stream closed to free the slot it held; a stream
   * that opens allows it again.
   */
  private switchRetried = false;
  /** A closed 4401 (logout, account deleted) was handed to unauthorized: once, whichever stream said it. */
  private sessionClosed = false;
  /** The link was said offline (past three failures): it stays so until a stream opens. */
  private offline = false;
  /** toldCrowded: the notice of too many connections was given since the last open stream. */
  private toldCrowded = false;
  private everOpened = false;
  /** A stream was lost: the next one to open reports a reconnect. */
  private cut = false;

  constructor(
    private readonly api: ApiClient,
    private readonly handlers: TransportHandlers,
    private readonly opts: SSEOptions = {},
  ) {
    this.everOpened = this.cut = opts.resumed === true;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.sessionClosed = false;
    this.handlers.status({ state: this.cut ? 'reconnecting' : 'connecting', kind: 'sse', detail: STATUS_DETAIL });
    this.schedule(0); // a subscribe right after start names the conversation of the first stream
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reopenTimer);
    this.reopenWait = null;
    for (const s of this.streams) s.ctrl.abort();
    for (const c of this.posts) c.abort();
    this.streams.clear();
    this.posts.clear();
    this.current = null;
  }

  send(r: SendRequest): Promise<Accepted> {
    const { conversationId, ...body } = r;
    return this.post(conversationId, 'messages', body);
  }

  async regenerate(r: RegenerateRequest): Promise<Accepted> {
    const { conversationId, ...body } = r;
    try {
      return await this.post(conversationId, 'regenerate', body);
    } catch (err) {
      if (!body.clientMessageId || !refusedField(err, 'clientMessageId')) throw err;
      // An instance of the version before (a rolling upgrade) knows no key
      // in a regenerate's body and refuses the request whole: asked again
      // without it, the regenerate runs as that version's did (a repeat
      // after a cut is not recognised there).
      const { clientMessageId: _, ...old } = body;
      return this.post(conversationId, 'regenerate', old);
    }
  }

  /**
   * cancel asks the server to stop the answer (with messageId, only that
   * one). Without an answer within ackTimeoutMs (a half-open connection)
   * it fails with `timeout`, as a WebSocket request does, instead of
   * leaving Stop without an outcome; sooner, with `network`, when the
   * event stream is found dead meanwhile (dead).
   */
  async cancel(conversationId: string, messageId?: string): Promise<void> {
    const ctrl = new AbortController();
    this.posts.add(ctrl);
    this.awaiting.add(ctrl);
    const deadline = this.ackDeadline(ctrl);
    try {
      await this.api.raw('POST', `/api/conversations/${encodeURIComponent(conversationId)}/cancel`, {
        signal: ctrl.signal,
        ...(messageId ? { body: { messageId } } : {}),
      });
    } catch (err) {
      if (deadline.late()) throw new ApiError(0, 'timeout', 'The server did not answer in time.');
      if (err instanceof DOMException && err.name === 'AbortError') throw new ApiError(0, 'network', 'The connection was lost');
      throw err;
    } finally {
      deadline.clear();
      this.posts.delete(ctrl);
      this.awaiting.delete(ctrl);
    }
  }

  /** ackDeadline aborts ctrl when the server has not answered within ackTimeoutMs, and says whether it did. */
  private ackDeadline(ctrl: AbortController): { late: () => boolean; clear: () => void } {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      ctrl.abort();
    }, this.opts.ackTimeoutMs ?? SERVER_WAIT_MS);
    return { late: () => late, clear: () => clearTimeout(timer) };
  }

  subscribe(conversationId: string): void {
    if (this.target === conversationId) return;
    this.target = conversationId;
    this.refused = null;
    this.skipResume = false;
    this.retarget(false);
  }

  resubscribe(conversationId: string): void {
    if (this.target === conversationId) this.retarget(true);
  }

  unsubscribe(conversationId: string): void {
    if (this.refused === conversationId) this.refused = null;
    if (this.target !== conversationId) return;
    this.target = null;
    this.retarget(false);
  }

  /** release has nothing to stop: a send over HTTP makes no event stream follow its conversation. */
  release(): void {}

  /**
   * reconnectNow opens a stream at once (the user's Retry), replacing one
   * whose headers have not come: its request may hang on a dead route (a
   * phone changing networks), and Retry would do nothing meanwhile. An open
   * stream is kept.
   */
  reconnectNow(): void {
    if (this.stopped || this.current?.openedAt !== undefined) return;
    this.failures = 0;
    this.open();
  }

  /**
   * checkNow makes sure, after a wake, that the event stream is alive: one
   * from which nothing came for silentMs (not even the server's
   * keep-alives) is cut (dead) and opened again as after any cut; a reopen waiting
   * out a backoff of ours is made now. A pause the server asked for (429)
   * stands. The silence is the longer of the monotonic clock's and the
   * wall clock's: the time a machine slept counts on the wall clock alone
   * (performance.now() stops during a sleep on macOS and Linux), and a
   * step of the wall clock back hides nothing; a step forward can cut a
   * live stream here, at a wake, once (it is reopened resuming), never
   * through the watchdog (watch).
   */
  checkNow(): void {
    if (this.stopped) return;
    const s = this.current;
    if (!s) {
      if (this.reopenWait === 'backoff') this.reconnectNow();
      return;
    }
    const quiet = Math.max(monotonic() - s.heardAt, Date.now() - s.heardAtWall);
    if (quiet >= (this.opts.silentMs ?? 20_000)) this.dead(s);
  }

  /**
   * dead cuts a stream found silent past the server's keep-alives: the
   * link is gone (half-open), so the requests still waiting for their
   * answer over it fail now as lost with the connection (a send is
   * repeated once the channel is back, a cancel can be pressed again)
   * instead of waiting out ackTimeoutMs. An answer already acked streams
   * on: its own response may be on another connection, alive.
   */
  private dead(s: EventStream): void {
    s.ctrl.abort();
    if (s !== this.current) return;
    for (const c of this.awaiting) c.abort();
  }

  drop(): void {
    for (const c of this.posts) c.abort();
    for (const s of this.streams) s.ctrl.abort();
  }

  /**
   * retarget opens a stream for the current target, once the caller's
   * synchronous changes are done (an unsubscribe followed by a subscribe is
   * one new stream). Between attempts (backoff) the next attempt uses it.
   */
  private retarget(force: boolean): void {
    if (this.stopped) return;
    this.forceReopen ||= force;
    this.retargetAskedAt ??= requestOrder();
    if (this.retargetQueued) return;
    this.retargetQueued = true;
    queueMicrotask(() => {
      this.retargetQueued = false;
      const force = this.forceReopen;
      this.forceReopen = false;
      const askedAt = this.retargetAskedAt;
      this.retargetAskedAt = undefined;
      if (this.stopped || !this.current) return;
      if (!force && this.current.conversationId === this.target) return;
      this.open(askedAt);
    });
  }

  /** open starts a stream for the target; a stream still connecting is given up, an open one kept until this one opens. */
  private open(askedAt = requestOrder()): void {
    clearTimeout(this.reopenTimer);
    this.reopenWait = null;
    const prev = this.current;
    if (prev && prev.openedAt === undefined) {
      this.streams.delete(prev);
      prev.ctrl.abort();
    }
    const s: EventStream = { ctrl: new AbortController(), conversationId: this.target, heardAt: monotonic(), heardAtWall: Date.now(), askedAt };
    this.current = s;
    this.streams.add(s);
    void this.run(s);
  }

  /** run opens one stream and reads it to its end. */
  private async run(s: EventStream): Promise<void> {
    const resume = s.conversationId && !this.skipResume ? this.handlers.resumePoint(s.conversationId) : undefined;
    this.skipResume = false;
    let res: Response;
    // Without its headers in time (a dead route, half-open TCP), the request
    // would wait for the browser to give it up, minutes later.
    const deadline = setTimeout(() => s.ctrl.abort(), this.opts.headersTimeoutMs ?? SERVER_WAIT_MS);
    try {
      res = await this.api.raw('GET', eventsPath(s.conversationId, resume), {
        headers: { Accept: 'text/event-stream' },
        signal: s.ctrl.signal,
      });
    } catch (err) {
      this.streams.delete(s);
      if (s !== this.current || this.stopped) return;
      this.current = null;
      this.openFailed(err, s.conversationId, resume !== undefined);
      return;
    } finally {
      clearTimeout(deadline);
    }
    if (s !== this.current || this.stopped) {
      this.streams.delete(s);
      s.ctrl.abort();
      return;
    }
    const openedAt = monotonic();
    s.openedAt = openedAt;
    heard(s);
    this.opened(s);
    // The server subscribes the stream before it answers 200 (a refusal is
    // a 4xx instead), so the conversation's live updates flow from here,
    // though its first event may be long in coming (an idle conversation
    // sends only keep-alives).
    if (s.conversationId) this.handlers.subscribed?.(s.conversationId, s.askedAt);
    const watchdog = this.watch(s);
    const own = (f: ClosedFrame | ErrorFrame) => (f.type === 'closed' ? (s.closed = f) : (s.refused = f.message));
    await this.pump(res, undefined, own, () => heard(s)).catch(() => undefined);
    watchdog.stop();
    this.streams.delete(s);
    if (this.stopped || this.sessionClosed) return;
    if (s.closed?.closeCode === CloseCode.Unauthorized) {
      this.sessionEnded(s.closed);
      return;
    }
    if (s !== this.current) return; // replaced: its successor carries on
    this.current = null;
    if (monotonic() - openedAt >= (this.opts.stableAfterMs ?? 10000)) this.failures = this.slowCloses = 0;
    if (s.closed?.reason === RESUME_REFUSED_REASON) s.refused ??= s.closed.reason;
    if (s.conversationId && resume && s.refused !== undefined) {
      // As a refusal of the open (openFailed): reported, for the thread to
      // reload it, and the reopen follows the answer from its start, never
      // from the refused point, which would be refused again, in a loop.
      this.handlers.subscribeFailed(s.conversationId, 'bad_seq', s.refused);
      this.skipResume = true;
    }
    void this.ended(s.closed);
  }

  /**
   * sessionEnded follows a closed 4401 (logout, account deleted), as a
   * WebSocket's: sign-in, saying why. A replaced stream still read while its
   * successor connects may be the one to say it (the successor may have
   * registered after the logout closed the user's streams, and gets a 401
   * or nothing): every stream is closed, and "account deleted" is not lost.
   */
  private sessionEnded(closed: ClosedFrame): void {
    this.sessionClosed = true;
    this.cut = true;
    clearTimeout(this.reopenTimer);
    this.reopenWait = null;
    this.current = null;
    for (const s of this.streams) s.ctrl.abort();
    this.streams.clear();
    this.handlers.unauthorized(closed.reason === ACCOUNT_DELETED_REASON ? 'accountDeleted' : undefined);
  }

  /** watch cuts an open stream that stays silent for deadAfterMs (no event, no keep-alive), by the monotonic clock. */
  private watch(s: EventStream): { stop: () => void } {
    const dead = this.opts.deadAfterMs ?? 35_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () => {
      const quiet = monotonic() - s.heardAt;
      if (quiet >= dead) this.dead(s);
      else timer = setTimeout(check, dead - quiet);
    };
    timer = setTimeout(check, dead);
    return { stop: () => clearTimeout(timer) };
  }

  /** opened retires the streams this one replaces and reports the channel up. */
  private opened(s: EventStream): void {
    for (const old of this.streams) {
      if (old !== s) setTimeout(() => old.ctrl.abort(), this.opts.overlapMs ?? 500);
    }
    const again = this.cut && this.everOpened;
    this.cut = false;
    this.everOpened = true;
    this.offline = false;
    this.toldCrowded = false;
    this.switchRetried = false;
    this.handlers.status({ state: 'connected', kind: 'sse', detail: STATUS_DETAIL });
    if (again) this.handlers.reconnected();
  }

  /**
   * ended handles the end of the current stream (closed: the server's word
   * of why, if any): sign-in after a logout, else reopen with backoff. A
   * server going away (closed 1001, a shutdown or rolling restart) says
   * nothing of the token: no check (one per tab, all at once onto the
   * instances left), and the reopen is spread (goingAwayDelay); a token
   * revoked meanwhile is refused at the reopen, 401, and sign-in follows.
   * A full queue (closed 4408) says nothing of the token or the network
   * either: as the WebSocket's 4408, the reopen comes at once the first
   * time, then backing off on a count of its own, never said offline.
   */
  private async ended(closed?: ClosedFrame): Promise<void> {
    this.cut = true;
    if (isGoingAway(closed?.closeCode)) {
      this.schedule(goingAwayDelay(this.lost()));
      return;
    }
    if (closed?.closeCode === CloseCode.TooSlow) {
      this.askRefusedAgain();
      this.handlers.status({ state: 'reconnecting', kind: 'sse', detail: STATUS_DETAIL });
      this.schedule(backoffDelay(this.slowCloses++, 250), 'server');
      return;
    }
    this.handlers.status({ state: 'reconnecting', kind: 'sse', detail: STATUS_DETAIL });
    this.reopenWait = 'backoff'; // a wake while the token is checked reopens at once
    const verdict = this.opts.checkAuth ? await this.opts.checkAuth().catch(() => 'offline' as const) : 'ok';
    if (this.stopped || this.current) return;
    if (verdict === 'unauthorized') {
      this.reopenWait = null;
      this.handlers.unauthorized();
      return;
    }
    this.schedule(this.lost(typeof verdict === 'object' ? verdict.unavailable : undefined));
  }

  /**
   * rateLimited waits out a 429 of the event stream: too many open
   * connections of the user (said as the WebSocket's 1013, with the same
   * notice once) or too many frames. A stream this one was to replace (a
   * switch of conversation keeps the old one open until the new one opens)
   * is closed at too many connections: it holds a slot the retry needs,
   * and every retry would be refused the same way. What it would have
   * carried meanwhile is caught up when the next stream opens (a refused
   * open is a cut: reconnected() loads the list and the open thread again).
   * Closing it freed a slot of this tab's own: the switch is asked again at
   * once (after SWITCH_RETRY_MS, for the server to see the old stream go),
   * once, with no notice; the user has too many tabs only if that one is
   * refused too. A real crowding waits Retry-After, jittered up to half as
   * long again so that the tabs refused together do not come back together.
   */
  private rateLimited(err: ApiError): void {
    const crowded = err.message === TOO_MANY_STREAMS_MESSAGE;
    if (crowded) {
      const freed = [...this.streams].some((old) => old.openedAt !== undefined);
      for (const old of this.streams) old.ctrl.abort();
      if (freed && !this.switchRetried) {
        this.switchRetried = true;
        this.schedule(SWITCH_RETRY_MS, 'server');
        return;
      }
    }
    const detail = crowded ? TOO_MANY_CONNECTIONS_DETAIL : waitReason(err.message) || 'The server asked to wait.';
    this.handlers.status({ state: 'reconnecting', kind: 'sse', detail });
    if (crowded && !this.toldCrowded) {
      this.toldCrowded = true;
      this.handlers.notify(TOO_MANY_CONNECTIONS_NOTICE);
    }
    const wait = (err.retryAfter ?? 10) * 1000;
    this.schedule(crowded ? wait + (Math.random() * wait) / 2 : wait, 'server');
  }

  /** openFailed decides what follows a refused or failed GET /api/events. */
  private openFailed(err: unknown, conversationId: string | null, resumed: boolean): void {
    this.cut = true;
    if (!(err instanceof ApiError)) {
      this.schedule(this.lost()); // aborted by drop(), or a network failure
      return;
    }
    if (err.status === 401) return; // the API client already asked for sign-in
    if (err.status === 429) {
      this.rateLimited(err);
      return;
    }
    const why = serverUnavailable(err);
    if (why !== null) {
      this.schedule(this.lost(why)); // chatd answered, not now: not offline
      return;
    }
    if (conversationId && (err.status === 400 || err.status === 404)) {
      if (err.code === 'bad_seq') this.handlers.subscribeFailed(conversationId, err.code, err.message);
      if (resumed) {
        // Follow the conversation without the refused resume point: the
        // server catches up the running answer from its start.
        this.skipResume = true;
      } else {
        this.handlers.subscribeFailed(conversationId, err.code, err.message);
        if (this.target === conversationId) {
          this.target = null; // keep the user's frames coming
          this.refused = conversationId;
        }
      }
      this.schedule(0);
      return;
    }
    this.schedule(this.lost());
  }

  /**
   * lost counts a failure, reports it and returns the pause before the next
   * attempt, which asks again for a conversation refused earlier. Past three
   * the link is said offline, unless chatd itself answered not now (why,
   * its 503 unavailable: a shutdown, the session not checked): then its
   * reason, as the server is up.
   */
  private lost(why?: string): number {
    this.askRefusedAgain();
    this.failures++;
    if (why !== undefined) {
      this.offline = false;
      this.handlers.status({ state: 'reconnecting', kind: 'sse', detail: waitReason(why) });
    } else {
      // Offline stays offline until a stream opens: a Retry or a wake starts
      // the count again, and "Reconnecting…" then "Offline" were announced
      // again at each, the Retry going meanwhile.
      this.offline ||= this.failures > 3;
      this.handlers.status({ state: this.offline ? 'offline' : 'reconnecting', kind: 'sse', detail: STATUS_DETAIL });
    }
    return backoffDelay(this.failures - 1, 250, 15000);
  }

  /** askRefusedAgain makes the next stream follow again a conversation refused earlier, as after a cut. */
  private askRefusedAgain(): void {
    if (this.refused && this.target === null) {
      this.target = this.refused;
      this.refused = null;
    }
  }

  private schedule(ms: number, wait: 'backoff' | 'server' = 'backoff'): void {
    clearTimeout(this.reopenTimer);
    this.reopenWait = wait;
    this.reopenTimer = setTimeout(() => {
      this.reopenWait = null;
      if (!this.stopped && !this.current) this.open();
    }, ms);
  }

  /** post starts an answer and streams its frames; it resolves on the ack. */
  private async post(conversationId: string, what: string, body: object): Promise<Accepted> {
    const ctrl = new AbortController();
    this.posts.add(ctrl);
    // Without an ack in time (a half-open connection), the request is given
    // up: the send waits for the connection and is repeated with its
    // clientMessageId, as after a cut, instead of showing "Sending…" forever.
    const deadline = this.ackDeadline(ctrl);
    this.awaiting.add(ctrl);
    try {
      return await this.postOnce(conversationId, what, body, ctrl);
    } catch (err) {
      if (deadline.late() && err instanceof ApiError && err.code === 'network') throw new ApiError(0, 'timeout', 'The server did not answer in time.');
      throw err;
    } finally {
      deadline.clear();
      this.awaiting.delete(ctrl);
    }
  }

  /** postOnce makes the request of post; it resolves on the ack, the stream read on after it. */
  private async postOnce(conversationId: string, what: string, body: object, ctrl: AbortController): Promise<Accepted> {
    let res: Response;
    try {
      res = await this.api.raw('POST', `/api/conversations/${encodeURIComponent(conversationId)}/${what}`, {
        body,
        headers: { Accept: 'text/event-stream' },
        signal: ctrl.signal,
      });
    } catch (err) {
      this.posts.delete(ctrl);
      // Aborted by stop() or drop() (a restart with a new token, a cut): the
      // body may have reached the server, so the send is repeated with its
      // clientMessageId like any cut, never given back as refused.
      if (err instanceof DOMException && err.name === 'AbortError') throw new ApiError(0, 'network', 'The connection was lost');
      throw err;
    }
    if (!isEventStream(res)) {
      // 202 with the ids (protocol.md: a request without the event stream's
      // Accept, as a proxy may forward it): the answer runs on, and its frames
      // come on the event stream. Taken as a cut, the send was repeated.
      this.posts.delete(ctrl);
      const ids = (await res.json().catch(() => ({}))) as Partial<Accepted>;
      const replaced = ids.replacedModel && ids.model ? { replacedModel: ids.replacedModel, model: ids.model } : {};
      return { conversationId: ids.conversationId ?? conversationId, userMessageId: ids.userMessageId, messageId: ids.messageId, ...replaced };
    }
    return new Promise<Accepted>((resolve, reject) => {
      let settled = false;
      const onFrame = (f: ServerFrame) => {
        if (!settled && f.type === 'ack') {
          settled = true;
          const replaced = f.replacedModel && f.model ? { replacedModel: f.replacedModel, model: f.model } : {};
          resolve({ conversationId: f.conversationId ?? conversationId, userMessageId: f.userMessageId, messageId: f.messageId, ...replaced });
        } else if (!settled && f.type === 'error') {
          settled = true;
          reject(new ApiError(0, f.code, f.message));
        }
      };
      this.pump(res, onFrame)
        .catch(() => undefined)
        .finally(() => {
          this.posts.delete(ctrl);
          if (!settled) reject(new ApiError(0, 'network', 'The stream ended before the server accepted the message.'));
        });
    });
  }

  /**
   * pump reads an event stream to its end, handing every frame to the store
   * but the closed event, which says why the server ended the stream, and,
   * when own takes them, the refusal of its resume point without id that
   * comes before such an end (an error bad_seq: no news for the user).
   */
  private async pump(res: Response, tap?: (f: ServerFrame) => void, own?: (f: ClosedFrame | ErrorFrame) => void, onBytes?: () => void): Promise<void> {
    if (!res.body) return;
    await readSSE(res.body, (ev) => {
      const f = parseServerFrame(ev.data);
      if (!f) return;
      if (f.type === 'closed') {
        own?.(f);
        return;
      }
      if (own && f.type === 'error' && f.id === undefined && f.code === 'bad_seq') {
        own(f);
        return;
      }
      tap?.(f);
      this.handlers.frame(f);
    }, onBytes);
  }
}
