// A conversation's message tree and the live-delta rules, as pure functions
// over immutable values (the store swaps whole objects; React compares refs).

import type { Conversation, DeltaFrame, DoneFrame, Message, ReasoningFrame } from './protocol';
import { endThinking, startThinking, type ThinkingTimes } from './reasoning';
import { compareParsed, parseTime, type Time } from './time';
import { utf8Length, utf8Prefix, utf8Suffix } from './utf8';

/** Thread is what the client knows of one conversation. */
export interface Thread {
  id: string;
  conversation: Conversation | null;
  /** Every known message of every branch, by id. */
  messages: Readonly<Record<string, Message>>;
  /** Children ids per parent id ("" for roots), oldest first. */
  children: Readonly<Record<string, readonly string[]>>;
  /** The version the user chose under a parent; absent: the latest leaf wins. */
  selected: Readonly<Record<string, string>>;
  /**
   * The versions the reader picked in this tab (selectVersion), by parent:
   * a choice holds while selected still names it (a new version heard
   * there since replaces it, as `selected` follows new messages too).
   */
  chosen: Readonly<Record<string, string>>;
  /** Bytes of text applied so far, per streaming answer: the resume cursor. */
  seq: Readonly<Record<string, number>>;
  /** Bytes of reasoning applied so far, per streaming answer: the reasoning's resume cursor. */
  rseq: Readonly<Record<string, number>>;
  /** When answers thought, as this tab saw it (see reasoning.ts), by message id. */
  thinking: Readonly<Record<string, ThinkingTimes>>;
  /** True once a REST snapshot was merged in. */
  loaded: boolean;
  /** The server holds older messages than the loaded ones (a paged snapshot). */
  hasMore: boolean;
  /** An older page is being fetched. */
  loadingOlder: boolean;
  /**
   * The answer the server said was running at the last snapshot
   * (activeMessageId): while it streams, the shown path of a paged thread
   * starts above it. "" once it ended (settleAnchor): the newest message
   * then leads, as in a fresh load.
   */
  anchor: string;
  /** Sends waiting for the connection, oldest first (see queueSend). */
  queued: readonly QueuedSend[];
  /**
   * Why the queued sends wait while the link is up: chatd's own message
   * when it refused one for now (errors.ts serverUnavailable), kept until a
   * send is taken or the queue empties. Absent: they wait for the connection.
   */
  serverWait?: string;
  /**
   * Answers whose end the client heard of while the server was going away
   * (a `shutdown` done): their stored status is taken after reconnecting.
   */
  unconfirmed: Readonly<Record<string, true>>;
  /**
   * Answers whose end the server could not confirm stored (an `unavailable`
   * done: its database was slow or down): the text shown is kept, and the
   * stored message is read again until its status is final (see
   * ConversationThread), which then replaces it.
   */
  unsaved: Readonly<Record<string, true>>;
  /**
   * Pending messages sent with no parent, by id: the server puts them after
   * the latest message it holds. Shown after the newest stored message (at
   * the roots while none is), and moved there when a snapshot brings newer
   * ones (a send made while the conversation was still loading).
   */
  afterLatest: Readonly<Record<string, true>>;
}

/** QueuedSend is a user message shown as pending, to be sent once connected. */
export interface QueuedSend {
  clientMessageId: string;
  content: string;
  /**
   * undefined: after the latest message the server holds (see queueSend);
   * "" a new root (an edit of the first message).
   */
  parentMessageId?: string;
  /** The composer that held the text ("new", a conversation id), or null for an edit. */
  draftKey: string | null;
  /** The model chosen when it was written; absent: the conversation's. */
  model?: string;
  /**
   * The parent was the newest stored message when the send was queued (set
   * by queueSend): written to continue the conversation, it is sent after
   * the server's latest message once a reload replaces the thread (rehang).
   * Absent: a parent the user chose (an older version), kept.
   */
  parentWasNewest?: boolean;
}

/** What a delta or done did to a thread ('gap': the stored state must be reloaded). */
export type ApplyResult = 'applied' | 'duplicate' | 'gap';

/** The error code of an answer ended by a server shutting down (protocol.md). */
export const SHUTDOWN = 'shutdown';

/** The error code of an answer whose end the server could not store in time (protocol.md). */
export const UNAVAILABLE = 'unavailable';

/** Prefix of the id of a user message shown before the server stored it. */
export const PENDING_PREFIX = 'local:';

/** newThread returns an empty thread for a conversation id. */
export function newThread(id: string): Thread {
  return {
    id,
    conversation: null,
    messages: {},
    children: {},
    selected: {},
    chosen: {},
    seq: {},
    rseq: {},
    thinking: {},
    loaded: false,
    hasMore: false,
    loadingOlder: false,
    anchor: '',
    queued: [],
    unconfirmed: {},
    unsaved: {},
    afterLatest: {},
  };
}

/**
 * byAge orders siblings oldest first. A pending message (addPending) comes
 * after every stored one: the server stamps it once it stores it, after
 * them, and its own time is this device's clock, which may be minutes
 * behind the server's (an edit shown among the older versions).
 */
