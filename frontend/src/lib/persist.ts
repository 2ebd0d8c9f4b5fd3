// What survives a reload in localStorage: the token, the theme, the
// composer's draft per conversation and the model picked for new chats
// (each kept through reconnects and the same user's re-logins, forgotten when
// another user signs in on this browser or the account is deleted; the
// drafts also at a sign-out, kept only through an expiry); while a tab changes the password,
// a mark telling the other tabs that a refused token will be replaced; and,
// while a tab signs in, a mark holding back every tab's pending sign-outs.

import { serverToClient } from './serverClock';

const TOKEN = 'chatd.token';
const USER = 'chatd.user';
const DRAFT = 'chatd.draft.';
/**
 * The texts a page keeps in storage under its own id, besides the
 * composers': 'sending', a message on its way (chatd.slot.sending.<page>.<draft
 * key>.<clientMessageId>), and 'edit', an open edit box's text
 * (chatd.slot.edit.<page>.<conversation id>.<parent id>), each JSON
 * {text, at?, user} (KeptSlot: see drafts.ts).
 */
const KEPT = { sending: 'chatd.slot.sending.', edit: 'chatd.slot.edit.' } as const;
/**
 * The same slots as the versions before kept them, read (and removed) still:
 * a bare text, or for 'sending' JSON {text, at}. Their prefix is not
 * KEPT's, so that a tab of such a version (open during a deploy) never
 * reads a slot of this one as a bare text.
 */
const LEGACY = { sending: 'chatd.sending.', edit: 'chatd.edit.' } as const;
/** ROOT stands for an empty id in those keys (an edit of a first message: its parent id is ""). */
const ROOT = '~';
/** The id of the user whose drafts are saved: another user signing in on this browser does not get them. */
const DRAFTS_OWNER = 'chatd.draftsOwner';
/**
 * The model last picked for new chats, with the id of the user who picked it:
 * JSON {user?, model} (no user: picked before the user was known). Another
 * user is not offered it, and forgets it when signing in (claimModelPick).
 */
const MODEL_PICK = 'chatd.modelPick';
/**
 * The pick as the versions before kept it, for whoever signed in: a bare
 * model id, read as unowned (and removed once saved again). Not
 * MODEL_PICK, so that a tab of such a version never reads a pick of this
 * one as a model id.
 */
const LEGACY_MODEL = 'chatd.model';
/**
 * Why the last session ended, for the other tabs that see its token go:
 * SIGNED_OUT, ACCOUNT_DELETED or EXPIRED. Absent, or a value this version
 * does not know: read as an expiry, so that the unsent texts are kept.
 * The versions before wrote none for an expiry nor for a sign-out (they
 * kept those texts at both), and a sign-in whose save fails (storage
 * full) leaves none while it takes its token away (saveSession): only an
 * explicit sign-out forgets what was typed.
 */
const ENDED = 'chatd.ended';
const SIGNED_OUT = 'signed-out';
const ACCOUNT_DELETED = 'account-deleted';
const EXPIRED = 'expired';
/** What the tab that ended the last session said of it for every tab (EndNotice); absent: what ENDED says. */
const ENDED_NOTICE = 'chatd.endedNotice';
const END_NOTICES: readonly EndNotice[] = ['accountNotDeleted', 'accountDeletionUnknown', 'accountDeleting'];

/**
 * EndReason is why a session ended: signed out, its token refused
 * (expired, revoked by a password change elsewhere), or its account deleted.
 */
export type EndReason = 'signedOut' | 'expired' | 'accountDeleted';

/**
 * EndNotice is what the tab that ended a session said of it, for the other
 * tabs to say too: the outcome of a deletion it asked for, which only it
 * knows: failed after the sign-out (accountNotDeleted), unanswered
 * (accountDeletionUnknown), or its data still being removed (accountDeleting).
 */
export type EndNotice = 'accountNotDeleted' | 'accountDeletionUnknown' | 'accountDeleting';
/** When (ms since the epoch) a tab sent a password change still unanswered; absent: none. */
const PASSWORD_CHANGE = 'chatd.passwordChange';
/** The tokens of sign-outs the server has not heard of yet (made offline): JSON [{token, userId, expiresAt?, untried?}]. */
const REVOKE = 'chatd.revoke';
/** At most this many are kept: sign-ins need the network, which sends them. */
const REVOKE_MAX = 10;
/**
 * How long after its expiry a token is still sent: the server takes an
 * expired token within its leeway (30 s, transport/auth). The expiry is the
 * server's, turned into this device's clock (serverClock.ts); an hour covers
 * the leeway and a correction that is off (no answer read yet, the device's
 * clock changed since). Sending a dead token costs one 401.
 */
