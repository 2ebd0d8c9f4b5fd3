// ChatApp wires the client's parts together and offers the actions the UI
// calls: the session (session.ts), the live channel (connection.ts), the
// sidebar's list (conversationList.ts), one state machine per open
// conversation (conversationThread.ts), drafts and toasts, all writing one
// store that React reads through hooks/. Here live only routing, the
// dispatch of server frames and the order of things at sign-in and sign-out.

import {
  ACCOUNT_DELETED_NOTICE,
  ACCOUNT_DELETING_NOTICE,
  ACCOUNT_DELETION_SIGNED_OUT,
  ACCOUNT_NOT_DELETED,
  SHARED_NOTICES,
  changePasswordRefusal,
  deleteAccountRefusal,
  deletionCutNotice,
  sharedNotice,
  type PasswordRefusal,
  type Refusal,
} from './account';
import { ApiClient, ApiError, SERVER_WAIT_MS, type AuthResult, type ConversationPatch, type NewConversation } from './api';
import { Connection } from './connection';
import { ConversationList } from './conversationList';
import { ConversationThread, type EarlierVersion } from './conversationThread';
import { saveBlob } from './download';
import { Drafts, NEW_CHAT, draftKey } from './drafts';
import { errorText, isConnectionError, refusedField, serverUnavailable, waitReason } from './errors';
import { forgetRevealed } from './images';
import { ModelList } from './modelList';
import { currentModel, newChatModel, unavailableNotice, withinBound } from './models';
import { OpenEdits } from './openEdits';
import { browserPages, type Pages } from './pages';
import { Persist, browserKV, newClientId, type EndReason, type KV } from './persist';
import { isEmptyParams, sameParams, serverRefusal, type ServerRefusal } from './params';
import { RefusalHold } from './passwordChange';
import type { Conversation, Params, ServerFrame, User } from './protocol';
import { isDrawerEntry, parseRoute, routePath, type Route } from './router';
import { Session, type OtherTab } from './session';
import { initialList, type AppState } from './state';
import { Store } from './store';
import { Revocations } from './revocation';
import { resumePoint } from './thread';
import { Toaster } from './toasts';
import { backoffDelay, requestOrder, type TransportKind } from './transport';
import { hasVisible } from './visible';

export { errorText } from './errors';

/** ChatAppOptions configure a ChatApp; every field has a browser default. */
export interface ChatAppOptions {
  /** Key-value storage; defaults to localStorage. */
  kv?: KV;
  /** fetch; defaults to the global one. */
  fetch?: typeof fetch;
  /** WebSocket constructor; defaults to the global one. */
  WebSocketImpl?: typeof WebSocket;
  /** Which pages of the browser are open (see Drafts.recover); defaults to browserPages(). */
  pages?: Pages;
  /** Socket URL; defaults to /ws on this origin. */
  socketUrl?: string;
  /** Store publication throttle for deltas; defaults to 50 ms. */
  throttleMs?: number;
}

/**
 * PendingChat is a new chat sent and not created yet: the body of its
 * creation, with the key every attempt repeats, and its first message.
 */
interface PendingChat {
  /** The request; its clientId is dropped only for an instance of the version before (withoutRefusedKey). */
  body: NewConversation;
  text: string;
  /** Whether the user was told it waits for the connection. */
  told?: boolean;
  /** Whether the user was told why chatd itself cannot take it yet (creationRefused). */
  toldWhy?: boolean;
  /** The user gave it up (cancelNewChat): a conversation its attempt on the way makes is deleted. */
  cancelled?: boolean;
  /** The model picked, not offered now: the chat is created with the default, and the user told so once created. */
  unavailable?: string;
}

/** CREATE_RETRY_MS is the pause before a new chat's creation is asked again while the link is up. */
const CREATE_RETRY_MS = 3000;

/** DROP_ATTEMPTS bounds the deletions asked for a conversation made for a new chat given up (dropCancelled). */
const DROP_ATTEMPTS = 5;

/** CREATE_TIMEOUT_MS is how long an attempt to create a new chat waits for its answer (createOnce), as a send waits for its ack. */
const CREATE_TIMEOUT_MS = SERVER_WAIT_MS;

/** SETTINGS_NOT_LOADED is why the settings of a conversation not loaded cannot be edited nor saved (saveSettings, ChatView). */
export const SETTINGS_NOT_LOADED = 'The conversation has not loaded yet: its system prompt and parameters can be changed once it has.';

/**
 * NEW_CHAT_STARTING is why the new chat's model, system prompt and
 * parameters cannot be changed while it waits for its conversation
 * (saveSettings, setModel, ChatView): it is made with those it was sent
 * with, as its composer keeps the text sent.
 */
export const NEW_CHAT_STARTING = 'The new conversation is starting with the model, system prompt and parameters it was sent with: they can be changed once it has started.';

/** SESSION_ENDED is the sign-in page's notice after a token was refused (expired, revoked), here or in another tab. */
export const SESSION_ENDED = 'Your session has ended. Sign in again to continue; your unsent text is kept.';

/** SIGNED_OUT_ELSEWHERE is the sign-in page's notice after a sign-out in another tab. */
export const SIGNED_OUT_ELSEWHERE = 'You signed out in another tab.';

/** NOT_KEPT is said when the browser's storage could not keep a sign-in (full): it holds in this tab until a reload. */
export const NOT_KEPT = "You are signed in, but this browser's storage is full: a reload or a new tab will ask you to sign in again. Clearing this site's data or freeing space in the browser fixes it.";

/**
 * KEPT_THREADS is how many conversations a tab keeps in memory: past it,
 * those opened longest ago are dropped (opened again, they load again),
 * never the open one nor one with a message on its way or waiting.
 */
export const KEPT_THREADS = 20;

/**
 * withoutUnknownModel drops the model of a new chat the server refused as
 * one it does not list (400 invalid_field on model: the list this tab holds
 * was stale), so that it is asked again with the default rather than given
 * up; it says whether it did. The pick saved for new chats stays.
 */
function withoutUnknownModel(pending: PendingChat, err: unknown): boolean {
  const model = pending.body.model;
  if (!model || !(err instanceof ApiError && err.status === 400 && err.code === 'invalid_field' && err.message.startsWith('model:'))) return false;
  const body = { ...pending.body };
  delete body.model;
  pending.body = body;
  pending.unavailable = model;
  return true;
}

/**
 * withoutRefusedKey drops the clientId of a new chat an instance of the
 * version before refused for it (a rolling upgrade: that version took no
 * key, and its strict decoding refuses the request whole), so that it is
 * asked again once without, created as that version did (an attempt
 * repeated after a lost answer may then make a second conversation); it
 * says whether it did. Regenerate does the same (SSETransport).
 */
function withoutRefusedKey(pending: PendingChat, err: unknown): boolean {
  if (!pending.body.clientId || !refusedField(err, 'clientId')) return false;
  const { clientId: _, ...body } = pending.body;
  pending.body = body;
  return true;
}