function byAge(a: Message, b: Message): number {
  const pa = a.id.startsWith(PENDING_PREFIX);
  if (pa !== b.id.startsWith(PENDING_PREFIX)) return pa ? 1 : -1;
  const d = compareParsed(timeOf(a), timeOf(b), a.createdAt, b.createdAt);
  if (d !== 0) return d;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** parsedTimes holds each message's parsed createdAt (messages are immutable values). */
const parsedTimes = new WeakMap<Message, Time | null>();

/** timeOf is m's createdAt parsed, once per message value. */
function timeOf(m: Message): Time | null {
  let at = parsedTimes.get(m);
  if (at === undefined) {
    at = parseTime(m.createdAt);
    parsedTimes.set(m, at);
  }
  return at;
}

function insertChild(
  children: Readonly<Record<string, readonly string[]>>,
  messages: Readonly<Record<string, Message>>,
  m: Message,
): Record<string, readonly string[]> {
  const list = children[m.parentId] ?? [];
  if (list.includes(m.id)) return children as Record<string, readonly string[]>;
  const next = [...list, m.id].sort((a, b) => byAge(messages[a] ?? m, messages[b] ?? m));
  return { ...children, [m.parentId]: next };
}

function removeChild(
  children: Readonly<Record<string, readonly string[]>>,
  parentId: string,
  id: string,
): Record<string, readonly string[]> {
  const list = children[parentId];
  if (!list) return children as Record<string, readonly string[]>;
  return { ...children, [parentId]: list.filter((x) => x !== id) };
}

/** longer returns local when it extends incoming (text applied live beyond a snapshot), else incoming. */
function longer(local: string, incoming: string): string {
  return local.length > incoming.length && local.startsWith(incoming) ? local : incoming;
}

/**
 * Merges two versions of one message: for a streaming answer, the longer of
 * the two texts and of the two reasonings wins when one extends the other.
 */
function mergeContent(local: Message | undefined, incoming: Message): Message {
  if (!local) return incoming;
  // A snapshot taken before the answer ended must not undo its end.
  if (local.status !== 'streaming' && incoming.status === 'streaming') return local;
  if (incoming.status !== 'streaming') return incoming;
  const content = longer(local.content, incoming.content);
  const reasoning = longer(local.reasoning ?? '', incoming.reasoning ?? '');
  if (content === incoming.content && reasoning === (incoming.reasoning ?? '')) return incoming;
  return { ...incoming, content, ...(reasoning ? { reasoning } : {}) };
}

/**
 * mergeUnsaved merges the stored version of an answer whose end was not
 * confirmed stored (Thread.unsaved): still `streaming` there, it adds only
 * text that extends the one shown, which stays ended here; a final version
 * replaces it.
 */
function mergeUnsaved(local: Message | undefined, incoming: Message): Message {
  if (!local || incoming.status !== 'streaming') return incoming;
  const content = longer(local.content, incoming.content);
  const reasoning = longer(local.reasoning ?? '', incoming.reasoning ?? '');
  if (content === local.content && reasoning === (local.reasoning ?? '')) return local;
  return { ...local, content, ...(reasoning ? { reasoning } : {}) };
}

/** setCursors records (or, for an ended message, forgets) the resume cursors of m. */
function setCursors(seq: Record<string, number>, rseq: Record<string, number>, m: Message, keepHigher: boolean): void {
  if (m.status !== 'streaming') {
    delete seq[m.id];
    delete rseq[m.id];
    return;
  }
  const s = utf8Length(m.content);
  const r = utf8Length(m.reasoning ?? '');
  seq[m.id] = keepHigher ? Math.max(seq[m.id] ?? 0, s) : s;
  rseq[m.id] = keepHigher ? Math.max(rseq[m.id] ?? 0, r) : r;
}

/** thinkingSeen starts the thinking times of a streaming answer that reasons and has no text yet. */
function thinkingSeen(thinking: Readonly<Record<string, ThinkingTimes>>, m: Message, now: number): Readonly<Record<string, ThinkingTimes>> {
  if (m.status !== 'streaming' || m.content !== '' || !m.reasoning || thinking[m.id]) return thinking;
  return { ...thinking, [m.id]: startThinking(undefined, m.createdAt, now) };
}

/** thinkingEnded records the end of an answer's thinking (its first text, or its end). */
function thinkingEnded(thinking: Readonly<Record<string, ThinkingTimes>>, id: string, now: number): Readonly<Record<string, ThinkingTimes>> {
  const known = thinking[id];
  if (!known || known.end !== undefined) return thinking;
  const ended = endThinking(known, now);
  return ended ? { ...thinking, [id]: ended } : withoutKey(thinking, id);
}

/**
 * activePath returns the messages shown to the user, root first: under each
 * parent the chosen version, by default the one leading to the latest leaf.
 */
export function activePath(t: Thread): Message[] {
  const latest = new Map<string, Message | undefined>();
  const path: Message[] = [];
  let parent = topParent(t);
  // Each message at most once: however long the path, and never round a cycle.
  const limit = Object.keys(t.messages).length;
  for (let guard = 0; guard < limit; guard++) {
    const id = chosenChild(t, parent, latest);
    const m = id ? t.messages[id] : undefined;
    if (!m) break;
    path.push(m);
    parent = m.id;
  }
  return path;
}

/**
 * topParent is the parent id the shown path starts under: "" (the roots)
 * when the whole tree is loaded; with older messages still on the server,
 * the parent of the oldest loaded ancestor of the anchor (the running
 * answer) while it streams, else of the newest message, so the newest part
 * of the conversation shows while the rest waits.
 * Messages whose parent is not loaded stay in `children` under that id and
 * join the path when their parent arrives.
 */
export function topParent(t: Thread): string {
  if (!t.hasMore) return '';
  const running = t.messages[t.anchor];
  let m = running?.status === 'streaming' ? running : newest(t);
  for (let guard = 0; m && guard < 100000; guard++) {
    const parent = t.messages[m.parentId];
    if (!parent) return m.parentId;
    m = parent;
  }
  return '';
}

/**
 * settleAnchor forgets the anchor once its answer ended (a done, a message
 * frame or a page with its final status): a tab opened while it ran
 * otherwise kept showing the path above it, not an edit or an answer made
 * elsewhere after it, which a fresh load shows (the newest message leads).
 */
function settleAnchor(t: Thread): Thread {
  const m = t.messages[t.anchor];
  return m && m.status !== 'streaming' ? { ...t, anchor: '' } : t;
}

/**
 * newest is the newest stored message, or, with none stored yet, the
 * newest pending one: a pending message hanging under a parent not loaded
 * (an edit of a message a reload left out) does not hide the page.
 */
function newest(t: Thread): Message | undefined {
  return newestStored(t.messages) ?? newestOf(Object.values(t.messages));
}

/** newestStored is the newest message the server sent (not pending) of messages. */
function newestStored(messages: Readonly<Record<string, Message>>): Message | undefined {
  return newestOf(Object.values(messages).filter((m) => !m.id.startsWith(PENDING_PREFIX)));
}

function newestOf(list: readonly Message[]): Message | undefined {
  let best: Message | undefined;
  for (const m of list) if (!best || byAge(best, m) < 0) best = m;
  return best;
}

/** oldestLoaded returns the id of the oldest message the server sent (the `before` of the next older page). */
export function oldestLoaded(t: Thread): string | undefined {
  let best: Message | undefined;
  for (const m of Object.values(t.messages)) {
    if (m.id.startsWith(PENDING_PREFIX)) continue;
    if (!best || byAge(m, best) < 0) best = m;
  }
  return best?.id;
}

/**
 * chosenChild is the version shown under parent: the user's choice, else the
 * one whose subtree holds the newest message (byAge: by createdAt, then id,
 * the server's order of messages; its Markdown export picks the same).
 */
function chosenChild(t: Thread, parent: string, memo: Map<string, Message | undefined>): string | undefined {
  const list = t.children[parent];
  if (!list || list.length === 0) return undefined;
  const sel = t.selected[parent];
  if (sel && list.includes(sel)) return sel;
  let best: string | undefined;
  let bestNewest: Message | undefined;
  for (const id of list) {
    const n = newestIn(t, id, memo);
    if (best === undefined || (n && (!bestNewest || byAge(n, bestNewest) >= 0))) {
      best = id;
      bestNewest = n;
    }
  }
  return best;
}

/**
 * newestIn returns the newest message (byAge) of the subtree under id,
 * itself included (memoised). It walks the subtree with a stack of its own,
 * not by recursion: a conversation thousands of messages long is a tree as
 * deep, past the call stack (RangeError, a blank page). Each message is
 * visited once per memo; one met again (a cycle, which the server never
 * sends) counts once.
 */
function newestIn(t: Thread, id: string, memo: Map<string, Message | undefined>): Message | undefined {
  if (memo.has(id)) return memo.get(id);
  const stack = [id];
  const open = new Set<string>();
  while (stack.length > 0) {
    const at = stack[stack.length - 1]!;
    if (!open.has(at)) {
      // First met: its children go above it, done before it.
      open.add(at);
      for (const c of t.children[at] ?? []) if (!memo.has(c) && !open.has(c)) stack.push(c);
      continue;
    }
    stack.pop();
    if (!memo.has(at)) memo.set(at, newestOfNode(t, at, memo));
  }
  return memo.get(id);
}

/** newestOfNode is the newest of message id and its children's subtrees (their newest already in memo). */
function newestOfNode(t: Thread, id: string, memo: Map<string, Message | undefined>): Message | undefined {
  let best = t.messages[id];
  for (const child of t.children[id] ?? []) {
    const c = memo.get(child);
    if (c && (!best || byAge(c, best) > 0)) best = c;
  }
  return best;
}

/** siblings returns the versions of a message (itself included), oldest first. */
export function siblings(t: Thread, id: string): readonly string[] {
  const m = t.messages[id];
  if (!m) return [];
  return t.children[m.parentId] ?? [id];
}

/**
 * earlierVersionsMayExist says whether the server may hold versions of
 * message id older than those loaded (siblings: the oldest first). Pages
 * come newest first, each message newer than the oldest loaded being
 * loaded, and a version is newer than its parent: with the parent loaded,
 * every version is; with it on an older page (the first message shown of a
 * paged thread), or id a first message (its parent ""), older versions may
 * still be on the server while it holds older messages (hasMore).
 */
export function earlierVersionsMayExist(t: Thread, id: string): boolean {
  const m = t.messages[id];
  return !!m && t.hasMore && !t.messages[m.parentId];
}

/** selectVersion shows message id (and its branch) in place of its siblings: the reader's choice (Thread.chosen). */
export function selectVersion(t: Thread, id: string): Thread {
  const m = t.messages[id];
  if (!m || (t.selected[m.parentId] === id && t.chosen[m.parentId] === id)) return t;
  return { ...t, selected: { ...t.selected, [m.parentId]: id }, chosen: { ...t.chosen, [m.parentId]: id } };
}

/** stepVersion moves from message id to its previous (-1) or next (+1) sibling. */
export function stepVersion(t: Thread, id: string, dir: -1 | 1): Thread {
  const list = siblings(t, id);
  const i = list.indexOf(id);
  const next = list[i + dir];
  return next ? selectVersion(t, next) : t;
}

/** leafOf returns the last message of the active path, or undefined for an empty thread. */
export function leafOf(t: Thread): Message | undefined {
  const p = activePath(t);
  return p[p.length - 1];
}

/**
 * upsertMessage stores a message from a `message` frame (or an ack). A new
 * message whose parent is on the shown path becomes the shown version, so a
 * tab follows answers and edits made anywhere; one elsewhere that is the
 * newest message known is shown too (showNewest), as a fresh load shows
 * it, unless the reader chose another version on the way to it here. A
 * pending local copy with the same clientMessageId is replaced.
 */
export function upsertMessage(t: Thread, incoming: Message, now = Date.now()): Thread {
  let next = t;
  const pendingId = incoming.clientMessageId ? PENDING_PREFIX + incoming.clientMessageId : '';
  let wasSelected = false;
  if (pendingId && next.messages[pendingId]) {
    const p = next.messages[pendingId]!;
    wasSelected = next.selected[p.parentId] === pendingId;
    next = removeMessage(next, pendingId);
  }
  const local = next.messages[incoming.id];
  const onPath = !local && (wasSelected || isOnPath(next, incoming.parentId));
  const merged = next.unsaved[incoming.id] ? mergeUnsaved(local, incoming) : mergeContent(local, incoming);
  const messages = { ...next.messages, [merged.id]: merged };
  const children = insertChild(next.children, messages, merged);
  const seq = { ...next.seq };
  const rseq = { ...next.rseq };
  setCursors(seq, rseq, merged, true);
  const thinking = thinkingSeen(next.thinking, merged, now);
  const selected = onPath ? { ...next.selected, [merged.parentId]: merged.id } : next.selected;
  const unconfirmed = next.unconfirmed[merged.id] ? withoutKey(next.unconfirmed, merged.id) : next.unconfirmed;
  const unsaved = next.unsaved[merged.id] && incoming.status !== 'streaming' ? withoutKey(next.unsaved, merged.id) : next.unsaved;
  next = incoming.clientMessageId ? unqueue(next, incoming.clientMessageId) : next;
  next = settleAnchor({ ...next, messages, children, seq, rseq, thinking, selected, unconfirmed, unsaved });
  return !local && !onPath && isNewest(next, merged) ? showNewest(next, merged) : next;
}

/** pick returns the entries of r whose key keep accepts. */
function pick<T>(r: Readonly<Record<string, T>>, keep: (key: string) => boolean): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(r)) if (keep(k)) out[k] = v;
  return out;
}

