// The composer's text shared by the tabs of one browser (storage events).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Drafts } from './drafts';
import { Persist, memoryKV, type KV } from './persist';
import type { Message } from './protocol';
import type { AppState } from './state';
import { Store } from './store';
import { CID, fixedPages, json, message, setup } from './testkit';

const DELAY = 200;

/**
 * browser makes tabs over one storage that, like a browser, tells every
 * other tab of each change (the storage event's key and new value).
 */
function browser() {
  const kv = memoryKV();
  const tabs: Array<{ drafts: Drafts; store: Store<AppState> }> = [];
  const tell = (from: KV, key: string, value: string | null) => {
    for (const t of tabs) if ((t as unknown as { kv: KV }).kv !== from) t.drafts.fromOtherTab(key, value, () => true);
  };
  function tab(userId: string | null) {
    const own: KV = {
      getItem: (k) => kv.getItem(k),
      setItem: (k, v) => {
        const before = kv.getItem(k);
        kv.setItem(k, v);
        if (before !== v) tell(own, k, v);
      },
      removeItem: (k) => {
        const before = kv.getItem(k);
        kv.removeItem(k);
        if (before !== null) tell(own, k, null);
      },
      get length() {
        return kv.length;
      },
      key: (i) => kv.key(i),
    };
    const store = new Store<AppState>(
      { session: { token: 't', user: userId ? { id: userId, email: '', name: '', createdAt: '', updatedAt: '' } : null, notice: null }, drafts: {} } as unknown as AppState,
      { throttleMs: 0 },
    );
    const persist = new Persist(own);
    const drafts = new Drafts(store, persist, fixedPages(`tab${tabs.length}`), DELAY);
    if (userId) drafts.claim(userId, true);
    const t = { drafts, store, kv: own, persist, text: (key: string) => drafts.get(key) }; // what the composer shows
    tabs.push(t);
    return t;
  }
  return { kv, tab };
}

/** signedIn is the storage of a browser where user u is signed in, owning the saved texts. */
function signedIn(): KV {
  const kv = memoryKV();
  kv.setItem('chatd.token', 'tok');
  kv.setItem('chatd.user', JSON.stringify({ id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' }));
  kv.setItem('chatd.draftsOwner', 'u');
  return kv;
}

describe('two tabs on one conversation', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('text typed in one tab appears in the other once saved', () => {
    const { tab } = browser();
    const a = tab('u');
    const b = tab('u');
    a.drafts.load(CID);
    b.drafts.load(CID);
    a.drafts.set(CID, 'hello from A');
    expect(b.text(CID)).toBe('');
    vi.advanceTimersByTime(DELAY);
    expect(b.text(CID)).toBe('hello from A');
  });

  it('never over typing the other tab has not saved yet; that typing then reaches the first tab', () => {
    const { tab } = browser();
    const a = tab('u');
    const b = tab('u');
    a.drafts.load(CID);
    b.drafts.load(CID);
    b.drafts.set(CID, 'B is typing');
    a.drafts.set(CID, 'A typed'); // saved first
    vi.advanceTimersByTime(DELAY - 1);
    a.drafts.flush();
    expect(b.text(CID)).toBe('B is typing'); // B's own typing is kept
    vi.advanceTimersByTime(1); // B's save
    expect([a.text(CID), b.text(CID)]).toEqual(['B is typing', 'B is typing']);
  });

  it('a text sent in one tab leaves every tab’s composer at once, and is held in its own slot until the server has it', () => {
    const { tab, kv } = browser();
    const a = tab('u');
    const b = tab('u');
    a.drafts.load(CID);
    b.drafts.load(CID);
    a.drafts.set(CID, 'send me');
    vi.advanceTimersByTime(DELAY);
    expect(b.text(CID)).toBe('send me');
    a.drafts.hold(CID, 'k1', 'send me', true); // on its way: in storage, not in a composer
    expect([a.text(CID), b.text(CID), kv.getItem(`chatd.draft.${CID}`)]).toEqual(['', '', null]);
    expect(JSON.parse(kv.getItem(`chatd.slot.sending.tab0.${CID}.k1`)!)).toMatchObject({ text: 'send me' });
    a.drafts.release(CID, 'k1'); // the server has it
    expect(kv.getItem(`chatd.slot.sending.tab0.${CID}.k1`)).toBeNull();
  });

  it('a tab not signed in, or signed in as another user than the texts’ owner, takes nothing', () => {
    const { tab } = browser();
    const out = tab(null);
    out.drafts.load(CID);
    const other = tab('v'); // stale: the texts below are claimed by u after it
    other.drafts.load(CID);
    const a = tab('u'); // u signs in: u's texts from now on
    a.drafts.load(CID);
    a.drafts.set(CID, 'private to u');
    vi.advanceTimersByTime(DELAY);
    expect([out.store.state.drafts[CID] ?? '', other.text(CID)]).toEqual(['', '']); // signed out, no composer shows
  });

  it('a composer the tab shows without having loaded it (a new chat after following a sign-in) gets it too', () => {
    const { tab } = browser();
    const a = tab('u');
    const b = tab('u');
    expect(b.drafts.get('new')).toBe(''); // what the composer renders, read from storage
    a.drafts.set('new', 'for later');
    vi.advanceTimersByTime(DELAY);
    expect(b.text('new')).toBe('for later');
  });
});

describe('Drafts.forget (a conversation no longer kept in memory)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it.each([
    ['saved', true, false, undefined],
    ['its save pending: saved now', false, false, undefined],
    ['refused by storage (full): kept in memory', true, true, 'typed'],
  ])('a text %s', (_, waitSave, full, inMemory) => {
    const { tab, kv } = browser();
    const a = tab('u');
    if (full) kv.setItem = () => { throw new Error('QuotaExceededError'); };
    a.drafts.set(CID, 'typed');
    if (waitSave) vi.advanceTimersByTime(DELAY);
    a.drafts.forget([CID]);
    expect(a.store.state.drafts[CID]).toBe(inMemory);
    expect(a.drafts.get(CID)).toBe('typed'); // what the composer shows when it is opened again
  });
});

