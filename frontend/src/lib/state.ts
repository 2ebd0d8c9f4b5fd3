// The application state held by the store, and pure updates of its parts.

import type { Conversation, ModelInfo, Params, UpstreamInfo, User } from './protocol';
import type { Route } from './router';
import type { Thread } from './thread';
import { compareTimes } from './time';
import type { TransportStatus } from './transport';

/** ListState is the sidebar's list of conversations. */
export interface ListState {
  items: readonly Conversation[];
  nextCursor: string;
  /** The search text as typed; the list holds results for `appliedQuery`. */
  query: string;
  appliedQuery: string;
  loading: boolean;
  loaded: boolean;
  error: string | null;
}

/** Toast is a short message shown to the user. */
export interface Toast {
  id: number;
  text: string;
  kind: 'error' | 'info';
}

/** Session is who is signed in. */
export interface Session {
  token: string | null;
  user: User | null;
  /** Shown on the sign-in page (for example "your session expired"). */
  notice: string | null;
}

/** AppState is everything the UI renders. */
export interface AppState {
  session: Session;
  route: Route;
  link: TransportStatus;
  models: readonly ModelInfo[];
  /** The upstream servers of the models, in the picker's order. */
  upstreams: readonly UpstreamInfo[];
  /**
   * Models picked for conversations whose PATCH has not been answered yet,
   * by id: the picker shows them, and sends and regenerations carry them.
   */
  modelPicks: Readonly<Record<string, string>>;
  /** Model, system prompt and parameters for a chat that is not created yet. */
  /**
   * The next new chat's settings; waiting: one was sent and waits for the
   * server (its creation failed for a moment: ChatApp.createPending), its
   * composer read-only with a Cancel (ChatApp.cancelNewChat); serverWait:
   * chatd's own reason when it answered not now (a 503 unavailable, a 429),
   * rather than a connection lost. model: the one last picked (saved), even
   * when the list of models lacks it (for now, maybe); '' is the server's
   * default model.
   */
  newChat: { model: string; systemPrompt: string; params?: Params; waiting?: boolean; serverWait?: string };
  list: ListState;
  threads: Readonly<Record<string, Thread>>;
  /** Errors loading a conversation, by id. */
  threadErrors: Readonly<Record<string, string>>;
  /**
   * Conversations whose live updates stopped, by id, with the reason: a
   * subscribe refused for good. Updates may be missing until a later
   * subscribe is taken (a retry, a reconnect) or the conversation is left.
   */
  liveMissing: Readonly<Record<string, string>>;
  /** Conversations with a send/regenerate waiting for its ack. */
  busy: Readonly<Record<string, boolean>>;
  /** Composer text per conversation id ("new" for a new chat). */
  drafts: Readonly<Record<string, string>>;
  toasts: readonly Toast[];
}

/** initialList is an empty, not yet loaded list. */
export const initialList: ListState = {
  items: [],
  nextCursor: '',
  query: '',
  appliedQuery: '',
  loading: false,
  loaded: false,
  error: null,
};