function withoutKey<T>(r: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const out = { ...r };
  delete out[key];
  return out;
}

function isOnPath(t: Thread, parentId: string): boolean {
  if (parentId === '') return true;
  return activePath(t).some((m) => m.id === parentId);
}

function removeMessage(t: Thread, id: string): Thread {
  const m = t.messages[id];
  if (!m) return t;
  const messages = { ...t.messages };
  delete messages[id];
  const selected = { ...t.selected };
  if (selected[m.parentId] === id) delete selected[m.parentId];
  const afterLatest = t.afterLatest[id] ? withoutKey(t.afterLatest, id) : t.afterLatest;
  return { ...t, messages, children: removeChild(t.children, m.parentId, id), selected, afterLatest };
}

/** moveUnder hangs the pending message m under parentId instead, shown there. */
function moveUnder(t: Thread, m: Message, parentId: string): Thread {
  const moved = { ...m, parentId };
  const messages = { ...t.messages, [m.id]: moved };
  const selected = { ...t.selected };
  if (selected[m.parentId] === m.id) delete selected[m.parentId];
  selected[parentId] = m.id;
  return { ...t, messages, children: insertChild(removeChild(t.children, m.parentId, m.id), messages, moved), selected };
}

/**
 * addPending shows a user message right away, before the server stored it.
 * parentId undefined (no parent given: the server puts it after its latest
 * message) shows it after the newest stored message, at the roots while
 * none is loaded yet, and a snapshot moves it after the newest it brings
 * (Thread.afterLatest); "" is a new first message (an edit of the first).
 */
