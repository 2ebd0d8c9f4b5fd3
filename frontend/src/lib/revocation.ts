// Sign-outs the server must hear of. Signing out is immediate in the
// browser, but the session (its token) ends on the server only when the
// logout request arrives: made offline, it would stay valid there. So the
// token is kept in storage, pending, and sent when the network is back (the
// next start of the app, the `online` event, before the next sign-in, and
// meanwhile again and again with backoff: the network may have been up and
// the server down), then forgotten. A sign-in on its way in any tab holds
// them back in every tab (a mark in storage, with an expiry that its live
// tab renews).

import { ApiError, SERVER_WAIT_MS, type ApiClient } from './api';
import { newClientId, type Persist, type Revocation } from './persist';

/** RevocationsOptions configure Revocations. */
export interface RevocationsOptions {
  persist: Persist;
  api: ApiClient;
  /**
   * How long one revocation may take before it is tried again later;
   * defaults to SERVER_WAIT_MS (45 s), past the server's own bound: a sign-in
   * waits for the pending ones (login), and a revocation given up sooner
   * could still end the new session once the server commits it.
   */
  timeoutMs?: number;
  /** The first pause before trying again after a failed pass, doubled up to 5 min; defaults to 30 s. */
  retryMs?: number;
  /**
   * How long the mark of a sign-in on its way holds the other tabs'
   * sign-outs back unless renewed; defaults to 60 s. A tab renews its mark
   * every half of it while its sign-in lasts, so only a tab that crashed
   * (or was closed) mid-sign-in lets it lapse.
   */
  signInMarkMs?: number;
}

/** Revocations sends the pending sign-outs, kept in storage until the server has them. */
export class Revocations {
  private flushing: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  /** Sign-ins on their way (pause): no sign-out is sent meanwhile. */
  private paused = 0;
  /** A flush was asked for while paused (here or in another tab): it is made when the pause ends. */
  private missed = false;
  /** This tab's id in the sign-in marks shared with the other tabs. */
  private readonly tab = newClientId();
  private pauses = 0;

  constructor(private readonly opts: RevocationsOptions) {}

  /** keep makes a signed-out session's token pending (a reload keeps it) until flush sends it. */
  keep(r: Revocation): void {
    this.opts.persist.addRevocation(r);
  }

  /**
   * flush sends every pending sign-out; one the server took (204), refused
   * as already over (401: expired, revoked meanwhile) or refused for good
   * (another 4xx) is forgotten, one that failed for now (offline, a
   * timeout, 408, 429, a server error) waits for the next flush. It never
   * rejects; concurrent calls share one pass, which sends what was kept
   * meanwhile too.
   */
  flush(): Promise<void> {
    if (this.paused > 0 || this.otherTabSigningIn()) {
      this.missed = true;
      return Promise.resolve();
    }
    if (this.flushing) return this.flushing; // it reads the list again after each send (sendAll)
    this.flushing = this.sendAll().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /**
   * pause holds every sign-out back while a sign-in is on its way, until
   * the function it returns is called (after signedIn), which makes a
   * flush asked for meanwhile (the online event, a retry's timer): the
   * user signing in is known only from its answer, and a logout of that
   * user reaching the server after it issued the new token would end the
   * new session too.
   */
  pause(): () => void {
    this.paused++;
    const id = `${this.tab}.${++this.pauses}`;
    const markMs = this.opts.signInMarkMs ?? 60_000;
    const mark = () => this.opts.persist.markSignIn(id, Date.now() + markMs);
    mark(); // the other tabs hold theirs back too (otherTabSigningIn)
    const renew = setInterval(mark, markMs / 2);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      clearInterval(renew);
      this.opts.persist.unmarkSignIn(id);
      if (--this.paused > 0 || !this.missed) return;
      this.missed = false;
      void this.flush();
    };
  }

  /**
   * signInsChanged is told that another tab changed the sign-in marks (a
   * storage event): a flush held back for its sign-in is made once no
   * sign-in is on its way.
   */
  signInsChanged(): void {
    if (!this.missed || this.paused > 0 || this.opts.persist.signInUntil() !== null) return;
    this.missed = false;
    void this.flush();
  }

  /**
   * otherTabSigningIn says whether a sign-in of another tab is on its way
   * (this tab's own are counted by paused); if so, a flush is set for when
   * its mark lapses, should that tab never say it ended (a crash).
   */
  private otherTabSigningIn(): boolean {
    const until = this.opts.persist.signInUntil();
    if (until === null) return false;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.flush(), Math.max(0, until - Date.now()) + 1);
    return true;
  }

  /**
   * signedIn drops the pending sign-outs of a user who signed in again on
   * this browser: a logout ends every session of the user, so sending one
   * now would end the new session too. Their next sign-out ends the old
   * token with the rest.
   */
  signedIn(userId: string): void {
    this.opts.persist.removeRevocations((r) => r.userId === userId);
  }

  private async sendAll(): Promise<void> {
    clearTimeout(this.retryTimer);
    // The list is read again after each send: a sign-out kept meanwhile
    // (the pass may wait SERVER_WAIT_MS on each) goes in this pass too.
    const tried = new Set<string>();
    for (;;) {
      const r = this.opts.persist.revocations().find((x) => !tried.has(x.token));
      if (!r) break;
      tried.add(r.token);
      if (this.paused > 0 || this.otherTabSigningIn()) {
        this.missed = true; // a sign-in began meanwhile: the rest waits for its end
        return;
      }
      const sent = await this.send(r);
      if (sent === 'done') this.opts.persist.removeRevocations((x) => x.token === r.token);
      else if (sent === 'answered') this.opts.persist.markTried(r.token); // its expiry now applies
      // unreached (offline, aborted): still untried, whatever this device's clock says
    }
    if (this.opts.persist.revocations().length === 0) {
      this.failures = 0;
      return;
    }
    const base = this.opts.retryMs ?? 30_000;
    const pause = Math.min(5 * 60_000, base * 2 ** Math.min(this.failures++, 10));
    this.retryTimer = setTimeout(() => void this.flush(), pause);
  }

  /**
   * send revokes one token; it says whether the server is done with it
   * (done), answered that it could not take it now (answered: 408, 429, a
   * server error), or was not heard from (unreached: offline, aborted).
   */
  private async send(r: Revocation): Promise<'done' | 'answered' | 'unreached'> {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.opts.timeoutMs ?? SERVER_WAIT_MS);
    try {
      await this.opts.api.revoke(r.token, ctrl.signal);
      return 'done';
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 0) return 'unreached'; // aborted (too slow) or offline: try again later
      const refused = err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
      return refused ? 'done' : 'answered';
    } finally {
      clearTimeout(timer);
    }
  }
}