/** newestFirst orders conversations by activity, newest first; ids (newer ids are larger) break ties. */
function newestFirst(a: Conversation, b: Conversation): number {
  const d = compareTimes(b.updatedAt, a.updatedAt);
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * belongsInLoaded says whether a conversation missing from the list falls
 * within the part of the server's order that is loaded: before the oldest
 * loaded item, or anywhere once the last page is in. One further down comes
 * with a later page.
 */
function belongsInLoaded(list: ListState, c: Conversation): boolean {
  const oldest = list.items.at(-1);
  return !list.nextCursor || !oldest || newestFirst(c, oldest) < 0;
}

/**
 * Adding says whether upsertConversation adds a conversation the list does
 * not hold, when it sorts within the loaded pages: 'live' (a frame, or the
 * user's own change) unless the list is a search result, whose matches the
 * server decides; 'listed' (a server page of the search or list shown
 * listed it: a match); 'no' (updated in place only).
 */
export type Adding = 'live' | 'listed' | 'no';

/**
 * upsertConversation puts c into the list, newest activity first. A
 * conversation the list does not hold is added as `adding` says, and only
 * when it sorts within the loaded pages: new activity in an older
 * conversation brings it to the top.
 */
export function upsertConversation(list: ListState, c: Conversation, adding: Adding = 'live'): ListState {
  const exists = list.items.some((x) => x.id === c.id);
  if (!exists && (adding === 'no' || (adding === 'live' && list.appliedQuery) || !belongsInLoaded(list, c))) return list;
  const items = [...list.items.filter((x) => x.id !== c.id), c].sort(newestFirst);
  return { ...list, items };
}

/**
 * missingWithin says whether the list lacks c where c sorts within the
 * loaded pages: a search result missing a conversation whose activity
 * moved it there may lack a match (its page, not loaded yet, had it).
 */
export function missingWithin(list: ListState, c: Conversation): boolean {
  return !list.items.some((x) => x.id === c.id) && belongsInLoaded(list, c);
}

/** removeConversation drops a conversation from the list. */
export function removeConversation(list: ListState, id: string): ListState {
  if (!list.items.some((x) => x.id === id)) return list;
  return { ...list, items: list.items.filter((x) => x.id !== id) };
}

/**
 * refreshedHead makes a fresh first page (its conversations as this tab
 * knows them, and its nextCursor) the head of the list, as a reconnect
 * reads it after frames may have been missed. The page's conversations are
 * shown, also those a search did not let a frame add. Of the others shown,
 * those of `known` that sort within the page (newer than its oldest item,
 * or anywhere when it is the last page) and are not on it are no longer on
 * the server (deleted, or for a search no longer matching); those not in
 * `known` (created or moved up since it was asked for) stay. Every one
 * older than the page's oldest item goes, and the page's nextCursor is the
 * list's: after more changes elsewhere than a page holds, the ones beyond
 * it sort above the cursor of the pages loaded before and would never come,
 * and a page loaded before is never read again (a conversation deleted on
 * it stayed). The pages after bring them back in the server's order.
 * Without `trim` (a search read again on a frame, searchAgain: its cursor
 * is not stale) the ones older than the page stay and so does the list's
 * cursor: the pages the user scrolled to stay shown.
 */
export function refreshedHead(
  list: ListState,
  page: readonly Conversation[],
  nextCursor: string,
  known: ReadonlySet<string>,
  trim = true,
): ListState {
  const listed = new Set(page.map((c) => c.id));
  const oldest = page.at(-1);
  const inRange = (c: Conversation) => !nextCursor || (oldest !== undefined && newestFirst(c, oldest) < 0);
  const stays = (c: Conversation) => listed.has(c.id) || (inRange(c) ? !known.has(c.id) : !trim);
  const shown = new Set(list.items.map((c) => c.id));
  const items = [...list.items.filter(stays), ...page.filter((c) => !shown.has(c.id))].sort(newestFirst);
  return { ...list, items, nextCursor: trim ? nextCursor : list.nextCursor };
}

/** touchConversation moves a conversation's activity time forward (a new message). */
export function touchConversation(list: ListState, id: string, at: string): ListState {
  const c = list.items.find((x) => x.id === id);
  if (!c || compareTimes(c.updatedAt, at) >= 0) return list;
  return upsertConversation(list, { ...c, updatedAt: at });
}

/** appendPage adds a fetched page, skipping ids already shown. */
export function appendPage(list: ListState, page: readonly Conversation[], nextCursor: string): ListState {
  const seen = new Set(list.items.map((c) => c.id));
  return {
    ...list,
    items: [...list.items, ...page.filter((c) => !seen.has(c.id))],
    nextCursor,
    loading: false,
    loaded: true,
    error: null,
  };
}