export function addPending(t: Thread, clientMessageId: string, parentId: string | undefined, content: string): Thread {
  const now = new Date().toISOString();
  const id = PENDING_PREFIX + clientMessageId;
  const m: Message = {
    id,
    conversationId: t.id,
    parentId: parentId ?? newestStored(t.messages)?.id ?? '',
    role: 'user',
    content,
    status: 'complete',
    clientMessageId,
    createdAt: now,
    updatedAt: now,
  };
  const messages = { ...t.messages, [m.id]: m };
  return {
    ...t,
    messages,
    children: insertChild(t.children, messages, m),
    selected: { ...t.selected, [m.parentId]: m.id },
    afterLatest: parentId === undefined ? { ...t.afterLatest, [id]: true } : t.afterLatest,
  };
}

/** dropPending removes a pending user message (its send failed). */
export function dropPending(t: Thread, clientMessageId: string): Thread {
  return removeMessage(t, PENDING_PREFIX + clientMessageId);
}

/**
 * applyDelta appends a delta when it continues the text exactly: the applied
 * seq plus the byte length of the text equals its seq. A delta that ends at or
 * before what is applied is a duplicate; one that overlaps (a catch-up that
 * repeats known text) contributes only its new tail; one that starts after the
 * applied text, or names an unknown message, is a gap: reload and resume.
 */