describe('Drafts.move (a deleted conversation’s composer text)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it.each([
    ['an empty new chat', '', 'kept text'],
    ['a new chat holding text in memory', 'typed here', 'typed here\n\nkept text'],
    ['a new chat holding text only in storage', 'saved earlier', 'saved earlier\n\nkept text'],
    ['a new chat that holds the text already', 'x\n\nkept text\n\ny', 'x\n\nkept text\n\ny'],
    ['a new chat that holds it within a longer paragraph', 'kept text, and more', 'kept text, and more\n\nkept text'],
  ])('goes to %s without losing either text', (name, before, after) => {
    const { tab, kv } = browser();
    const a = tab('u');
    if (name.includes('only in storage')) kv.setItem('chatd.draft.new', before);
    else if (before) a.drafts.set('new', before);
    a.drafts.set(CID, 'kept text');
    a.drafts.move(CID, 'new');
    expect(a.drafts.get('new')).toBe(after);
    expect(a.drafts.get(CID)).toBe('');
    vi.advanceTimersByTime(DELAY);
    expect([kv.getItem('chatd.draft.new'), kv.getItem(`chatd.draft.${CID}`)]).toEqual([after, null]);
  });
});

describe('ChatApp and another tab’s drafts', () => {
  afterEach(() => history.replaceState(null, '', '/'));

  it('the open conversation’s composer shows what another tab of the same user saved, and empties when it is removed', async () => {
    const { app, kv, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.session.user?.id).toBe('u'));
    kv.setItem('chatd.draftsOwner', 'u');
    kv.setItem(`chatd.draft.${CID}`, 'typed in the other tab');
    window.dispatchEvent(new StorageEvent('storage', { key: `chatd.draft.${CID}`, newValue: 'typed in the other tab' }));
    expect(app.store.state.drafts[CID]).toBe('typed in the other tab');
    kv.removeItem(`chatd.draft.${CID}`);
    window.dispatchEvent(new StorageEvent('storage', { key: `chatd.draft.${CID}`, newValue: null }));
    expect(app.store.state.drafts[CID] ?? '').toBe(''); // an empty text is not kept
  });
});