/** ChatApp is the client's state machine. */
export class ChatApp {
  readonly store: Store<AppState>;
  readonly api: ApiClient;
  private readonly persist: Persist;
  private readonly session: Session;
  private readonly hold: RefusalHold;
  /**
   * The token whose deletion the server refused with its own 5xx before
   * its socket's close "account deleted" came: that close, when it comes,
   * is this failed deletion's (deletionClosed).
   */
  private deletionFailed: string | null = null;
  private readonly connection: Connection;
  private readonly list: ConversationList;
  private readonly models: ModelList;
  private readonly drafts: Drafts;
  /** The edit boxes open on earlier messages (MessageItem), kept when their message is no longer shown. */
  readonly edits = new OpenEdits((conversationId, parentId, text) => this.drafts.keepEdit(conversationId, parentId, text));
  private readonly toaster: Toaster;
  private readonly revocations: Revocations;
  private readonly threads = new Map<string, ConversationThread>();
  /** life ends the page listeners start added (dispose). */
  private readonly life = new AbortController();
  /** The system prompts typed in the settings dialog and neither saved nor cancelled, by draftKey (settingsDraft). */
  private readonly settingsDrafts = new Map<string, string>();
  /** The conversations opened, the least recently first (see KEPT_THREADS). */
  private readonly recent = new Set<string>();
  /**
   * The conversations dropCancelled is deleting, each to whether this tab
   * has seen it used since (a message, a move up by a send: here or in
   * another tab).
   */
  private readonly dropping = new Map<string, boolean>();
  private openId: string | null = null;
  /** The new chat waiting for its conversation (one at a time: its composer is busy). */
  private pendingChat: PendingChat | null = null;
  private creating = false;
  private createTimer: ReturnType<typeof setTimeout> | undefined;
  /** The live channel of this session was connected once (see firstConnected). */
  private connectedOnce = false;
  private returnTo: string | null = null;
  /** The user whose session ended at returnTo; null: a link opened signed out, for anyone. */
  private returnFor: string | null = null;

  constructor(opts: ChatAppOptions = {}) {
    this.persist = new Persist(opts.kv ?? browserKV());
    const session = Session.initial(this.persist);
    this.store = new Store<AppState>(
      {
        session,
        route: { name: 'chat', conversationId: null },
        link: { state: 'connecting', kind: 'ws' },
        models: [],
        upstreams: [],
        modelPicks: {},
        // The model last picked, kept whether the list offers it or not: a
        // list loaded while its upstream was down lacks it for a while (new
        // chats use the default meanwhile: newChatModel). '' is the server's default model.
        // The user's own pick only (startSession claims it).
        newChat: { model: this.persist.modelPick(session.user?.id ?? null, true), systemPrompt: '' },
        list: initialList,
        threads: {},
        threadErrors: {},
        liveMissing: {},
        busy: {},
        drafts: {},
        toasts: [],
      },
      { throttleMs: opts.throttleMs },
    );
    this.session = new Session(this.store, this.persist);
    this.hold = new RefusalHold(this.persist, () => this.expire());
    this.api = new ApiClient({ token: () => this.session.token(), onUnauthorized: (token) => this.refused(token), fetch: opts.fetch });
    this.list = new ConversationList(this.store, this.api);
    this.models = new ModelList(this.store, this.api);
    this.drafts = new Drafts(this.store, this.persist, opts.pages ?? browserPages());
    this.toaster = new Toaster(this.store);
    this.revocations = new Revocations({ persist: this.persist, api: this.api });
    this.connection = new Connection({
      api: this.api,
      persist: this.persist,
      token: () => this.session.token(),
      followed: () => this.openId,
      socketUrl: opts.socketUrl,
      WebSocketImpl: opts.WebSocketImpl,
      handlers: {
        frame: (f) => this.onFrame(f),
        status: (link) => {
          this.store.set((s) => ({ ...s, link }));
          if (link.state !== 'connected') {
            for (const t of this.threads.values()) t.unfollowed(); // subscribed afresh once connected
            return;
          }
          this.flushQueues();
          if (!this.connectedOnce) this.firstConnected();
        },
        reconnected: () => this.onReconnected(),
        unauthorized: (ended) => (ended === 'accountDeleted' ? this.deletionClosed() : this.refused(this.session.token())),
        resumePoint: (id) => {
          const t = this.store.state.threads[id];
          return t ? resumePoint(t) : undefined;
        },
        subscribeFailed: (id, code, message) => this.thread(id).subscribeFailed(code, message),
        subscribed: (id, sentAt) => this.threads.get(id)?.subscribed(sentAt),
        notify: (text) => this.toast(text, 'info'),
      },
    });
  }

  /** thread returns the state machine of a conversation, made on first use. */
  private thread(id: string): ConversationThread {
    let t = this.threads.get(id);
    if (!t) {
      const epoch = this.list.epoch;
      t = new ConversationThread(id, {
        store: this.store,
        api: this.api,
        drafts: this.drafts,
        transport: () => this.connection.transport,
        session: () => this.list.epoch,
        connected: () => this.store.state.link.state === 'connected' && !!this.connection.transport,
        // Not once its session ended: a Stop or a regenerate failed by the
        // sign-out is no news for the sign-in page or the next user.
        toast: (text, kind) => {
          if (this.list.epoch === epoch) this.toast(text, kind);
        },
        loadedConversation: (c) => this.list.loaded(c),
        model: () => this.chosenModel(id),
        deleted: (notice) => this.deleted(id, notice),
        isOpen: () => this.openId === id,
      });
      this.threads.set(id, t);
    }
    return t;
  }

  // ---- lifecycle and navigation ----

