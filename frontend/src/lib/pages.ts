// Which pages of this browser are still open. A page keeps some texts in
// storage under its own id (a message on its way, an open edit box: see
// drafts.ts), so that no other page overwrites them; another page takes
// them up only once their page is gone (closed, reloaded, crashed).

import { memoryKV, newClientId, type KV } from './persist';

/** LOCK prefixes the Web Lock each page holds for its life. */
const LOCK = 'chatd.page.';
/** BEAT prefixes the localStorage key where each page says it is alive: JSON {at, lock}. */
const BEAT = 'chatd.page.';
/** GONE is the sessionStorage key listing the earlier pages of this tab (reloads). */
const GONE = 'chatd.pagesGone';
/** GONE_MAX bounds that list. */
const GONE_MAX = 20;
/** BEAT_MS is how often a page renews its beat. */
const BEAT_MS = 30_000;
/**
 * STALE_MS is how old a beat is when its page counts as gone: several
 * beats, as a hidden tab's timers are throttled (to once a minute in
 * Chrome after a while).
 */
const STALE_MS = 5 * 60_000;

/** Pages tells this page's id and which other pages are gone. */
export interface Pages {
  /** id names this page: a new one at each load. */
  readonly id: string;
  /** gone returns those of ids whose page is closed; a page it cannot tell about counts as open. */
  gone(ids: readonly string[]): Promise<ReadonlySet<string>>;
}

/** PagesEnv is what browserPages uses of the browser (tests give their own). */
export interface PagesEnv {
  /** localStorage (the beats). */
  local: KV;
  /** sessionStorage (this tab's earlier pages). */
  session: Pick<KV, 'getItem' | 'setItem'>;
  /** Web Locks, missing outside secure contexts and in older browsers. */
  locks?: Pick<LockManager, 'request' | 'query'>;
  /** Where pagehide, pageshow and visibilitychange are heard. */
  events: Pick<EventTarget, 'addEventListener'>;
  /** Whether the page is visible now. */
  visible?: () => boolean;
  now?: () => number;
  beatMs?: number;
  staleMs?: number;
}

interface Beat {
  /** When (ms since the epoch) the page last said it is alive. */
  at: number;
  /** Whether it holds its Web Lock: then the lock tells, the beat only when the locks do not answer. */
  lock: boolean;
}

/**
 * browserPages tells whether a page is open by two signs:
 * - a Web Lock each page holds, named after it, until it closes (a crash
 *   included): exact and at once, where the browser has Web Locks (secure
 *   contexts: not a server reached over plain http on a LAN address) and
 *   the page got its lock;
 * - a beat: each page writes the time to chatd.page.<id> every BEAT_MS
 *   (and when shown again), removes it at pagehide, and writes it back if
 *   it comes back from the back-forward cache. A page without its lock is
 *   gone when its beat is missing or older than STALE_MS (a closed or
 *   crashed tab, slowly).
 * A page listed by this tab's sessionStorage at pagehide (a reload) is gone
 * at once either way. A wrong "gone" (a page frozen long enough) is made
 * safe by its sends, which check their slot is still theirs first (see
 * Drafts.stillHeld).
 */
export function browserPages(env: PagesEnv = defaultEnv()): Pages {
  const id = newClientId();
  const now = env.now ?? Date.now;
  const stale = env.staleMs ?? STALE_MS;
  let locked = false;
  let shown = true;
  const beat = () => {
    if (shown) writeBeat(env.local, id, { at: now(), lock: locked });
  };
  sweep(env.local, now(), stale);
  beat();
  setInterval(beat, env.beatMs ?? BEAT_MS);
  env.locks
    ?.request(LOCK + id, () => {
      locked = true;
      beat();
      return new Promise<never>(() => undefined);
    })
    .catch(() => undefined); // no lock: the beat tells
  env.events.addEventListener('pagehide', () => {
    shown = false;
    saveGone(env.session, [...readGone(env.session).filter((x) => x !== id), id].slice(-GONE_MAX));
    env.local.removeItem(BEAT + id);
  });
  env.events.addEventListener('pageshow', (e) => {
    if (!(e as PageTransitionEvent).persisted) return;
    shown = true;
    saveGone(env.session, readGone(env.session).filter((x) => x !== id));
    beat();
  });
  env.events.addEventListener('visibilitychange', () => {
    if (env.visible?.() ?? true) beat(); // back from a throttled or frozen time
  });
  return {
    id,
    async gone(ids) {
      const listed = new Set(readGone(env.session));
      const others = ids.filter((x) => x !== id);
      const open = await heldLocks(env.locks);
      const t = now();
      const out = new Set<string>();
      for (const x of others) {
        const b = readBeat(env.local, x);
        const fresh = b !== null && t - b.at <= stale;
        if (listed.has(x)) out.add(x);
        else if (open && (b === null || b.lock)) {
          if (!open.has(LOCK + x)) out.add(x);
        } else if (!fresh) out.add(x);
      }
      return out;
    },
  };
}

/** heldLocks names the Web Locks held or asked for, or null when the locks cannot tell. */
async function heldLocks(locks: PagesEnv['locks']): Promise<Set<string> | null> {
  if (!locks) return null;
  try {
    const { held = [], pending = [] } = await locks.query();
    return new Set([...held, ...pending].map((l) => l.name ?? ''));
  } catch {
    return null;
  }
}

function defaultEnv(): PagesEnv {
  return {
    local: storage(() => window.localStorage),
    session: storage(() => window.sessionStorage),
    locks: typeof navigator !== 'undefined' ? navigator.locks : undefined,
    events: window,
    visible: () => document.visibilityState === 'visible',
  };
}

/** storage returns a browser storage, or memory where it is refused (private modes): no other page shares the texts then. */
function storage(get: () => Storage): KV {
  try {
    const s = get();
    s.getItem('chatd.probe');
    return s;
  } catch {
    return memoryKV();
  }
}

function readBeat(local: PagesEnv['local'], id: string): Beat | null {
  try {
    const v: unknown = JSON.parse(local.getItem(BEAT + id) ?? 'null');
    const b = v as Partial<Beat> | null;
    return typeof b?.at === 'number' ? { at: b.at, lock: b.lock === true } : null;
  } catch {
    return null;
  }
}

function writeBeat(local: PagesEnv['local'], id: string, b: Beat): void {
  try {
    local.setItem(BEAT + id, JSON.stringify(b));
  } catch {
    // storage full: a page without its lock then counts as gone once its old beat is stale
  }
}

/** sweep removes the beats of pages gone long ago (crashed: no pagehide removed them). */
function sweep(local: PagesEnv['local'], now: number, stale: number): void {
  const old: string[] = [];
  for (let i = 0; i < local.length; i++) {
    const k = local.key(i);
    if (!k?.startsWith(BEAT)) continue;
    const b = readBeat(local, k.slice(BEAT.length));
    if (b === null || now - b.at > 10 * stale) old.push(k);
  }
  for (const k of old) local.removeItem(k);
}

function readGone(session: PagesEnv['session']): string[] {
  try {
    const v: unknown = JSON.parse(session.getItem(GONE) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function saveGone(session: PagesEnv['session'], ids: string[]): void {
  try {
    session.setItem(GONE, JSON.stringify(ids));
  } catch {
    // no session storage: a reload finds the texts of the page before through the beat
  }
}