describe('each kept text in its own slot: nothing typed is lost or overwritten by another', () => {
  afterEach(() => history.replaceState(null, '', '/'));
  const u1 = message('u1', '', 'user', 'hi', 'complete');
  const a1 = message('a1', 'u1', 'assistant', 'Hello', 'complete');

  /** reload starts a new page over the storage of the one before, which is gone. */
  function reload(kv: KV) {
    return setup({ kv, snapshots: [[u1, a1]], pages: fixedPages('page2', new Set(['page'])) });
  }

  it('typing during a send does not overwrite the text on its way: a reload before the server has it finds both', async () => {
    const { app, kv, socket } = setup({ snapshots: [[u1, a1]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    socket().cut(); // the send waits for the connection
    app.setDraft(CID, 'first message');
    await app.send('first message');
    app.setDraft(CID, 'typed while it is on its way');
    app.store.flush();
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('typed while it is on its way'));
    const next = reload(kv);
    await vi.waitFor(() => expect(next.app.store.state.drafts[CID]).toBe('typed while it is on its way\n\nfirst message'));
    expect(next.app.store.state.toasts.map((t) => t.text)).toEqual(['Text not sent before the page was closed or reloaded is back in the message box.']);
  });

  it.each([
    ['sent before the oldest loaded message: it may be in an older page, so it is left until one is loaded', Date.parse('2025-06-01T00:00:00Z'), '', 1],
    ['sent after the oldest loaded message: the server would show it', Date.parse('2026-06-01T00:00:00Z'), 'lost with its page', 0],
  ])('a gone page’s message not among the loaded ones (more to load), %s', async (_, at, composer, slotsLeft) => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem(`chatd.sending.page.${CID}.k1`, JSON.stringify({ text: 'lost with its page', at }));
    const fixed = fixedPages('page2', new Set(['page']));
    let asked: Promise<unknown> | undefined;
    const pages = { id: fixed.id, gone: (ids: readonly string[]) => (asked = fixed.gone(ids)) };
    const { app } = setup({ kv, snapshots: [[u1, a1]], snapshotExtra: { hasMore: true }, pages });
    await vi.waitFor(() => expect(asked).toBeDefined());
    await asked; // the recovery goes on first, to its end
    expect(app.store.state.drafts[CID] ?? '').toBe(composer);
    expect(Array.from({ length: kv.length }, (_, i) => kv.key(i)).filter((k) => k?.startsWith('chatd.sending.'))).toHaveLength(slotsLeft);
  });

  describe('a gone page’s message the loaded messages cannot tell about: older pages are loaded by themselves', () => {
    const early = Date.parse('2020-01-01T00:00:00Z'); // before every message of these conversations
    const olderUrl = `/api/conversations/${CID}/messages?`;

    /**
     * deciding starts a page on a conversation with more to load, a gone
     * page's slot (raw: JSON, or a bare text in the slot of a version
     * before) in storage, older pages answered by older(n).
     */
    function deciding(raw: string, older: (n: number) => { messages: Message[]; hasMore: boolean }, first: Message[] = [u1, a1]) {
      const kv = signedIn();
      kv.setItem(`${raw.startsWith('{') ? 'chatd.slot.sending.' : 'chatd.sending.'}page.${CID}.k1`, raw);
      let n = 0;
      const route = (url: string) => (url.startsWith(olderUrl) ? json(older(n++)) : undefined);
      const s = setup({ kv, route, snapshots: [first], snapshotExtra: { hasMore: true }, pages: fixedPages('page2', new Set(['page'])) });
      const slots = () => Array.from({ length: kv.length }, (_, i) => kv.key(i)).filter((k) => /^chatd\.(slot\.)?sending\./.test(k ?? ''));
      return { ...s, slots, olderFetched: () => n };
    }

    it('the message found in an older page: the slot is removed, nothing given back', async () => {
      const stored = message('u0', '', 'user', 'lost with its page', 'complete', { clientMessageId: 'k1', createdAt: '2025-05-01T00:00:00Z' });
      const { app, slots, olderFetched } = deciding(JSON.stringify({ text: 'lost with its page', at: early, user: 'u' }), () => ({ messages: [stored], hasMore: true }));
      await vi.waitFor(() => expect(slots()).toEqual([]));
      expect(olderFetched()).toBe(1);
      expect(app.store.state.drafts[CID] ?? '').toBe(''); // an empty text is not kept
    });

    it('the whole conversation loaded without it: the text is given back', async () => {
      const { app, slots, olderFetched } = deciding(JSON.stringify({ text: 'lost with its page', at: early, user: 'u' }), (n) => ({ messages: [message(`o${n}`, '', 'user', 'x', 'complete', { createdAt: '2025-01-01T00:00:00Z' })], hasMore: n < 1 }));
      await vi.waitFor(() => expect(app.store.state.drafts[CID]).toBe('lost with its page'));
      expect(olderFetched()).toBe(2);
      expect(slots()).toEqual([]);
    });

    it.each([
      ['sent long ago', JSON.stringify({ text: 'lost with its page', at: early, user: 'u' })],
      ['a bare text of a version before (no time)', 'lost with its page'],
    ])('%s, in a conversation of many pages: after 5 older pages at most, the text is given back', async (_, raw) => {
      let t = Date.parse('2025-01-01T00:00:00Z');
      const older = (n: number) => ({ messages: [message(`o${n}`, '', 'user', 'x', 'complete', { createdAt: new Date(t--).toISOString() })], hasMore: true });
      const { app, slots, olderFetched } = deciding(raw, older);
      await vi.waitFor(() => expect(app.store.state.drafts[CID]).toBe('lost with its page'));
      expect(olderFetched()).toBe(5);
      expect(slots()).toEqual([]);
      expect(app.store.state.toasts.map((x) => x.text)).toEqual(['Text not sent before the page was closed or reloaded is back in the message box.']);
    });

    it('the oldest loaded message’s time unreadable: the oldest readable one decides', async () => {
      const raw = JSON.stringify({ text: 'lost with its page', at: Date.now(), user: 'u' });
      const { app, slots, olderFetched } = deciding(raw, () => ({ messages: [], hasMore: true }), [{ ...u1, createdAt: 'garbage' }, a1]);
      await vi.waitFor(() => expect(app.store.state.drafts[CID]).toBe('lost with its page'));
      expect(olderFetched()).toBe(0);
      expect(slots()).toEqual([]);
    });
  });

  it.each([
    ['deleted from this tab', '/', undefined, (app: { remove(id: string): Promise<void> }) => app.remove(CID)],
    ['not found when opened', `/c/${CID}`, (url: string, init?: RequestInit) => (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? json({ error: 'not_found' }, 404) : undefined), () => Promise.resolve()],
  ])('the texts a gone page left for a conversation %s go to the new chat’s composer, their slots removed', async (_, path, route, act) => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.draftsOwner', 'u');
    kv.setItem(`chatd.sending.page.${CID}.k1`, JSON.stringify({ text: 'queued offline', at: Date.now() }));
    kv.setItem(`chatd.edit.page.${CID}.u1`, 'an open edit');
    const { app } = setup({ kv, path, route, pages: fixedPages('page2', new Set(['page'])) });
    await act(app);
    await vi.waitFor(() => expect(app.store.state.drafts.new).toBe('queued offline\n\nan open edit'));
    expect(Array.from({ length: kv.length }, (_, i) => kv.key(i)).filter((k) => /^chatd\.(slot\.)?(sending|edit)\./.test(k ?? ''))).toEqual([]);
  });

  it('a conversation not found takes up only the signed-in user’s texts: another user’s slots are removed, unread', async () => {
    const kv = signedIn();
    const at = Date.now();
    kv.setItem(`chatd.slot.sending.page.${CID}.k1`, JSON.stringify({ text: 'another user’s text', at, user: 'other' }));
    kv.setItem(`chatd.slot.edit.page.${CID}.u1`, JSON.stringify({ text: 'another user’s edit', user: 'other' }));
    kv.setItem(`chatd.slot.sending.page.${CID}.k2`, JSON.stringify({ text: 'mine', at, user: 'u' }));
    const route = (url: string, init?: RequestInit) => (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? json({ error: 'not_found' }, 404) : undefined);
    const { app } = setup({ kv, route, pages: fixedPages('page2', new Set(['page'])) });
    await vi.waitFor(() => expect(app.store.state.drafts.new).toBe('mine'));
    await vi.waitFor(() => expect(Array.from({ length: kv.length }, (_, i) => kv.key(i)).filter((k) => k?.startsWith('chatd.slot.'))).toEqual([]));
    expect(app.store.state.drafts.new).toBe('mine');
  });

  it('the slots of the versions before are read: a bare text, JSON {text, at}, an edit’s bare text', async () => {
    const kv = signedIn();
    kv.setItem(`chatd.sending.page.${CID}.k1`, 'bare');
    kv.setItem(`chatd.sending.page.${CID}.k2`, JSON.stringify({ text: 'with its time', at: Date.now() }));
    kv.setItem(`chatd.edit.page.${CID}.u1`, 'an edit');
    const route = (url: string, init?: RequestInit) => (url === `/api/conversations/${CID}` && (init?.method ?? 'GET') === 'GET' ? json({ error: 'not_found' }, 404) : undefined);
    const { app } = setup({ kv, route, pages: fixedPages('page2', new Set(['page'])) });
    await vi.waitFor(() => expect(app.store.state.drafts.new).toBe('bare\n\nwith its time\n\nan edit'));
  });

  it('a message on its way and an open edit are kept under a prefix the versions before do not read, as JSON with their user', () => {
    vi.useFakeTimers();
    try {
      const { tab, kv } = browser();
      const a = tab('u');
      a.drafts.hold(CID, 'k1', 'on its way', true);
      a.drafts.keepEdit(CID, 'u1', 'an edit');
      a.drafts.flush();
      const keys = Array.from({ length: kv.length }, (_, i) => kv.key(i)!);
      expect(keys.filter((k) => /^chatd\.(sending|edit)\./.test(k))).toEqual([]);
      expect(JSON.parse(kv.getItem(`chatd.slot.sending.tab0.${CID}.k1`)!)).toMatchObject({ text: 'on its way', user: 'u' });
      expect(JSON.parse(kv.getItem(`chatd.slot.edit.tab0.${CID}.u1`)!)).toEqual({ text: 'an edit', user: 'u' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('a page whose user is no longer the texts’ owner (another signed in from another tab, not followed yet) writes none of its texts', () => {
    vi.useFakeTimers();
    try {
      const { tab, kv } = browser();
      const a = tab('u');
      a.drafts.load(CID);
      a.drafts.set(CID, 'typed');
      a.drafts.keepEdit(CID, 'u1', 'an edit');
      kv.setItem('chatd.draftsOwner', 'other'); // another user signed in from another tab
      a.drafts.flush();
      a.drafts.set(CID, 'typed more');
      vi.advanceTimersByTime(DELAY);
      a.drafts.hold(CID, 'k1', 'on its way', true);
      expect(Array.from({ length: kv.length }, (_, i) => kv.key(i)!).filter((k) => /^chatd\.(slot|draft)\./.test(k))).toEqual([]);
      expect(a.drafts.stillHeld(CID, 'k1')).toBe(true); // never visible to another page: sent from here
    } finally {
      vi.useRealTimers();
    }
  });

  it('a queued message whose slot another page took up (it thought this one gone) is not sent from here too', async () => {
    const { app, kv, socket, thread } = setup({ snapshots: [[u1, a1]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    const first = socket();
    first.cut();
    await app.send('queued while offline');
    const slots = Array.from({ length: kv.length }, (_, i) => kv.key(i)!).filter((k) => k.startsWith('chatd.slot.sending.page.'));
    expect(slots).toHaveLength(1);
    kv.removeItem(slots[0]!); // another page's recover took it into its composer
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()?.queued).toEqual([]));
    expect(socket().framesOf('send')).toEqual([]);
    expect(Object.values(thread()!.messages).map((m) => m.content)).toEqual(['hi', 'Hello']);
  });

  it('a queued message another page took up while this one was in the back-forward cache goes back to the composer, with what that page saved, so typing here loses neither', async () => {
    const { app, kv, socket, thread } = setup({ kv: signedIn(), snapshots: [[u1, a1]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    const first = socket();
    first.cut();
    await app.send('long message');
    expect(app.store.state.drafts[CID] ?? '').toBe(''); // an empty text is not kept
    const slot = Array.from({ length: kv.length }, (_, i) => kv.key(i)!).find((k) => k.startsWith('chatd.slot.sending.page.'))!;
    // Another page took it up into its composer, then the user typed there; this page heard none of it.
    kv.removeItem(slot);
    kv.setItem(`chatd.draft.${CID}`, 'typed there\n\nlong message');
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()?.queued).toEqual([]));
    expect(socket().framesOf('send')).toEqual([]);
    expect(app.store.state.drafts[CID]).toBe('typed there\n\nlong message'); // not doubled
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['A message not sent yet was taken up by another tab; it is in the message box, not sent.']);
    app.setDraft(CID, `${app.store.state.drafts[CID]} hello`);
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('typed there\n\nlong message hello'));
  });

  it('a queued message another page took up, its save not in storage, is given back to the composer', async () => {
    const { app, kv, socket, thread } = setup({ kv: signedIn(), snapshots: [[u1, a1]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    const first = socket();
    first.cut();
    await app.send('long message');
    const slot = Array.from({ length: kv.length }, (_, i) => kv.key(i)!).find((k) => k.startsWith('chatd.slot.sending.page.'))!;
    kv.removeItem(slot);
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(thread()?.queued).toEqual([]));
    expect(app.store.state.drafts[CID]).toBe('long message');
    await vi.waitFor(() => expect(kv.getItem(`chatd.draft.${CID}`)).toBe('long message'));
  });

  it('back from the back-forward cache, a page reads again the composer texts the other tabs saved meanwhile', async () => {
    const { app, kv } = setup({ kv: signedIn(), snapshots: [[u1, a1]] });
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    expect(app.store.state.drafts[CID] ?? '').toBe(''); // an empty text is not kept
    kv.setItem(`chatd.draft.${CID}`, 'saved by another tab');
    window.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: false }));
    expect(app.store.state.drafts[CID] ?? '').toBe(''); // an empty text is not kept
    window.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: true }));
    expect(app.store.state.drafts[CID]).toBe('saved by another tab');
  });

  it('a composer send and an edit on their way at once: the server having one leaves the other kept', async () => {
    const { app, kv, socket } = setup({ snapshots: [[u1, a1]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    const first = socket();
    first.cut();
    await app.send('from the composer');
    await app.editAndResend('u1', 'hi, said better');
    await vi.waitFor(() => expect(socket()).not.toBe(first));
    socket().open();
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(1));
    socket().receive({ type: 'ack', id: socket().framesOf('send')[0]!.id, conversationId: CID, userMessageId: 'u2', messageId: 'a2' });
    await vi.waitFor(() => expect(socket().framesOf('send')).toHaveLength(2)); // the edit on its way, no ack yet
    const next = reload(kv);
    await vi.waitFor(() => expect(next.app.store.state.drafts[CID]).toBe('hi, said better'));
  });

  it('a message waiting when the session ends is found in its composer once the same user signs in again in this page', async () => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.draftsOwner', 'u'); // as its sign-in made it
    const { app, socket } = setup({
      kv,
      snapshots: [[u1, a1]],
      route: (url) => (url === '/api/auth/login' ? json({ token: 'tok2', user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } }) : undefined),
    });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    socket().cut();
    await app.send('waiting for the connection');
    app.expire(); // the session ends (a refused token): the waiting message is dropped with it
    expect(app.store.state.route).toEqual({ name: 'login' });
    await app.login('a@b.c', 'pw');
    app.navigate(`/c/${CID}`);
    await vi.waitFor(() => expect(app.store.state.drafts[CID]).toBe('waiting for the connection'));
  });

  it('an open edit box’s text is kept in its own slot: a reload finds it in the composer, after the composer’s text', async () => {
    const { app, kv, socket } = setup({ snapshots: [[u1, a1]] });
    socket().open();
    await vi.waitFor(() => expect(app.store.state.threads[CID]?.loaded).toBe(true));
    app.setDraft(CID, 'in the composer');
    app.edits.open(CID, '', 'hi');
    app.edits.type(CID, '', 'hi, with more');
    window.dispatchEvent(new Event('pagehide')); // the tab closed before the saves were due
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('in the composer');
    const next = reload(kv);
    await vi.waitFor(() => expect(next.app.store.state.drafts[CID]).toBe('in the composer\n\nhi, with more'));
  });

  it.each([
    ['the page hidden (a tab closed on a phone)', () => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }],
    ['beforeunload', () => window.dispatchEvent(new Event('beforeunload'))],
  ])('text typed just before %s is saved at once', async (_, leave) => {
    const { app, kv } = setup({ snapshots: [[u1, a1]] });
    app.setDraft(CID, 'typed a moment ago');
    try {
      leave();
      expect(kv.getItem(`chatd.draft.${CID}`)).toBe('typed a moment ago');
    } finally {
      Reflect.deleteProperty(document, 'visibilityState');
    }
  });
});

