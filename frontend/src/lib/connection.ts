// The choice of live channel: the WebSocket, or the SSE fallback once the
// WebSocket cannot be opened while HTTP works (remembered for the tab, and
// across tabs when set in localStorage by hand); and its check after a wake
// (wake.ts), when a dead link would otherwise be noticed only at the next
// ping.

import { ApiError, SERVER_WAIT_MS, type ApiClient } from './api';
import { serverUnavailable } from './errors';
import type { Persist } from './persist';
import { SSETransport } from './sseTransport';
import type { AuthVerdict, Transport, TransportHandlers, TransportKind } from './transport';
import { WakeWatch, type WakeOptions } from './wake';
import { WSTransport } from './ws';

const FALLBACK_FLAG = 'chatd.transport';

/**
 * AUTH_CHECK_MS bounds the token check after a failed channel: on a dead
 * link its request may otherwise wait for the browser to give it up,
 * minutes later, the status saying "Reconnecting…" (no Retry) meanwhile.
 * SERVER_WAIT_MS (45 s), as a request waits for its ack: the server answers
 * within its CHATD_REQUEST_TIMEOUT (30 s by default) while its database is
 * slow. Past it the check says offline (the channel is retried with
 * backoff, and a wake retries at once).
 */
const AUTH_CHECK_MS = SERVER_WAIT_MS;

/** ConnectionOptions configure a Connection. */
export interface ConnectionOptions {
  api: ApiClient;
  persist: Persist;
  /** The current token. */
  token: () => string | null;
  /** The conversation the tab follows now (the open one), if any. */
  followed: () => string | null;
  /** The app's frame and status handlers (fallback is handled here). */
  handlers: Omit<TransportHandlers, 'fallback'>;
  /** Socket URL; defaults to /ws on this origin. */
  socketUrl?: string;
  /** WebSocket constructor; defaults to the global one. */
  WebSocketImpl?: typeof WebSocket;
  /** The wake signs' timer (tickMs, lateMs); defaults as in wake.ts. */
  wake?: Omit<WakeOptions, 'onWake'>;
}

/** Connection owns the one live transport of the tab. */
export class Connection {
  private current: Transport | null = null;
  /** A channel of this session was connected: the next one opens as a reconnect. */
  private wasUp = false;
  /** Wake signs make the live channel check itself at once. */
  private readonly wake: WakeWatch;

  constructor(private readonly opts: ConnectionOptions) {
    this.wake = new WakeWatch({ ...opts.wake, onWake: () => this.current?.checkNow() });
  }

  /** transport is the live channel, or null when stopped. */
  get transport(): Transport | null {
    return this.current;
  }

  /** start connects with the preferred kind and follows the open conversation. */
  start(): void {
    this.wasUp = false;
    this.connect(this.preferredKind());
    this.wake.start();
  }

  /**
   * restart connects again with the current token (a new one after a
   * password change), as after a cut: the same kind of channel, the open
   * conversation followed from its resume point, reconnected() reported
   * once it is open.
   */
  restart(): void {
    this.connect(this.current?.kind ?? this.preferredKind(), true);
  }

  /** stop disconnects. */
  stop(): void {
    this.wake.stop();
    this.current?.stop();
    this.current = null;
    this.wasUp = false;
  }

  private preferredKind(): TransportKind {
    try {
      return sessionStorage.getItem(FALLBACK_FLAG) === 'sse' || this.opts.persist.get(FALLBACK_FLAG) === 'sse' ? 'sse' : 'ws';
    } catch {
      return 'ws';
    }
  }

  private connect(kind: TransportKind, resumed = false): void {
    this.current?.stop();
    const handlers: TransportHandlers = {
      ...this.opts.handlers,
      status: (s) => {
        if (s.state === 'connected') this.wasUp = true;
        this.opts.handlers.status(s);
      },
      fallback: () => this.fallback(),
    };
    const checkAuth = () => this.checkAuth();
    this.current =
      kind === 'ws'
        ? new WSTransport(handlers, { token: this.opts.token, checkAuth, url: this.opts.socketUrl, WebSocketImpl: this.opts.WebSocketImpl, resumed })
        : new SSETransport(this.opts.api, handlers, { checkAuth, resumed });
    this.current.start();
    const followed = this.opts.followed();
    if (followed) this.current.subscribe(followed);
  }

  private fallback(): void {
    try {
      sessionStorage.setItem(FALLBACK_FLAG, 'sse');
    } catch {
      // remembered for this page only
    }
    // After a cut (the WebSocket was up before): frames were missed, so the
    // first stream is a reconnect (the open conversation and the list reload).
    this.connect('sse', this.wasUp);
  }

  private async checkAuth(): Promise<AuthVerdict> {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), AUTH_CHECK_MS);
    try {
      await this.opts.api.raw('GET', '/api/auth/me', { auth: false, signal: ctrl.signal });
      return 'ok';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return 'unauthorized';
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) return 'ok';
      const why = serverUnavailable(err); // chatd answered: not a server out of reach
      return why !== null ? { unavailable: why } : 'offline'; // no answer in time too
    } finally {
      clearTimeout(timer);
    }
  }
}