export function applyDelta(t: Thread, f: DeltaFrame, now = Date.now()): { thread: Thread; result: ApplyResult } {
  const m = t.messages[f.messageId];
  if (!m) return { thread: t, result: 'gap' };
  const next = continuation(m.status, t.seq[m.id] ?? utf8Length(m.content), f.seq, f.text);
  if (typeof next === 'string') return { thread: t, result: next };
  const updated: Message = { ...m, content: m.content + next.add };
  const thinking = m.content === '' ? thinkingEnded(t.thinking, m.id, now) : t.thinking;
  return {
    thread: { ...t, messages: { ...t.messages, [m.id]: updated }, seq: { ...t.seq, [m.id]: f.seq }, thinking },
    result: 'applied',
  };
}

/**
 * continuation returns the part of a frame's text that continues a stream
 * applied up to prev bytes (the seq rules of applyDelta), or why none does.
 */
function continuation(status: Message['status'], prev: number, seq: number, text: string): { add: string } | 'duplicate' | 'gap' {
  if (seq <= prev) return 'duplicate';
  if (status !== 'streaming') return 'gap';
  const start = seq - utf8Length(text);
  if (start > prev) return 'gap';
  return { add: start === prev ? text : utf8Suffix(text, prev - start) };
}

/**
 * applyReasoning appends a reasoning frame by the same rules as applyDelta,
 * on the reasoning's own cursor (rseq): duplicates are dropped, an overlap
 * contributes its new tail, a frame after a hole is a gap.
 */
export function applyReasoning(t: Thread, f: ReasoningFrame, now = Date.now()): { thread: Thread; result: ApplyResult } {
  const m = t.messages[f.messageId];
  if (!m) return { thread: t, result: 'gap' };
  const have = m.reasoning ?? '';
  const next = continuation(m.status, t.rseq[m.id] ?? utf8Length(have), f.rseq, f.text);
  if (typeof next === 'string') return { thread: t, result: next };
  const updated: Message = { ...m, reasoning: have + next.add };
  return {
    thread: {
      ...t,
      messages: { ...t.messages, [m.id]: updated },
      rseq: { ...t.rseq, [m.id]: f.rseq },
      thinking: thinkingSeen(t.thinking, updated, now),
    },
    result: 'applied',
  };
}

/**
 * applyDone ends an answer. A done is a gap (reload the stored message: it is
 * final before `done` is sent) when its seq or rseq says text is missing;
 * when it is below what was applied (less was stored than streamed: a lost
 * instance's answer ended from its last checkpoint), the text is cut to the
 * stored length and reloaded too, but for an `unavailable` done (the end
 * was not confirmed stored in time, and may still be stored with all the
 * text): the text shown is kept, the answer marked unsaved and reloaded
 * (ConversationThread reads it again until final). An answer streaming here that a `shutdown`
 * ends is marked unconfirmed and reloaded, whether or not the link is up. A
 * done of an answer already ended changes nothing. A done's omittedMessages,
 * when present (0 too: a prompt fitted again sent every message), replaces
 * the count the message frame gave; absent, that count stays.
 */
export function applyDone(t: Thread, f: DoneFrame, now = Date.now()): { thread: Thread; result: ApplyResult } {
  const m = t.messages[f.messageId];
  if (!m) return { thread: t, result: 'gap' };
  const have = t.seq[m.id] ?? utf8Length(m.content);
  const haveReasoning = t.rseq[m.id] ?? utf8Length(m.reasoning ?? '');
  const beyond = f.seq > have || (f.rseq ?? 0) > haveReasoning;
  if (m.status !== 'streaming') return { thread: t, result: beyond ? 'gap' : 'duplicate' };
  const below = f.seq < have || (f.rseq !== undefined && f.rseq < haveReasoning);
  // The server could not confirm the end stored: it may still store all the
  // text shown, so none is cut; the stored message is read until it is final.
  const unsavedEnd = f.error?.code === UNAVAILABLE;
  const cut = !unsavedEnd;
  const updated: Message = {
    ...m,
    ...(cut && f.seq < have ? { content: utf8Prefix(m.content, f.seq) } : {}),
    ...(cut && f.rseq !== undefined && f.rseq < haveReasoning ? { reasoning: utf8Prefix(m.reasoning ?? '', f.rseq) } : {}),
    status: f.status,
    finishReason: f.finishReason ?? m.finishReason,
    usage: f.usage ?? m.usage ?? null,
    error: f.error ? f.error.message || f.error.code : m.error,
    errorCode: f.error ? f.error.code : m.errorCode,
    ...(f.omittedMessages !== undefined ? { omittedMessages: f.omittedMessages } : {}),
  };
  const seq = withoutKey(t.seq, m.id);
  const rseq = withoutKey(t.rseq, m.id);
  const thinking = thinkingEnded(t.thinking, m.id, now);
  // A server going away ends its answers with `shutdown`: what it stored is
  // taken from a reload, and the answer shows as unconfirmed until then.
  const shutdown = f.error?.code === SHUTDOWN;
  const unconfirmed = shutdown ? { ...t.unconfirmed, [m.id]: true as const } : t.unconfirmed;
  const unsaved = unsavedEnd ? { ...t.unsaved, [m.id]: true as const } : t.unsaved;
  const thread = settleAnchor({ ...t, messages: { ...t.messages, [m.id]: updated }, seq, rseq, thinking, unconfirmed, unsaved });
  return { thread, result: beyond || below || shutdown || unsavedEnd ? 'gap' : 'applied' };
}