const REVOKE_GRACE_MS = 3600_000;
/** How long a token whose expiry cannot be read is kept: the longest JWT_TTL the server allows (365 days). */
const REVOKE_UNREADABLE_MS = 365 * 24 * 3600_000;

/**
 * The sign-ins on their way in the tabs of this browser: JSON [{id, until}],
 * until in ms since the epoch. While one is on its way no tab sends a
 * pending sign-out (revocation.ts); until bounds a tab that crashed.
 */
const SIGNING_IN = 'chatd.signingIn';

/** Revocation is a signed-out session still to end on the server. */
export interface Revocation {
  token: string;
  userId: string;
  /**
   * When (ms since the epoch) the revocation stops being needed: the
   * token's own expiry (its exp claim) plus a grace, or, unreadable, a year
   * after it was kept. Absent in entries stored before it was recorded:
   * read from the token then.
   */
  expiresAt?: number;
  /**
   * Never answered yet: kept whatever expiresAt says until the server
   * answers one try (markTried; a try that never reached it does not count).
   * A clock wrong enough would otherwise drop a sign-out the server still
   * needs before it is ever sent; the server's 401 says when it is not.
   */
  untried?: boolean;
}

/**
 * tokenExpiry reads the exp claim (seconds) of a JWT as ms since the
 * epoch, without checking anything else; null when it cannot be read.
 */
export function tokenExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const b64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const claims: unknown = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * revocationDeadline is when a revocation of token is no longer needed
 * (this device's clock), or null when its expiry cannot be read.
 */
function revocationDeadline(token: string): number | null {
  const exp = tokenExpiry(token);
  return exp === null ? null : serverToClient(exp) + REVOKE_GRACE_MS;
}

/** KV is the part of Storage this app uses (localStorage, or a map in tests). */
export interface KV {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  /** The number of keys, and the name of the i-th (to find every draft). */
  readonly length: number;
  key(index: number): string | null;
}

/** memoryKV is a KV for environments without localStorage. */
export function memoryKV(): KV {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
    get length() {
      return m.size;
    },
    key: (i) => [...m.keys()][i] ?? null,
  };
}

/** browserKV returns localStorage, or memory when it is unavailable (private modes). */
export function browserKV(): KV {
  try {
    const probe = '__chatd_probe';
    window.localStorage.setItem(probe, '1');
    window.localStorage.removeItem(probe);
    return window.localStorage;
  } catch {
    return memoryKV();
  }
}

/** Persist reads and writes this app's keys. */
export class Persist {
  constructor(private readonly kv: KV) {}

  static readonly tokenKey = TOKEN;
  static readonly passwordChangeKey = PASSWORD_CHANGE;
  static readonly signingInKey = SIGNING_IN;

  token(): string | null {
    return this.kv.getItem(TOKEN);
  }

