// ChatApp is the framework-free heart of the client: it owns the store, the
// REST client and the live transport, turns server frames into state, and
// offers the actions the UI calls. React binds to it in hooks/.

import { ApiClient, ApiError } from './api';
import { saveBlob } from './download';
import { Persist, browserKV, newClientId, type KV } from './persist';
import type { Conversation, ConversationFrame, ServerFrame, User } from './protocol';
import { parseRoute, routePath, type Route } from './router';
import {
  appendPage,
  initialList,
  removeConversation,
  touchConversation,
  upsertConversation,
  type AppState,
} from './state';
import { SSETransport } from './sseTransport';
import { Store } from './store';
import { compareTimes, parseTime } from './time';
import {
  PENDING_PREFIX,
  addPending,
  applyDelta,
  applyDone,
  dropPending,
  leafOf,
  mergeSnapshot,
  newThread,
  resumePoint,
  stepVersion,
  upsertMessage,
  type Thread,
} from './thread';
import type { Transport, TransportHandlers, TransportKind } from './transport';
import { WSTransport } from './ws';

/** ChatAppOptions configure a ChatApp; every field has a browser default. */
export interface ChatAppOptions {
  /** Key-value storage; defaults to localStorage. */
  kv?: KV;
  /** fetch; defaults to the global one. */
  fetch?: typeof fetch;
  /** WebSocket constructor; defaults to the global one. */
  WebSocketImpl?: typeof WebSocket;
  /** Socket URL; defaults to /ws on this origin. */
  socketUrl?: string;
  /** Store publication throttle for deltas; defaults to 50 ms. */
  throttleMs?: number;
}

const NEW = 'new';
const MODEL_PREF = 'chatd.model';
const FALLBACK_FLAG = 'chatd.transport';

/** errorText returns a message fit for the user. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429 && err.retryAfter !== undefined) return `${err.message} (try again in ${err.retryAfter} s)`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** ChatApp is the client's state machine. */
export class ChatApp {
  readonly store: Store<AppState>;
  readonly api: ApiClient;
  private readonly persist: Persist;
  private transport: Transport | null = null;
  private openId: string | null = null;
  private returnTo: string | null = null;
  private listSeq = 0;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private toastSeq = 0;
  private readonly resyncing = new Set<string>();
  private readonly resyncAgain = new Set<string>();
  private readonly draftTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** The updatedAt of the newest server copy of each conversation applied. */
  private readonly conversationAt = new Map<string, string>();
  /** Conversations deleted in this session: a late frame must not bring one back. */
  private readonly deleted = new Set<string>();

  constructor(private readonly opts: ChatAppOptions = {}) {
    this.persist = new Persist(opts.kv ?? browserKV());
    const token = this.persist.token();
    this.store = new Store<AppState>(
      {
        session: { token, user: token ? this.persist.user<User>() : null, notice: null },
        route: { name: 'chat', conversationId: null },
        link: { state: 'connecting', kind: 'ws' },
        models: [],
        newChat: { model: this.persist.get(MODEL_PREF) ?? '', systemPrompt: '' },
        list: initialList,
        threads: {},
        threadErrors: {},
        busy: {},
        drafts: {},
        toasts: [],
      },
      { throttleMs: opts.throttleMs },
    );
    this.api = new ApiClient({
      token: () => this.store.state.session.token,
      onUnauthorized: () => this.expire(),
      fetch: opts.fetch,
    });
  }

  // ---- lifecycle and navigation ----

  /** start reads the URL, connects when signed in and follows history and other tabs. */
  start(): void {
    window.addEventListener('popstate', () => this.applyRoute(parseRoute(location.pathname)));
    window.addEventListener('storage', (e) => this.onStorage(e));
    window.addEventListener('pagehide', () => this.flushDrafts());
    if (this.store.state.session.token) this.startSession();
    this.applyRoute(parseRoute(location.pathname), true);
  }

  /** navigate shows the page at path, adding a history entry unless replace. */
  navigate(path: string, replace = false): void {
    if (location.pathname !== path) {
      if (replace) history.replaceState(null, '', path);
      else history.pushState(null, '', path);
    }
    this.applyRoute(parseRoute(path));
  }

