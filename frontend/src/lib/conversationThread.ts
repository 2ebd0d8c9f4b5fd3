// One conversation's state machine: loading (newest messages first, older
// pages on demand), live frames, resync after a gap, and sending with an
// outbox: a message written while the connection is down is shown pending,
// marked as waiting, and sent once connected (its clientMessageId makes a
// repeat safe); only a refusal by the server gives the text back.

import { ApiError, type ApiClient } from './api';
import { NEW_CHAT, type Drafts } from './drafts';
import { errorText, isConnectionError, sentence, serverUnavailable, waitReason } from './errors';
import { replacedNotice } from './models';
import { newClientId } from './persist';
import { serverToClient } from './serverClock';
import { PARENT_NOT_AN_ANSWER, type Conversation, type DeltaFrame, type DoneFrame, type Message, type ReasoningFrame } from './protocol';
import type { AppState } from './state';
import type { Store } from './store';
import {
  PENDING_PREFIX,
  SHUTDOWN,
  addPending,
  applyDelta,
  applyDone,
  applyReasoning,
  dropPending,
  earlierVersionsMayExist,
  gapProbe,
  leafOf,
  mergeOlder,
  mergeSnapshot,
  newThread,
  oldestLoaded,
  queueSend,
  siblings,
  stepVersion,
  storedAnswers,
  storedByClientId,
  streamingAnswer,
  unqueue,
  upsertMessage,
  type QueuedSend,
  type SnapshotPage,
  type Thread,
} from './thread';
import { backoffDelay, requestOrder, type Accepted, type RegenerateRequest, type Transport } from './transport';

/** ThreadDeps are what a conversation's state machine uses of the app. */
export interface ThreadDeps {
  store: Store<AppState>;
  api: ApiClient;
  drafts: Drafts;
  /** The live channel, or null while signed out. */
  transport: () => Transport | null;
  /** Whether the live channel is connected now. */
  connected: () => boolean;
  toast: (text: string, kind?: 'error' | 'info') => void;
  /** A snapshot was loaded: update the conversation in the list. */
  loadedConversation: (c: Conversation) => void;
  /** A model the user picked for the conversation that the server may not have stored yet, named in sends and regenerations; undefined: the conversation's. */
  model?: () => string | undefined;
  /**
   * The server does not have the conversation (deleted while this tab did
   * not hear of it): a send refused as not_found whose conversation is gone,
   * or a read answered 404. Forget it as a deletion frame would, telling
   * the user notice when it is open (absent: the deletion's own).
   */
  deleted?: (notice?: string) => void;
  /** Names the session now (it changes when one ends): a Stop of one never goes out in the next. */
  session?: () => number;
  /** Delay before a second resync asked for during one; defaults to 500 ms. */
  resyncDelayMs?: number;
  /** Messages per older page; defaults to 100. */
  olderPageSize?: number;
  /** Pause before sending the queue again when a send failed while the link still looked up; defaults to 3 s. */
  retryDelayMs?: number;
  /** First pause before reading again an answer whose end was not confirmed stored (doubling to unsavedSlowMs); defaults to 2 s. */
  unsavedDelayMs?: number;
  /** The longest pause between two such reads, kept for as long as the answer is not final; defaults to 1 min. */
  unsavedSlowMs?: number;
  /** How many older pages are loaded by themselves to tell whether the server has an unsent text a gone page left; defaults to 5. */
  recoverPages?: number;
  /** First pause before loading again a conversation shown whose reload failed (doubling to 1 min); defaults to 2 s. */
  reloadDelayMs?: number;
  /** Whether the conversation is the one open in the tab; absent: it is. */
  isOpen?: () => boolean;
}

/** UNSAVED_SLOW_MS is the default longest pause between two reads of an answer whose end was not confirmed stored. */
const UNSAVED_SLOW_MS = 60_000;

/** RELOAD_SLOW_MS is the longest pause between two loads of a conversation on screen whose reloads fail. */
const RELOAD_SLOW_MS = 60_000;

/** LoadOutcome says how a load ended: `gone` is a conversation the server does not have (deleted). */
export type LoadOutcome = 'loaded' | 'gone' | 'failed';

/** SKEW_MS is the margin between this device's clock and the server's when a send's time is compared with a message's. */
const SKEW_MS = 5 * 60_000;

const RECOVERED = 'Text not sent before the page was closed or reloaded is back in the message box.';
const RECOVERED_NEW = 'Text not sent before the page was closed or reloaded, for a conversation since deleted, is in the new chat’s message box.';

const TAKEN_UP = 'A message not sent yet was taken up by another tab; it is in the message box, not sent.';

const NOT_FOUND = 'This conversation does not exist or was deleted.';

/**
 * REGEN_GIVEN_UP says a regenerate waiting for the connection is not asked
 * again because the user sent a message meanwhile: asked after it, it
 * would stop that message's answer and answer the earlier question again,
 * leaving the new message on a branch not shown. A regenerate cut off
 * before its ack may have reached the server: its new version of the
 * answer then appears at the reconnect, and pressing Regenerate again
 * would make a third.
 */
export const REGEN_GIVEN_UP =
  'Regenerate not asked again, as your new message follows the answer shown: it may not have been made. Check that answer’s versions before pressing Regenerate again.';

/** STALE says a reload of a conversation on screen failed: it stays shown, and is loaded again by itself. */
export const STALE = 'The conversation could not be loaded again: the latest messages may be missing. It will be loaded again by itself.';

/** PARENT_NOT_FOUND says a send was refused because the message it follows is no longer in the conversation. */
export const PARENT_NOT_FOUND =
  'Message not sent: the server does not have the message it follows in this conversation. The conversation was loaded again; your text is back in the message box.';

/**
 * PARENT_ANSWERED says a send was refused because the message it follows
 * (a message of the user's, the newest here) was answered meanwhile, in
 * another tab or device: this page had not heard of the answer.
 */
export const PARENT_ANSWERED =
  'Message not sent: the message it follows was answered meanwhile (in another tab or device). The conversation was loaded again; your text is back in the message box.';

/**
 * oldestCreated is the server's time (its clock, in ms) of the oldest
 * loaded message whose time can be read (one that cannot, a bad
 * createdAt, is passed over), NaN when none can.
 */