  user<T>(): T | null {
    const raw = this.kv.getItem(USER);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return null;
    }
  }

  /**
   * saveSession stores the token and user; false when the browser's storage
   * is full (or refused): the session then holds in this tab's memory only,
   * and a reload does not find it.
   */
  saveSession(token: string, user: unknown): boolean {
    try {
      this.kv.removeItem(ENDED);
      this.kv.removeItem(ENDED_NOTICE);
      this.kv.setItem(TOKEN, token);
      this.kv.setItem(USER, JSON.stringify(user));
      return true;
    } catch {
      // Half a session (the new token beside the user before it, another
      // user's perhaps) would be found by a reload: keep neither. No reason
      // is left (removed above): the other tabs read the token gone as an
      // expiry, never as a sign-out that forgets their unsent texts.
      this.kv.removeItem(TOKEN);
      this.kv.removeItem(USER);
      return false;
    }
  }

  /**
   * clearSession forgets the token and user, saying first why the session
   * ended (endReason() in other tabs, when they see the token go), and
   * what it said of it for every tab (endNotice()).
   */
  clearSession(reason: EndReason = 'signedOut', notice: EndNotice | null = null): void {
    const value = { signedOut: SIGNED_OUT, expired: EXPIRED, accountDeleted: ACCOUNT_DELETED }[reason];
    try {
      this.kv.setItem(ENDED, value);
    } catch {
      // storage full: no reason, read as an expiry (the unsent texts are kept)
      this.kv.removeItem(ENDED);
    }
    try {
      if (notice) this.kv.setItem(ENDED_NOTICE, notice);
      else this.kv.removeItem(ENDED_NOTICE);
    } catch {
      // storage full: the reason stands without the notice
      this.kv.removeItem(ENDED_NOTICE);
    }
    this.kv.removeItem(TOKEN);
    this.kv.removeItem(USER);
  }

  /**
   * endReason says why the last session ended: an expiry when no tab said
   * (see ENDED), so that only an explicit sign-out or a deleted account
   * forgets the unsent texts.
   */
  endReason(): EndReason {
    switch (this.kv.getItem(ENDED)) {
      case SIGNED_OUT:
        return 'signedOut';
      case ACCOUNT_DELETED:
        return 'accountDeleted';
      default:
        return 'expired';
    }
  }

  /** endNotice is what the tab that ended the last session said of it for every tab, or null. */
  endNotice(): EndNotice | null {
    const value = this.kv.getItem(ENDED_NOTICE);
    return END_NOTICES.find((n) => n === value) ?? null;
  }

  /** beginPasswordChange says (to the other tabs) that a password change was sent at the time given. */
  beginPasswordChange(at: number): void {
    try {
      this.kv.setItem(PASSWORD_CHANGE, String(at));
    } catch {
      // storage full: the other tabs are not told, and end their session if their token is refused
    }
  }

  /** endPasswordChange says the password change was answered (after the new token, if any, was saved). */
  endPasswordChange(): void {
    this.kv.removeItem(PASSWORD_CHANGE);
  }

  /** passwordChangeSince is when a tab sent the password change still unanswered, or null. */
  passwordChangeSince(): number | null {
    const at = Number(this.kv.getItem(PASSWORD_CHANGE) ?? '');
    return at > 0 ? at : null;
  }

  /**
   * revocations are the signed-out sessions the server has not heard of
   * yet, oldest first. Those tried once whose token has expired (expiresAt
   * passed) need no revocation: they are dropped from storage here.
   */
  revocations(now = Date.now()): Revocation[] {
    const stored = this.storedRevocations();
    const deadline = (r: Revocation) => (typeof r.expiresAt === 'number' ? r.expiresAt : (revocationDeadline(r.token) ?? Infinity));
    const live = stored.filter((r) => r.untried === true || deadline(r) > now);
    if (live.length !== stored.length) this.saveRevocations(live);
    return live;
  }

  private storedRevocations(): Revocation[] {
    try {
      const v: unknown = JSON.parse(this.kv.getItem(REVOKE) ?? '[]');
      return Array.isArray(v) ? v.filter((r): r is Revocation => typeof r?.token === 'string' && typeof r?.userId === 'string') : [];
    } catch {
      return [];
    }
  }

  /**
   * addRevocation keeps a signed-out session to end on the server (the
   * newest REVOKE_MAX), untried: it is kept until the server answers
   * a try (markTried), then until its token expires (see Revocation.expiresAt).
   */
  addRevocation(r: Revocation, now = Date.now()): void {
    const kept = { ...r, expiresAt: r.expiresAt ?? revocationDeadline(r.token) ?? now + REVOKE_UNREADABLE_MS, untried: true };
    this.saveRevocations([...this.revocations(now).filter((x) => x.token !== r.token), kept].slice(-REVOKE_MAX));
  }

  /**
   * markTried says the server answered a revocation of token and is not
   * done with it yet: its expiry applies from now on, read again from the
   * token by the server's clock as now known (its answer's Date), the one
   * kept having been reckoned maybe before the clock was.
   */
  markTried(token: string): void {
    const stored = this.storedRevocations();
    if (!stored.some((r) => r.token === token && r.untried)) return;
    const tried = (r: Revocation) => ({ token: r.token, userId: r.userId, expiresAt: revocationDeadline(r.token) ?? r.expiresAt });
    this.saveRevocations(stored.map((r) => (r.token === token ? tried(r) : r)));
  }

  /** markSignIn records (or renews) a sign-in on its way in a tab, until the time given. */
  markSignIn(id: string, until: number, now = Date.now()): void {
    this.saveSignIns([...this.signIns(now).filter((m) => m.id !== id), { id, until }]);
  }

  /** unmarkSignIn says the sign-in id is no longer on its way. */
  unmarkSignIn(id: string, now = Date.now()): void {
    this.saveSignIns(this.signIns(now).filter((m) => m.id !== id));
  }

  /** signInUntil is the latest end of the sign-ins still marked in any tab, or null when none is. */
  signInUntil(now = Date.now()): number | null {
    const marks = this.signIns(now);
    return marks.length ? Math.max(...marks.map((m) => m.until)) : null;
  }

  /** signIns are the sign-in marks not expired. */
  private signIns(now: number): Array<{ id: string; until: number }> {
    try {
      const v: unknown = JSON.parse(this.kv.getItem(SIGNING_IN) ?? '[]');
      if (!Array.isArray(v)) return [];
      return v.filter((m): m is { id: string; until: number } => typeof m?.id === 'string' && typeof m?.until === 'number' && m.until > now);
    } catch {
      return [];
    }
  }

  private saveSignIns(marks: Array<{ id: string; until: number }>): void {
    try {
      if (marks.length) this.kv.setItem(SIGNING_IN, JSON.stringify(marks));
      else this.kv.removeItem(SIGNING_IN);
    } catch {
      // storage full: the pause holds in this tab only
    }
  }

  /** removeRevocations forgets the sessions whose token matches. */
  removeRevocations(match: (r: Revocation) => boolean): void {
    const before = this.revocations();
    const after = before.filter((r) => !match(r));
    if (after.length !== before.length) this.saveRevocations(after);
  }

  private saveRevocations(list: Revocation[]): void {
    try {
      if (list.length) this.kv.setItem(REVOKE, JSON.stringify(list));
      else this.kv.removeItem(REVOKE);
    } catch {
      // storage full: the sign-out is sent from this page only
    }
  }

  /** draftOf returns the draft key a storage key holds (another tab's save), or null for any other key. */
  static draftOf(storageKey: string | null): string | null {
    return storageKey?.startsWith(DRAFT) ? storageKey.slice(DRAFT.length) : null;
  }

  /** draftsOwner is the id of the user whose composer texts are saved, or null when none is recorded. */
  draftsOwner(): string | null {
    return this.kv.getItem(DRAFTS_OWNER);
  }

  /** draft returns the saved composer text of a conversation ("new" for a new chat). */
  draft(key: string): string {
    return this.kv.getItem(DRAFT + key) ?? '';
  }

  saveDraft(key: string, text: string): void {
    try {
      if (text) this.kv.setItem(DRAFT + key, text);
      else this.kv.removeItem(DRAFT + key);
    } catch {
      // storage full: the draft lives in memory only
    }
  }

  /**
   * saveKept stores a text a page keeps under its own id (see KeptText),
   * or with null (or an empty text) removes it, in either format; it
   * returns false when storage refused it.
   */
  saveKept(kind: KeptKind, page: string, key: string, id: string, slot: KeptSlot | null): boolean {
    const name = keptName(KEPT[kind], page, key, id);
    try {
      if (slot?.text) this.kv.setItem(name, JSON.stringify(slot));
      else {
        this.kv.removeItem(name);
        this.kv.removeItem(keptName(LEGACY[kind], page, key, id));
      }
      return true;
    } catch {
      return false; // storage full: the text lives in memory only
    }
  }

  /** hasKept says whether a page's slot is still in storage (another page may have taken it up). */
  hasKept(kind: KeptKind, page: string, key: string, id: string): boolean {
    return this.kv.getItem(keptName(KEPT[kind], page, key, id)) !== null;
  }

  /** kept lists the texts of a kind the pages keep for key (a conversation id), in either format. */
  kept(kind: KeptKind, key: string): KeptText[] {
    const out: KeptText[] = [];
    for (const [prefix, legacy] of [
      [KEPT[kind], false],
      [LEGACY[kind], true],
    ] as const) {
      for (const name of this.keys(prefix)) {
        const [page, k, id, ...rest] = name.slice(prefix.length).split('.');
        if (k !== key || !page || !id || rest.length > 0) continue;
        const slot = readSlot(this.kv.getItem(name) ?? '', legacy);
        out.push({ page, key: k, id: id === ROOT ? '' : id, ...slot });
      }
    }
    return out;
  }

  private keys(prefix: string): string[] {
    const keys: string[] = [];
    for (let i = 0; i < this.kv.length; i++) {
      const k = this.kv.key(i);
      if (k?.startsWith(prefix)) keys.push(k);
    }
    return keys;
  }

  /**
   * claimDrafts makes userId the owner of the saved composer texts, and
   * forgets them first when they are another user's (a different account
   * signing in on this browser must not find them). keepUnowned adopts
   * texts saved before owners were recorded instead of forgetting them.
   * It returns whether texts were forgotten.
   */
  claimDrafts(userId: string, keepUnowned = false): boolean {
    const owner = this.kv.getItem(DRAFTS_OWNER);
    if (owner === userId) return false;
    const forget = owner !== null || !keepUnowned;
    if (forget) this.clearDrafts();
    try {
      this.kv.setItem(DRAFTS_OWNER, userId);
    } catch {
      // storage full: the next sign-in asks again
    }
    return forget;
  }

  /** clearDrafts removes every saved composer text, and the texts the pages keep (at a sign-out, an account deleted, another user's sign-in). */
  clearDrafts(): void {
    for (const k of [DRAFT, KEPT.sending, KEPT.edit, LEGACY.sending, LEGACY.edit].flatMap((p) => this.keys(p))) this.kv.removeItem(k);
  }

  /**
   * modelPick is the model userId last picked for new chats, '' when none
   * (the server's default). A pick saved without its user (by the versions
   * before, or before the user was known) counts as theirs only with
   * keepUnowned: the user found signed in when the page loads.
   */
  modelPick(userId: string | null, keepUnowned = false): string {
    const pick = this.readModelPick();
    if (!pick) return '';
    if (pick.user === undefined) return keepUnowned ? pick.model : '';
    return pick.user === userId ? pick.model : '';
  }

  /** saveModelPick keeps model as the pick of userId (null: not known yet, saved unowned). */
  saveModelPick(userId: string | null, model: string): void {
    try {
      this.kv.setItem(MODEL_PICK, JSON.stringify(userId === null ? { model } : { user: userId, model }));
      this.kv.removeItem(LEGACY_MODEL);
    } catch {
      // storage full: the pick lasts as long as the page
    }
  }

  /**
   * claimModelPick returns the pick of the user signing in (modelPick) and
   * forgets any other: another user's, or an unowned one unless
   * keepUnowned (which then becomes userId's).
   */
  claimModelPick(userId: string, keepUnowned = false): string {
    const model = this.modelPick(userId, keepUnowned);
    if (model) this.saveModelPick(userId, model);
    else this.forgetModelPick();
    return model;
  }

  /** forgetModelPick removes the saved pick (a deleted account's, another user's). */
  forgetModelPick(): void {
    this.kv.removeItem(MODEL_PICK);
    this.kv.removeItem(LEGACY_MODEL);
  }

  private readModelPick(): { user?: string; model: string } | null {
    const raw = this.kv.getItem(MODEL_PICK);
    if (raw === null) {
      const legacy = this.kv.getItem(LEGACY_MODEL);
      return legacy ? { model: legacy } : null;
    }
    try {
      const v = JSON.parse(raw) as { user?: unknown; model?: unknown } | null;
      if (typeof v?.model !== 'string') return null;
      return typeof v.user === 'string' ? { user: v.user, model: v.model } : { model: v.model };
    } catch {
      return null;
    }
  }

  get(key: string): string | null {
    return this.kv.getItem(key);
  }

  set(key: string, value: string): void {
    this.kv.setItem(key, value);
  }
}

