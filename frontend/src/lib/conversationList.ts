// The sidebar's list of conversations: pages newest first, server-side
// search after a pause in typing, and the conversations' own changes (live
// frames, renames) applied in place without letting a late copy undo a newer
// one or bring a deleted conversation back.

import { ApiError, type ApiClient, type ConversationPage } from './api';
import { errorText, serverUnavailable } from './errors';
import type { Conversation } from './protocol';
import { appendPage, initialList, missingWithin, refreshedHead, removeConversation, touchConversation, upsertConversation, type Adding, type AppState } from './state';
import type { Store } from './store';
import { compareTimes, parseTime } from './time';
import { requestOrder } from './transport';

/** ConversationListOptions configure a ConversationList. */
export interface ConversationListOptions {
  /** Pause in typing before a search is sent; defaults to 300 ms. */
  searchDelayMs?: number;
}

/**
 * SEARCH_RETRY_MAX_MS bounds the pause before a search chatd answered 503
 * unavailable is asked again (its Retry-After; see ConversationList.firstPage).
 */
export const SEARCH_RETRY_MAX_MS = 10_000;

/**
 * SEARCH_AGAIN_MS is the pause before a search shown asks the server again
 * for its first page after a frame of a conversation it does not show (see
 * ConversationList.searchAgain): every frame in that pause is answered by
 * that one read. Each read spends one of the user's searches
 * (CHATD_SEARCHES_PER_MINUTE, 30), so this spends at most 12 a minute, in
 * a tab that is shown: a hidden tab's read waits until it is shown again.
 */
export const SEARCH_AGAIN_MS = 5_000;

/**
 * searchRetryWait is the pause before a search refused for now is asked
 * again: chatd's own 503 unavailable with a Retry-After (the user's
 * searches take turns on the server, and one that waited for another past
 * the request's deadline is answered so), bounded by SEARCH_RETRY_MAX_MS;
 * null for any other failure (a proxy's 503 has no chatd body, a 429 is
 * the budget of searches spent).
 */
function searchRetryWait(err: unknown): number | null {
  if (!(err instanceof ApiError) || err.status !== 503 || serverUnavailable(err) === null || err.retryAfter === undefined) return null;
  return Math.min(err.retryAfter * 1000, SEARCH_RETRY_MAX_MS);
}

