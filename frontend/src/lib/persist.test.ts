import { afterEach, describe, expect, it } from 'vitest';
import { Persist, memoryKV, type EndNotice, type EndReason } from './persist';
import { noteServerDate, resetServerClock } from './serverClock';
import { Session } from './session';
import type { AppState } from './state';
import { Store } from './store';

describe('Persist', () => {
  it('saveSession that storage refuses halfway keeps neither the token nor the user', () => {
    const kv = memoryKV();
    const p = new Persist(kv);
    p.saveSession('old', { id: 'u' });
    const set = kv.setItem;
    kv.setItem = (k, v) => {
      if (k === 'chatd.user') throw new DOMException('full', 'QuotaExceededError');
      set(k, v);
    };
    expect(p.saveSession('new', { id: 'v' })).toBe(false);
    expect([p.token(), kv.getItem('chatd.user')]).toEqual([null, null]);
  });

  it('clearDrafts removes every draft and nothing else', () => {
    const kv = memoryKV();
    const p = new Persist(kv);
    p.saveSession('tok', { id: 'u' });
    p.saveDraft('new', 'a');
    p.saveDraft('c1', 'b');
    p.saveDraft('c2', 'c');
    p.set('chatd.model', 'm');
    p.clearDrafts();
    expect([p.draft('new'), p.draft('c1'), p.draft('c2')]).toEqual(['', '', '']);
    expect(kv.length).toBe(3);
    expect([p.token(), p.get('chatd.model')]).toEqual(['tok', 'm']);
  });

  it('claimDrafts keeps the drafts of their owner, forgets another user’s, and adopts unowned ones only when asked', () => {
    const kv = memoryKV();
    const p = new Persist(kv);
    p.saveDraft('new', 'unowned');
    expect(p.claimDrafts('u', true)).toBe(false);
    expect(p.draft('new')).toBe('unowned');
    expect(p.claimDrafts('u')).toBe(false);
    expect(p.draft('new')).toBe('unowned');
    expect(p.claimDrafts('v')).toBe(true);
    expect(p.draft('new')).toBe('');
    p.saveDraft('c1', 'of v');
    expect(p.claimDrafts('u', true)).toBe(true); // owned by v: never adopted
    expect(p.draft('c1')).toBe('');

    const fresh = new Persist(memoryKV());
    fresh.saveDraft('new', 'saved before owners were recorded');
    expect(fresh.claimDrafts('w')).toBe(true); // a sign-in: whose they were is unknown
    expect(fresh.draft('new')).toBe('');
  });

  it('offers the model pick to the user who made it only, an unowned one (the versions before) only when asked', () => {
    const kv = memoryKV();
    const p = new Persist(kv);
    kv.setItem('chatd.model', 'old'); // a version before: no user
    expect([p.modelPick('u'), p.modelPick('u', true), p.modelPick(null, true)]).toEqual(['', 'old', 'old']);
    expect(p.claimModelPick('u', true)).toBe('old'); // the user found signed in at the page's start: theirs now
    expect(kv.getItem('chatd.model')).toBeNull();
    expect([p.modelPick('u'), p.modelPick('v'), p.modelPick(null, true)]).toEqual(['old', '', '']);
    p.saveModelPick('u', 'secret-model');
    expect(p.claimModelPick('u')).toBe('secret-model'); // the same user again: kept
    expect(p.claimModelPick('v', true)).toBe(''); // another user: never theirs, and forgotten
    expect(p.modelPick('u')).toBe('');
    expect(kv.length).toBe(0);

    p.saveModelPick(null, 'm'); // the user not known yet
    expect(p.claimModelPick('w')).toBe(''); // a sign-in: whose it was is unknown
    kv.setItem('chatd.modelPick', 'not JSON');
    expect(p.modelPick('u', true)).toBe('');
  });

  it('says why the last session ended, until the next sign-in', () => {
    const kv = memoryKV();
    const p = new Persist(kv);
    p.saveSession('tok', { id: 'u' });
    p.clearSession('accountDeleted');
    expect(p.token()).toBeNull();
    expect(p.user()).toBeNull();
    expect(p.endReason()).toBe('accountDeleted');
    p.saveSession('tok2', { id: 'v' });
    expect(p.endReason()).toBe('expired'); // none said: an expiry, the unsent texts kept
    p.clearSession();
    expect(p.endReason()).toBe('signedOut');
    p.clearSession('expired');
    expect(p.endReason()).toBe('expired');
    p.clearSession('signedOut');
    expect(p.endReason()).toBe('signedOut');
    kv.removeItem('chatd.ended'); // a version before wrote none, for an expiry as for a sign-out
    expect(p.endReason()).toBe('expired');
    kv.setItem('chatd.ended', 'a reason of a version after'); // not known here: an expiry too
    expect(p.endReason()).toBe('expired');
  });
});