/** keptName is the storage key of a page's kept text under a prefix (KEPT or LEGACY). */
function keptName(prefix: string, page: string, key: string, id: string): string {
  return `${prefix}${page}.${key}.${id || ROOT}`;
}

/**
 * readSlot reads a kept text: JSON {text, at?, user?}; a legacy slot may
 * be a bare text (at 0: kept before the time was).
 */
function readSlot(raw: string, legacy: boolean): KeptSlot {
  try {
    const v: unknown = JSON.parse(raw);
    const s = v as Partial<KeptSlot> | null;
    if (typeof s?.text === 'string') {
      return { text: s.text, ...(typeof s.at === 'number' ? { at: s.at } : {}), ...(!legacy && typeof s.user === 'string' ? { user: s.user } : {}) };
    }
  } catch {
    // a bare text
  }
  return legacy ? { text: raw, at: 0 } : { text: '' };
}

/** KeptKind names the texts a page keeps under its own id: a message on its way, an open edit box. */
export type KeptKind = 'sending' | 'edit';

/**
 * KeptSlot is what a kept text's slot holds: the text; for a message on
 * its way when it was sent (ms since the epoch, this device's clock); and
 * the id of the user whose page wrote it (absent in the slots of the
 * versions before: the owner of the saved texts then).
 */
export interface KeptSlot {
  text: string;
  at?: number;
  user?: string;
}

/** KeptText is one text a page keeps: its page, draft key (conversation), id (clientMessageId or parent message id) and slot. */
export interface KeptText extends KeptSlot {
  page: string;
  key: string;
  id: string;
}

/** newClientId returns a random id for clientMessageId (crypto.randomUUID needs a secure context). */
export function newClientId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') {
    try {
      return c.randomUUID();
    } catch {
      // insecure context
    }
  }
  const bytes = new Uint8Array(16);
  c.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
