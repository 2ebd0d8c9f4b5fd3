// Which pages of this browser are still open. A page keeps some texts in
// storage under its own id (a message on its way, an open edit box: see
// drafts.ts), so that no other page overwrites them; another page takes
// them up only once their page is gone (closed, reloaded, crashed).

import { newClientId } from './persist';

/** LOCK prefixes the Web Lock each page holds for its life. */
const LOCK = 'chatd.page.';
/** GONE is the sessionStorage key listing the earlier pages of this tab (reloads), for browsers without Web Locks. */
const GONE = 'chatd.pagesGone';
/** GONE_MAX bounds that list. */
const GONE_MAX = 20;

/** Pages tells this page's id and which other pages are gone. */
export interface Pages {
  /** id names this page: a new one at each load. */
  readonly id: string;
  /** gone returns those of ids whose page is closed; a page it cannot tell about counts as open. */
  gone(ids: readonly string[]): Promise<ReadonlySet<string>>;
}

/**
 * browserPages tells through Web Locks (each page holds one named after it
 * until it closes, a crash included) and, where they are missing, through
 * sessionStorage: a page leaving (pagehide) lists itself there, so the next
 * page of the same tab (a reload) knows it is gone. A page kept to come
 * back (the back-forward cache) takes itself off the list when shown again.
 */
export function browserPages(): Pages {
  const id = newClientId();
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  locks?.request(LOCK + id, () => new Promise<never>(() => undefined)).catch(() => undefined);
  window.addEventListener('pagehide', () => saveGone([...readGone().filter((x) => x !== id), id].slice(-GONE_MAX)));
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) saveGone(readGone().filter((x) => x !== id));
  });
  return {
    id,
    async gone(ids) {
      const listed = new Set(readGone());
      const out = new Set(ids.filter((x) => x !== id && listed.has(x)));
      if (!locks) return out;
      try {
        const { held = [], pending = [] } = await locks.query();
        const open = new Set([...held, ...pending].map((l) => l.name));
        for (const x of ids) if (x !== id && !open.has(LOCK + x)) out.add(x);
      } catch {
        // no answer: only the listed ones are known to be gone
      }
      return out;
    },
  };
}

function readGone(): string[] {
  try {
    const v: unknown = JSON.parse(sessionStorage.getItem(GONE) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function saveGone(ids: string[]): void {
  try {
    sessionStorage.setItem(GONE, JSON.stringify(ids));
  } catch {
    // no session storage: a reload does not find the texts of the page before
  }
}
