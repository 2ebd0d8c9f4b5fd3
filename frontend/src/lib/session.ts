// Who is signed in: the token and user in storage and in the store, the
// account requests, and sign-ins and sign-outs made in other tabs.

import type { ApiClient } from './api';
import { Persist } from './persist';
import type { User } from './protocol';
import type { AppState } from './state';
import type { Store } from './store';

/** OtherTab is a change of session made in another tab of this browser. */
export type OtherTab = { kind: 'signedOut'; accountDeleted: boolean } | { kind: 'signedIn' };

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

  /** signIn stores a new session. */
  signIn(token: string, user: User): void {
    this.persist.saveSession(token, user);
    this.store.set((s) => ({ ...s, session: { token, user, notice: null } }));
  }

  /** refreshUser asks the server who this is (a renamed account, a first load). */
  async refreshUser(api: ApiClient): Promise<void> {
    try {
      const { user } = await api.me();
      const token = this.token();
      if (!token) return;
      this.persist.saveSession(token, user);
      this.store.set((s) => ({ ...s, session: { ...s.session, user } }));
    } catch {
      // the stored user is shown; a 401 ends the session through the API client
    }
  }

  /**
   * end forgets the session; notice is shown on the sign-in page. With
   * accountDeleted, the other tabs learn why (otherTab).
   */
  end(notice: string | null, accountDeleted = false): void {
    this.persist.clearSession(accountDeleted);
    this.store.set((s) => ({ ...s, session: { token: null, user: null, notice } }));
  }

  /**
   * otherTab reads a storage event: another tab signed out (the token is
   * gone; with the account deleted, when that tab said so) or signed in (a
   * new token, adopted here). Anything else is null.
   */
  otherTab(e: StorageEvent): OtherTab | null {
    if (e.key !== Persist.tokenKey) return null;
    const mine = this.token();
    if (!e.newValue && mine) return { kind: 'signedOut', accountDeleted: this.persist.accountDeleted() };
    if (e.newValue && e.newValue !== mine) {
      this.store.set((s) => ({ ...s, session: { token: e.newValue, user: this.persist.user<User>(), notice: null } }));
      return { kind: 'signedIn' };
    }
    return null;
  }
}
