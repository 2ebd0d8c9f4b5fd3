// The composer's text shared by the tabs of one browser (storage events).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Drafts } from './drafts';
import { Persist, memoryKV, type KV } from './persist';
import type { AppState } from './state';
import { Store } from './store';
import { CID, message, setup } from './testkit';

const DELAY = 200;

/**
 * browser makes tabs over one storage that, like a browser, tells every
 * other tab of each change (the storage event's key and new value).
 */
function browser() {
  const kv = memoryKV();
  const tabs: Array<{ drafts: Drafts; store: Store<AppState> }> = [];
  const tell = (from: KV, key: string, value: string | null) => {
    for (const t of tabs) if ((t as unknown as { kv: KV }).kv !== from) t.drafts.fromOtherTab(key, value);
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
    const drafts = new Drafts(store, persist, DELAY);
    if (userId) drafts.claim(userId, true);
    const t = { drafts, store, kv: own, persist, text: (key: string) => store.state.drafts[key] };
    tabs.push(t);
    return t;
  }
  return { kv, tab };
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

  it('a text sent in one tab leaves every tab’s composer once the server has it', () => {
    const { tab, kv } = browser();
    const a = tab('u');
    const b = tab('u');
    a.drafts.load(CID);
    b.drafts.load(CID);
    a.drafts.set(CID, 'send me');
    vi.advanceTimersByTime(DELAY);
    expect(b.text(CID)).toBe('send me');
    a.drafts.hold(CID, 'send me'); // on its way: still in storage
    expect(b.text(CID)).toBe('send me');
    a.drafts.release(CID); // the server has it
    expect([a.text(CID), b.text(CID), kv.getItem(`chatd.draft.${CID}`)]).toEqual(['', '', null]);
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
    expect([out.text(CID), other.text(CID)]).toEqual(['', '']);
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

describe('Drafts.move (a deleted conversation’s composer text)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it.each([
    ['an empty new chat', '', 'kept text'],
    ['a new chat holding text in memory', 'typed here', 'typed here\n\nkept text'],
    ['a new chat holding text only in storage', 'saved earlier', 'saved earlier\n\nkept text'],
    ['a new chat that holds the text already', 'x kept text y', 'x kept text y'],
  ])('goes to %s without losing either text', (name, before, after) => {
    const { tab, kv } = browser();
    const a = tab('u');
    if (name.includes('storage')) kv.setItem('chatd.draft.new', before);
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
    expect(app.store.state.drafts[CID]).toBe('');
  });
});