/** pause resolves after ms, or at once when signal aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** ConversationList loads and updates AppState.list (and conversation copies in threads). */
export class ConversationList {
  private seq = 0;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  /** The pending read of a search's head after frames (searchAgain). */
  private searchAgainTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Gives up the list's reads on their way (a reload, a next page, a head
   * read) once a reload or a reset makes their answers useless: the server
   * runs a user's searches one at a time, so the next search would wait for them.
   */
  private reads = new AbortController();
  /** The newest server copy of each conversation applied (by updatedAt). */
  private readonly applied = new Map<string, Conversation>();
  /** Conversations deleted in this session: a late frame must not bring one back. */
  private readonly deleted = new Set<string>();
  /**
   * When a conversation last changed here (requestOrder, taken when applied
   * or touched): a page asked for before may lack its move (see changedSince).
   */
  private readonly changed = new Map<string, number>();
  /** When the first page shown was asked for (requestOrder; 0: none read yet). */
  private readAt = 0;
  /** When the user's conversation frames began to reach the tab (requestOrder; 0: not yet: live). */
  private liveFrom = 0;
  /** The seq of the reload on its way (0: none). */
  private reloadSeq = 0;
  /** The search (appliedQuery; '': none) whose first page the items shown, and their nextCursor, are. */
  private itemsQuery = '';

  constructor(
    private readonly store: Store<AppState>,
    private readonly api: ApiClient,
    private readonly opts: ConversationListOptions = {},
  ) {}

  /** stop ends the list's timers: a search to send, a search's head to read again (the app ends). */
  stop(): void {
    clearTimeout(this.searchTimer);
    this.cancelSearchAgain();
  }

  /**
   * epoch names the session the list belongs to; reset starts another. A
   * request's answer that comes after its session ended is not applied
   * (applyIn): it is the user's before, and another may be signed in now.
   */
  get epoch(): number {
    return this.epochs;
  }
  private epochs = 0;

  /** reset empties the list and forgets what was applied (signing in or out). */
  reset(): void {
    this.seq++;
    this.epochs++;
    this.stop();
    this.giveUpReads();
    this.applied.clear();
    this.deleted.clear();
    this.changed.clear();
    this.readAt = this.liveFrom = this.reloadSeq = 0;
    this.itemsQuery = '';
    this.store.set((s) => ({ ...s, list: initialList }));
  }

  /**
   * reload fetches the first page for the applied search. A search that
   * fails leaves no list: the one shown was another search's, or no
   * search's, and read as this one's result. So does the plain list failing
   * after a search: the search's matches, and its nextCursor, read as the
   * list's, lost every conversation between them for good once the next
   * page was read from that cursor. It gives up the request of
   * the reload before, if still on its way: the server runs a user's
   * searches one at a time, so a search typed after a pause would
   * otherwise wait for the one before, whose answer nobody reads.
   */
  async reload(): Promise<void> {
    const seq = ++this.seq;
    const at = requestOrder();
    this.reloadSeq = seq;
    this.cancelSearchAgain(); // its page is read after the frames
    const { signal } = this.giveUpReads();
    const query = this.store.state.list.appliedQuery;
    const shown = new Set(this.store.state.list.items.map((c) => c.id));
    this.store.set((s) => ({ ...s, list: { ...s.list, loading: true, error: null } }));
    try {
      const page = await this.firstPage(query, signal);
      if (seq !== this.seq) return;
      this.reloadSeq = 0;
      this.readAt = at;
      this.itemsQuery = query;
      const items = this.current(page.conversations);
      const listed = new Set(items.map((c) => c.id));
      this.store.set((s) => {
        // Created or moved (a frame) while the page was on its way: kept where it sorts.
        const arrived = s.list.items.filter((c) => (!shown.has(c.id) || this.changedSince(c.id, at)) && !listed.has(c.id));
        const list = appendPage({ ...s.list, items: [] }, items, page.nextCursor);
        return { ...s, list: arrived.reduce((l, c) => upsertConversation(l, c), list) };
      });
      this.catchUp();
    } catch (err) {
      if (seq !== this.seq) return;
      this.reloadSeq = 0; // its error's Retry reads the list after the channel is up
      const none = query || this.itemsQuery !== query ? { items: [], nextCursor: '' } : {};
      this.itemsQuery = query;
      this.store.set((s) => ({ ...s, list: { ...s.list, ...none, loading: false, error: errorText(err) } }));
    }
  }

  /**
   * firstPage reads the first page of the list, or of a search (query). A
   * search chatd refused for now with a Retry-After (searchRetryWait: the
   * user's search before held its turn past the request's deadline) is
   * asked once more after that pause, the list still loading; a second
   * failure is the search's. A reload or reset meanwhile (signal) ends the
   * pause, and the first failure is the answer, which nobody reads.
   */
  private async firstPage(query: string, signal: AbortSignal): Promise<ConversationPage> {
    try {
      return await this.api.listConversations({ query, signal });
    } catch (err) {
      const wait = query ? searchRetryWait(err) : null;
      if (wait === null || signal.aborted) throw err;
      await pause(wait, signal);
      if (signal.aborted) throw err;
      return await this.api.listConversations({ query, signal });
    }
  }

  /** giveUpReads aborts the reads on their way and returns the controller of those that follow. */
  private giveUpReads(): AbortController {
    this.reads.abort();
    this.reads = new AbortController();
    return this.reads;
  }

  /**
   * loadMore fetches the next page (infinite scroll). The error of a page
   * before goes as it starts, as a reload's does: kept, a failure again
   * with the same error wrote the same text in the same alert, and nothing
   * was said.
   */
  async loadMore(): Promise<void> {
    const { list } = this.store.state;
    if (list.loading || !list.nextCursor) return;
    const seq = this.seq;
    this.store.set((s) => ({ ...s, list: { ...s.list, loading: true, error: null } }));
    try {
      const page = await this.api.listConversations({ query: list.appliedQuery, cursor: list.nextCursor, signal: this.reads.signal });
      if (seq !== this.seq) return;
      const items = this.current(page.conversations);
      this.store.set((s) => {
        // A head refreshed meanwhile (refreshHead) set another cursor: this page may skip what sorts above it.
        if (s.list.nextCursor !== list.nextCursor) return { ...s, list: { ...s.list, loading: false } };
        return { ...s, list: appendPage(s.list, items, page.nextCursor) };
      });
    } catch (err) {
      if (seq !== this.seq) return;
      this.store.set((s) => ({ ...s, list: { ...s.list, loading: false, error: errorText(err) } }));
    }
  }

  /**
   * refreshHead merges the first page again (after a reconnect: frames may
   * have been missed; a copy older than one a frame brought meanwhile, a
   * title or a rename, is not applied), and drops the shown conversations within its range
   * that it no longer lists (deleted elsewhere meanwhile). Only those shown
   * when it was asked for and not changed since: one created since may be
   * missing from the page, and so may one of a later page whose new activity
   * moved it up after the head was read (its own page no longer has it).
   * The conversations it lists are added also to a search's results
   * (the server matched them: one made or changed on another device while
   * this tab was offline, or one of a later page moved up, searchAgain).
   * The pages loaded after the first are read again from the page's
   * nextCursor (see refreshedHead): more changes elsewhere than a page
   * holds left some for good between the refreshed page and the old cursor.
   * A search read again on a frame (searchAgain, `trim` false) only merges
   * the page: the pages loaded after it and their cursor stay (trimmed, a
   * search scrolled past its first page collapsed to it on any frame of a
   * conversation it lacks, the user's own sends elsewhere included).
   */
  async refreshHead(trim = true): Promise<void> {
    const seq = this.seq;
    const at = requestOrder();
    const { appliedQuery: query, items } = this.store.state.list;
    const known = new Set(items.map((c) => c.id));
    this.cancelSearchAgain(); // this read answers the frames before
    try {
      const page = await this.api.listConversations({ query, signal: this.reads.signal });
      if (seq !== this.seq) return; // reloaded or reset meanwhile
      this.readAt = Math.max(this.readAt, at);
      for (const c of page.conversations) this.put(c, 'listed');
      const unchanged = new Set([...known].filter((id) => !this.changedSince(id, at)));
      const head = this.current(page.conversations);
      this.store.set((s) => ({ ...s, list: refreshedHead(s.list, head, page.nextCursor, unchanged, trim) }));
    } catch {
      // the next refresh will do
    }
  }

  /**
   * live says the user's conversation frames reach the tab from `from`
   * (requestOrder): its live channel was first confirmed, which the server
   * does once it has registered the channel (a WebSocket's hello, an event
   * stream's 200). A first page asked for before may lack what changed
   * between its read and then (a conversation created on another device, a
   * title, a rename, a deletion), which no frame brings: its head is read
   * again (refreshHead), once a reload on its way is done. A page asked for
   * after `from` needs none; neither does a list never read (its first read
   * comes after), nor one whose reload failed (its Retry reads it again).
   */
  live(from: number): void {
    this.liveFrom = from;
    if (this.reloadSeq === 0) this.catchUp();
  }

  /** catchUp reads the head again when the page shown was asked for before the frames flowed (live). */
  private catchUp(): void {
    if (this.readAt === 0 || this.readAt >= this.liveFrom) return;
    void this.refreshHead();
  }

  /** setQuery changes the search text; the server is asked after a pause in typing. */
  setQuery(query: string): void {
    this.store.set((s) => ({ ...s, list: { ...s.list, query } }));
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      const applied = query.trim();
      if (applied === this.store.state.list.appliedQuery && this.store.state.list.loaded) return;
      this.store.set((s) => ({ ...s, list: { ...s.list, appliedQuery: applied } }));
      void this.reload();
    }, this.opts.searchDelayMs ?? 300);
  }

  /**
   * apply puts a server copy of a conversation into the list (and into its
   * loaded thread) unless it was deleted or an applied copy is newer: a
   * frame, or the answer to the user's own change. It returns false when
   * it was ignored. A search's results take it only in place of their own
   * copy (the server decides what matches); one they lack where it sorts
   * within their loaded pages has the server asked (searchAgain).
   */
  apply(c: Conversation): boolean {
    if (!this.put(c, 'live')) return false;
    const { list } = this.store.state;
    if (list.appliedQuery && missingWithin(list, c)) this.searchAgain();
    return true;
  }

  /** put applies c (see apply), added to the list as `adding` says (upsertConversation). */
  private put(c: Conversation, adding: Adding): boolean {
    if (this.deleted.has(c.id) || this.isStale(c)) return false;
    this.changed.set(c.id, requestOrder());
    this.store.set((s) => {
      const t = s.threads[c.id];
      return {
        ...s,
        list: upsertConversation(s.list, c, adding),
        threads: t ? { ...s.threads, [c.id]: { ...t, conversation: c } } : s.threads,
      };
    });
    return true;
  }

  /**
   * searchAgain reads a search's head again (refreshHead) SEARCH_AGAIN_MS
   * after a frame of a conversation its results lack where it sorts: new
   * activity (another device's send) may have moved a match of a later page
   * above the cursor of the page shown, so that no page would ever list it,
   * and the next page would end the list without it. The frames of the
   * pause share that one read; none is asked while one is pending, nor
   * after a reload or refresh that starts meanwhile (it reads after them),
   * nor for a list whose last load failed (its Retry reads it).
   */
  private searchAgain(): void {
    if (this.searchAgainTimer !== undefined || this.searchAgainWhenShown) return;
    this.searchAgainTimer = setTimeout(() => {
      this.searchAgainTimer = undefined;
      if (document.visibilityState === 'hidden') {
        // A hidden tab spends none of the user's searches (every tab
        // showing a search would otherwise spend its own share): the read
        // waits until the tab is shown again.
        this.searchAgainWhenShown = true;
        document.addEventListener('visibilitychange', this.onShownAgain);
        return;
      }
      this.readSearchAgain();
    }, SEARCH_AGAIN_MS);
  }

  /** Whether a searchAgain read waits for the tab to be shown (onShownAgain). */
  private searchAgainWhenShown = false;

  /** onShownAgain makes the searchAgain read a hidden tab held back, once it is shown. */
  private readonly onShownAgain = (): void => {
    if (document.visibilityState === 'hidden') return;
    this.cancelSearchAgain();
    this.readSearchAgain();
  };

  /** readSearchAgain reads a search's head again (searchAgain), if a search is still shown and its list did not fail. */
  private readSearchAgain(): void {
    const { appliedQuery, error } = this.store.state.list;
    if (appliedQuery && error === null) void this.refreshHead(false);
  }

  /** cancelSearchAgain drops the pending searchAgain read, also one waiting for the tab to be shown. */
  private cancelSearchAgain(): void {
    clearTimeout(this.searchAgainTimer);
    this.searchAgainTimer = undefined;
    if (this.searchAgainWhenShown) document.removeEventListener('visibilitychange', this.onShownAgain);
    this.searchAgainWhenShown = false;
  }

  /** applyIn applies c (see apply) only while the session of epoch lasts. */
  applyIn(epoch: number, c: Conversation): boolean {
    return epoch === this.epochs && this.apply(c);
  }

  /**
   * loaded records a conversation fetched with its messages: updated in the
   * list, never added to it. A snapshot older than a copy a frame brought
   * while it was on its way (a title, a rename) gives way to that copy, in
   * the list and in the thread alike.
   */
  loaded(c: Conversation): void {
    const newer = this.isStale(c) ? this.applied.get(c.id) : undefined;
    if (!newer) {
      this.store.set((s) => ({ ...s, list: upsertConversation(s.list, c, 'no') }));
      return;
    }
    this.store.set((s) => {
      const t = s.threads[c.id];
      return t ? { ...s, threads: { ...s.threads, [c.id]: { ...t, conversation: newer } } } : s;
    });
  }

  /** touch moves a conversation's activity time forward (a new message). */
  touch(id: string, at: string): void {
    this.changed.set(id, requestOrder());
    this.store.set((s) => ({ ...s, list: touchConversation(s.list, id, at) }));
  }

  /** forget removes a deleted conversation for good, its thread included. */
  forget(id: string): void {
    this.applied.delete(id);
    this.changed.delete(id);
    this.deleted.add(id);
    this.store.set((s) => {
      const threads = { ...s.threads };
      delete threads[id];
      return { ...s, list: removeConversation(s.list, id), threads };
    });
  }

  /** wasDeleted says whether conversation id was deleted in this session (forget). */
  wasDeleted(id: string): boolean {
    return this.deleted.has(id);
  }

  /** changedSince says whether conversation id changed here after a read asked for at `at` (requestOrder). */
  private changedSince(id: string, at: number): boolean {
    return (this.changed.get(id) ?? 0) > at;
  }

  /**
   * current returns a page's conversations as this tab knows them now: a
   * newer copy a frame brought while the page was on its way (a title, a
   * rename) in place of the page's, and none deleted meanwhile.
   */
  private current(page: readonly Conversation[]): Conversation[] {
    return page.filter((c) => !this.deleted.has(c.id)).map((c) => (this.isStale(c) ? (this.applied.get(c.id) ?? c) : c));
  }

  /**
   * isStale says whether c is older than a copy already applied, and
   * remembers it otherwise. Over SSE the same frame can come on two streams
   * (a POST's and GET /api/events), one lagging: a late copy must not undo a
   * rename or a title.
   */
  private isStale(c: Conversation): boolean {
    if (!parseTime(c.updatedAt)) return false;
    const known = this.applied.get(c.id);
    if (known !== undefined && compareTimes(c.updatedAt, known.updatedAt) < 0) return true;
    this.applied.set(c.id, c);
    return false;
  }
}
