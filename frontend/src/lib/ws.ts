// The WebSocket transport: one socket per tab at /ws, the token passed as the
// subprotocol "bearer.<jwt>", reconnects with backoff and jitter, resubscribes
// with the resume point of a streaming answer, and reports close codes as
// protocol.md says.

import { ApiError, SERVER_WAIT_MS } from './api';
import { waitReason } from './errors';
import {
  ACCOUNT_DELETED_REASON,
  CloseCode,
  PROTOCOL,
  RESUME_REFUSED_REASON,
  TOO_MANY_CONNECTIONS_REASON,
  parseServerFrame,
  type AckFrame,
  type ClientFrame,
  type ServerFrame,
} from './protocol';
import {
  TOO_MANY_CONNECTIONS_DETAIL,
  TOO_MANY_CONNECTIONS_NOTICE,
  backoffDelay,
  goingAwayDelay,
  isGoingAway,
  requestOrder,
  type Accepted,
  type AuthCheck,
  type LinkState,
  type RegenerateRequest,
  type SendRequest,
  type Transport,
  type TransportHandlers,
  type TransportStatus,
} from './transport';
import { utf8Length } from './utf8';

export type { AuthCheck } from './transport';

/** WSOptions configure a WSTransport. */
export interface WSOptions {
  /** The token for the bearer subprotocol. */
  token: () => string | null;
  /** Asked after a socket failed to open, to tell a dead token from a refused upgrade. */
  checkAuth: AuthCheck;
  /** URL of the socket; defaults to /ws on this origin (ws: or wss: like the page). */
  url?: string;
  /** Failed opens (while HTTP works) before asking for the fallback; defaults to 3. */
  fallbackAfter?: number;
  /** How long a send/regenerate/cancel waits for its ack; defaults to SERVER_WAIT_MS (45 s: the server's CHATD_REQUEST_TIMEOUT and a margin). */
  requestTimeoutMs?: number;
  /** How long a request waits for a (re)connecting socket; defaults to 5 s. */
  openWaitMs?: number;
  /** Interval of the client's own ping frames; defaults to 25 s. */
  pingIntervalMs?: number;
  /** How long the ping of checkNow (a wake) waits for its pong before the socket counts as dead; defaults to 4 s. */
  wakeCheckMs?: number;
  /**
   * How long an open socket waits for its hello before it counts as cut;
   * defaults to 45 s: the server sends hello once it has checked the
   * session, which may take up to its CHATD_REQUEST_TIMEOUT (30 s by
   * default) while its database is slow.
   */
  helloTimeoutMs?: number;
  /** WebSocket constructor; defaults to the global one. */
  WebSocketImpl?: typeof WebSocket;
  /** The first socket follows an earlier channel (a restart with a new token): it opens as a reconnect; defaults to false. */
  resumed?: boolean;
}