/** SnapshotPage says what part of the conversation a snapshot holds. */
export interface SnapshotPage {
  /** More, older messages are on the server (absent: false, an unpaged server). */
  hasMore?: boolean;
  /** The server's active leaf. */
  activeMessageId?: string;
  /**
   * The newest message created before the page's oldest one (asked for when
   * gapProbe names it; absent when not asked). Loaded, the page leaves
   * nothing out between itself and what is loaded.
   */
  before?: string;
}

/**
 * mergeSnapshot folds a REST snapshot (GET /api/conversations/:id) into the
 * thread. Messages are never removed one by one, so the result is the union;
 * a streaming answer keeps the longer of the two texts when one extends the
 * other, and pending messages the server now has are replaced. A snapshot
 * holds the newest messages: once everything older was loaded (or never was
 * missing) a reload keeps the thread complete. A snapshot that does not
 * reach what is loaded (leavesGap) replaces it, as a first load would.
 */
export function mergeSnapshot(t: Thread, conversation: Conversation, messages: readonly Message[], page: SnapshotPage = {}, now = Date.now()): Thread {
  const replaced = t.loaded && leavesGap(t, messages, page);
  const base = replaced ? pendingOnly(t) : t;
  const hasMore = base.loaded ? base.hasMore && !!page.hasMore : !!page.hasMore;
  const unconfirmed = { ...base.unconfirmed };
  for (const m of messages) delete unconfirmed[m.id];
  const merged = mergeMessages(base, messages, now);
  const next = settleAnchor({ ...merged, conversation, loaded: true, hasMore, anchor: page.activeMessageId ?? base.anchor, unconfirmed, unsaved: settled(base.unsaved, messages) });
  if (replaced) return afterNewest(rehang(next));
  return afterNewest(base.loaded ? followNew(base, next, messages) : next);
}

/**
 * afterNewest puts the pending messages sent with no parent
 * (Thread.afterLatest) after the newest stored message, where the server
 * puts them: one sent while the conversation was loading shows after the
 * last message the snapshot brings, not as a new first message.
 */
function afterNewest(t: Thread): Thread {
  const leaf = newestStored(t.messages);
  if (!leaf) return t;
  let next = t;
  for (const id of Object.keys(t.afterLatest)) {
    const m = next.messages[id];
    if (m && m.parentId !== leaf.id) next = moveUnder(next, m, leaf.id);
  }
  return next;
}

/**
 * leavesGap says whether a snapshot of a loaded thread may leave messages
 * out between itself and what is loaded: older messages are on the server
 * and the snapshot's oldest message is not loaded, and either does not
 * hang under a loaded message or is newer than every loaded one (more
 * messages were written elsewhere than a page holds since this tab last
 * read them: a tab kept open, a laptop asleep). Merged, its messages would
 * hang under parents never loaded, or an edit of an older message would
 * hide the messages written between, the thread would say nothing older
 * is missing (older pages are asked for before the oldest loaded message,
 * never filling a gap above it), and the view and the next send would stay
 * at the old last message. The page is the newest messages of every
 * branch, so one whose oldest message is loaded, or follows a loaded one
 * and is no newer than the newest loaded, joins them; a message the page
 * shares with the thread elsewhere (one heard live since reconnecting: a
 * queued send stored, another tab's) does not. A new first message (an
 * edit) with older messages on the server may leave some out too. One
 * following a loaded message and newer than all (a plain continuation of
 * the last message, or an edit made after all that was missed) joins when
 * the message created just before it is loaded (page.before: gapProbe).
 */
function leavesGap(t: Thread, messages: readonly Message[], page: SnapshotPage): boolean {
  const oldest = oldestOf(messages);
  if (!page.hasMore || !oldest || isStored(t, oldest.id)) return false;
  const had = newestStored(t.messages);
  if (!isStored(t, oldest.parentId) || !had) return true;
  return byAge(oldest, had) > 0 && !(page.before !== undefined && isStored(t, page.before));
}

/**
 * gapProbe names the page's oldest message when only the message created
 * just before it can tell whether the page leaves messages out (leavesGap):
 * it follows a loaded message and is newer than every loaded one. A page
 * continuing the last loaded message, the page limit falling between, is
 * that too, as is an edit of an older message made after more than a page
 * was written elsewhere: the first joins, the second replaces the thread.
 * The caller asks for the message before it (olderMessages, limit 1) and
 * gives its id as page.before.
 */
export function gapProbe(t: Thread, messages: readonly Message[], page: SnapshotPage): string | undefined {
  const oldest = oldestOf(messages);
  if (!t.loaded || !oldest || !leavesGap(t, messages, { ...page, before: undefined }) || !isStored(t, oldest.parentId)) return undefined;
  return oldest.id;
}

function oldestOf(list: readonly Message[]): Message | undefined {
  let best: Message | undefined;
  for (const m of list) if (!best || byAge(m, best) < 0) best = m;
  return best;
}

/** isStored says whether id is a message of t the server sent (not pending). */
function isStored(t: Thread, id: string): boolean {
  return id !== '' && !id.startsWith(PENDING_PREFIX) && !!t.messages[id];
}

/**
 * rehang puts the composer's sends of a replaced thread after its newest
 * message: those written after the old last message, which the page no
 * longer holds (pending messages, shown there, and queued sends, sent with
 * no parent: after the latest message the server holds, so the answer
 * follows what was missed, not a branch that never saw it). A send on its
 * way already is shown there until the server's copy comes. A queued send
 * written after an older version the user went back to (its parent was not
 * the newest message: parentWasNewest) keeps that parent, to be answered in
 * that version's context; it is shown there too until stored, and its
 * stored copy then starts the view (topParent). An edit keeps its place
 * (its parent is the message it is another version of), shown once older
 * pages reach it.
 */