  private applyRoute(route: Route, initial = false): void {
    const signedIn = !!this.store.state.session.token;
    if (route.name === 'chat' && !signedIn) {
      this.returnTo = routePath(route) === '/' ? this.returnTo : routePath(route);
      route = { name: 'login' };
      history.replaceState(null, '', '/login');
    } else if (route.name !== 'chat' && signedIn) {
      route = { name: 'chat', conversationId: null };
      history.replaceState(null, '', '/');
    } else if (initial && location.pathname !== routePath(route)) {
      history.replaceState(null, '', routePath(route));
    }
    this.store.set((s) => ({ ...s, route }));
    if (route.name === 'chat') this.open(route.conversationId);
  }

  private startSession(): void {
    this.connect(this.preferredKind());
    void this.loadModels();
    void this.reloadList();
    void this.api
      .me()
      .then(({ user }) => {
        this.persist.saveSession(this.store.state.session.token ?? '', user);
        this.store.set((s) => ({ ...s, session: { ...s.session, user } }));
      })
      .catch(() => undefined);
  }

  private preferredKind(): TransportKind {
    try {
      return sessionStorage.getItem(FALLBACK_FLAG) === 'sse' || this.persist.get(FALLBACK_FLAG) === 'sse' ? 'sse' : 'ws';
    } catch {
      return 'ws';
    }
  }

  private connect(kind: TransportKind): void {
    this.transport?.stop();
    const handlers: TransportHandlers = {
      frame: (f) => this.onFrame(f),
      status: (link) => this.store.set((s) => ({ ...s, link })),
      reconnected: () => this.onReconnected(),
      unauthorized: () => this.expire(),
      fallback: () => this.fallback(),
      resumePoint: (id) => {
        const t = this.store.state.threads[id];
        return t ? resumePoint(t) : undefined;
      },
      subscribeFailed: (id, code) => this.onSubscribeFailed(id, code),
    };
    this.transport =
      kind === 'ws'
        ? new WSTransport(handlers, {
            token: () => this.store.state.session.token,
            checkAuth: () => this.checkAuth(),
            url: this.opts.socketUrl,
            WebSocketImpl: this.opts.WebSocketImpl,
          })
        : new SSETransport(this.api, handlers, { checkAuth: () => this.checkAuth() });
    this.transport.start();
    if (this.openId) this.transport.subscribe(this.openId);
  }

  private fallback(): void {
    try {
      sessionStorage.setItem(FALLBACK_FLAG, 'sse');
    } catch {
      // remembered for this page only
    }
    this.connect('sse');
  }