function oldestCreated(t: Thread): number {
  let oldest = NaN;
  for (const m of Object.values(t.messages)) {
    if (m.id.startsWith(PENDING_PREFIX)) continue;
    const at = Date.parse(m.createdAt);
    if (!Number.isNaN(at) && !(at >= oldest)) oldest = at;
  }
  return oldest;
}

/** oldestTime is oldestCreated on this device's clock. */
function oldestTime(t: Thread): number {
  const oldest = oldestCreated(t);
  return Number.isNaN(oldest) ? NaN : serverToClient(oldest);
}

/**
 * olderThanLoaded says whether the message id was made before the oldest
 * message loaded, so that an older page holds it: a server id's first 4
 * bytes are the server's seconds when it was made (as a MongoDB
 * ObjectID's). By more than SKEW_MS: the id and the oldest message's time
 * may come from two instances whose clocks differ (a missed question
 * taken for an older one is never shown). False when that cannot be told.
 */
function olderThanLoaded(t: Thread, id: string): boolean {
  if (!/^[0-9a-f]{24}$/.test(id)) return false;
  const made = Number.parseInt(id.slice(0, 8), 16) * 1000;
  return made < Math.floor(oldestCreated(t) / 1000) * 1000 - SKEW_MS;
}

/** VersionPosition is where a version stands among its message's loaded versions (the oldest first). */
export interface VersionPosition {
  version: number;
  versions: number;
  /** Older versions may still be on the server (earlierVersionsMayExist). */
  moreVersions: boolean;
}

/**
 * EarlierVersion is what a Previous at the oldest loaded version came to
 * (ConversationThread.earlierVersion): where the version shown stands, or
 * why none is shown.
 */
export type EarlierVersion = VersionPosition | 'none' | 'failed' | 'loading' | 'left';

/** versionPosition is the position of message id among its loaded versions. */
function versionPosition(t: Thread, id: string): VersionPosition {
  const list = siblings(t, id);
  return { version: list.indexOf(id) + 1, versions: list.length, moreVersions: earlierVersionsMayExist(t, id) };
}