function rehang(t: Thread): Thread {
  const leaf = newestStored(t.messages);
  if (!leaf) return t;
  const edits = new Set(t.queued.filter((q) => q.draftKey === null).map((q) => PENDING_PREFIX + q.clientMessageId));
  const orphans = Object.values(t.messages)
    .filter((m) => m.id.startsWith(PENDING_PREFIX) && !edits.has(m.id) && m.parentId !== '' && !t.messages[m.parentId])
    .sort(byAge);
  let next = t;
  for (const m of orphans) next = moveUnder(next, m, leaf.id);
  const queued = next.queued.map((q) => (q.draftKey !== null && q.parentWasNewest && q.parentMessageId && !isStored(next, q.parentMessageId) ? withoutParent(q) : q));
  return queued.some((q, i) => q !== next.queued[i]) ? { ...next, queued } : next;
}

/** withoutParent is q sent after the latest message the server holds. */
function withoutParent(q: QueuedSend): QueuedSend {
  const out = { ...q };
  delete out.parentMessageId;
  delete out.parentWasNewest;
  return out;
}

/**
 * pendingOnly is t as before its first load, but for what the user sent
 * from here and the server has not confirmed (pending messages and queued
 * sends): a snapshot merged into it then stands alone, as on a first load.
 */
function pendingOnly(t: Thread): Thread {
  const messages: Record<string, Message> = {};
  for (const m of Object.values(t.messages)) if (m.id.startsWith(PENDING_PREFIX)) messages[m.id] = m;
  const selected: Record<string, string> = {};
  for (const [parent, id] of Object.entries(t.selected)) if (messages[id]) selected[parent] = id;
  const wait = t.serverWait === undefined ? {} : { serverWait: t.serverWait };
  return { ...newThread(t.id), conversation: t.conversation, messages, selected, queued: t.queued, afterLatest: t.afterLatest, ...wait };
}

/**
 * followNew shows, in a reload, the messages made elsewhere since the last
 * one as their live frames would have (upsertMessage): oldest first, a new
 * message whose parent is on the shown path becomes the shown version. A
 * tab back from a cut then shows the answer another tab regenerated and
 * what followed it, not the old version, and sends after the latest message.
 * The newest of them, when it is the newest message known, is then shown
 * (showNewest): followed one by one, versions regenerated elsewhere took
 * the path away from the version that was continued after them.
 */
function followNew(before: Thread, t: Thread, messages: readonly Message[]): Thread {
  const fresh = messages
    .filter((m) => !before.messages[m.id] && !(m.clientMessageId && before.messages[PENDING_PREFIX + m.clientMessageId]))
    .sort(byAge);
  let next = t;
  for (const m of fresh) {
    if (next.selected[m.parentId] === m.id || !isOnPath(next, m.parentId)) continue;
    next = { ...next, selected: { ...next.selected, [m.parentId]: m.id } };
  }
  const last = fresh[fresh.length - 1];
  return last && isNewest(next, last) ? showNewest(next, last) : next;
}

/** isNewest says whether m is the newest message of t (byAge: a pending one is newer than any stored). */
function isNewest(t: Thread, m: Message): boolean {
  return newestOf(Object.values(t.messages)) === m;
}

/**
 * showNewest puts m on the shown path, as a fresh load shows the newest
 * message (docs/api.md: at each fork, the version whose subtree holds it):
 * the version leading to it is selected at each fork above it up to the
 * path. Not when the reader chose another version at one of those forks in
 * this tab (Thread.chosen, still selected), nor when m hangs under a
 * message not loaded (an older page's: topParent starts the view).
 */
function showNewest(t: Thread, m: Message): Thread {
  const path = new Set(activePath(t).map((x) => x.id));
  const picks: Record<string, string> = {};
  let x: Message | undefined = m;
  for (let guard = 0; x && !path.has(x.id) && guard < 100000; guard++) {
    const sel = t.selected[x.parentId];
    if (sel !== undefined && sel !== x.id && t.chosen[x.parentId] === sel) return t;
    picks[x.parentId] = x.id;
    if (x.parentId === '') break;
    x = t.messages[x.parentId];
  }
  if (!x || Object.keys(picks).length === 0) return t;
  return { ...t, selected: { ...t.selected, ...picks } };
}

/** mergeOlder folds a page of older messages (GET .../messages?before=) into the thread. */
export function mergeOlder(t: Thread, messages: readonly Message[], hasMore: boolean, now = Date.now()): Thread {
  return settleAnchor({ ...mergeMessages(t, messages, now), hasMore, loadingOlder: false, unsaved: settled(t.unsaved, messages) });
}

/** settled returns unsaved without the answers that messages hold with a final status. */
function settled(unsaved: Readonly<Record<string, true>>, messages: readonly Message[]): Readonly<Record<string, true>> {
  const ended = messages.filter((m) => unsaved[m.id] && m.status !== 'streaming');
  if (ended.length === 0) return unsaved;
  const out = { ...unsaved };
  for (const m of ended) delete out[m.id];
  return out;
}

