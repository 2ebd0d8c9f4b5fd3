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

/** THROTTLED_MS is how often a hidden tab's timers run once throttled (Chrome, after a while). */
const THROTTLED_MS = 60_000;

/**
 * browser makes pages over one localStorage; each tab has its own
 * sessionStorage and events. A crashed page writes nothing more; a
 * throttled one at most once per THROTTLED_MS (its timers run that
 * rarely), a frozen one nothing until thawed (its timers do not run).
 */
function browser(locks?: FakeLocks) {
  const local = memoryKV();
  let n = 0;
  function tab() {
    const session = memoryKV();
    const events = new EventTarget();
    function page() {
      const me = { crashed: false, throttled: false, frozen: false, wrote: 0 };
      const own: KV = {
        getItem: (k) => local.getItem(k),
        setItem: (k, v) => {
          if (me.crashed || me.frozen || (me.throttled && Date.now() - me.wrote < THROTTLED_MS)) return;
          me.wrote = Date.now();
          local.setItem(k, v);
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
        throttle() {
          me.throttled = true;
        },
        freeze(on = true) {
          me.frozen = on;
        },
        /** visible says the page is shown again (a visibilitychange to visible). */
        visible() {
          events.dispatchEvent(new Event('visibilitychange'));
        },
        beatKey: `chatd.page.${pages.id}`,
      };
    }
    return { page };
  }
  return { tab, local };
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
    other.throttle(); // a beat a minute, not every 30 s
    for (let i = 0; i < 90; i++) {
      vi.advanceTimersByTime(THROTTLED_MS / 3); // between its beats too
      expect(await isGone(me, other)).toBe(false);
    }
  });

  it('a page open in another tab is not gone while frozen for less than the stale time', async () => {
    const b = browser(makeLocks());
    const other = b.tab().page();
    const me = b.tab().page();
    other.freeze(); // no beat at all
    vi.advanceTimersByTime(STALE - BEAT);
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

describe('browserPages without Web Locks, the beats', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a page shown again beats at once: frozen until nearly stale, it is not taken for gone right after', async () => {
    const b = browser();
    const other = b.tab().page();
    const me = b.tab().page();
    other.freeze();
    vi.advanceTimersByTime(STALE - 1000);
    other.freeze(false);
    other.visible(); // before its next interval beat
    other.freeze();
    vi.advanceTimersByTime(2000);
    expect(await isGone(me, other)).toBe(false);
    vi.advanceTimersByTime(STALE);
    expect(await isGone(me, other)).toBe(true);
  });

  it('a page starting removes the beats older than ten stale times (50 min: crashed pages), and keeps the others', () => {
    const b = browser();
    const old = b.tab().page();
    const recent = b.tab().page();
    old.crash();
    vi.advanceTimersByTime(10 * STALE - BEAT);
    recent.crash(); // crashed too, 50 min less a beat later
    vi.advanceTimersByTime(2 * BEAT);
    expect([old.beatKey, recent.beatKey].map((k) => b.local.getItem(k) !== null)).toEqual([true, true]);
    const next = b.tab().page();
    const keys = Array.from({ length: b.local.length }, (_, i) => b.local.key(i));
    expect(keys).not.toContain(old.beatKey);
    expect(keys).toContain(recent.beatKey);
    expect(keys).toContain(next.beatKey);
  });
});
