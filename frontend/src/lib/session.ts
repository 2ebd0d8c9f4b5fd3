// Who is signed in: the token and user in storage and in the store, the
// account requests, and sign-ins, sign-outs and new tokens (a password
// change) made in other tabs.

import type { ApiClient } from './api';
import { Persist, type EndNotice, type EndReason } from './persist';
import type { User } from './protocol';
import type { AppState } from './state';
import type { Store } from './store';

/**
 * OtherTab is a change of session made in another tab of this browser:
 * signed out (the token is gone, with why: a sign-out, an expiry, an
 * account deleted), signed in (a token where there was none,
 * or, replaced, another user's in place of this tab's: a tab asleep meanwhile
 * hears of the sign-out and the sign-in that followed at once), renewed (a new token for the same user: a password
 * change), or a password change ended (its mark is gone).
 */
export type OtherTab =
  | { kind: 'signedOut'; reason: EndReason; notice: EndNotice | null }
  | { kind: 'signedIn'; replaced: boolean }
  | { kind: 'renewed' }
  | { kind: 'changeEnded' };

/** Session keeps AppState.session in step with storage. */
export class Session {
  constructor(
    private readonly store: Store<AppState>,
    private readonly persist: Persist,
  ) {}

  /** initial is the session found in storage at start. */
  static initial(persist: Persist): AppState['session'] {
    const token = persist.token();
    return { token, user: token ? persist.user<User>() : null, notice: null };
  }

  /** token is the current token, or null when signed out. */
  token(): string | null {
    return this.store.state.session.token;
  }

  /**
   * signIn stores a new session (a sign-in, or the new token of a password
   * change). It returns false when the browser's storage could not keep it
   * (full): the session holds in memory, and a reload signs out.
   */
  signIn(token: string, user: User): boolean {
    const kept = this.persist.saveSession(token, user);
    this.store.set((s) => ({ ...s, session: { token, user, notice: null } }));
    return kept;
  }

  /**
   * refreshUser asks the server who this is (a renamed account, a first
   * load). The answer is about the token the question carried: it is
   * dropped when another token is current by then (a sign-out, another
   * user's sign-in here or in another tab, a password change), so a late
   * answer never stores one user's details with another's token.
   */
  async refreshUser(api: ApiClient): Promise<void> {
    const token = this.token();
    if (!token) return;
    try {
      const { user } = await api.me(token);
      if (this.token() !== token) return;
      this.persist.saveSession(token, user);
      this.store.set((s) => ({ ...s, session: { ...s.session, user } }));
    } catch {
      // the stored user is shown; a 401 ends the session through the API client
    }
  }

  /**
   * end forgets the session; notice is shown on the sign-in page. The
   * other tabs learn why it ended (otherTab), and say shared, when given,
   * as this one says notice.
   */
  end(notice: string | null, reason: EndReason, shared: EndNotice | null = null): void {
    this.persist.clearSession(reason, shared);
    this.store.set((s) => ({ ...s, session: { token: null, user: null, notice } }));
  }

  /**
   * otherTab reads a storage event: the token changed (follow), or a
   * password change's mark went. Anything else is null.
   */
  otherTab(e: StorageEvent): OtherTab | null {
    if (e.key === Persist.passwordChangeKey) return e.newValue ? null : { kind: 'changeEnded' };
    return e.key === Persist.tokenKey ? this.follow() : null;
  }

  /**
   * follow brings this tab in step with the token another tab stored: gone
   * (with why, as that tab said: signed out, expired, account deleted, and
   * what it said of an expiry for every tab), or new
   * (adopted here). null when storage holds this tab's token.
   */
  follow(): OtherTab | null {
    const stored = this.persist.token();
    const mine = this.token();
    if (!stored) return mine ? { kind: 'signedOut', reason: this.persist.endReason(), notice: this.persist.endNotice() } : null;
    if (stored === mine) return null;
    const before = this.store.state.session.user;
    const user = this.persist.user<User>();
    this.store.set((s) => ({ ...s, session: { token: stored, user, notice: null } }));
    return mine && user?.id === before?.id ? { kind: 'renewed' } : { kind: 'signedIn', replaced: !!mine };
  }
}