function mergeMessages(t: Thread, messages: readonly Message[], now: number): Thread {
  const all: Record<string, Message> = { ...t.messages };
  const seq: Record<string, number> = { ...t.seq };
  const rseq: Record<string, number> = { ...t.rseq };
  let thinking = t.thinking;
  for (const incoming of messages) {
    const pendingId = incoming.clientMessageId ? PENDING_PREFIX + incoming.clientMessageId : '';
    if (pendingId && all[pendingId]) delete all[pendingId];
    const local = all[incoming.id];
    const merged = t.unsaved[incoming.id] ? mergeUnsaved(local, incoming) : mergeContent(local, incoming);
    all[merged.id] = merged;
    setCursors(seq, rseq, merged, false);
    thinking = thinkingSeen(thinking, merged, now);
  }
  const children: Record<string, string[]> = {};
  for (const m of Object.values(all)) (children[m.parentId] ??= []).push(m.id);
  for (const list of Object.values(children)) list.sort((a, b) => byAge(all[a]!, all[b]!));
  const selected: Record<string, string> = {};
  for (const [parent, id] of Object.entries(t.selected)) {
    const sel = id.startsWith(PENDING_PREFIX) && !all[id] ? undefined : id;
    if (sel && all[sel]) selected[parent] = sel;
  }
  // A pending message the server stored keeps being the shown version.
  for (const [parent, id] of Object.entries(t.selected)) {
    if (!id.startsWith(PENDING_PREFIX) || all[id]) continue;
    const cmid = id.slice(PENDING_PREFIX.length);
    const real = messages.find((m) => m.clientMessageId === cmid);
    if (real) selected[parent] = real.id;
  }
  const stored = new Set(messages.map((m) => m.clientMessageId).filter(Boolean));
  const queued = t.queued.filter((q) => !stored.has(q.clientMessageId));
  const afterLatest = Object.keys(t.afterLatest).every((id) => all[id]) ? t.afterLatest : pick(t.afterLatest, (id) => !!all[id]);
  return { ...t, messages: all, children, seq, rseq, thinking, selected, afterLatest, queued: queued.length === t.queued.length ? t.queued : queued };
}

/**
 * queueSend marks a pending message as waiting for the connection. It keeps
 * the parent it was written after, the message the user saw last on the
 * branch shown: with no parent the server would put it after the newest
 * message of the whole conversation, which may be on another branch (a
 * regenerate or an edit made elsewhere meanwhile). It notes whether that
 * parent is the newest stored message (parentWasNewest): only then does a
 * reload that replaces the thread, no longer holding that parent, send it
 * after the latest message (rehang); an older version the user went back
 * to stays its parent.
 */
export function queueSend(t: Thread, q: QueuedSend): Thread {
  if (t.queued.some((x) => x.clientMessageId === q.clientMessageId)) return t;
  const newest = !!q.parentMessageId && q.parentMessageId === newestStored(t.messages)?.id;
  return { ...t, queued: [...t.queued, newest ? { ...q, parentWasNewest: true } : q] };
}

/** unqueue forgets a queued send (sent, refused or cancelled). */
export function unqueue(t: Thread, clientMessageId: string): Thread {
  if (!t.queued.some((x) => x.clientMessageId === clientMessageId)) return t;
  return { ...t, queued: t.queued.filter((x) => x.clientMessageId !== clientMessageId) };
}

/** isQueued says whether a shown message is a send waiting for the connection. */
export function isQueued(t: Thread, messageId: string): boolean {
  return messageId.startsWith(PENDING_PREFIX) && t.queued.some((q) => PENDING_PREFIX + q.clientMessageId === messageId);
}

/** storedByClientId says whether the server sent back the message of a clientMessageId. */
export function storedByClientId(t: Thread, clientMessageId: string): boolean {
  return Object.values(t.messages).some((m) => m.clientMessageId === clientMessageId && !m.id.startsWith(PENDING_PREFIX));
}

/** streamingAnswer returns the running answer of the thread, if any. */
export function streamingAnswer(t: Thread): Message | undefined {
  for (const m of Object.values(t.messages)) if (m.status === 'streaming') return m;
  return undefined;
}

/**
 * storedAnswers takes the stored version of the answers still streaming in
 * messages (a snapshot just merged into t) as the truth, with its resume
 * cursors, though the text shown is longer: the server refused a resume
 * point past it (bad_seq), and mergeSnapshot, which keeps the longer
 * text, would resume from the refused point again. What follows the
 * stored text comes back in the resume's catch-up, if the answer goes on.
 */
export function storedAnswers(t: Thread, messages: readonly Message[]): Thread {
  let next = t;
  for (const m of messages) {
    const local = next.messages[m.id];
    if (m.status !== 'streaming' || local?.status !== 'streaming' || next.unsaved[m.id]) continue;
    const seq = utf8Length(m.content);
    const rseq = utf8Length(m.reasoning ?? '');
    if (local === m && next.seq[m.id] === seq && next.rseq[m.id] === rseq) continue;
    next = { ...next, messages: { ...next.messages, [m.id]: m }, seq: { ...next.seq, [m.id]: seq }, rseq: { ...next.rseq, [m.id]: rseq } };
  }
  return next;
}

/**
 * resumePoint is what to hand back as subscribe's messageId + lastSeq, and
 * lastReasoningSeq once some reasoning was applied (absent counts as 0).
 */
export function resumePoint(t: Thread): { messageId: string; lastSeq: number; lastReasoningSeq?: number } | undefined {
  const m = streamingAnswer(t);
  if (!m) return undefined;
  const lastReasoningSeq = t.rseq[m.id] ?? utf8Length(m.reasoning ?? '');
  return { messageId: m.id, lastSeq: t.seq[m.id] ?? utf8Length(m.content), ...(lastReasoningSeq > 0 ? { lastReasoningSeq } : {}) };
}
