// A password change revokes every token issued before, this tab's included,
// and the server closes their sockets (4401) before or after it answers the
// request with the new token. RefusalHold keeps such a refusal from ending
// the session while a change is in flight: this tab's own request (its
// answer decides), or another tab's of this browser, which marks the change
// in storage and then stores the new token (every tab adopts it) or, when
// refused, removes the mark. An account deletion holds the same way: the
// server closes the account's sockets (4401 "account deleted") before it
// removes the account, which may still fail (ChatApp.deleteAccount).

import { SERVER_WAIT_MS } from './api';
import type { Persist } from './persist';

/**
 * CHANGE_WAIT_MS is how long another tab's change may hold a refusal here:
 * past the asking tab's own wait for its answer (SERVER_WAIT_MS: the server
 * answers a slow deletion 202 at its CHATD_REQUEST_TIMEOUT, 30 s), by a
 * margin for its end to reach this tab. Shorter, this tab ended as a plain
 * expiry while the answer was still to come, and the asking tab said
 * otherwise.
 */
export const CHANGE_WAIT_MS = SERVER_WAIT_MS + 5000;

/** RefusalHold decides whether a refused token ends the session now or waits for a password change. */
export class RefusalHold {
  /** This tab's change is in flight. */
  private mine = false;
  private held = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * release ends the session when a refusal held for another tab's change
   * is not followed by a new token (the change failed, or took longer than
   * waitMs); waitMs defaults to CHANGE_WAIT_MS.
   */
  constructor(
    private readonly persist: Persist,
    private readonly release: () => void,
    private readonly waitMs = CHANGE_WAIT_MS,
  ) {}

  /** begin marks this tab's change as sent, in storage too for the other tabs. */
  begin(): void {
    this.clear();
    this.mine = true;
    this.persist.beginPasswordChange(Date.now());
  }

  /**
   * end marks this tab's change as answered (call it after storing a new
   * token) and says whether a refusal was held meanwhile: the caller ends
   * the session after a failed change, and ignores it after a success.
   */
  end(): boolean {
    const held = this.held;
    this.mine = false;
    this.clear();
    this.persist.endPasswordChange();
    return held;
  }

  /** holding says whether a refused token is held now (end says so too, and ends the change). */
  holding(): boolean {
    return this.held;
  }

  /**
   * holdOwn holds another tab's end of the session (an expiry) while this
   * tab's own change is in flight: its answer decides, as for this tab's
   * own refusal. Another tab's change does not hold it (that tab decides).
   */
  holdOwn(): boolean {
    return this.mine && (this.held = true);
  }

  /** hold says whether a refused token waits for a change in flight here or in another tab. */
  hold(): boolean {
    if (this.mine) return (this.held = true);
    const since = this.persist.passwordChangeSince();
    const left = since === null ? 0 : since + this.waitMs - Date.now();
    if (left <= 0) return false;
    this.held = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.released(), left);
    return true;
  }

  /** released: another tab's change ended and no new token came: a held refusal ends the session now. */
  released(): void {
    if (!this.held || this.mine) return;
    this.clear();
    this.release();
  }

  /** clear forgets a held refusal: a new token was adopted, or the session ended. */
  clear(): void {
    this.held = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