describe('a sign-out kept with this device’s clock wrong', () => {
  const server = Date.UTC(2026, 11, 7, 12, 0, 0);
  const hour = 3600_000;
  /** jwt makes a token whose payload carries exp (seconds since the epoch); the signature is not read. */
  const jwt = (expMs: number) => `h.${btoa(JSON.stringify({ sub: 'u', exp: expMs / 1000 }))}.sig`;
  // JWT_TTL=1h, signed in 10 min ago: the server takes the token for 50 min more.
  const token = jwt(server + 50 * 60_000);
  afterEach(() => resetServerClock());

  it.each([
    ['two hours ahead, the server’s clock known', 2 * hour, true],
    ['two hours ahead, the server’s clock not known yet', 2 * hour, false],
    ['a day ahead, the server’s clock not known yet', 24 * hour, false],
  ])('%s: kept until tried once', (_name, ahead, known) => {
    const now = server + ahead;
    if (known) noteServerDate(new Date(server).toUTCString(), now - 50, now + 50);
    const p = new Persist(memoryKV());
    p.addRevocation({ token, userId: 'u' }, now);
    expect(p.revocations(now).map((r) => r.token)).toEqual([token]);
  });

  it('once tried, kept until the token’s expiry on the server’s clock, with a grace', () => {
    const now = server + 2 * hour;
    noteServerDate(new Date(server).toUTCString(), now - 50, now + 50);
    const p = new Persist(memoryKV());
    p.addRevocation({ token, userId: 'u' }, now);
    p.markTried(token);
    expect(p.revocations(now + 49 * 60_000).map((r) => r.token)).toEqual([token]); // valid on the server for a minute more
    expect(p.revocations(now + 50 * 60_000 + hour + 1)).toEqual([]);
  });

  it('kept before the server’s clock was known, tried once its answer told it: kept until the token’s expiry on the server’s clock', () => {
    const now = server + 2 * hour;
    const p = new Persist(memoryKV());
    p.addRevocation({ token, userId: 'u' }, now); // its expiry reckoned by this device's clock: past already
    noteServerDate(new Date(server).toUTCString(), now - 50, now + 50); // the answer to the try (a 503) says the time
    p.markTried(token);
    expect(p.revocations(now + 49 * 60_000).map((r) => r.token)).toEqual([token]);
    expect(p.revocations(now + 50 * 60_000 + hour + 1)).toEqual([]);
  });
});

describe('Session.otherTab', () => {
  function signedIn() {
    const persist = new Persist(memoryKV());
    persist.saveSession('tok', { id: 'u' });
    const store = new Store<AppState>({ session: Session.initial(persist) } as AppState, { throttleMs: 0 });
    return { persist, session: new Session(store, persist) };
  }
  const tokenGone = () => new StorageEvent('storage', { key: Persist.tokenKey, oldValue: 'tok', newValue: null });

  it.each<[string, EndReason | undefined, EndNotice | null, EndReason, EndNotice | null]>([
    ['a sign-out', 'signedOut', null, 'signedOut', null],
    ['an expiry in a tab of the version before (no reason stored: as it read then)', undefined, null, 'signedOut', null],
    ['an expiry (a token refused)', 'expired', null, 'expired', null],
    ['an expiry after a deletion that failed past its sign-out', 'expired', 'accountNotDeleted', 'expired', 'accountNotDeleted'],
    ['an expiry after a deletion left unanswered past its sign-out', 'expired', 'accountDeletionUnknown', 'expired', 'accountDeletionUnknown'],
    ['an account deleted, its data still being removed', 'accountDeleted', 'accountDeleting', 'accountDeleted', 'accountDeleting'],
  ])('%s in another tab', (_, ended, said, reason, notice) => {
    const { persist, session } = signedIn();
    persist.clearSession(ended, said);
    expect(session.otherTab(tokenGone())).toEqual({ kind: 'signedOut', reason, notice });
  });

  it('an account deleted reads so in other tabs when storage has no room for its notice', () => {
    const kv = memoryKV();
    const full: typeof kv = {
      ...kv,
      get length() {
        return kv.length;
      },
      setItem: (k, v) => {
        if (k === 'chatd.endedNotice') throw new DOMException('full', 'QuotaExceededError');
        kv.setItem(k, v);
      },
    };
    const persist = new Persist(full);
    persist.saveSession('tok', { id: 'u' });
    const store = new Store<AppState>({ session: Session.initial(persist) } as AppState, { throttleMs: 0 });
    const session = new Session(store, persist);
    persist.clearSession('accountDeleted', 'accountDeleting');
    expect(session.otherTab(tokenGone())).toEqual({ kind: 'signedOut', reason: 'accountDeleted', notice: null });
  });

  it('a notice shared at an expiry is gone once signed in again', () => {
    const { persist } = signedIn();
    persist.clearSession('expired', 'accountNotDeleted');
    persist.saveSession('tok2', { id: 'u' });
    persist.clearSession('expired');
    expect(persist.endNotice()).toBeNull();
    persist.clearSession('expired', 'accountNotDeleted');
    persist.saveSession('tok3', { id: 'u' });
    expect(persist.endNotice()).toBeNull();
  });

  const tokenSet = (token: string) => new StorageEvent('storage', { key: Persist.tokenKey, oldValue: 'tok', newValue: token });

  it('a new token for the same user (a password change in another tab) is adopted as renewed', () => {
    const { persist, session } = signedIn();
    persist.saveSession('tok2', { id: 'u', email: 'new@b.c' });
    expect(session.otherTab(tokenSet('tok2'))).toEqual({ kind: 'renewed' });
    expect(session.token()).toBe('tok2');
    expect(session.otherTab(tokenSet('tok2'))).toBeNull(); // already adopted
  });

  it('another user\'s token is a sign-in', () => {
    const { persist, session } = signedIn();
    persist.saveSession('tok2', { id: 'v' });
    expect(session.otherTab(tokenSet('tok2'))).toEqual({ kind: 'signedIn', replaced: true });
  });

  it('the end of a password change in another tab (its mark removed)', () => {
    const { persist, session } = signedIn();
    persist.beginPasswordChange(1234);
    expect(persist.passwordChangeSince()).toBe(1234);
    expect(session.otherTab(new StorageEvent('storage', { key: Persist.passwordChangeKey, newValue: '1234' }))).toBeNull();
    persist.endPasswordChange();
    expect(persist.passwordChangeSince()).toBeNull();
    expect(session.otherTab(new StorageEvent('storage', { key: Persist.passwordChangeKey, oldValue: '1234', newValue: null }))).toEqual({ kind: 'changeEnded' });
  });
});