/** ConversationThread drives AppState.threads[id], .threadErrors[id] and .busy[id]. */
export class ConversationThread {
  private resyncing = false;
  private resyncAgain = false;
  private flushing = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** A regenerate cut off before its answer, asked again (same key) once connected, unless a message is sent meanwhile (giveUpRegenerate). */
  private regenWaiting: RegenerateRequest | null = null;
  /**
   * The ack of the regenerate on its way: what it accepted (the new
   * answer's id), null when it failed. A Stop pressed meanwhile waits for it.
   */
  private regenAck: Promise<Accepted | null> | null = null;
  /** The conversation was deleted: what was not sent goes to the new chat's composer. */
  private gone = false;
  /** The older pages loaded so far to decide on the texts pages gone left (recover). */
  private recoverLoads = 0;
  /** The next read of the answers whose end was not confirmed stored (checkUnsaved). */
  private unsavedTimer: ReturnType<typeof setTimeout> | undefined;
  /** The reads made so far of the answers not confirmed stored: the pause doubles with each. */
  private unsavedReads = 0;
  /** Such a read is on its way: a wake does not ask for a second one. */
  private unsavedReading = false;
  /** The second resync asked for during one (resyncAgain), waiting out resyncDelayMs. */
  private resyncTimer: ReturnType<typeof setTimeout> | undefined;
  /** Live updates flow: a subscribe was taken, and neither the link nor the conversation was lost since (unfollowed). */
  private followed = false;
  /** The requestOrder of the last load (0: none yet), and whether the conversation was followed when it was made. */
  private loadAt = 0;
  private loadFollowed = false;
  /** The session ended, or the conversation was forgotten: no timer of this thread runs again (end). */
  private ended = false;
  /** The next load of a conversation on screen whose reload failed (reloadFailed), and the failed reloads in a row. */
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private reloadFails = 0;
  /** A resume point was refused (bad_seq): the next load takes the stored text of the streaming answer as the truth (storedAnswers). */
  private cursorRefused = false;
  /**
   * The bad_seq refusals since a resume was last seen to work (a live
   * delta, reasoning or done applied), and the resync the second and later
   * wait for (refusedResume). Not since a subscribe was taken: with several
   * instances a resume point is refused after its subscribe's ack.
   */
  private badSeqs = 0;
  private badSeqTimer: ReturnType<typeof setTimeout> | undefined;
  /** The older page on its way (loadOlder): a second ask waits for it rather than returning at once. */
  private olderLoad: Promise<void> | null = null;
  /** Older pages are being loaded for a Previous pressed at the oldest loaded version (earlierVersion). */
  private versionsLoad: { messageId: string; result: Promise<EarlierVersion> } | null = null;
  /** Called just before the version the running load found is shown (the latest press's). */
  private versionFound: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly deps: ThreadDeps,
  ) {}

  /** thread is the current value (an empty one until loaded). */
  get thread(): Thread {
    return this.deps.store.state.threads[this.id] ?? newThread(this.id);
  }

  private update(fn: (t: Thread) => Thread, lazy = false): void {
    const apply = (s: AppState): AppState => {
      const t = s.threads[this.id];
      if (!t) return s;
      let next = fn(t);
      if (next.serverWait !== undefined && next.queued.length === 0) next = { ...next, serverWait: undefined }; // nothing waits
      return next === t ? s : { ...s, threads: { ...s.threads, [this.id]: next } };
    };
    if (lazy) this.deps.store.setLazy(apply);
    else this.deps.store.set(apply);
  }

  /** ensure makes the thread exist in the store (opening it shows "Loading…"). */
  ensure(): void {
    if (this.deps.store.state.threads[this.id]) return;
    this.deps.store.set((s) => ({ ...s, threads: { ...s.threads, [this.id]: newThread(this.id) } }));
  }

  /** adopt puts a conversation just created by this tab in place, loaded and empty. */
  adopt(conversation: Conversation): void {
    const t: Thread = { ...newThread(this.id), conversation, loaded: true };
    this.deps.store.set((s) => ({ ...s, threads: { ...s.threads, [this.id]: t } }));
  }

  // ---- loading ----

  /**
   * load fetches the newest messages and merges them into what is known.
   * A conversation on screen (loaded, no error in its place) stays shown
   * when the read fails for any reason but its absence (reloadFailed).
   * keepShown: a conversation not loaded yet whose server cannot be
   * reached stays "Loading…" instead of an error (the reload after a
   * reconnect follows), and a failed reload of one on screen is not said.
   */
  async load(keepShown = false): Promise<LoadOutcome> {
    const at = (this.loadAt = requestOrder());
    this.loadFollowed = this.followed;
    try {
      const fetched = await this.deps.api.conversation(this.id);
      if (!this.present()) return 'failed';
      const snap = { ...fetched, before: await this.before(fetched.messages, fetched) };
      if (!this.present()) return 'failed';
      this.stopReloads();
      const queued = this.thread.queued;
      const stored = this.cursorRefused;
      this.cursorRefused = false;
      this.deps.store.set((s) => {
        const errors = { ...s.threadErrors };
        delete errors[this.id];
        const merged = mergeSnapshot(s.threads[this.id] ?? newThread(this.id), snap.conversation, snap.messages, snap);
        const t = stored ? storedAnswers(merged, snap.messages) : merged;
        return { ...s, threads: { ...s.threads, [this.id]: t }, threadErrors: errors };
      });
      this.releaseStored(queued);
      this.deps.loadedConversation(snap.conversation);
      void this.recover();
      return 'loaded';
    } catch (err) {
      const gone = err instanceof ApiError && (err.status === 404 || err.status === 400);
      if (!this.present()) return 'failed';
      if (err instanceof ApiError && err.status === 401) return 'failed';
      if (err instanceof ApiError && err.status === 404) {
        this.notHere(err.code === 'not_found');
        return 'gone';
      }
      if (!gone && this.onScreen()) {
        if (at === this.loadAt) this.reloadFailed(keepShown); // a newer load says what holds
        return 'failed';
      }
      if (keepShown && isConnectionError(err)) return 'failed';
      this.setError(gone ? NOT_FOUND : `Could not load the conversation: ${errorText(err)}`);
      return gone ? 'gone' : 'failed';
    }
  }

  /**
   * before asks for the message created just before a snapshot's oldest one
   * when only it can tell whether the snapshot joins what is loaded
   * (gapProbe); a failure leaves it unknown (the snapshot then replaces the
   * thread, as when it is not loaded).
   */
  private async before(messages: readonly Message[], page: SnapshotPage): Promise<string | undefined> {
    const oldest = gapProbe(this.thread, messages, page);
    if (!oldest) return undefined;
    try {
      const older = await this.deps.api.olderMessages(this.id, oldest, 1);
      return older.messages.at(-1)?.id;
    } catch {
      return undefined;
    }
  }

  /** onScreen says whether the conversation's messages are shown: loaded, and no error in their place. */
  private onScreen(): boolean {
    return this.thread.loaded && this.deps.store.state.threadErrors[this.id] === undefined;
  }

  /**
   * reloadFailed handles a failed reload of a conversation on screen (after
   * a reconnect, on opening it again, after a gap): a 503 of a slow store,
   * a proxy's 502/504, a 500, no network. Its messages stay shown, never an error
   * in their place while the live updates go on out of sight; the user is
   * told once that the latest may be missing (unless quiet, or the link is
   * down: the offline notice says it), and it is loaded again after a
   * pause doubling from reloadDelayMs to 1 min while connected. A link
   * lost meanwhile ends the schedule (unfollowed): the reload of the next
   * reconnect takes over, as opening the conversation again does. Only the
   * open conversation's reload counts: one left while its read was on its
   * way is read again when opened again (the failure says nothing, starts
   * nothing). It runs beside the reads of an answer whose end was not
   * confirmed stored (readUnsaved): those stop once the answer is confirmed
   * live, and the reload they would have done with it must not stop too.
   */
  private reloadFailed(quiet: boolean): void {
    if (this.ended || !this.isOpen()) return;
    const connected = this.deps.connected();
    if (!quiet && connected && this.reloadFails === 0) this.deps.toast(STALE, 'info');
    if (!connected) return;
    const first = this.deps.reloadDelayMs ?? 2000;
    const delay = Math.min(first * 2 ** Math.min(this.reloadFails, 30), RELOAD_SLOW_MS);
    this.reloadFails++;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      if (!this.ended && this.isOpen() && this.deps.connected()) void this.load(true);
    }, delay);
  }

  /** isOpen says whether the conversation is the one open in the tab (deps.isOpen; absent: it is). */
  private isOpen(): boolean {
    return this.deps.isOpen?.() ?? true;
  }

  /** stopReloads ends the schedule of reloadFailed: a load was answered, or the link it waited on was lost. */
  private stopReloads(): void {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = undefined;
    this.reloadFails = 0;
  }

  /**
   * notHere handles a read answered 404. chatd's not_found (said) means the
   * conversation is gone (deleted where this tab did not hear of it), or
   * never was this user's: it is forgotten as a deletion frame would
   * (deps.deleted): out of the list, its composer's text, its unsent
   * messages and the texts pages gone left for it to the new chat's
   * composer, where the tab goes when it was open. A 404 without chatd's
   * word (a proxy's) says the error in place of the conversation, kept in
   * the list; the texts pages gone left for it go to the new chat's
   * composer all the same, as no later load takes them up.
   */
  private notHere(said: boolean): void {
    if (this.gone) return;
    if (said && this.deps.deleted) {
      this.deps.deleted(NOT_FOUND);
      return;
    }
    void this.recoverDeleted();
    this.setError(NOT_FOUND);
  }

  /**
   * recover takes up the texts a page gone left unsent here (Drafts.recover)
   * into the composer, and says so: the composer's text changed by itself.
   */
  private async recover(): Promise<void> {
    const last = this.recoverLoads >= (this.deps.recoverPages ?? 5);
    let undecided = false;
    const given = await this.deps.drafts.recover(this.id, (clientMessageId, at) => {
      const has = this.stored(clientMessageId, at);
      if (has !== undefined) return has;
      if (last) return false; // no more pages: the text goes back rather than waiting for good
      undecided = true;
      return undefined;
    });
    if (given > 0) this.deps.toast(RECOVERED, 'info');
    if (!undecided || !this.present()) return;
    // The message may be in an older page: load it (its recover follows) rather than wait for the user to scroll up.
    this.recoverLoads++;
    await this.loadOlder();
  }

  /**
   * recoverDeleted takes up the texts pages gone left unsent for this
   * conversation, deleted (or not found), into the new chat's composer:
   * no later load of it will take them up.
   */
  async recoverDeleted(): Promise<void> {
    const given = await this.deps.drafts.recover(this.id, () => false, NEW_CHAT);
    if (given > 0) this.deps.toast(RECOVERED_NEW, 'info');
  }

  /**
   * stored says whether the server has the message clientMessageId, sent
   * at `at` (this device's clock): it is among the loaded messages, or
   * not, all being loaded or it being sent after the oldest loaded one
   * (give or take SKEW_MS). Else it cannot tell yet (undefined): the
   * message may be in an older page, stored before the conversation grew
   * past one page (or the oldest message's time cannot be read, or the
   * slot has no time): recover loads older pages, recoverPages at most,
   * and then gives the text back.
   */
  private stored(clientMessageId: string, at: number): boolean | undefined {
    const t = this.thread;
    if (storedByClientId(t, clientMessageId)) return true;
    if (!t.hasMore) return false;
    const since = oldestTime(t);
    return at - SKEW_MS > since ? false : undefined;
  }

  /** loadOlder fetches the page before the oldest loaded message (scrolling up); asked again meanwhile, it waits for that page. */
  loadOlder(): Promise<void> {
    if (this.olderLoad) return this.olderLoad;
    const load = this.fetchOlder().finally(() => {
      if (this.olderLoad === load) this.olderLoad = null;
    });
    this.olderLoad = load;
    return load;
  }

  private async fetchOlder(): Promise<void> {
    const t = this.thread;
    const before = oldestLoaded(t);
    if (!t.hasMore || t.loadingOlder || !before) return;
    this.update((x) => ({ ...x, loadingOlder: true }));
    try {
      const page = await this.deps.api.olderMessages(this.id, before, this.deps.olderPageSize ?? 100);
      const queued = this.thread.queued;
      // A reload that replaced the thread meanwhile (mergeSnapshot: it did
      // not reach what was loaded) no longer holds before: this page would
      // join nothing and say whether older messages exist from the wrong point.
      this.update((x) => (x.messages[before] ? mergeOlder(x, page.messages, page.hasMore ?? false) : x));
      this.releaseStored(queued);
      void this.recover(); // the texts it could not tell about may be decided now
    } catch (err) {
      this.update((x) => ({ ...x, loadingOlder: false }));
      if (!(err instanceof ApiError && err.status === 401)) this.deps.toast(`Could not load earlier messages: ${errorText(err)}`, 'error');
    }
  }

  /**
   * present says whether the thread is still in the store: an answer that
   * comes after it was dropped (the session ended, the conversation was
   * deleted or left long ago) must not bring it back, in another user's
   * session perhaps.
   */
  private present(): boolean {
    return !!this.deps.store.state.threads[this.id];
  }

  private setError(text: string): void {
    this.deps.store.set((s) => ({ ...s, threadErrors: { ...s.threadErrors, [this.id]: text } }));
  }

  /**
   * subscribeFailed handles a subscribe refused for good (the transports
   * retry the refusals for now): a resume point outside the answer
   * (bad_seq) reloads and follows from the stored point (refusedResume); a
   * conversation gone (not_found) says so in place of it; a session ended (unauthorized)
   * is left to the close that follows (4401: sign-in); any other refusal
   * (invalid_field, a code this client does not know) is kept in
   * AppState.liveMissing, shown for as long as it lasts, because the
   * conversation then gets no live updates (an answer stays "streaming")
   * until a later subscribe is taken (liveResumed).
   */
  subscribeFailed(code: string, message?: string): void {
    switch (code) {
      case 'bad_seq':
        this.refusedResume();
        return;
      case 'not_found':
        this.setError(NOT_FOUND);
        return;
      case 'unauthorized':
        return;
      default:
        this.setLiveMissing(message || code);
    }
  }

  /**
   * refusedResume handles a resume point refused (bad_seq: past the answer
   * the server has, or inside a character): the conversation is loaded
   * again and the stored text of the streaming answer taken as the truth,
   * shorter than the text shown or not (the text past it was never
   * stored: a checkpoint behind a lost instance), so that the next
   * subscribe resumes from the stored length (protocol.md) rather than
   * from the refused point, which is refused again. A refusal again before
   * a resume is seen to work (resumeWorked: a subscribe's ack is not
   * enough, a cluster refuses after it) waits before the next attempt,
   * doubling from 1-2 s to a minute, rather than asking at once in a loop.
   * With several instances the refusal comes after the ack, named by the
   * socket's close alone (WSTransport.resumeRefused), which holds the
   * conversation's subscribes until the resync's resubscribe.
   */
  private refusedResume(): void {
    this.cursorRefused = true;
    const again = this.badSeqs++;
    clearTimeout(this.badSeqTimer);
    this.badSeqTimer = undefined;
    if (again === 0) {
      void this.resync();
      return;
    }
    this.badSeqTimer = setTimeout(() => {
      this.badSeqTimer = undefined;
      void this.resync();
    }, backoffDelay(again - 1, 2000, 60_000));
  }

  /**
   * subscribed says a subscribe asked for at sentAt (requestOrder) was
   * taken: live updates flow from there. A load made before it while the
   * conversation was not followed (the page's first load, made before the
   * socket opened; one before a refused subscribe was taken again) may lack
   * what was stored between its read and the subscribe: a question whose
   * answer the subscribe's catch-up shows, or a whole exchange. The
   * conversation is then loaded again. A load made after the subscribe was
   * asked for, or while an earlier one held, needs none.
   */
  subscribed(sentAt: number): void {
    const stale = this.loadAt > 0 && this.loadAt < sentAt && !this.loadFollowed;
    this.followed = true;
    this.liveResumed();
    if (stale && !this.ended) void this.load(true);
  }

  /** resumeWorked says a live frame of an answer was applied: a bad_seq after it is a first one again (refusedResume). */
  private resumeWorked(): void {
    this.badSeqs = 0;
  }

  /** unfollowed says live updates stopped: the link was lost, or the conversation left. */
  unfollowed(): void {
    this.followed = false;
    this.stopReloads(); // a reload failed while shown waits for the reconnect's, or the next opening's
  }

  /** liveResumed says a subscribe was taken, or the conversation left: no update is missing any more. */
  liveResumed(): void {
    this.setLiveMissing(null);
  }

  private setLiveMissing(reason: string | null): void {
    this.deps.store.set((s) => {
      if ((s.liveMissing[this.id] ?? null) === reason) return s;
      const liveMissing = { ...s.liveMissing };
      if (reason === null) delete liveMissing[this.id];
      else liveMissing[this.id] = reason;
      return { ...s, liveMissing };
    });
  }

  /** resync reloads after a gap and resumes the answer from the applied seq (keepShown: see load). */
  async resync(keepShown = false): Promise<void> {
    if (this.ended) return;
    if (this.resyncing) {
      this.resyncAgain = true;
      return;
    }
    this.resyncing = true;
    try {
      await this.load(keepShown);
      // Not on the channel of a session begun meanwhile (another user's perhaps).
      if (!this.ended) this.deps.transport()?.resubscribe(this.id);
    } finally {
      this.resyncing = false;
      if (this.resyncAgain && !this.ended) {
        this.resyncAgain = false;
        clearTimeout(this.resyncTimer);
        this.resyncTimer = setTimeout(() => void this.resync(), this.deps.resyncDelayMs ?? 500);
      }
    }
  }

  // ---- live frames ----

  /** message applies a `message` frame. */
  message(m: Message): void {
    const t = this.thread;
    // A message whose parent this tab never got: something stored before
    // the tab followed the conversation was missed (its question, when a
    // subscribe's catch-up brings a running answer). Read it all again,
    // unless the parent is older than what is loaded (another tab answered
    // again a question on an older page, which paging up brings).
    const orphan = t.loaded && m.parentId !== '' && !t.messages[m.parentId] && !(t.hasMore && olderThanLoaded(t, m.parentId));
    const queued = t.queued;
    this.update((x) => upsertMessage(x, m));
    this.releaseStored(queued);
    if (orphan) void this.resync();
  }

  /** delta applies a `delta` frame (published lazily: one render per throttle interval). */
  delta(f: DeltaFrame): void {
    const r = applyDelta(this.thread, f);
    if (r.result === 'applied') {
      this.resumeWorked();
      this.update(() => r.thread, true);
    } else if (r.result === 'gap') void this.resync();
  }

  /** reasoning applies a `reasoning` frame (published lazily, like deltas). */
  reasoning(f: ReasoningFrame): void {
    const r = applyReasoning(this.thread, f);
    if (r.result === 'applied') {
      this.resumeWorked();
      this.update(() => r.thread, true);
    } else if (r.result === 'gap') void this.resync();
  }

  /**
   * done applies a `done` frame and reloads when the stored answer may differ
   * from what the tab has (see applyDone). After a `shutdown` the server may
   * be gone already: the answer then stays unconfirmed, not an error, until
   * the reconnect's reload.
   */
  done(f: DoneFrame): void {
    const noneWaited = Object.keys(this.thread.unsaved).length === 0;
    const r = applyDone(this.thread, f);
    if (r.result !== 'gap') this.resumeWorked();
    this.update(() => r.thread);
    if (r.result === 'gap') void this.resync(f.error?.code === SHUTDOWN);
    if (!this.thread.unsaved[f.messageId]) return;
    if (noneWaited) {
      // The first to wait: from the first, short pause (an earlier one's schedule may be left).
      clearTimeout(this.unsavedTimer);
      this.unsavedTimer = undefined;
      this.unsavedReads = 0;
    }
    this.checkUnsaved();
  }

  /**
   * checkUnsaved reads the conversation again while an answer's end is not
   * confirmed stored (Thread.unsaved): the server may store all its text
   * late, or give up and store less; the snapshot with its final status
   * then replaces the text shown. The pause starts at unsavedDelayMs and
   * doubles up to unsavedSlowMs, then stays there for as long as it takes
   * (the database may come back in an hour): recheckUnsaved reads at once
   * on a sign that it may have. It stops once no answer waits, when the
   * conversation is gone (deleted: a 404, or its thread left the store)
   * and when the thread ends (the session ended: end).
   */
  private checkUnsaved(): void {
    if (this.unsavedTimer !== undefined || this.ended) return;
    const first = this.deps.unsavedDelayMs ?? 2000;
    const delay = Math.min(first * 2 ** Math.min(this.unsavedReads, 30), this.deps.unsavedSlowMs ?? UNSAVED_SLOW_MS);
    this.unsavedTimer = setTimeout(() => {
      this.unsavedTimer = undefined;
      void this.readUnsaved();
    }, delay);
  }

  /**
   * recheckUnsaved reads at once the answers whose end was not confirmed
   * stored, if any (the link came back, the page was shown again): the
   * schedule of checkUnsaved goes on after it.
   */
  recheckUnsaved(): void {
    if (this.ended || !this.unsavedWaiting()) return;
    clearTimeout(this.unsavedTimer);
    this.unsavedTimer = undefined;
    void this.readUnsaved();
  }

  private unsavedWaiting(): boolean {
    return this.present() && Object.keys(this.thread.unsaved).length > 0;
  }

  private async readUnsaved(): Promise<void> {
    if (this.unsavedReading) return; // its end schedules the next
    if (this.ended || !this.unsavedWaiting()) {
      this.unsavedReads = 0;
      return;
    }
    this.unsavedReading = true;
    let outcome: LoadOutcome;
    try {
      outcome = await this.load(true);
    } finally {
      this.unsavedReading = false;
    }
    if (outcome === 'gone') return; // deleted: nothing more will be stored
    this.unsavedReads++;
    if (this.unsavedWaiting()) this.checkUnsaved();
    else this.unsavedReads = 0;
  }

  /**
   * end stops every timer of the thread for good: its session ended, or the
   * conversation was forgotten. A timer left running would read, resubscribe
   * or send for a session that is over, perhaps on the next user's channel.
   */
  end(): void {
    this.ended = true;
    this.regenWaiting = null;
    this.resyncAgain = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.resyncTimer);
    clearTimeout(this.unsavedTimer);
    clearTimeout(this.badSeqTimer);
    this.retryTimer = this.resyncTimer = this.unsavedTimer = this.badSeqTimer = undefined;
    this.stopReloads();
  }

  // ---- sending ----

  /** sendAfterLeaf sends text after the shown path's last stored message. */
  async sendAfterLeaf(text: string, draftKey: string): Promise<void> {
    const leaf = leafOf(this.thread);
    const parent = leaf && !leaf.id.startsWith(PENDING_PREFIX) ? leaf.id : undefined;
    await this.send(text, parent, draftKey);
  }

  /**
   * send shows the message as pending and sends it, or queues it when the
   * connection is down. parentMessageId "" asks for a new root (an edit of
   * the first message); undefined lets the server append to its latest
   * message, and the message shows after the newest one loaded (after the
   * snapshot's newest, when sent while the conversation was loading).
   */
  async send(content: string, parentMessageId: string | undefined, draftKey: string | null): Promise<void> {
    this.giveUpRegenerate();
    const model = this.deps.model?.();
    const q: QueuedSend = { clientMessageId: newClientId(), content, parentMessageId, draftKey, ...(model ? { model } : {}) };
    this.deps.drafts.hold(draftKey ?? this.id, q.clientMessageId, content, !!draftKey);
    this.ensure();
    this.update((t) => addPending(t, q.clientMessageId, parentMessageId, content));
    if (!this.deps.connected()) {
      this.queue(q);
      return;
    }
    await this.deliver(q);
  }

  /**
   * giveUpRegenerate drops a regenerate waiting for the connection when a
   * message is sent (REGEN_GIVEN_UP says it): flushQueue would ask for it
   * after the message, and the server's regenerate stops the running
   * answer (the message's) to answer the earlier question again. The
   * user's latest action wins, as a regenerate asked for meanwhile
   * replaces the waiting one.
   */
  private giveUpRegenerate(): void {
    if (!this.regenWaiting) return;
    this.regenWaiting = null;
    this.deps.toast(REGEN_GIVEN_UP, 'info');
  }

  /**
   * deliver sends one message; it returns false when the connection failed
   * and the message waits in the queue.
   */
  private async deliver(q: QueuedSend): Promise<boolean> {
    if (!this.deps.drafts.stillHeld(q.draftKey ?? this.id, q.clientMessageId)) {
      this.takenUp(q);
      return true;
    }
    const transport = this.deps.transport();
    this.setBusy(true);
    try {
      if (!transport) throw new ApiError(0, 'network', 'Not connected.');
      const accepted = await transport.send({
        conversationId: this.id,
        content: q.content,
        clientMessageId: q.clientMessageId,
        ...(q.parentMessageId !== undefined ? { parentMessageId: q.parentMessageId } : {}),
        ...(q.model ? { model: q.model } : {}),
      });
      this.update((t) => ({ ...unqueue(t, q.clientMessageId), serverWait: undefined })); // the server takes sends again
      this.release(q);
      this.tellReplaced(accepted);
      return true;
    } catch (err) {
      if (isConnectionError(err) && !this.gone) {
        this.queue(q);
        const why = serverUnavailable(err);
        if (why !== null) this.serverWaits(why);
        // Usually the link is down and its return sends the queue; when it
        // still looks up (no ack in time, a proxy's 502), try again shortly.
        if (this.deps.connected()) this.retrySoon();
        return false;
      }
      await this.refused(q, err);
      return true;
    } finally {
      this.setBusy(false);
    }
  }

  /**
   * refused gives the text of a send the server refused back to its
   * composer and says why. A not_found is the conversation's deletion only
   * when the conversation is gone (notFound): then the text goes to the new
   * chat's composer, as the deletion moves the rest. A parent refused as
   * answered already (invalid_field, PARENT_NOT_AN_ANSWER) is asked about
   * as a parent not found: the conversation is loaded again. A session
   * ended before or meanwhile (a 401 over SSE ends it before its refusal
   * reaches here) leaves the text held in storage, given back by its
   * user's next load (Drafts.abandon and recover), as after a cut: given
   * back now, it would live in memory only (no user to save it for).
   */
  private async refused(q: QueuedSend, err: unknown): Promise<void> {
    if (this.ended && !this.gone) return;
    this.update((t) => dropPending(unqueue(t, q.clientMessageId), q.clientMessageId));
    // A parent answered meanwhile is a parent this page's state lacks the answer of: loaded again as a parent not found.
    const answered = err instanceof ApiError && err.code === 'invalid_field' && err.message.startsWith(PARENT_NOT_AN_ANSWER);
    const asks = err instanceof ApiError && (err.code === 'not_found' || answered) && !this.gone;
    const missing = asks ? await this.notFound(q) : 'unknown';
    // The session ended while notFound asked: held as above.
    if (this.ended && !this.gone) return;
    // Out of the queue first: deleted() gives back what is still in it, this text below.
    if (missing === 'conversation' && !this.gone) this.deps.deleted?.();
    this.giveBack(q);
    const parent = answered ? PARENT_ANSWERED : PARENT_NOT_FOUND;
    this.deps.toast(missing === 'parent' && !this.gone ? parent : `Message not sent: ${errorText(err)}`, 'error');
  }

  /**
   * notFound tells what the server did not find for a send it refused as
   * not_found. Its code says the same for a conversation gone (deleted, or
   * not this user's) and for a parent it does not have (an edit, or a
   * reply to an older message, whose message is no longer there): only its
   * wording differs, which is no contract. A send naming no parent can miss
   * only the conversation; else the conversation is loaded again, which
   * says it (a 404: 'conversation') and shows the server's state of it
   * ('parent': the conversation is there). A load that fails tells nothing
   * ('unknown'): the conversation is kept, as it may well be there.
   */
  private async notFound(q: QueuedSend): Promise<'conversation' | 'parent' | 'unknown'> {
    if (!q.parentMessageId) return 'conversation';
    switch (await this.load(true)) {
      case 'gone':
        return 'conversation';
      case 'loaded':
        return 'parent';
      default:
        return 'unknown';
    }
  }

  /**
   * takenUp drops a send whose text another page took up (it thought this
   * one gone) into its composer: not sent from here too. This page may not
   * have heard that page's save (it was frozen, or in the back-forward
   * cache), so the composer's saved text is read again first, then the
   * text given back unless it holds it already: typing here then cannot
   * overwrite it.
   */
  private takenUp(q: QueuedSend): void {
    this.update((t) => dropPending(unqueue(t, q.clientMessageId), q.clientMessageId));
    const key = this.gone ? NEW_CHAT : (q.draftKey ?? this.id);
    this.deps.drafts.load(key);
    const before = this.deps.drafts.get(key);
    this.deps.drafts.reread(key);
    this.giveBack(q);
    if (this.deps.drafts.get(key) !== before) this.deps.toast(TAKEN_UP, 'info');
  }

  /**
   * serverWaits notes that chatd itself refused a send for now, with why
   * (the composer says so rather than a lost connection), and tells it in
   * a toast the first time only: the send is repeated every few seconds
   * with its key, possibly for long (the model providers cannot be reached).
   */
  private serverWaits(why: string): void {
    const told = this.thread.serverWait !== undefined;
    this.update((t) => (t.serverWait === why ? t : { ...t, serverWait: why }));
    if (!told) this.deps.toast(`Message not sent yet: ${waitReason(why)} It is sent when the server can take it.`, 'info');
  }

  /** queue puts q in the queue (its text is held in storage since send: Drafts.hold). */
  private queue(q: QueuedSend): void {
    this.update((t) => queueSend(t, q));
  }

  /** release forgets the held text of a send the server has, or whose text went back to a composer. */
  private release(q: QueuedSend): void {
    this.deps.drafts.release(q.draftKey ?? this.id, q.clientMessageId);
  }

  /**
   * releaseStored releases the held drafts of the sends of `before` (the
   * queue until now) that left it because the server has them: a message
   * frame, a snapshot or a page that holds them, not only an ack.
   */
  private releaseStored(before: readonly QueuedSend[]): void {
    const t = this.thread;
    for (const q of before) {
      if (t.queued.some((x) => x.clientMessageId === q.clientMessageId)) continue;
      if (storedByClientId(t, q.clientMessageId)) this.release(q);
    }
  }

  private retrySoon(): void {
    if (this.ended) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.flushQueue(), this.deps.retryDelayMs ?? 3000);
  }

  /** flushQueue sends the waiting messages in order, then a waiting regenerate (the connection is back). */
  async flushQueue(): Promise<void> {
    if (this.flushing || this.gone || this.ended) return;
    this.flushing = true;
    try {
      await this.flushSends();
      if (this.regenWaiting && !this.thread.queued.length) await this.deliverRegenerate(this.regenWaiting);
    } finally {
      this.flushing = false;
    }
  }

  /** flushSends sends the waiting messages in order, until the connection fails again. */
  private async flushSends(): Promise<void> {
    for (let q = this.thread.queued[0]; q; q = this.thread.queued[0]) {
      if (storedByClientId(this.thread, q.clientMessageId)) {
        const queued = this.thread.queued;
        this.update((t) => unqueue(t, q!.clientMessageId));
        this.releaseStored(queued);
        continue;
      }
      if (!(await this.deliver(q))) return; // down again: the next connect retries
    }
  }

  /** cancelQueued takes a waiting message back into the composer. */
  cancelQueued(clientMessageId: string): void {
    const q = this.thread.queued.find((x) => x.clientMessageId === clientMessageId);
    if (!q) return;
    this.update((t) => dropPending(unqueue(t, clientMessageId), clientMessageId));
    this.giveBack(q);
  }

  /**
   * giveBack puts the text of a send that will not be sent into an empty
   * composer: the one it came from, or for an edit (no composer of its own,
   * its box closed on sending) the conversation's, so it is never lost.
   */
  private giveBack(q: QueuedSend): void {
    this.deps.drafts.giveBack(this.gone ? NEW_CHAT : (q.draftKey ?? this.id), q.content);
    this.release(q);
  }

  /**
   * deleted ends the sending of a conversation deleted here or elsewhere
   * (call it before its thread leaves the store): the sends waiting in the
   * queue, and those on their way once refused or cut, give their text to
   * the new chat's composer, after any text it holds, instead of the
   * composer of a conversation no longer shown; no retry is made.
   */
  deleted(): void {
    this.gone = true;
    this.regenWaiting = null;
    clearTimeout(this.retryTimer);
    for (const q of this.thread.queued) this.giveBack(q);
  }

  /** regenerate answers the same user message again, as a new version. */
  async regenerate(messageId: string): Promise<void> {
    if (!this.deps.transport()) return;
    const model = this.deps.model?.();
    // A new key for each regenerate asked for, kept while it is asked again.
    await this.deliverRegenerate({ conversationId: this.id, messageId, clientMessageId: newClientId(), ...(model ? { model } : {}) });
  }

  /**
   * deliverRegenerate asks for r. Cut off or unanswered, it may have been
   * taken: it waits, with its key, and is asked again once the connection
   * is back (flushQueue), which the server answers with the answer the
   * first one made, if it made one, instead of a second. A regenerate asked
   * for meanwhile replaces the waiting one.
   */
  private async deliverRegenerate(r: RegenerateRequest): Promise<void> {
    const told = this.regenWaiting?.clientMessageId === r.clientMessageId;
    this.regenWaiting = null;
    this.setBusy(true);
    let accepted: Accepted | null = null;
    let settle!: (a: Accepted | null) => void;
    const ack = (this.regenAck = new Promise<Accepted | null>((resolve) => (settle = resolve)));
    try {
      const transport = this.deps.transport();
      if (!transport) throw new ApiError(0, 'network', 'Not connected.');
      accepted = await transport.regenerate(r);
      this.tellReplaced(accepted);
    } catch (err) {
      if (isConnectionError(err) && !this.gone) {
        this.regenWaiting = r;
        const why = serverUnavailable(err); // chatd's own word: the connection is up
        // Connected, an unanswered attempt (a timeout) or a proxy's 502/503/504 is asked again in a moment.
        const connected = this.deps.connected();
        const when = why !== null ? 'when the server can take it' : connected ? 'in a moment' : 'once the connection is back';
        if (!told) this.deps.toast(`Regenerate: ${waitReason(why ?? errorText(err))} It is asked again ${when}.`, 'info');
        if (connected) this.retrySoon();
        return;
      }
      this.deps.toast(`Could not regenerate: ${errorText(err)}`, 'error');
    } finally {
      if (this.regenAck === ack) this.regenAck = null;
      settle(accepted); // once regenWaiting says whether it waits
      this.setBusy(false);
    }
  }

  /**
   * tellReplaced says, in a toast, that an answer came from another model
   * than the conversation's, which the server no longer offers: each time,
   * as the conversation keeps its model until the user picks another.
   */
  private tellReplaced(a: Accepted): void {
    const notice = replacedNotice(a, this.deps.store.state.models);
    if (notice) this.deps.toast(notice, 'info');
  }

  /** waiting says whether sends or a regenerate wait for the connection (flushQueue). */
  waiting(): boolean {
    return this.thread.queued.length > 0 || this.regenWaiting !== null;
  }

  /**
   * stop cancels the running answer (for every tab): the one shown running
   * when Stop is pressed, by its id, so that a cancel held up by a cut does
   * not stop an answer another tab started meanwhile. While a regenerate is
   * on its way the answer shown is the one it replaces (the server cancels
   * it): the cancel waits for the regenerate's ack and names the answer it
   * started (answerToStop); a session ended meanwhile sends none.
   */
  async stop(): Promise<void> {
    if (!this.deps.transport()) return;
    const session = this.deps.session?.();
    const running = await this.answerToStop();
    // The session may have ended meanwhile: its Stop is not the next user's.
    // A channel replaced within it (a restart, the fallback to SSE) carries it.
    const transport = this.deps.session?.() === session ? this.deps.transport() : null;
    if (!transport) return;
    try {
      await transport.cancel(this.id, running);
    } catch (err) {
      // No answer (a timeout, a cut): the answer may still run; Stop stays to be pressed again.
      const again = isConnectionError(err) ? ' The answer may still be running: press Stop again.' : '';
      this.deps.toast(`Could not stop: ${again ? sentence(errorText(err)) : errorText(err)}${again}`, 'error');
    }
  }

  /**
   * answerToStop is the id of the answer a Stop pressed now means: the one
   * shown running, or, a regenerate on its way, the answer its ack names.
   * A regenerate refused leaves the running answer alone: that one then.
   * One cut off is not asked again (Stop was pressed), and as what it
   * started, if anything, is not known, the cancel names none: the server
   * stops whichever answer runs.
   */
  private async answerToStop(): Promise<string | undefined> {
    const regen = this.regenAck;
    if (!regen) return streamingAnswer(this.thread)?.id;
    const accepted = await regen;
    if (accepted?.messageId) return accepted.messageId;
    if (accepted || !this.regenWaiting) return streamingAnswer(this.thread)?.id;
    this.regenWaiting = null;
    return undefined;
  }

  /** switchVersion shows the previous or next version of a message. */
  switchVersion(messageId: string, dir: -1 | 1): void {
    this.update((t) => stepVersion(t, messageId, dir));
  }

  /**
   * earlierVersion shows the version before messageId, the oldest of its
   * versions loaded, once older pages brought it: they are loaded one after
   * the other (the existing load-older path) until one holds an older
   * version, or none can (earlierVersionsMayExist), or a page brings
   * nothing (a failure, which loadOlder says). found, if given, is called
   * just before that version is shown; a press again on the same message
   * while they load waits for the same result, its found replacing the
   * first one's (a press on another message answers 'loading'). It answers the position of the
   * version shown then (1-based, the oldest first), or why none is:
   * 'none' (none older), 'failed' (a page brought nothing), 'loading' (a
   * press while such a load runs) or 'left' (the conversation is no longer
   * the one open: the load stops there and nothing changes in it).
   */
  earlierVersion(messageId: string, found?: () => void): Promise<EarlierVersion> {
    const running = this.versionsLoad;
    if (running && running.messageId !== messageId) return Promise.resolve('loading');
    this.versionFound = found; // the latest press is the one handed the version
    if (running) return running.result;
    const result = this.showEarlierVersion(messageId).finally(() => {
      this.versionsLoad = null;
      this.versionFound = undefined;
    });
    this.versionsLoad = { messageId, result };
    return result;
  }

  private async showEarlierVersion(messageId: string): Promise<EarlierVersion> {
    const loaded = await this.loadEarlierVersions(messageId);
    if (loaded === 'left') return 'left';
    if (siblings(this.thread, messageId).indexOf(messageId) <= 0) return loaded === 'failed' ? 'failed' : 'none';
    this.versionFound?.();
    this.update((t) => stepVersion(t, messageId, -1));
    const t = this.thread;
    const shown = siblings(t, messageId)[siblings(t, messageId).indexOf(messageId) - 1];
    return shown === undefined ? 'none' : versionPosition(t, shown);
  }

  /**
   * loadEarlierVersions loads older pages while messageId is the oldest
   * version loaded and older ones may be on the server: 'failed' when a page
   * brought nothing, 'left' when the conversation stopped being the one
   * open (or was dropped) meanwhile.
   */
  private async loadEarlierVersions(messageId: string): Promise<'done' | 'failed' | 'left'> {
    for (;;) {
      const t = this.thread;
      if (siblings(t, messageId).indexOf(messageId) !== 0 || !earlierVersionsMayExist(t, messageId)) return 'done';
      const oldest = oldestLoaded(t);
      await this.loadOlder();
      if (!this.present() || !this.isOpen()) return 'left';
      if (oldestLoaded(this.thread) === oldest) return 'failed';
    }
  }

  private setBusy(on: boolean): void {
    this.deps.store.set((s) => {
      const busy = { ...s.busy };
      if (on) busy[this.id] = true;
      else delete busy[this.id];
      return { ...s, busy };
    });
  }
}