  private async checkAuth(): Promise<'ok' | 'unauthorized' | 'offline'> {
    try {
      await this.api.raw('GET', '/api/auth/me', { auth: false });
      return 'ok';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return 'unauthorized';
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) return 'ok';
      return 'offline';
    }
  }

  private onReconnected(): void {
    void this.refreshListHead();
    if (this.openId) void this.loadThread(this.openId);
  }

  private onStorage(e: StorageEvent): void {
    if (e.key !== Persist.tokenKey) return;
    const mine = this.store.state.session.token;
    if (!e.newValue && mine) this.expire('You signed out in another tab.');
    else if (e.newValue && e.newValue !== mine) {
      this.store.set((s) => ({ ...s, session: { token: e.newValue, user: this.persist.user<User>(), notice: null } }));
      this.startSession();
      this.applyRoute(parseRoute(location.pathname));
    }
  }

  // ---- accounts ----

  /** register creates an account and signs in. */
  async register(email: string, password: string, name: string): Promise<void> {
    const r = await this.api.register(email, password, name);
    this.signedIn(r.token, r.user);
  }

  /** login signs in. */
  async login(email: string, password: string): Promise<void> {
    const r = await this.api.login(email, password);
    this.signedIn(r.token, r.user);
  }

  private signedIn(token: string, user: User): void {
    this.persist.saveSession(token, user);
    this.store.set((s) => ({ ...s, session: { token, user, notice: null }, list: initialList, threads: {}, threadErrors: {} }));
    this.startSession();
    const to = this.returnTo ?? '/';
    this.returnTo = null;
    this.navigate(to, true);
  }

  /** logout ends every session of the user (all tabs and devices). */
  async logout(): Promise<void> {
    await this.api.logout().catch(() => undefined);
    this.returnTo = null;
    this.endSession(null);
  }

  /** expire handles a token the server refused: back to sign-in, drafts kept. */
  expire(notice = 'Your session has ended. Sign in again to continue; your unsent text is kept.'): void {
    if (!this.store.state.session.token) return;
    if (this.store.state.route.name === 'chat') this.returnTo = location.pathname;
    this.endSession(notice);
  }

  private endSession(notice: string | null): void {
    this.flushDrafts();
    this.transport?.stop();
    this.transport = null;
    this.openId = null;
    this.conversationAt.clear();
    this.deleted.clear();
    this.persist.clearSession();
    this.store.set((s) => ({
      ...s,
      session: { token: null, user: null, notice },
      list: initialList,
      threads: {},
      threadErrors: {},
      busy: {},
      drafts: {},
    }));
    this.navigate('/login', true);
  }

  // ---- frames ----

  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case 'conversation':
        this.onConversationFrame(f);
        return;
      case 'message':
        this.store.set((s) => {
          const t = s.threads[f.conversationId];
          if (!t) return { ...s, list: touchConversation(s.list, f.conversationId, f.message.createdAt) };
          return {
            ...s,
            threads: { ...s.threads, [t.id]: upsertMessage(t, f.message) },
            list: touchConversation(s.list, f.conversationId, f.message.createdAt),
          };
        });
        return;
      case 'delta': {
        const t = this.store.state.threads[f.conversationId];
        if (!t) return;
        const r = applyDelta(t, f);
        if (r.result === 'applied') this.store.setLazy((s) => ({ ...s, threads: { ...s.threads, [t.id]: r.thread } }));
        else if (r.result === 'gap') void this.resync(t.id);
        return;
      }
      case 'done': {
        const t = this.store.state.threads[f.conversationId];
        if (t) {
          const r = applyDone(t, f);
          this.store.set((s) => ({ ...s, threads: { ...s.threads, [t.id]: r.thread } }));
          if (r.result === 'gap') void this.resync(t.id);
        }
        return;
      }
      case 'error':
        if (f.id === undefined) this.toast(f.message || f.code, 'error');
        return;
      default:
        return;
    }
  }

  private onConversationFrame(f: ConversationFrame): void {
    const c = f.conversation;
    if (f.action !== 'deleted' && (this.deleted.has(c.id) || this.isStale(c))) return;
    if (f.action === 'deleted') {
      this.forget(c.id);
      if (this.openId === c.id) {
        this.toast('This conversation was deleted.', 'info');
        this.navigate('/', true);
      }
      return;
    }
    // Created or updated (new activity, a title, a rename): the frame carries
    // the whole conversation, so one not loaded in the sidebar yet (an older
    // one that just got a message) is added where it now sorts: the top.
    this.store.set((s) => {
      const t = s.threads[c.id];
      return {
        ...s,
        list: upsertConversation(s.list, c),
        threads: t ? { ...s.threads, [c.id]: { ...t, conversation: c } } : s.threads,
      };
    });
  }

  private onSubscribeFailed(id: string, code: string): void {
    if (code === 'bad_seq') void this.resync(id);
    else if (code === 'not_found') {
      this.store.set((s) => ({ ...s, threadErrors: { ...s.threadErrors, [id]: 'This conversation does not exist or was deleted.' } }));
    }
  }

  /** resync reloads a conversation after a gap and resumes its answer from the applied seq. */
  private async resync(id: string): Promise<void> {
    if (this.resyncing.has(id)) {
      this.resyncAgain.add(id);
      return;
    }
    this.resyncing.add(id);
    try {
      await this.loadThread(id);
      this.transport?.resubscribe(id);
    } finally {
      this.resyncing.delete(id);
      if (this.resyncAgain.delete(id)) setTimeout(() => void this.resync(id), 500);
    }
  }

  // ---- conversations ----

  private open(id: string | null): void {
    if (this.openId === id) return;
    if (this.openId) this.transport?.unsubscribe(this.openId);
    this.openId = id;
    if (!id) {
      this.loadDraft(NEW);
      return;
    }
    if (!this.store.state.threads[id]) {
      this.store.set((s) => ({ ...s, threads: { ...s.threads, [id]: newThread(id) } }));
    }
    this.loadDraft(id);
    this.transport?.subscribe(id);
    void this.loadThread(id);
  }

  /** loadThread fetches a conversation and merges it into what is known. */
  async loadThread(id: string): Promise<void> {
    try {
      const snap = await this.api.conversation(id);
      this.store.set((s) => {
        const t = s.threads[id] ?? newThread(id);
        const errors = { ...s.threadErrors };
        delete errors[id];
        return {
          ...s,
          threads: { ...s.threads, [id]: mergeSnapshot(t, snap.conversation, snap.messages) },
          threadErrors: errors,
          list: upsertConversation(s.list, snap.conversation, false),
        };
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      const text =
        err instanceof ApiError && (err.status === 404 || err.status === 400)
          ? 'This conversation does not exist or was deleted.'
          : `Could not load the conversation: ${errorText(err)}`;
      this.store.set((s) => ({ ...s, threadErrors: { ...s.threadErrors, [id]: text } }));
    }
  }

  /** reloadList fetches the first page of the list for the applied search. */
  async reloadList(): Promise<void> {
    const seq = ++this.listSeq;
    const query = this.store.state.list.appliedQuery;
    this.store.set((s) => ({ ...s, list: { ...s.list, loading: true, error: null } }));
    try {
      const page = await this.api.listConversations({ query });
      if (seq !== this.listSeq) return;
      this.store.set((s) => ({ ...s, list: appendPage({ ...s.list, items: [] }, page.conversations, page.nextCursor) }));
    } catch (err) {
      if (seq !== this.listSeq) return;
      this.store.set((s) => ({ ...s, list: { ...s.list, loading: false, error: errorText(err) } }));
    }
  }

  /** loadMore fetches the next page (infinite scroll). */
  async loadMore(): Promise<void> {
    const { list } = this.store.state;
    if (list.loading || !list.nextCursor) return;
    const seq = this.listSeq;
    this.store.set((s) => ({ ...s, list: { ...s.list, loading: true } }));
    try {
      const page = await this.api.listConversations({ query: list.appliedQuery, cursor: list.nextCursor });
      if (seq !== this.listSeq) return;
      this.store.set((s) => ({ ...s, list: appendPage(s.list, page.conversations, page.nextCursor) }));
    } catch (err) {
      if (seq !== this.listSeq) return;
      this.store.set((s) => ({ ...s, list: { ...s.list, loading: false, error: errorText(err) } }));
    }
  }

  private async refreshListHead(): Promise<void> {
    try {
      const page = await this.api.listConversations({ query: this.store.state.list.appliedQuery });
      this.store.set((s) => {
        let list = s.list;
        const threads = { ...s.threads };
        for (const c of page.conversations) {
          list = upsertConversation(list, c);
          const t = threads[c.id];
          if (t) threads[c.id] = { ...t, conversation: c };
        }
        return { ...s, list, threads };
      });
    } catch {
      // the next refresh will do
    }
  }

  /** setQuery changes the search text; the server is asked after a pause in typing. */
  setQuery(query: string): void {
    this.store.set((s) => ({ ...s, list: { ...s.list, query } }));
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      const applied = query.trim();
      if (applied === this.store.state.list.appliedQuery && this.store.state.list.loaded) return;
      this.store.set((s) => ({ ...s, list: { ...s.list, appliedQuery: applied } }));
      void this.reloadList();
    }, 300);
  }

  /** rename changes a conversation's title. */
  async rename(id: string, title: string): Promise<void> {
    await this.patch(id, { title: title.trim() });
  }

  /** remove deletes a conversation and its messages. */
  async remove(id: string): Promise<void> {
    try {
      await this.api.deleteConversation(id);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        this.toast(`Could not delete: ${errorText(err)}`, 'error');
        return;
      }
    }
    this.forget(id);
    if (this.openId === id) this.navigate('/', true);
  }

  private forget(id: string): void {
    this.conversationAt.delete(id);
    this.deleted.add(id);
    this.store.set((s) => {
      const threads = { ...s.threads };
      delete threads[id];
      return { ...s, list: removeConversation(s.list, id), threads };
    });
  }

  private async patch(id: string, p: { title?: string; model?: string; systemPrompt?: string }): Promise<boolean> {
    try {
      const { conversation } = await this.api.updateConversation(id, p);
      this.applyConversation(conversation);
      return true;
    } catch (err) {
      this.toast(`Could not save: ${errorText(err)}`, 'error');
      return false;
    }
  }

  /**
   * isStale says whether c is older than a copy already applied, and
   * remembers it otherwise. Over SSE the same frame can come on two streams
   * (a POST's and GET /api/events), one lagging: a late copy must not undo a
   * rename or a title.
   */
  private isStale(c: Conversation): boolean {
    if (!parseTime(c.updatedAt)) return false;
    const known = this.conversationAt.get(c.id);
    if (known !== undefined && compareTimes(c.updatedAt, known) < 0) return true;
    this.conversationAt.set(c.id, c.updatedAt);
    return false;
  }

  private applyConversation(c: Conversation): void {
    if (this.isStale(c)) return;
    this.store.set((s) => {
      const t = s.threads[c.id];
      return {
        ...s,
        list: upsertConversation(s.list, c),
        threads: t ? { ...s.threads, [c.id]: { ...t, conversation: c } } : s.threads,
      };
    });
  }

  /** setModel picks the model of the open conversation, or of the next new chat. */
  async setModel(model: string): Promise<void> {
    this.persist.set(MODEL_PREF, model);
    if (this.openId && this.store.state.threads[this.openId]?.conversation) {
      await this.patch(this.openId, { model });
    } else {
      this.store.set((s) => ({ ...s, newChat: { ...s.newChat, model } }));
    }
  }

  /** setSystemPrompt saves the system prompt of the open conversation (or of the next new chat). */
  async setSystemPrompt(systemPrompt: string): Promise<boolean> {
    if (this.openId && this.store.state.threads[this.openId]?.conversation) {
      return this.patch(this.openId, { systemPrompt });
    }
    this.store.set((s) => ({ ...s, newChat: { ...s.newChat, systemPrompt } }));
    return true;
  }

  private async loadModels(): Promise<void> {
    try {
      const { models } = await this.api.models();
      this.store.set((s) => {
        const known = models.some((m) => m.id === s.newChat.model);
        const fallback = models.find((m) => m.default)?.id ?? models[0]?.id ?? '';
        return { ...s, models, newChat: { ...s.newChat, model: known ? s.newChat.model : fallback } };
      });
    } catch {
      // the picker stays empty; the server's default model is used
    }
  }

  /** exportConversation downloads the conversation as Markdown or JSON. */
  async exportConversation(id: string, format: 'markdown' | 'json'): Promise<void> {
    try {
      const { blob, filename } = await this.api.exportConversation(id, format);
      saveBlob(blob, filename);
    } catch (err) {
      this.toast(`Export failed: ${errorText(err)}`, 'error');
    }
  }

  // ---- chatting ----

  /** send posts the composer's text to the open conversation, creating one for a new chat. */
  async send(text: string): Promise<void> {
    if (!text.trim() || !this.transport) return;
    let id = this.openId;
    let draftKey = id ?? NEW;
    if (!id) {
      id = await this.createForSend();
      if (!id) return;
      this.setDraft(NEW, '');
      draftKey = id;
    }
    const t = this.store.state.threads[id];
    const leaf = t ? leafOf(t) : undefined;
    const parent = leaf && !leaf.id.startsWith(PENDING_PREFIX) ? leaf.id : undefined;
    await this.submit(id, text, parent, draftKey);
  }

  private async createForSend(): Promise<string | null> {
    const { model, systemPrompt } = this.store.state.newChat;
    this.setBusy(NEW, true);
    try {
      const { conversation } = await this.api.createConversation({
        ...(model ? { model } : {}),
        ...(systemPrompt ? { systemPrompt } : {}),
      });
      const t: Thread = { ...newThread(conversation.id), conversation, loaded: true };
      this.store.set((s) => ({
        ...s,
        threads: { ...s.threads, [t.id]: t },
        list: upsertConversation(s.list, conversation),
        newChat: { ...s.newChat, systemPrompt: '' },
      }));
      this.navigate(`/c/${conversation.id}`);
      return conversation.id;
    } catch (err) {
      this.toast(`Could not start a conversation: ${errorText(err)}`, 'error');
      return null;
    } finally {
      this.setBusy(NEW, false);
    }
  }

  /** editAndResend sends a new version of an earlier user message: a new branch. */
  async editAndResend(messageId: string, text: string): Promise<void> {
    const id = this.openId;
    const m = id ? this.store.state.threads[id]?.messages[messageId] : undefined;
    if (!id || !m || !text.trim()) return;
    // parentMessageId "" asks for a new root (an edit of the first message).
    await this.submit(id, text, m.parentId, null);
  }

  private async submit(id: string, content: string, parentMessageId: string | undefined, draftKey: string | null): Promise<void> {
    const transport = this.transport;
    if (!transport) return;
    const cmid = newClientId();
    if (draftKey) this.holdDraft(draftKey, content);
    this.store.set((s) => ({
      ...s,
      threads: { ...s.threads, [id]: addPending(s.threads[id] ?? newThread(id), cmid, parentMessageId ?? '', content) },
      busy: { ...s.busy, [id]: true },
      drafts: draftKey ? { ...s.drafts, [draftKey]: '' } : s.drafts,
    }));
    try {
      await transport.send({ conversationId: id, content, clientMessageId: cmid, ...(parentMessageId !== undefined ? { parentMessageId } : {}) });
      if (draftKey) this.persist.saveDraft(draftKey, '');
    } catch (err) {
      this.store.set((s) => {
        const t = s.threads[id];
        return { ...s, threads: t ? { ...s.threads, [id]: dropPending(t, cmid) } : s.threads };
      });
      if (draftKey && !this.store.state.drafts[draftKey]) this.setDraft(draftKey, content);
      this.toast(`Message not sent: ${errorText(err)}`, 'error');
    } finally {
      this.setBusy(id, false);
    }
  }

  /** stop cancels the running answer of the open conversation (for every tab). */
  async stop(): Promise<void> {
    const id = this.openId;
    if (!id || !this.transport) return;
    try {
      await this.transport.cancel(id);
    } catch (err) {
      this.toast(`Could not stop: ${errorText(err)}`, 'error');
    }
  }

  /** regenerate answers the same user message again, as a new version. */
  async regenerate(messageId: string): Promise<void> {
    const id = this.openId;
    if (!id || !this.transport) return;
    this.setBusy(id, true);
    try {
      await this.transport.regenerate({ conversationId: id, messageId });
    } catch (err) {
      this.toast(`Could not regenerate: ${errorText(err)}`, 'error');
    } finally {
      this.setBusy(id, false);
    }
  }

  /** switchVersion shows the previous or next version of a message. */
  switchVersion(messageId: string, dir: -1 | 1): void {
    const id = this.openId;
    if (!id) return;
    this.store.set((s) => {
      const t = s.threads[id];
      return t ? { ...s, threads: { ...s.threads, [id]: stepVersion(t, messageId, dir) } } : s;
    });
  }

  private setBusy(key: string, on: boolean): void {
    this.store.set((s) => {
      const busy = { ...s.busy };
      if (on) busy[key] = true;
      else delete busy[key];
      return { ...s, busy };
    });
  }

  // ---- drafts ----

  /** draftKey is the composer's key for a conversation id (or a new chat). */
  static draftKey(conversationId: string | null): string {
    return conversationId ?? NEW;
  }

  private loadDraft(key: string): void {
    if (this.store.state.drafts[key] !== undefined) return;
    const text = this.persist.draft(key);
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text } }));
  }

  /** draft returns the composer text for a key, loading it from storage once. */
  draft(key: string): string {
    const known = this.store.state.drafts[key];
    if (known !== undefined) return known;
    return this.persist.draft(key);
  }

  /** setDraft keeps the composer text in memory now and in localStorage shortly. */
  setDraft(key: string, text: string): void {
    this.store.set((s) => ({ ...s, drafts: { ...s.drafts, [key]: text } }));
    clearTimeout(this.draftTimers.get(key));
    this.draftTimers.set(
      key,
      setTimeout(() => {
        this.draftTimers.delete(key);
        this.persist.saveDraft(key, text);
      }, 200),
    );
  }

  /** holdDraft cancels a pending save and stores the text being sent, until the server has it. */
  private holdDraft(key: string, text: string): void {
    clearTimeout(this.draftTimers.get(key));
    this.draftTimers.delete(key);
    this.persist.saveDraft(key, text);
  }

  private flushDrafts(): void {
    for (const [key, timer] of this.draftTimers) {
      clearTimeout(timer);
      this.persist.saveDraft(key, this.store.state.drafts[key] ?? '');
    }
    this.draftTimers.clear();
  }

  // ---- toasts and debugging ----

  /** toast shows a short message for a few seconds. */
  toast(text: string, kind: 'error' | 'info' = 'info'): void {
    const id = ++this.toastSeq;
    this.store.set((s) => ({ ...s, toasts: [...s.toasts.slice(-3), { id, text, kind }] }));
    setTimeout(() => this.dismissToast(id), kind === 'error' ? 8000 : 4000);
  }

  /** dismissToast hides a toast. */
  dismissToast(id: number): void {
    this.store.set((s) => ({ ...s, toasts: s.toasts.filter((t) => t.id !== id) }));
  }

  /** retryConnection reconnects now (the status line's retry). */
  retryConnection(): void {
    this.transport?.reconnectNow();
  }

  /** dropConnection cuts the live connection as a network failure would (tests, debugging). */
  dropConnection(): void {
    this.transport?.drop();
  }

  /** transportKind says which transport is in use. */
  transportKind(): TransportKind | null {
    return this.transport?.kind ?? null;
  }
}
