// browserPages: which pages of the browser are gone, with Web Locks and without.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { browserPages, type PagesEnv } from './pages';
import { memoryKV, type KV } from './persist';

const BEAT = 30_000;
const STALE = 5 * 60_000;

/** FakeLocks is a LockManager of one browser: a page's locks go when it crashes (drop). */
class FakeLocks {
  readonly held = new Map<string, string>(); // lock name -> page
  refuse = false;
  for(page: string) {
    const request = (name: string, cb: () => Promise<never>) => {
      if (this.refuse) return Promise.reject(new Error('SecurityError'));
      this.held.set(name, page);
      return cb();
    };
    const query = async () => ({ held: [...this.held.keys()].map((name) => ({ name })), pending: [] });
    return { request, query } as unknown as PagesEnv['locks'];
  }
  drop(page: string) {
    for (const [name, p] of this.held) if (p === page) this.held.delete(name);
  }
}

/**
 * browser makes pages over one localStorage; each tab has its own
 * sessionStorage and events. A crashed page writes nothing more.
 */
function browser(locks?: FakeLocks) {
  const local = memoryKV();
  let n = 0;
  function tab() {
    const session = memoryKV();
    const events = new EventTarget();
    function page() {
      const me = { crashed: false };
      const own: KV = {
        getItem: (k) => local.getItem(k),
        setItem: (k, v) => {
          if (!me.crashed) local.setItem(k, v);
        },
        removeItem: (k) => {
          if (!me.crashed) local.removeItem(k);
        },
        get length() {
          return local.length;
        },
        key: (i) => local.key(i),
      };
      const name = `p${n++}`;
      const pages = browserPages({ local: own, session, events, locks: locks?.for(name), now: Date.now, beatMs: BEAT, staleMs: STALE });
      return {
        pages,
        crash() {
          me.crashed = true;
          locks?.drop(name);
        },
        hide(persisted = false) {
          events.dispatchEvent(Object.assign(new Event('pagehide'), { persisted }));
          if (!persisted) locks?.drop(name);
        },
        show() {
          events.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: true }));
        },
      };
    }
    return { page };
  }
  return { tab };
}

async function isGone(by: { pages: { gone(ids: readonly string[]): Promise<ReadonlySet<string>> } }, of: { pages: { id: string } }) {
  return (await by.pages.gone([of.pages.id])).has(of.pages.id);
}

describe.each([
  ['without Web Locks (plain http on a LAN address, older browsers)', () => undefined],
  ['with Web Locks', () => new FakeLocks()],
])('browserPages %s', (_, makeLocks) => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a page open in another tab is not gone, even hidden and its beats throttled', async () => {
    const b = browser(makeLocks());
    const other = b.tab().page();
    const me = b.tab().page();
    expect(await isGone(me, other)).toBe(false);
    vi.advanceTimersByTime(STALE - BEAT); // its beats go on
    expect(await isGone(me, other)).toBe(false);
  });

  it('a tab closed is gone for the other tabs', async () => {
    const b = browser(makeLocks());
    const other = b.tab().page();
    const me = b.tab().page();
    other.hide();
    expect(await isGone(me, other)).toBe(true);
  });

  it('a page reloaded is gone for the next page of its tab', async () => {
    const b = browser(makeLocks());
    const t = b.tab();
    const before = t.page();
    before.hide();
    const after = t.page();
    expect(await isGone(after, before)).toBe(true);
  });

  it('a page back from the back-forward cache is open again', async () => {
    const b = browser(makeLocks());
    const t = b.tab();
    const other = b.tab().page();
    const p = t.page();
    p.hide(true);
    p.show();
    expect(await isGone(other, p)).toBe(false);
  });

  it('a tab crashed is gone once its beat is stale, if not at once by its lock', async () => {
    const locks = makeLocks();
    const b = browser(locks);
    const other = b.tab().page();
    const me = b.tab().page();
    other.crash();
    expect(await isGone(me, other)).toBe(!!locks); // its lock went with it
    vi.advanceTimersByTime(STALE + BEAT);
    expect(await isGone(me, other)).toBe(true);
  });

  it('a page never seen (no beat, no lock) is gone', async () => {
    const me = browser(makeLocks()).tab().page();
    expect(await me.pages.gone(['unknown', me.pages.id])).toEqual(new Set(['unknown']));
  });
});

describe('browserPages with Web Locks refused to a page', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a live page whose lock request failed is not gone: its beat tells', async () => {
    const locks = new FakeLocks();
    const b = browser(locks);
    locks.refuse = true;
    const other = b.tab().page();
    locks.refuse = false;
    const me = b.tab().page();
    expect(await isGone(me, other)).toBe(false);
    vi.advanceTimersByTime(STALE - BEAT);
    expect(await isGone(me, other)).toBe(false);
    other.crash();
    vi.advanceTimersByTime(STALE + BEAT);
    expect(await isGone(me, other)).toBe(true);
  });
});