describe('Drafts.recover', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** recovering sets up a page that finds `slot` left by a gone page, its composer holding `composer`. */
  function recovering(composer: string, slot: string) {
    const kv = memoryKV();
    const store = new Store<AppState>({ session: { token: 't', user: null, notice: null }, drafts: {} } as unknown as AppState, { throttleMs: 0 });
    const persist = new Persist(kv);
    persist.saveKept('edit', 'gone', CID, '', { text: slot });
    const drafts = new Drafts(store, persist, fixedPages('me', new Set(['gone'])), DELAY);
    if (composer) drafts.set(CID, composer);
    return { kv, store, drafts, persist };
  }

  it('writes the composer text to storage before it removes the slot: a hidden tab killed before its save timer loses nothing', async () => {
    const { kv, drafts, persist } = recovering('', 'lost with its tab');
    await drafts.recover(CID, () => false);
    expect(persist.kept('edit', CID)).toEqual([]);
    expect(kv.getItem(`chatd.draft.${CID}`)).toBe('lost with its tab'); // no timer advanced
  });

  it.each([
    ['a longer paragraph starting with it', 'yes, and more', 'yes', 'yes, and more\n\nyes', 1],
    ['it as a whole paragraph', 'first\n\nyes', 'yes', 'first\n\nyes', 0],
    ['nothing', '', 'yes', 'yes', 1],
  ])('a composer holding %s: the text is added unless there whole, and counted only when added', async (_, composer, slot, after, count) => {
    const { store, drafts } = recovering(composer, slot);
    expect(await drafts.recover(CID, () => false)).toBe(count);
    expect(store.state.drafts[CID]).toBe(after);
  });

  it('takes up the texts of pages gone only, and not a message the server has', async () => {
    const kv = memoryKV();
    const store = new Store<AppState>({ session: { token: 't', user: null, notice: null }, drafts: {} } as unknown as AppState, { throttleMs: 0 });
    const persist = new Persist(kv);
    persist.saveKept('sending', 'gone', CID, 'k1', { text: 'lost with its tab' });
    persist.saveKept('sending', 'gone', CID, 'k2', { text: 'stored by the server' });
    persist.saveKept('sending', 'open', CID, 'k3', { text: 'on its way in another tab' });
    persist.saveKept('edit', 'gone', CID, '', { text: 'an edit of the first message' });
    persist.saveKept('sending', 'gone', 'other', 'k4', { text: 'another conversation’s' });
    const drafts = new Drafts(store, persist, fixedPages('me', new Set(['gone'])), DELAY);
    await drafts.recover(CID, (id) => id === 'k2');
    expect(store.state.drafts[CID]).toBe('lost with its tab\n\nan edit of the first message');
    expect(persist.kept('sending', CID).map((k) => k.id)).toEqual(['k3']);
    expect(persist.kept('edit', CID)).toEqual([]);
    expect(persist.kept('sending', 'other')).toHaveLength(1);
  });
});