interface Pending {
  resolve: (f: AckFrame) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Error codes that refuse a frame for now only (protocol.md): a subscribe is asked again later. */
const TRANSIENT = new Set(['unavailable', 'rate_limited', 'internal']);

/** The prefix of ping ids (requests' ids start with "c"). */
const PING_PREFIX = 'p';

/** The close code a browser reports for a connection lost without a close frame. */
const ABNORMAL_CLOSURE = 1006;


/** defaultSocketURL is /ws on the page's origin. */
export function defaultSocketURL(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

/** WSTransport implements Transport over one WebSocket. */
export class WSTransport implements Transport {
  readonly kind = 'ws' as const;
  private ws: WebSocket | null = null;
  private stopped = true;
  private attempt = 0;
  /**
   * Closes with 1013 in a row: the server cannot check the session, or the
   * user has too many connections. A pong ends the run, not a hello: a
   * server older than hello-means-confirmed sends hello before its check
   * and then closes with 1013, and the backoff must still grow against it.
   */
  private uncheckable = 0;
  /**
   * Closes with 4408 (too slow) in a row. A resume whose catch-up cannot
   * fit the server's queue is closed so again at each reconnect; a pong on
   * a confirmed socket ends the run (the server writes it after all it
   * queued before it), not the pong that confirms an older server's
   * session, which comes before any subscribe.
   */
  private slowCloses = 0;
  /** The user was told of too many connections in this run of 1013 closes. */
  private toldCrowded = false;
  private failedOpens = 0;
  /** Sockets made so far: a check of a failed open whose socket was replaced meanwhile decides nothing. */
  private opens = 0;
  private everConnected = false;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly subs = new Set<string>();
  /** Subscribes the server could not take now, asked again after a pause: attempts and timer per conversation. */
  private readonly subRetries = new Map<string, { attempt: number; timer: ReturnType<typeof setTimeout> | undefined }>();
  /**
   * Conversations whose resume point a server refused after taking the
   * subscribe (resumeRefused): no subscribe goes out for them, at a reopen
   * either, until their thread asks again (resubscribe) once it has
   * reloaded them, so that none carries the refused cursor.
   */
  private readonly held = new Set<string>();
  /** The current socket's refused resume was handled (its error and its close say it both). */
  private refusalHandled = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** What the pending retry waits out: a backoff of ours (a wake cuts it short) or a pause the server asked for. */
  private retryWait: 'backoff' | 'server' | null = null;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  /** The timer of the earliest pong awaited, and when it fires (ms since the epoch). */
  private pongDeadline: ReturnType<typeof setTimeout> | undefined;
  private pongDue = 0;
  /** When the socket now opening was made (ms since the epoch). */
  private connectingSince = 0;
  /**
   * The socket's session is confirmed: its hello came with session
   * "confirmed" (the server sends it only once it has confirmed the
   * session, protocol.md), or the answer to the ping sent on an older
   * server's hello came (confirmPing), so the socket is connected. A
   * socket the server accepts and then closes (1013 "too many
   * connections" or "cannot check the session right now", 4401 for a
   * session revoked meanwhile) gets no hello, and is never taken for a
   * connection: that would say "connected" for a moment and reload the
   * conversations at every retry.
   */
  private confirmed = false;
  /**
   * The socket's hello came without session "confirmed": a server before
   * that field, which sent hello before its session check and may close
   * with 4401 or 1013 right after it: the id of the ping sent at once,
   * which such a server answers once its check passed; "" otherwise. The
   * socket is connected only at that answer, not at any frame: one sent
   * to the user's sockets (a conversation renamed) may come before the
   * server's close.
   */
  private confirmPing = '';
  /**
   * The largest frame the server reads (its hello's maxFrameBytes, 0 until
   * it came): a larger one closes the socket with 1009, and would again at
   * each retry, so request refuses it before writing it.
   */
  private maxFrameBytes = 0;
  /**
   * The timer that gives up an open socket whose hello does not come: it
   * is not pinged by the interval before then, and a link cut right after
   * the upgrade (half-open TCP) would otherwise leave it waiting, never
   * connected, until the browser gives it up minutes later.
   */
  private helloDeadline: ReturnType<typeof setTimeout> | undefined;
  private readonly openWaiters = new Set<() => void>();
  /** The state last reported (null: none yet). */
  private shown: LinkState | null = null;

  constructor(
    private readonly handlers: TransportHandlers,
    private readonly opts: WSOptions,
  ) {
    this.everConnected = opts.resumed === true;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryWait = null;
    for (const id of [...this.subRetries.keys()]) this.forgetRetry(id);
    this.held.clear();
    this.stopPing();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onopen = null;
      ws.close(CloseCode.Normal);
    }
    this.failAll('Disconnected');
    for (const wake of [...this.openWaiters]) wake();
  }

  async send(r: SendRequest): Promise<Accepted> {
    await this.whenOpen();
    return accepted(await this.request({ type: 'send', ...r }), r.conversationId);
  }

  async regenerate(r: RegenerateRequest): Promise<Accepted> {
    await this.whenOpen();
    return accepted(await this.request({ type: 'regenerate', ...r }), r.conversationId);
  }

  async cancel(conversationId: string, messageId?: string): Promise<void> {
    await this.whenOpen();
    await this.request({ type: 'cancel', conversationId, ...(messageId ? { messageId } : {}) });
  }

  /**
   * whenOpen waits a little for a socket that is (re)connecting, so a message
   * sent during a short cut goes out once the socket is back instead of failing.
   */
  private whenOpen(): Promise<void> {
    if (this.isOpen() || this.stopped) return Promise.resolve();
    const wait = this.opts.openWaitMs ?? 5000;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.openWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, wait);
      this.openWaiters.add(done);
    });
  }

  subscribe(conversationId: string): void {
    this.subs.add(conversationId);
    this.sendSubscribe(conversationId);
  }

  resubscribe(conversationId: string): void {
    this.held.delete(conversationId); // its thread reloaded it: from its resume point now, sent at the reopen when closed
    if (this.subs.has(conversationId)) this.sendSubscribe(conversationId);
  }

  unsubscribe(conversationId: string): void {
    this.forgetRetry(conversationId);
    this.held.delete(conversationId);
    if (!this.subs.delete(conversationId)) return;
    if (this.isOpen()) this.write({ type: 'unsubscribe', conversationId });
  }

  release(conversationId: string): void {
    if (this.subs.has(conversationId) || !this.isOpen()) return; // a cut forgets it: a reopen follows the subscribed alone
    this.write({ type: 'unsubscribe', conversationId });
  }

  /**
   * reconnectNow retries at once (the user's Retry). A socket still opening
   * is replaced by a new one: its attempt may hang on a dead route (a phone
   * changing networks) until the browser gives it up minutes later, and
   * Retry would do nothing meanwhile. One open and awaiting its hello is
   * left to helloTimeoutMs, as checkNow leaves it: the server may be
   * checking the session.
   */
  reconnectNow(): void {
    if (this.stopped || this.isOpen()) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    if (this.ws?.readyState === WebSocket.CONNECTING) this.reopen();
    else this.connect();
  }

  /**
   * checkNow makes sure, after a wake, that the channel is alive: an open
   * socket is pinged at once and abandoned (a cut: reconnect and resume)
   * when its pong is not back within wakeCheckMs; a socket still opening
   * after that long (its connection attempt may have been made before the
   * sleep, and a browser gives one up only after minutes) is replaced by a
   * new one, while one open and awaiting its hello is left to
   * helloTimeoutMs; a socket waiting out a backoff of ours is retried now. A
   * pause the server asked for (1013, 4429) and a close that ends the
   * retries (1008, 1009) stand.
   */
  checkNow(): void {
    if (this.stopped) return;
    const within = this.opts.wakeCheckMs ?? 4000;
    if (this.isOpen()) this.ping(within);
    else if (this.ws) {
      // Still opening. One open and waiting for its hello is left to the
      // hello deadline: the server may be checking the session.
      if (this.ws.readyState === WebSocket.CONNECTING && Date.now() - this.connectingSince >= within) this.reopen();
    } else if (this.retryWait === 'backoff') this.reconnectNow();
  }

  /** reopen gives up the socket still opening, neither refused nor failed, for a new one at once. */
  private reopen(): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close();
    } catch {
      // closing a socket that is going anyway
    }
    this.connect();
  }

  drop(): void {
    this.abandon('dropped by the client');
  }

  /**
   * abandon ends the socket as if it had closed: its handlers are detached
   * and the reconnect path runs now. On a dead link (half-open TCP) a
   * browser's close() waits for the closing handshake, up to a minute,
   * before the close event, and the tab would say "connected" meanwhile.
   */
  private abandon(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    const opened = ws.readyState !== WebSocket.CONNECTING;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close(4000, reason);
    } catch {
      // closing a socket that is going anyway
    }
    this.onClose({ code: ABNORMAL_CLOSURE, reason }, opened);
  }

  /** isOpen reports whether the socket is open and its session confirmed (its hello came). */
  private isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.confirmed;
  }

  private connect(): void {
    this.retryWait = null;
    // A socket opening or open already (a retry made while a failed open
    // was being checked) stays the only one: a second would deliver every
    // frame twice, and the first would never be closed.
    if (this.stopped || this.ws) return;
    const token = this.opts.token();
    if (!token) {
      this.handlers.unauthorized();
      return;
    }
    // An attempt made while the link is said down (offline, or reconnecting
    // with a reason) leaves that state as it is: said again at each attempt
    // of a long outage, the live region repeated "Reconnecting…" and
    // "Offline" at every backoff, and the status line's Retry went and came
    // back (under the focus of the reader who pressed it).
    if (this.shown === null || this.shown === 'connected') this.report({ state: this.everConnected ? 'reconnecting' : 'connecting', kind: 'ws' });
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    this.opens++;
    let ws: WebSocket;
    try {
      ws = new Impl(this.opts.url ?? defaultSocketURL(), [PROTOCOL, `bearer.${token}`]);
    } catch {
      void this.failedOpen();
      return;
    }
    this.ws = ws;
    this.refusalHandled = false;
    this.confirmed = false;
    this.confirmPing = '';
    this.maxFrameBytes = 0;
    this.connectingSince = Date.now();
    let opened = false;
    clearTimeout(this.helloDeadline);
    ws.onopen = () => {
      opened = true;
      this.helloDeadline = setTimeout(() => {
        if (this.ws === ws && !this.confirmed) this.abandon('no hello');
      }, this.opts.helloTimeoutMs ?? 45000);
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.onMessage(ev);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose(ev, opened);
    };
  }

  private onOpen(): void {
    const again = this.everConnected;
    this.everConnected = true;
    this.attempt = 0;
    this.failedOpens = 0;
    this.report({ state: 'connected', kind: 'ws' });
    for (const id of this.subs) this.sendSubscribe(id);
    for (const wake of [...this.openWaiters]) wake();
    this.startPing();
    if (again) this.handlers.reconnected();
  }

  private onMessage(ev: MessageEvent): void {
    if (typeof ev.data !== 'string') return;
    const f = parseServerFrame(ev.data);
    if (!f) return;
    if (f.type === 'error' && f.id === undefined && f.code === 'bad_seq') {
      this.resumeRefused(f.message); // handled here, no news for the user
      return;
    }
    if (f.type === 'hello' && f.maxFrameBytes > 0) this.maxFrameBytes = f.maxFrameBytes;
    if (f.type === 'pong' && this.confirmed) this.slowCloses = 0;
    if (!this.confirmed) this.confirmOn(f);
    this.settle(f);
    this.handlers.frame(f);
  }

  /**
   * confirmOn counts the socket connected on f when f says its session is
   * confirmed: a hello with session "confirmed", or the answer to the ping
   * sent on a hello without it (an older server's).
   */
  private confirmOn(f: ServerFrame): void {
    if (f.type === 'hello' && f.session !== 'confirmed') {
      if (!this.confirmPing) {
        this.confirmPing = `${PING_PREFIX}${this.nextId++}`;
        this.write({ type: 'ping', id: this.confirmPing });
      }
      return;
    }
    const answer = (f.type === 'pong' || f.type === 'error') && this.confirmPing !== '' && String(f.id) === this.confirmPing;
    if (f.type !== 'hello' && !answer) return;
    this.confirmed = true;
    this.confirmPing = '';
    clearTimeout(this.helloDeadline);
    this.onOpen();
  }

  /** settle resolves or rejects the request an ack, error or pong answers. */
  private settle(f: ServerFrame): void {
    if (f.type !== 'ack' && f.type !== 'error' && f.type !== 'pong') return;
    if (f.type === 'pong') {
      this.clearPongDeadline();
      this.uncheckable = 0;
      this.toldCrowded = false;
    } else if (f.type === 'error' && String(f.id).startsWith(PING_PREFIX)) {
      // A ping refused (rate_limited: pings count against the frame
      // budget) got an answer all the same: the link is alive.
      this.clearPongDeadline();
      return;
    }
    if (f.id === undefined) return;
    const key = String(f.id);
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    if (f.type === 'error') p.reject(new ApiError(0, f.code, f.message));
    else if (f.type === 'ack') p.resolve(f);
  }

  private onClose(ev: Pick<CloseEvent, 'code' | 'reason'>, opened: boolean): void {
    this.stopPing();
    this.failAll('The connection was lost');
    if (this.stopped) return;
    if (ev.code === CloseCode.GoingAway && ev.reason === RESUME_REFUSED_REASON) this.resumeRefused(ev.reason);
    switch (ev.code) {
      case CloseCode.Unauthorized:
        this.handlers.unauthorized(ev.reason === ACCOUNT_DELETED_REASON ? 'accountDeleted' : undefined);
        return;
      case CloseCode.PolicyViolation:
      case CloseCode.TooBig:
        this.report({
          state: 'offline',
          kind: 'ws',
          retryOnly: true,
          detail: ev.code === CloseCode.TooBig ? 'The server refused a message that was too large.' : 'The server closed the connection (policy violation).',
        });
        return;
      case CloseCode.TooSlow:
        // At once the first time (125-250 ms), then backing off.
        this.schedule(backoffDelay(this.slowCloses++, 250), 'server');
        return;
      case CloseCode.TryAgainLater:
        // Each socket opens (so attempt starts again) and is closed at once
        // while the server's store is down, or while the user has too many
        // connections: back off on a count of our own, on the WebSocket
        // (the socket opened: no fallback).
        this.tryAgainLater(ev.reason);
        return;
      case CloseCode.RateLimited:
        this.report({ state: 'reconnecting', kind: 'ws', detail: 'Rate limited; waiting before reconnecting.' });
        this.schedule(10000 + Math.random() * 5000, 'server');
        return;
      default:
        if (!opened) void this.failedOpen();
        else {
          // Say so now: until the retry the link is down, whatever the last status said.
          this.report({ state: 'reconnecting', kind: 'ws' });
          const backoff = backoffDelay(this.attempt++, 250);
          // A server going away closes every tab at once: their retries are spread.
          this.schedule(isGoingAway(ev.code) ? goingAwayDelay(backoff) : backoff);
        }
    }
  }

  /**
   * resumeRefused handles a resume point refused after its subscribe was
   * taken: with several instances, an `error` bad_seq without `id` then the
   * close 1001 RESUME_REFUSED_REASON (protocol.md, Close codes), either
   * enough. Neither names the conversation, so every one followed from a
   * resume point is taken as refused: held (no subscribe at the reopen,
   * which would carry the same cursor and be refused again, in a loop) and
   * reported bad_seq, for its thread to reload it, the stored text taken as
   * the truth, and ask again, waiting when refused again
   * (ConversationThread.refusedResume). A conversation not refused resumes
   * from its stored length all the same: some text sent twice, no more.
   */
  private resumeRefused(message: string): void {
    if (this.refusalHandled) return;
    this.refusalHandled = true;
    for (const id of this.subs) {
      if (!this.handlers.resumePoint(id)) continue;
      this.held.add(id);
      this.forgetRetry(id);
      this.handlers.subscribeFailed(id, 'bad_seq', message);
    }
  }

  /** tryAgainLater handles a 1013 close: reconnect with backoff, the user told once of too many connections. */
  private tryAgainLater(reason: string): void {
    const crowded = reason === TOO_MANY_CONNECTIONS_REASON;
    // The state says "Reconnecting…": the detail says only why.
    const detail = crowded ? TOO_MANY_CONNECTIONS_DETAIL : 'The server cannot check the session right now.';
    this.report({ state: 'reconnecting', kind: 'ws', detail });
    if (crowded && !this.toldCrowded) {
      this.toldCrowded = true;
      this.handlers.notify(TOO_MANY_CONNECTIONS_NOTICE);
    }
    this.schedule(backoffDelay(this.uncheckable++, 1000), 'server');
  }

  /** failedOpen decides, with an HTTP check, between sign-in, offline, waiting for the server, retry and fallback. */
  private async failedOpen(): Promise<void> {
    // The check may hang on a dead link (up to checkAuth's own deadline):
    // meanwhile a wake retries at once, as during a backoff of ours.
    this.retryWait = 'backoff';
    const opens = this.opens;
    const verdict = await this.opts.checkAuth().catch(() => 'offline' as const);
    if (this.stopped || this.opens !== opens) return; // retried meanwhile (a wake, the user's retry): that socket decides
    if (verdict === 'unauthorized') {
      this.handlers.unauthorized();
      return;
    }
    if (verdict === 'offline') {
      this.report({ state: 'offline', kind: 'ws', detail: 'The server cannot be reached.' });
    } else if (typeof verdict === 'object') {
      // chatd answered, not now (it cannot check the token, a shutdown):
      // its reason, and no count toward the fallback, as the WebSocket
      // likely failed for the same reason.
      this.report({ state: 'reconnecting', kind: 'ws', detail: waitReason(verdict.unavailable) });
    } else if (++this.failedOpens >= (this.opts.fallbackAfter ?? 3)) {
      this.handlers.fallback();
      return;
    } else {
      this.report({ state: 'reconnecting', kind: 'ws' });
    }
    this.schedule(backoffDelay(this.attempt++, 500));
  }

  /** report tells the store the link's state, and remembers it. */
  private report(s: TransportStatus): void {
    this.shown = s.state;
    this.handlers.status(s);
  }

  private schedule(ms: number, wait: 'backoff' | 'server' = 'backoff'): void {
    clearTimeout(this.retryTimer);
    this.retryWait = wait;
    this.retryTimer = setTimeout(() => this.connect(), ms);
  }

  private sendSubscribe(conversationId: string): void {
    if (!this.isOpen() || this.held.has(conversationId)) return; // sent on (re)open; held: at the resubscribe
    clearTimeout(this.subRetries.get(conversationId)?.timer);
    const resume = this.handlers.resumePoint(conversationId);
    const frame: ClientFrame = { type: 'subscribe', conversationId, ...(resume ?? {}) };
    const sentAt = requestOrder();
    this.request(frame, 0).then(
      () => {
        this.forgetRetry(conversationId);
        this.handlers.subscribed?.(conversationId, sentAt);
      },
      (err: unknown) => {
        if (!(err instanceof ApiError) || err.code === 'network') return; // the reopen subscribes again
        if (TRANSIENT.has(err.code)) this.retrySubscribe(conversationId);
        else this.handlers.subscribeFailed(conversationId, err.code, err.message);
      },
    );
  }

  /**
   * retrySubscribe asks again, with backoff, for a subscribe refused for now
   * (a store or bus unavailable, a rate limit): without it the conversation
   * got no live frames until the next reconnect, and an answer being
   * resumed stayed streaming.
   */
  private retrySubscribe(conversationId: string): void {
    if (this.stopped || !this.subs.has(conversationId)) return;
    const r = this.subRetries.get(conversationId) ?? { attempt: 0, timer: undefined };
    clearTimeout(r.timer);
    r.timer = setTimeout(() => {
      if (this.subs.has(conversationId)) this.sendSubscribe(conversationId);
    }, backoffDelay(r.attempt++, 1000));
    this.subRetries.set(conversationId, r);
  }

  private forgetRetry(conversationId: string): void {
    clearTimeout(this.subRetries.get(conversationId)?.timer);
    this.subRetries.delete(conversationId);
  }

  /**
   * request writes a frame with a fresh id and waits for its ack (timeoutMs
   * 0: no timeout). A frame larger than the server reads (maxFrameBytes) is
   * refused too_large, not written: the server would close the socket
   * (1009), and again at each retry of it.
   */
  private request(frame: ClientFrame, timeoutMs = this.opts.requestTimeoutMs ?? SERVER_WAIT_MS): Promise<AckFrame> {
    if (!this.isOpen()) {
      return Promise.reject(new ApiError(0, 'network', 'Not connected to the server; reconnecting…'));
    }
    const id = `c${this.nextId++}`;
    const data = JSON.stringify({ ...frame, id });
    const size = utf8Length(data);
    if (this.maxFrameBytes > 0 && size > this.maxFrameBytes) {
      return Promise.reject(new ApiError(0, 'too_large', tooLargeText(size, this.maxFrameBytes)));
    }
    return new Promise<AckFrame>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new ApiError(0, 'timeout', 'The server did not answer in time.'));
            }, timeoutMs)
          : undefined;
      this.pending.set(id, { resolve, reject, timer });
      this.writeText(data);
    });
  }

  private write(frame: ClientFrame): void {
    this.writeText(JSON.stringify(frame));
  }

  private writeText(data: string): void {
    try {
      this.ws?.send(data);
    } catch {
      // the close handler deals with a dead socket
    }
  }

  private failAll(message: string): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ApiError(0, 'network', message));
    }
    this.pending.clear();
  }

  private startPing(): void {
    this.stopPing();
    const every = this.opts.pingIntervalMs ?? 25000;
    this.pingTimer = setInterval(() => {
      if (this.isOpen()) this.ping(Math.min(every, 15000));
    }, every);
  }

  /**
   * ping writes a ping; without a pong within withinMs the socket is
   * abandoned. A ping whose pong is due by then already stands for it: no
   * frame is written (pings count against the user's frame budget).
   */
  private ping(withinMs: number): void {
    const due = Date.now() + withinMs;
    if (this.pongDeadline !== undefined && this.pongDue <= due) return;
    this.write({ type: 'ping', id: `${PING_PREFIX}${this.nextId++}` });
    clearTimeout(this.pongDeadline);
    this.pongDue = due;
    this.pongDeadline = setTimeout(() => {
      this.pongDeadline = undefined;
      this.abandon('no pong');
    }, withinMs);
  }

  private clearPongDeadline(): void {
    clearTimeout(this.pongDeadline);
    this.pongDeadline = undefined;
  }

  private stopPing(): void {
    clearTimeout(this.helloDeadline);
    clearInterval(this.pingTimer);
    this.clearPongDeadline();
  }
}

function accepted(a: AckFrame, conversationId: string): Accepted {
  const replaced = a.replacedModel && a.model ? { replacedModel: a.replacedModel, model: a.model } : {};
  return { conversationId: a.conversationId ?? conversationId, userMessageId: a.userMessageId, messageId: a.messageId, ...replaced };
}

/** tooLargeText says a frame of size bytes is over the server's limit of max bytes. */
function tooLargeText(size: number, max: number): string {
  return `This message is too large for the server: ${size.toLocaleString('en')} bytes to send, it takes at most ${max.toLocaleString('en')}. Shorten it or send it in parts.`;
}