  /** start reads the URL, connects when signed in and follows history and other tabs. */
  start(): void {
    const on = { signal: this.life.signal };
    window.addEventListener('popstate', () => this.applyRoute(parseRoute(location.pathname)), on);
    window.addEventListener('storage', (e) => this.onStorage(e), on);
    // The texts typed in the last moments are saved before the page may go
    // (a closed tab gives no pagehide on some mobile browsers, only hidden).
    window.addEventListener('pagehide', () => this.drafts.flush(), on);
    // Back from the back-forward cache: the other tabs' saves meanwhile were not heard.
    window.addEventListener('pageshow', (e) => {
      if (e.persisted) this.drafts.rereadAll(draftKey(this.openId));
    }, on);
    window.addEventListener('beforeunload', () => this.drafts.flush(), on);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.drafts.flush();
      else if (document.visibilityState === 'visible') this.recheckUnsaved();
    }, on);
    window.addEventListener('online', () => {
      void this.revocations.flush();
      this.recheckUnsaved();
    }, on);
    void this.revocations.flush(); // sign-outs made offline before this page
    const user = this.store.state.session.user;
    if (user) this.drafts.claim(user.id, true);
    if (this.session.token()) this.startSession(true);
    this.applyRoute(parseRoute(location.pathname), true);
  }

  /**
   * navigate shows the page at path, adding a history entry unless replace
   * or the entry is the open drawer's (DRAWER_ENTRY): a page picked in the
   * drawer takes its place, so that Back goes to the page it was opened on.
   */
  navigate(path: string, replace = false): void {
    if (location.pathname !== path) {
      if (replace || isDrawerEntry(history.state)) history.replaceState(null, '', path);
      else history.pushState(null, '', path);
    }
    this.applyRoute(parseRoute(path));
  }

  private applyRoute(route: Route, initial = false): void {
    const signedIn = !!this.session.token();
    if (route.name === 'chat' && !signedIn) {
      if (routePath(route) !== '/') {
        this.returnTo = routePath(route);
        this.returnFor = null;
      }
      route = { name: 'login' };
      history.replaceState(null, '', '/login');
    } else if (route.name !== 'chat' && signedIn) {
      route = { name: 'chat', conversationId: null };
      history.replaceState(null, '', '/');
    } else if (route.name === 'chat' && route.conversationId !== null && this.list.wasDeleted(route.conversationId)) {
      // Back (or Forward) to a conversation deleted in this session: the
      // new chat, as the deletion left the tab, said once. Deleted while
      // open under the narrow screens' drawer, its entry stays below the
      // drawer's, which the tab leaving it replaced (navigate): the Back
      // that closes the drawer went to it, read it again and said again
      // that it does not exist.
      route = { name: 'chat', conversationId: null };
      history.replaceState(history.state, '', '/');
    } else if (initial && location.pathname !== routePath(route)) {
      history.replaceState(null, '', routePath(route));
    }
    this.store.set((s) => ({ ...s, route }));
    if (route.name === 'chat') this.open(route.conversationId);
  }

  /** startSession starts the session of the user signed in; keepUnowned: see restoreModelPick. */
  private startSession(keepUnowned = false): void {
    this.restoreModelPick(keepUnowned);
    this.connectedOnce = false;
    this.connection.start();
    this.models.start();
    void this.list.reload();
    void this.refreshUser(keepUnowned);
  }

  /**
   * refreshUser asks the server who this is. A session whose user was not
   * stored (a token kept by a version before) gets the user's model pick
   * once known (restoreModelPick), unless one was made meanwhile.
   */
  private async refreshUser(keepUnowned: boolean): Promise<void> {
    const known = this.store.state.session.user !== null;
    const { epoch } = this.list;
    const pick = this.store.state.newChat.model;
    await this.session.refreshUser(this.api);
    if (known || this.list.epoch !== epoch || !this.store.state.session.user || this.store.state.newChat.model !== pick) return;
    this.restoreModelPick(keepUnowned);
  }

  /**
   * restoreModelPick gives the new chat the model the user signed in last
   * picked (none: the server's default), never another user's, which is
   * forgotten: a shared browser does not tell the next user what the one
   * before chose, nor start their chats on it. keepUnowned (at the page's
   * start) takes a pick saved without its user as theirs (Persist.modelPick).
   */
  private restoreModelPick(keepUnowned: boolean): void {
    const user = this.store.state.session.user?.id;
    const model = user ? this.persist.claimModelPick(user, keepUnowned) : this.persist.modelPick(null, keepUnowned);
    if (this.store.state.newChat.model !== model) this.store.set((s) => ({ ...s, newChat: { ...s.newChat, model } }));
  }

  /**
   * onReconnected catches up after a cut: the list's first page merged
   * again (loaded again when its last load failed: a merge would leave the
   * error, and no next page), the open conversation loaded again, and the
   * models (an upstream that could not list them before may be back).
   */
  private onReconnected(): void {
    if (this.store.state.list.error !== null) void this.list.reload();
    else void this.list.refreshHead();
    if (this.openId) void this.thread(this.openId).load();
    void this.models.load();
    this.recheckUnsaved(this.openId); // the open one was just loaded
  }

  /**
   * recheckUnsaved reads at once the conversations (but skip) holding an
   * answer whose end was not confirmed stored: a sign that the server or
   * the link may be back (a reconnect, the network online, the page shown).
   */
  private recheckUnsaved(skip: string | null = null): void {
    for (const [id, t] of this.threads) if (id !== skip) t.recheckUnsaved();
  }

  /**
   * dispose ends what start began, leaving the storage as it is: the
   * page's listeners, the live channel and its timers, the sidebar list's
   * timers, the model list's refresh and the conversations' reads. For an app that goes while its
   * page stays (the tests start one per case: one left running fired its
   * timers and heard the page's events in the cases after it).
   */
  dispose(): void {
    this.life.abort();
    this.connection.stop();
    this.list.stop();
    this.models.stop();
    this.endThreads();
  }

  /** endThreads ends every conversation's state machine and its timers (the session ends). */
  private endThreads(): void {
    for (const t of this.threads.values()) t.end();
    this.threads.clear();
  }

  /**
   * firstConnected follows the session's first connection (a reconnect is
   * onReconnected's): what failed to load while the server could not be
   * reached, at the start of the page (the list, the open conversation, the
   * models), is loaded again, where its error stayed until Retry was pressed;
   * and the list's first page read before the channel was confirmed (the
   * page's start: the socket opens beside it, and may be refused for long,
   * or fall back to SSE) is read again (ConversationList.live): a change
   * made meanwhile (a conversation created on another device, a title, a
   * rename, a deletion) came in no frame. (The open conversation is read
   * again at its subscribe's ack: ConversationThread.subscribed.)
   */
  private firstConnected(): void {
    this.connectedOnce = true;
    const from = requestOrder(); // the server registered the channel before it said so: frames flow from here
    const { list, threadErrors, models } = this.store.state;
    if (list.error !== null) void this.list.reload();
    this.list.live(from); // a list read before then is read again
    if (this.openId && threadErrors[this.openId] !== undefined) void this.thread(this.openId).load();
    if (models.length === 0) void this.models.load();
  }

  private flushQueues(): void {
    void this.createPending();
    for (const [id, t] of this.threads) if (this.store.state.threads[id] && t.waiting()) void t.flushQueue();
  }

  private onStorage(e: StorageEvent): void {
    if (e.key === Persist.signingInKey) this.revocations.signInsChanged();
    this.drafts.fromOtherTab(e.key, e.newValue, (key) => key === NEW_CHAT || this.threads.has(key));
    this.followOtherTab(this.session.otherTab(e));
  }

  /** followOtherTab applies a change of session another tab made. */
  private followOtherTab(change: OtherTab | null): void {
    switch (change?.kind) {
      case 'signedOut':
        // As that tab ended it: an expiry (its token refused) is no sign-out,
        // nor is a token gone with no reason written (Persist.endReason); an
        // end says what that tab said of a deletion it asked for; an expiry
        // waits for this tab's own change or deletion in flight (its answer
        // decides).
        if (change.reason === 'accountDeleted') this.accountDeleted(change.notice ? SHARED_NOTICES[change.notice] : ACCOUNT_DELETED_NOTICE);
        else if (change.reason === 'signedOut') this.expire(SIGNED_OUT_ELSEWHERE, 'signedOut');
        else if (!this.hold.holdOwn()) this.expire(change.notice ? SHARED_NOTICES[change.notice] : SESSION_ENDED);
        return;
      case 'signedIn':
        this.hold.clear();
        if (change.replaced) {
          // Another user in place of this tab's: nothing of the one before stays, nor its page.
          this.drafts.drop();
          this.dropSessionState();
          history.replaceState(null, '', '/');
        }
        this.startSession();
        this.applyRoute(parseRoute(location.pathname));
        return;
      case 'renewed':
        // Another tab changed the password: its new token replaces this one, the old channel with it.
        this.hold.clear();
        this.connection.restart();
        return;
      case 'changeEnded':
        this.hold.released();
        return;
    }
  }

  /**
   * refused handles a token the server refused (a 4401 close, a 401): the
   * answer to a token already replaced is ignored, a newer token another tab
   * stored is adopted, a password change in flight (here or in another tab)
   * holds it until the change ends, and otherwise the session ends.
   */
  private refused(token: string | null): void {
    if (!token || token !== this.session.token()) return;
    const change = this.session.follow();
    if (change) this.followOtherTab(change);
    else if (!this.hold.hold()) this.expire();
  }

  // ---- accounts ----

  /** register creates an account and signs in. */
  async register(email: string, password: string, name: string): Promise<void> {
    await this.revocations.flush();
    const r = await this.api.register(email, password, name);
    this.signedIn(r.token, r.user);
  }

  /** login signs in. */
  async login(email: string, password: string): Promise<void> {
    // A sign-out still pending ends every session of its user: sent after
    // this sign-in, or while it is on its way (pause), it would end the
    // new one too.
    await this.revocations.flush();
    const resume = this.revocations.pause();
    try {
      const r = await this.api.login(email, password);
      this.signedIn(r.token, r.user);
    } finally {
      resume();
    }
  }

  private signedIn(token: string, user: User): void {
    this.revocations.signedIn(user.id);
    this.drafts.claim(user.id);
    const kept = this.session.signIn(token, user);
    this.list.reset();
    this.endThreads();
    this.recent.clear();
    this.store.set((s) => ({ ...s, threads: {}, threadErrors: {}, liveMissing: {} }));
    this.startSession();
    // Another user does not land on the previous one's conversation.
    const to = this.returnTo && (this.returnFor === null || this.returnFor === user.id) ? this.returnTo : '/';
    this.returnTo = null;
    this.returnFor = null;
    this.navigate(to, true);
    if (!kept) this.toast(NOT_KEPT, 'info');
  }

  /**
   * logout ends every session of the user (all tabs and devices). This
   * browser signs out at once; the server is told now, or, offline, when
   * the network is back (the token is kept until then, a reload included).
   */
  async logout(): Promise<void> {
    const token = this.session.token();
    if (token) this.revocations.keep({ token, userId: this.store.state.session.user?.id ?? '' });
    this.returnTo = null;
    this.endSession(null, 'signedOut');
    await this.revocations.flush();
  }

  /**
   * changePassword sets a new password once the server has checked the
   * current one. The server revokes every older token and closes their
   * sockets, this tab's too, before or after it answers: meanwhile a
   * refused token is held (RefusalHold). On success the new token is stored
   * (the other tabs of this browser adopt it) and the live channel is
   * restarted with it, as after a cut; on failure a held refusal ends the
   * session as it would have. The new token renews only the session the
   * request was sent from: once that one ended (a sign-out, an account
   * deleted, another user signed in here or in another tab, another tab's
   * new token), the answer is dropped, never stored over another user's
   * session, and a refusal held meanwhile ends the current one. It returns
   * null when changed, else the refusal in plain words, with the field it
   * concerns (a 401 for its token is one when the session goes on with a
   * newer token: another tab's change landed first); null too for a
   * refusal answered once the user is no longer signed in here (signed
   * out, another user signed in, the token refused): nobody to tell it to
   * (the dialog, closed then, would say it in a toast to the next user).
   */
  async changePassword(currentPassword: string, newPassword: string): Promise<PasswordRefusal | null> {
    const token = this.session.token();
    const userId = this.store.state.session.user?.id ?? null;
    this.hold.begin();
    let session: AuthResult;
    try {
      session = await this.api.changePassword(currentPassword, newPassword);
    } catch (err) {
      const told = this.sameUser(token, userId); // before a held refusal ends the session
      if (this.hold.end()) this.expire();
      // A refused token that ended the session: the sign-in page says so.
      // Still signed in, its token was already replaced (another tab's
      // change landed first): this change was not made, and the dialog says so.
      const tokenRefused = err instanceof ApiError && err.tokenRefused;
      const ended = tokenRefused && !this.sameUser(token, userId);
      return told && !ended ? changePasswordRefusal(err) : null;
    }
    const renewed = token !== null && this.session.token() === token;
    const kept = !renewed || this.session.signIn(session.token, session.user);
    // After the token is stored: the other tabs see it before the change's end.
    if (this.hold.end() && !renewed) this.expire();
    if (renewed) this.connection.restart();
    if (!kept) this.toast(NOT_KEPT, 'info');
    return null;
  }

  /**
   * deleteAccount deletes the account, its conversations and messages once
   * the server has checked the password, then ends the session here. The
   * server closes every socket of the account with 4401 "account deleted"
   * before it removes it, and may still fail then, the account in place
   * and signed out: meanwhile a refused token is held (RefusalHold, which
   * the other tabs of this browser follow too), and the answer decides.
   * Deleted, the session ends as deleted (the other tabs follow); refused
   * after the sign-out, it ends as a refused token does, drafts kept, the
   * sign-in page saying whether the account is still there
   * (deletionCutNotice). It returns null when deleted (or when the server
   * is still removing the data: the notice then says so) or when the
   * session ended, else the refusal in plain words; null too for a refusal
   * answered once the user is no longer signed in here (see
   * changePassword). Answered once another user is signed in (here, or in
   * another tab this one followed), a deletion leaves that user's session
   * alone: it ends only the deleted account's sessions, and that user's
   * sign-in forgot the deleted account's texts here. Signed out meanwhile,
   * or signed in again as the same user, this tab ends as deleted all the
   * same.
   */
  async deleteAccount(password: string): Promise<Refusal | null> {
    const token = this.session.token();
    const userId = this.store.state.session.user?.id ?? null;
    this.hold.begin();
    let outcome: 'deleted' | 'deleting';
    try {
      outcome = await this.api.deleteAccount(password);
    } catch (err) {
      const told = this.sameUser(token, userId);
      if (!this.hold.holding()) {
        this.hold.end();
        if (deletionCutNotice(err) === ACCOUNT_NOT_DELETED) this.deletionFailed = token;
        return told ? deleteAccountRefusal(err) : null;
      }
      // The session's end stored before the mark goes: the other tabs, held
      // too, follow it and say what this one says (Persist.endNotice).
      this.expire(deletionCutNotice(err) ?? SESSION_ENDED);
      this.hold.end();
      return null;
    }
    if (this.session.token() === null || this.sameUser(token, userId)) {
      this.accountDeleted(outcome === 'deleting' ? ACCOUNT_DELETING_NOTICE : ACCOUNT_DELETED_NOTICE);
    }
    // After the session's end is stored: the other tabs see it before the request's end.
    if (this.hold.end()) this.expire();
    return null;
  }

  /**
   * deletionClosed handles a socket closed "account deleted": the server
   * signed the account out everywhere to delete it. Whether it did is known
   * only to the tab that asked: held while this tab's deletion (or another
   * tab's of this browser) waits for its answer, else the session ends as
   * a refused token's does, drafts kept, saying so
   * (ACCOUNT_DELETION_SIGNED_OUT), or, the close of this tab's deletion
   * the server refused already (its answer came first), that the account
   * was not deleted.
   */
  private deletionClosed(): void {
    const token = this.session.token();
    if (!token || this.hold.hold()) return;
    this.expire(token === this.deletionFailed ? ACCOUNT_NOT_DELETED : ACCOUNT_DELETION_SIGNED_OUT);
  }

  /**
   * sameUser says whether the user signed in now is the one an account
   * request was sent for, with token (userId, when known): the same
   * session, or a later one of that user (a new token after another tab's
   * password change, a sign-in again). False once signed out.
   */
  private sameUser(token: string | null, userId: string | null): boolean {
    const now = this.store.state.session;
    return now.token !== null && (now.token === token || (userId !== null && now.user?.id === userId));
  }

  /**
   * accountDeleted ends the session of an account that is gone, however
   * this tab learnt it (its own request, its socket's close, another tab):
   * back to sign-in with nothing of it kept, drafts included. It may run
   * more than once.
   */
  private accountDeleted(notice = ACCOUNT_DELETED_NOTICE): void {
    this.returnTo = null;
    this.endSession(notice, 'accountDeleted');
  }

  /**
   * expire handles a token the server refused: back to sign-in, drafts
   * kept. reason is what the other tabs are told (another tab's sign-out
   * followed here is one: its drafts are forgotten, see endSession).
   */
  expire(notice = SESSION_ENDED, reason: EndReason = 'expired'): void {
    if (!this.session.token()) return;
    if (this.store.state.route.name === 'chat') {
      this.returnTo = location.pathname;
      this.returnFor = this.store.state.session.user?.id ?? null;
    }
    this.endSession(notice, reason);
  }

  /**
   * endSession goes back to sign-in. What the user typed and did not send
   * (composer texts, open edits, messages waiting) is kept in storage for
   * their return only when the token was refused (an expiry, a revocation:
   * "your unsent text is kept"); a sign-out, the user's own here or in
   * another tab, and a deleted account forget it, so that whoever uses
   * the browser next does not find it.
   */
  private endSession(notice: string | null, reason: EndReason): void {
    const kept = reason === 'expired';
    this.hold.clear();
    // An open edit's text is kept with the composer texts.
    if (kept) for (const id of this.edits.conversations()) this.keepEdits(id, id);
    if (kept) this.drafts.flush();
    else this.drafts.discard();
    if (reason === 'accountDeleted') this.persist.forgetModelPick();
    this.dropSessionState();
    this.session.end(notice, reason, sharedNotice(notice));
    this.navigate('/login', true);
  }

  /**
   * dropSessionState forgets what this tab holds of the user signed in: the
   * live channel, the new chat waiting for its conversation, the list, the
   * conversations, the composer texts in memory (saved or dropped before),
   * model picks, the new chat's model (saved for the user: restoreModelPick),
   * system prompt and parameters, the toasts,
   * and the remote images revealed (the next user's answers show them as
   * placeholders until clicked).
   */
  private dropSessionState(): void {
    this.edits.clear();
    this.settingsDrafts.clear();
    this.drafts.abandon(); // the messages waiting are dropped below: their texts go to their composer at the next load
    this.dropPendingChat();
    forgetRevealed();
    this.connection.stop();
    this.models.stop();
    this.openId = null;
    this.endThreads();
    this.recent.clear();
    this.list.reset();
    this.toaster.cleared(); // before the store drops them: a view holding them lets them go too
    this.store.set((s) => ({
      ...s,
      threads: {},
      threadErrors: {},
      liveMissing: {},
      busy: {},
      drafts: {},
      modelPicks: {},
      newChat: { ...s.newChat, model: '', systemPrompt: '', params: undefined },
      toasts: [], // the session's news: the sign-in page says why it ended (session.notice)
    }));
  }

  // ---- frames ----

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case 'conversation':
        if (f.action !== 'deleted') {
          if (f.action === 'updated') this.used(f.conversation.id);
          this.list.apply(f.conversation);
          return;
        }
        this.deleted(f.conversation.id);
        return;
      case 'message':
        this.used(f.conversationId);
        if (this.store.state.threads[f.conversationId]) this.thread(f.conversationId).message(f.message);
        this.list.touch(f.conversationId, f.message.createdAt);
        return;
      case 'delta':
        if (this.store.state.threads[f.conversationId]) this.thread(f.conversationId).delta(f);
        return;
      case 'reasoning':
        if (this.store.state.threads[f.conversationId]) this.thread(f.conversationId).reasoning(f);
        return;
      case 'done':
        if (this.store.state.threads[f.conversationId]) this.thread(f.conversationId).done(f);
        // The answer of a send into a conversation not open (one made for
        // a new chat the user left, a queued send): the socket followed it
        // for that answer alone, and would follow it for as long as it lasts.
        if (f.conversationId !== this.openId) this.connection.transport?.release(f.conversationId);
        return;
      case 'error':
        if (f.id === undefined) this.toast(f.message || f.code, 'error');
        return;
      default:
        return;
    }
  }

  /** deleted forgets a conversation deleted elsewhere, leaving it for a new chat, with notice, when it is open. */
  private deleted(id: string, notice = 'This conversation was deleted.'): void {
    this.forget(id);
    if (this.openId === id) {
      this.toast(notice, 'info');
      this.navigate('/', true);
    }
  }

  /**
   * forget drops a deleted conversation. Its composer's text is not lost
   * with it: it goes to the new chat's composer (when empty), where the
   * tab lands when it was open, and so do its messages not sent yet
   * (queued, or refused once on their way), after any text there, and the
   * texts pages gone left for it (Drafts.recover).
   */
  private forget(id: string): void {
    const t = this.threads.get(id);
    t?.liveResumed();
    this.drafts.move(id, NEW_CHAT);
    this.keepEdits(id, NEW_CHAT); // after the composer's text, as the unsent messages below
    t?.deleted(); // after the move: the composer's text first, then the unsent messages
    void (t ?? this.thread(id)).recoverDeleted(); // and those of pages gone: no later load takes them up
    this.list.forget(id);
    this.settingsDrafts.delete(draftKey(id));
    this.threads.get(id)?.end();
    this.threads.delete(id);
    this.recent.delete(id);
  }

  // ---- conversations ----

  private open(id: string | null): void {
    if (this.openId === id) return;
    if (this.openId) {
      this.keepEdits(this.openId, this.openId); // its edit boxes go with it: their text stays in its composer
      this.connection.transport?.unsubscribe(this.openId);
      const left = this.threads.get(this.openId);
      left?.liveResumed(); // no longer followed: a later open subscribes afresh
      left?.unfollowed();
    }
    this.openId = id;
    if (!id) {
      this.drafts.load(NEW_CHAT);
      return;
    }
    const t = this.thread(id);
    t.ensure();
    this.recent.delete(id);
    this.recent.add(id);
    this.trimThreads();
    this.drafts.load(id);
    this.connection.transport?.subscribe(id);
    void t.load();
  }

  /**
   * trimThreads drops the threads of the conversations opened longest ago
   * beyond KEPT_THREADS, keeping the open one and those with a message on
   * its way (busy) or waiting for the connection (queued), a regenerate
   * waiting to be asked again (its state machine holds it), or an answer
   * whose end was not confirmed stored (read again until final). Their
   * composer texts (saved: Drafts.forget), model picks and busy marks go
   * with them.
   */
  private trimThreads(): void {
    const { threads, busy } = this.store.state;
    let excess = Object.keys(threads).length - KEPT_THREADS;
    if (excess <= 0) return;
    const oldestFirst = [...Object.keys(threads).filter((id) => !this.recent.has(id)), ...this.recent];
    const drop = new Set<string>();
    for (const id of oldestFirst) {
      if (excess <= 0) break;
      const t = threads[id];
      const unsaved = !!t && Object.keys(t.unsaved).length > 0; // read again until final (ConversationThread.checkUnsaved)
      if (!t || id === this.openId || t.queued.length > 0 || unsaved || busy[id] || this.threads.get(id)?.waiting()) continue;
      drop.add(id);
      excess--;
    }
    for (const id of drop) {
      this.threads.get(id)?.end();
      this.threads.delete(id);
      this.recent.delete(id);
    }
    this.drafts.forget(drop);
    this.store.set((s) => {
      const kept = <T,>(r: Readonly<Record<string, T>>) => Object.fromEntries(Object.entries(r).filter(([id]) => !drop.has(id)));
      return { ...s, threads: kept(s.threads), threadErrors: kept(s.threadErrors), liveMissing: kept(s.liveMissing),
        modelPicks: kept(s.modelPicks), busy: kept(s.busy) };
    });
  }

  /** loadThread fetches a conversation and merges it into what is known. */
  async loadThread(id: string): Promise<void> {
    await this.thread(id).load();
  }

  /** loadOlder fetches the messages before the oldest loaded one (scrolling up). */
  loadOlder(id: string): Promise<void> {
    return this.thread(id).loadOlder();
  }

  /** reloadList fetches the first page of the list for the applied search. */
  reloadList(): Promise<void> {
    return this.list.reload();
  }

  /** loadMore fetches the next page of the list (infinite scroll). */
  loadMore(): Promise<void> {
    return this.list.loadMore();
  }

  /** setQuery changes the search text; the server is asked after a pause in typing. */
  setQuery(query: string): void {
    this.list.setQuery(query);
  }

  /** rename changes a conversation's title. */
  async rename(id: string, title: string): Promise<void> {
    await this.patch(id, { title: title.trim() });
  }

  /**
   * remove deletes a conversation and its messages. A failure answered
   * after its session ended (signed out, another user signed in meanwhile)
   * is not shown: it is the user's before (see patch).
   */
  async remove(id: string): Promise<void> {
    const epoch = this.list.epoch;
    try {
      await this.api.deleteConversation(id);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        if (epoch === this.list.epoch) this.toast(`Could not delete: ${errorText(err)}`, 'error');
        return;
      }
    }
    this.forget(id);
    if (this.openId === id) this.navigate('/', true);
  }

  /**
   * patch changes a conversation. Answered after its session ended (signed
   * out, another user signed in meanwhile), neither the conversation nor
   * the error is shown: they are the user's before. Answered chatd's
   * not_found, the conversation is gone (deleted where this tab did not
   * hear of it): it is forgotten as a deletion frame would (deleted), out
   * of the list, and left for a new chat when open, where it stayed listed.
   */
  private async patch(id: string, p: { title?: string; model?: string; systemPrompt?: string }): Promise<boolean> {
    const epoch = this.list.epoch;
    try {
      const { conversation } = await this.api.updateConversation(id, p);
      this.list.applyIn(epoch, conversation);
      return true;
    } catch (err) {
      if (epoch !== this.list.epoch) return false;
      if (err instanceof ApiError && err.status === 404 && err.code === 'not_found') this.deleted(id);
      else this.toast(`Could not save: ${errorText(err)}`, 'error');
      return false;
    }
  }

  /**
   * setModel picks the model of the open conversation, or, on the new
   * chat's page, of the next new chat. An open conversation takes the pick
   * with a PATCH also while it is still loading, or failed to load (unlike
   * its system prompt and parameters, which saveSettings refuses then: a
   * model needs nothing of the conversation known); the pick never goes to
   * the next new chat then. A conversation's pick is shown, and carried by
   * its sends and regenerations, at once, while the PATCH that stores it is
   * on its way: the server answers a request without a model with the
   * conversation's model as stored, the old one until then. A refused PATCH
   * drops the pick. Only a pick made on the new chat's page is saved as
   * the user's model for new chats (Persist.saveModelPick), which the next
   * session or page load starts the new chat on (restoreModelPick): one
   * made in a conversation is that conversation's alone. While a new chat
   * waits for its conversation (pendingChat) its page takes no pick
   * (NEW_CHAT_STARTING): the conversation is made with the model it was
   * sent with.
   */
  async setModel(model: string): Promise<void> {
    const id = this.openId;
    if (!id) {
      if (this.pendingChat) return;
      this.persist.saveModelPick(this.store.state.session.user?.id ?? null, model);
      this.store.set((s) => ({ ...s, newChat: { ...s.newChat, model } }));
      return;
    }
    this.store.set((s) => ({ ...s, modelPicks: { ...s.modelPicks, [id]: model } }));
    await this.patch(id, { model });
    this.store.set((s) => {
      if (s.modelPicks[id] !== model) return s; // picked again meanwhile: that PATCH settles it
      const modelPicks = { ...s.modelPicks };
      delete modelPicks[id];
      return { ...s, modelPicks };
    });
  }

  /**
   * chosenModel is the model picked for a conversation while its PATCH is
   * on its way, named in sends and regenerations because the server does
   * not know it yet. Otherwise undefined: the server answers with the
   * conversation's model as stored, or its default when that model is no
   * longer offered (naming it from a list loaded earlier would be refused,
   * unknown_model, once the server stops offering it).
   */
  private chosenModel(id: string): string | undefined {
    return this.store.state.modelPicks[id];
  }

  /**
   * saveSettings saves the system prompt and parameters of the open
   * conversation with one PATCH (the parameters only when they changed, so
   * a prompt edit is never refused for parameters the user left alone), or
   * keeps them for the next new chat. It returns null when saved, else the
   * refusal in plain words, naming the parameter the server refused; null
   * too for a refusal answered after the session ended (signed out, another
   * user signed in meanwhile): nobody to tell it to (the dialog, closed
   * then, would say it in a toast to the next user). An open conversation
   * not loaded (still loading, or failed to) is refused (SETTINGS_NOT_LOADED): its
   * settings are not known, and they are never the next new chat's. So are
   * the new chat's while it waits for its conversation (NEW_CHAT_STARTING):
   * its request is made with those it was sent with (every attempt the
   * same, its clientId too), and they are cleared once it is made. A save
   * chatd answers 404 not_found (the conversation deleted where this tab did
   * not hear of it) forgets the conversation as patch does and returns null:
   * the deletion's notice says it, where a refusal would say it again (or a
   * toast, the dialog closed by the tab leaving it) and the conversation
   * stayed listed. A 404 without chatd's body (a proxy's) is still refused.
   */
  async saveSettings(systemPrompt: string, params: Params): Promise<ServerRefusal | null> {
    if (!this.openId) {
      if (this.pendingChat) return { text: NEW_CHAT_STARTING };
      this.store.set((s) => ({ ...s, newChat: { ...s.newChat, systemPrompt, params: isEmptyParams(params) ? undefined : params } }));
      return null;
    }
    const conversation = this.store.state.threads[this.openId]?.conversation;
    if (!conversation) return { text: SETTINGS_NOT_LOADED };
    const patch: ConversationPatch = {};
    if (systemPrompt !== conversation.systemPrompt) patch.systemPrompt = systemPrompt;
    if (!sameParams(params, conversation.params)) patch.params = params;
    if (Object.keys(patch).length === 0) return null;
    const id = this.openId;
    const epoch = this.list.epoch;
    try {
      const { conversation: saved } = await this.api.updateConversation(id, patch);
      this.list.applyIn(epoch, saved); // not into the next session's list (see patch)
      return null;
    } catch (err) {
      if (epoch !== this.list.epoch) return null;
      if (!(err instanceof ApiError && err.status === 404 && err.code === 'not_found')) return serverRefusal(err);
      this.deleted(id); // as patch: its notice, when open, says why nothing was saved
      return null;
    }
  }

  /**
   * exportConversation downloads the conversation as Markdown or JSON. An
   * answer that comes after its session ended (signed out, another user
   * signed in, here or in another tab) is dropped: neither saved, on
   * another user's screen perhaps, nor, failed, shown (see remove).
   */
  async exportConversation(id: string, format: 'markdown' | 'json'): Promise<void> {
    const epoch = this.list.epoch;
    try {
      const { blob, filename } = await this.api.exportConversation(id, format);
      if (epoch === this.list.epoch) saveBlob(blob, filename);
    } catch (err) {
      if (epoch === this.list.epoch) this.toast(`Export failed: ${errorText(err)}`, 'error');
    }
  }

  // ---- chatting ----

  /**
   * send posts the composer's text to the open conversation. For a new
   * chat it creates the conversation first (createPending); offline, the
   * creation waits for the connection, its text kept in the composer,
   * which is read-only meanwhile (the text sent is the one shown), as are
   * its model and settings (NEW_CHAT_STARTING), and offers Cancel
   * (cancelNewChat).
   */
  async send(text: string): Promise<void> {
    if (!hasVisible(text) || !this.connection.transport) return;
    const id = this.openId;
    if (id) {
      await this.thread(id).sendAfterLeaf(text, draftKey(id));
      return;
    }
    if (this.pendingChat) return; // one new chat at a time
    const { model: pick, systemPrompt } = this.store.state.newChat;
    const model = newChatModel(this.store.state.models, pick);
    // A max answer tokens set for another model: within this one's bound.
    const params = withinBound(this.store.state.newChat.params, currentModel(this.store.state.models, model));
    this.pendingChat = {
      text,
      ...(model !== pick ? { unavailable: pick } : {}),
      body: {
        clientId: newClientId(),
        ...(model ? { model } : {}),
        ...(systemPrompt ? { systemPrompt } : {}),
        ...(params && !isEmptyParams(params) ? { params } : {}),
      },
    };
    // Read-only from now on, whatever attempt is on its way: one of a chat
    // given up (cancelNewChat) or of the session before still holds
    // createPending back, and the text sent must be the one shown. Behind
    // such an attempt it waits, with a Cancel, as after a failure.
    this.setBusy(NEW_CHAT, true);
    if (this.creating) this.setNewChatWaiting(true);
    await this.createPending();
  }

  /**
   * createPending creates the conversation of the new chat sent, then sends
   * its first message. A failure of the connection (a network error, 502 to
   * 504, a timeout), chatd's 503 or a 429 keeps the chat waiting, its composer busy: it
   * is asked again when the link is back, or after the server's Retry-After
   * (else CREATE_RETRY_MS) while the link is up. Every attempt carries the
   * same clientId, so one that reached the server before its answer was
   * lost is answered with its conversation rather than made twice.
   */
  private async createPending(): Promise<void> {
    const pending = this.pendingChat;
    if (!pending || this.creating) return;
    clearTimeout(this.createTimer);
    this.creating = true;
    let conversation: Conversation;
    try {
      ({ conversation } = await this.createOnce(pending.body));
    } catch (err) {
      if (this.pendingChat !== pending || withoutUnknownModel(pending, err) || withoutRefusedKey(pending, err)) this.createNext();
      else this.creationFailed(pending, err);
      return;
    } finally {
      this.creating = false;
    }
    if (this.pendingChat !== pending) {
      // Cancelled meanwhile: the conversation made after all is not wanted
      // (a failure leaves it in the list, empty). Else the session ended.
      if (pending.cancelled) void this.dropCancelled(conversation.id);
      this.createNext();
      return;
    }
    this.dropPendingChat();
    this.thread(conversation.id).adopt(conversation);
    this.list.apply(conversation);
    this.store.set((s) => ({ ...s, newChat: { ...s.newChat, systemPrompt: '', params: undefined } }));
    this.sentFromNewChat(pending.text);
    if (pending.unavailable) this.toast(unavailableNotice(pending.unavailable), 'info');
    if (this.openId === null) this.navigate(`/c/${conversation.id}`); // unless the user went elsewhere meanwhile
    await this.thread(conversation.id).sendAfterLeaf(pending.text, conversation.id);
  }

  /**
   * dropCancelled deletes the conversation that an attempt of a new chat
   * given up (cancelNewChat) made after all: else it stays in the list,
   * empty. Refused for now (a 429 past the user's changes of conversations,
   * chatd's 503, a lost connection), it is asked again after the server's
   * Retry-After (else backoffDelay from CREATE_RETRY_MS), DROP_ATTEMPTS
   * times at most, and not once the app ends (dispose). Any other failure
   * (a 404: deleted already) ends it. Nor is it asked once the conversation
   * is in use (inUse): opened meanwhile and sent to, here or in another
   * tab, a deletion would take the user's message and stop its answer.
   */
  private async dropCancelled(id: string): Promise<void> {
    this.dropping.set(id, false);
    try {
      for (let attempt = 1; !this.inUse(id); attempt++) {
        try {
          await this.api.deleteConversation(id);
          return;
        } catch (err) {
          const later = (err instanceof ApiError && err.status === 429) || serverUnavailable(err) !== null || isConnectionError(err);
          if (!later || attempt >= DROP_ATTEMPTS) return;
          const wait = err instanceof ApiError && err.retryAfter !== undefined ? err.retryAfter * 1000 : backoffDelay(attempt - 1, CREATE_RETRY_MS);
          if (!(await pause(wait, this.life.signal))) return;
        }
      }
    } finally {
      this.dropping.delete(id);
    }
  }

  /** used notes activity in a conversation dropCancelled is deleting (a message, a move up). */
  private used(id: string): void {
    if (this.dropping.has(id)) this.dropping.set(id, true);
  }

  /**
   * inUse says whether a conversation dropCancelled is deleting is wanted
   * after all: a message or a send seen in it (used), or opened here (its
   * thread is kept a while after it is left).
   */
  private inUse(id: string): boolean {
    return this.dropping.get(id) === true || this.openId === id || this.threads.has(id);
  }

  /**
   * createOnce asks for a new chat's conversation once. Without an answer
   * within CREATE_TIMEOUT_MS (a half-open connection, a request the browser
   * holds for minutes) it is given up with `timeout`, as a send's ack is:
   * createPending then asks again with the same key, where a creation
   * hanging held the chat waiting, and any new chat behind it, for good.
   */
  private async createOnce(body: NewConversation): Promise<{ conversation: Conversation }> {
    const ctrl = new AbortController();
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      ctrl.abort();
    }, CREATE_TIMEOUT_MS);
    try {
      return await this.api.createConversation(body, ctrl.signal);
    } catch (err) {
      if (late) throw new ApiError(0, 'timeout', 'The server did not answer in time.');
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * createNext asks for the new chat sent while the creation of one
   * forgotten since (its session ended) was on its way: that attempt held
   * createPending back, and nothing else asks again while the link stays up.
   */
  private createNext(): void {
    queueMicrotask(() => void this.createPending());
  }

  /**
   * creationFailed keeps a new chat waiting after a failure of the
   * connection or an answer of chatd saying not now (its own 503
   * unavailable: a shutdown, a wait for a lock; a 429), else gives it up.
   * While the link is up it is asked again after the server's Retry-After
   * (else CREATE_RETRY_MS).
   */
  private creationFailed(pending: PendingChat, err: unknown): void {
    const limited = err instanceof ApiError && err.status === 429 ? err.message : null;
    if (!isConnectionError(err) && limited === null) {
      this.dropPendingChat();
      this.toast(`Could not start a conversation: ${errorText(err)}`, 'error');
      return;
    }
    if (this.store.state.link.state === 'connected') {
      const wait = err instanceof ApiError && err.retryAfter !== undefined ? err.retryAfter * 1000 : CREATE_RETRY_MS;
      this.createTimer = setTimeout(() => void this.createPending(), wait);
    }
    // chatd answered: its reason, not a lost connection (a proxy's 502-504 has no such body).
    const why = serverUnavailable(err) ?? limited;
    this.setNewChatWaiting(true, why ?? undefined);
    if (why !== null) this.creationRefused(pending, why);
    else if (!pending.told) {
      this.toast('The new conversation will start as soon as the server can be reached.', 'info');
      pending.told = true;
    }
  }

  /**
   * creationRefused says once, in a toast, why chatd cannot take the new
   * chat yet (as ConversationThread.serverWaits does for a send): it is
   * asked again every few seconds, possibly for long; the composer keeps
   * the reason (newChat.serverWait) until it is created or given up.
   */
  private creationRefused(pending: PendingChat, why: string): void {
    if (pending.toldWhy) return;
    pending.toldWhy = true;
    this.toast(`The new conversation has not started yet: ${waitReason(why)} It starts when the server can take it.`, 'info');
  }

  /**
   * cancelNewChat gives up the new chat waiting for the server: nothing is
   * asked again, and its text stays in the composer, editable again, to be
   * sent later or changed. An attempt already on its way may still make the
   * conversation: createPending deletes it then.
   */
  cancelNewChat(): void {
    const pending = this.pendingChat;
    if (!pending) return;
    pending.cancelled = true;
    this.dropPendingChat();
  }

  /**
   * sentFromNewChat empties the new chat's composer of the text its
   * conversation was made for. A text given to that composer while the
   * chat waited (a conversation deleted elsewhere, after it: Drafts.giveBack)
   * stays there alone; one another tab typed instead stays as it is. It is
   * written at once: a page killed right after (a hidden tab, a phone)
   * must not find the sent text in the new chat's composer again.
   */
  private sentFromNewChat(text: string): void {
    const now = this.drafts.get(NEW_CHAT);
    if (now === text) this.drafts.setNow(NEW_CHAT, '');
    else if (now.startsWith(`${text}\n\n`)) this.drafts.setNow(NEW_CHAT, now.slice(text.length + 2));
  }

  /** dropPendingChat forgets the new chat waiting for its conversation. */
  private dropPendingChat(): void {
    clearTimeout(this.createTimer);
    this.pendingChat = null;
    this.setBusy(NEW_CHAT, false);
    this.setNewChatWaiting(false);
  }

  /**
   * setNewChatWaiting marks the new chat waiting, or no longer; serverWait
   * is chatd's reason when it answered not now, kept through the failures
   * that follow (as Thread.serverWait is) until the chat stops waiting.
   */
  private setNewChatWaiting(waiting: boolean, serverWait?: string): void {
    const now = this.store.state.newChat;
    const why = waiting ? (serverWait ?? now.serverWait) : undefined;
    if (!!now.waiting === waiting && now.serverWait === why) return;
    this.store.set((s) => ({ ...s, newChat: { ...s.newChat, waiting, serverWait: why } }));
  }

  private setBusy(key: string, on: boolean): void {
    this.store.set((s) => {
      const busy = { ...s.busy };
      if (on) busy[key] = true;
      else delete busy[key];
      return { ...s, busy };
    });
  }

  /** editAndResend sends a new version of an earlier user message: a new branch. */
  async editAndResend(messageId: string, text: string): Promise<void> {
    const id = this.openId;
    const m = id ? this.store.state.threads[id]?.messages[messageId] : undefined;
    if (!id || !m || !hasVisible(text)) return;
    // parentMessageId "" asks for a new root (an edit of the first message).
    await this.thread(id).send(text, m.parentId, null);
  }

  /**
   * editsShown tells which parents of a conversation have a message shown
   * (ChatView, at each change of the shown path): an edit open under any
   * other (another tab, or an answer, showed another branch) goes to the
   * composer, said in a toast, rather than away with its message.
   */
  editsShown(conversationId: string, parents: ReadonlySet<string>): void {
    if (this.keepEdits(conversationId, conversationId, parents) > 0) {
      this.toast('The message you were editing is no longer shown: your edit is in the message box.', 'info');
    }
  }

  /** keepEdits puts the texts of a conversation's edits not under parents (all without) into the composer of key; it returns how many. */
  private keepEdits(conversationId: string, key: string, parents?: ReadonlySet<string>): number {
    const texts = this.edits.take(conversationId, parents);
    if (texts.length === 0) return 0;
    this.drafts.load(key);
    for (const text of texts) this.drafts.giveBack(key, text);
    return texts.length;
  }

  /** cancelQueued takes a message waiting for the connection back into the composer. */
  cancelQueued(conversationId: string, clientMessageId: string): void {
    this.thread(conversationId).cancelQueued(clientMessageId);
  }

  /** stop cancels the running answer of the open conversation (for every tab). */
  async stop(): Promise<void> {
    if (this.openId) await this.thread(this.openId).stop();
  }

  /** regenerate answers the same user message again, as a new version. */
  async regenerate(messageId: string): Promise<void> {
    if (this.openId) await this.thread(this.openId).regenerate(messageId);
  }

  /** switchVersion shows the previous or next version of a message. */
  switchVersion(messageId: string, dir: -1 | 1): void {
    if (this.openId) this.thread(this.openId).switchVersion(messageId, dir);
  }

  /**
   * earlierVersion shows the version before messageId, its oldest version
   * loaded, once the older pages holding it are loaded (see
   * ConversationThread.earlierVersion, found called just before it is
   * shown): where it then stands, or why none is.
   */
  earlierVersion(messageId: string, found?: () => void): Promise<EarlierVersion> {
    return this.openId ? this.thread(this.openId).earlierVersion(messageId, found) : Promise.resolve('left');
  }

  // ---- drafts ----

  /** draftKey is the composer's key for a conversation id (or a new chat). */
  static draftKey(conversationId: string | null): string {
    return draftKey(conversationId);
  }

  /** draft returns the composer text for a key, loading it from storage once. */
  draft(key: string): string {
    return this.drafts.get(key);
  }

  /** setDraft keeps the composer text in memory now and in localStorage shortly. */
  setDraft(key: string, text: string): void {
    this.drafts.set(key, text);
  }

  /**
   * settingsDraft is the system prompt typed in the settings dialog of a
   * composer key (draftKey) and neither saved nor cancelled: a dialog
   * closed by showing another conversation (Back, the sidebar) keeps it
   * here, as the composer keeps its text, and opened again starts from it.
   * It lasts as long as the session (in memory: a reload forgets it).
   */
  settingsDraft(key: string): string | undefined {
    return this.settingsDrafts.get(key);
  }

  /** setSettingsDraft keeps text as the settings dialog's draft of key; undefined forgets it (saved, cancelled, or typed back as stored). */
  setSettingsDraft(key: string, text: string | undefined): void {
    if (text === undefined) this.settingsDrafts.delete(key);
    else this.settingsDrafts.set(key, text);
  }

  // ---- toasts and debugging ----

  /** toast shows a short message for a few seconds. */
  toast(text: string, kind: 'error' | 'info' = 'info'): void {
    this.toaster.show(text, kind);
  }

  /** toastsClearedThrough is the id of the last toast dropped with a session (Toaster.clearedThrough). */
  get toastsClearedThrough(): number {
    return this.toaster.clearedThrough;
  }

  /** dismissToast hides a toast. */
  dismissToast(id: number): void {
    this.toaster.dismiss(id);
  }

  /**
   * retryLive subscribes again to a conversation whose live updates
   * stopped (the notice's retry). The notice stays until the transport
   * reports the subscribe taken (subscribed), or ends with another refusal.
   */
  retryLive(id: string): void {
    this.connection.transport?.subscribe(id);
  }

  /** retryConnection reconnects now (the status line's retry). */
  retryConnection(): void {
    this.connection.transport?.reconnectNow();
  }

  /** dropConnection cuts the live connection as a network failure would (tests, debugging). */
  dropConnection(): void {
    this.connection.transport?.drop();
  }

  /** transportKind says which transport is in use. */
  transportKind(): TransportKind | null {
    return this.connection.transport?.kind ?? null;
  }
}

/** pause resolves true after ms, or false at once when signal aborts (the app ends) before. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false);
      return;
    }
    const stop = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', stop, { once: true });
  });
}
