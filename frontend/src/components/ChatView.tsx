// The open conversation: header (title, model, system prompt, export), the
// shown path of messages, and the composer.

import { useCallback, useContext, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { ComposerBox, focusInstead, useFocusAfterGone, useFocusInsteadWhenGone } from '../hooks/composerBox';
import { ContentGrew } from '../hooks/follow';
import { useHeightVar } from '../hooks/useHeightVar';
import { VersionFocus, VersionFocusContext } from '../hooks/versionFocus';
import { useThreadView } from '../hooks/useThreadView';
import { ChatApp, NEW_CHAT_STARTING, SETTINGS_NOT_LOADED } from '../lib/chat';
import type { Params } from '../lib/protocol';
import { isQueued, streamingAnswer, topParent } from '../lib/thread';
import { AnswerAnnouncer } from './AnswerAnnouncer';
import { Composer } from './Composer';
import { Icon } from './icons';
import { MessageItem } from './MessageItem';
import { currentModel, modelLabel, newChatModel } from '../lib/models';
import { modelsThatReasoned, reasons } from '../lib/reasoning';
import { DemoNotice, ModelPicker, PickUnavailableNotice } from './ModelPicker';
import { SettingsDialog } from './SettingsDialog';
import { RetryButton, linkWords } from './StatusLine';

/** ChatViewProps: the conversation shown (null: a new chat), the drawer's opener, and whether the open drawer covers the view (inert). */
interface ChatViewProps {
  conversationId: string | null;
  onOpenSidebar: () => void;
  inert?: boolean;
}

/** ChatView renders one conversation, or a new chat when conversationId is null. */
export function ChatView({ conversationId, onOpenSidebar, inert = false }: ChatViewProps) {
  const app = useApp();
  const thread = useAppState((s) => (conversationId ? s.threads[conversationId] : undefined));
  const loadError = useAppState((s) => (conversationId ? s.threadErrors[conversationId] : undefined));
  const models = useAppState((s) => s.models);
  const upstreams = useAppState((s) => s.upstreams);
  const newChat = useAppState((s) => s.newChat);
  const picked = useAppState((s) => (conversationId ? s.modelPicks[conversationId] : undefined));
  const busy = useAppState((s) => !!s.busy[ChatApp.draftKey(conversationId)]);
  const linkUp = useAppState((s) => s.link.state === 'connected');
  const offline = useAppState((s) => s.link.state === 'offline');
  const retryOnly = useAppState((s) => s.link.state === 'offline' && !!s.link.retryOnly);
  const shown = useThreadView(thread);
  const messages = thread?.messages;
  const reasoners = useMemo(() => modelsThatReasoned(Object.values(messages ?? {})), [messages]);
  const [promptOpen, setPromptOpen] = useState(false);
  // The settings dialog belongs to the conversation it was opened on: another
  // shown meanwhile (Back, a swipe back on a phone) closes it, where it stayed
  // with the first one's settings and saved them onto the new one.
  const [promptOf, setPromptOf] = useState(conversationId);
  if (promptOf !== conversationId) {
    setPromptOf(conversationId);
    setPromptOpen(false);
  }
  const composerBox = useRef<HTMLTextAreaElement>(null);
  const composerWrap = useRef<HTMLDivElement>(null);
  useHeightVar(composerWrap, '--composer-height'); // a narrow screen's toasts stand above it
  const [versionFocus] = useState(() => new VersionFocus());

  const conversation = thread?.conversation ?? null;
  // A conversation not loaded (loading, or failed to) has no settings to show:
  // its dialog would show, and save, the new chat's. Nor a model: the picker
  // would show the new chat's, and a pick made there go to this conversation.
  const settingsLocked = !!conversationId && !conversation;
  // A new chat sent and waiting for its conversation (busy: its composer is
  // read-only) is made with the model and settings it was sent with: they
  // are read-only too, saying why, until it has started or is cancelled.
  const starting = !conversationId && busy;
  const settingsWhy = settingsLocked ? SETTINGS_NOT_LOADED : starting ? NEW_CHAT_STARTING : undefined;
  const running = thread ? streamingAnswer(thread) : undefined;
  // The new chat's pick, when the list lacks it, gives way to the default (said under the header): the server refuses it.
  const model = conversationId ? picked || conversation?.model || newChat.model : newChatModel(models, newChat.model);
  const notOffered = !conversationId && model !== newChat.model ? newChat.model : '';
  const modelName = (id: string | undefined) => {
    const m = models.find((x) => x.id === (id || model));
    return m ? modelLabel(m) : id || '';
  };
  const title = conversation ? conversation.title || 'New chat' : 'New chat';
  const demo = !settingsLocked && !!currentModel(models, model)?.demo;
  const queued = (thread?.queued.length ?? 0) > 0;

  // The tab shows the conversation's title while it is shown, and "chatd"
  // once it is not: the view leaving (a sign-out, a session or an account
  // ended: the sign-in page) takes the title with it, which stayed in the
  // sign-in page's tab and its history entry on a shared computer.
  useEffect(() => {
    document.title = conversation?.title ? `${conversation.title} · chatd` : 'chatd';
    return () => {
      document.title = 'chatd';
    };
  }, [conversation?.title]);

  // An edit box open on a message no longer shown gives its text to the composer.
  useEffect(() => {
    if (conversationId) app.editsShown(conversationId, new Set(shown.filter((s) => s.message.role === 'user').map((s) => s.message.parentId)));
  }, [app, conversationId, shown]);

  const settingsKey = ChatApp.draftKey(conversationId);
  // Cancel, Escape and a save forget what was typed; a close by navigation (above) keeps it.
  const closePrompt = useCallback(() => {
    app.setSettingsDraft(settingsKey, undefined);
    setPromptOpen(false);
  }, [app, settingsKey]);
  const savePrompt = async (text: string, params: Params) => {
    const refused = await app.saveSettings(text, params);
    // Saved after a close by navigation: the draft kept is saved, unless typed on since.
    if (!refused && app.settingsDraft(settingsKey) === text) app.setSettingsDraft(settingsKey, undefined);
    return refused;
  };
  const loadOlder = useCallback(() => {
    if (conversationId) void app.loadOlder(conversationId);
  }, [app, conversationId]);

  return (
    <ComposerBox.Provider value={composerBox}>
      <VersionFocusContext.Provider value={versionFocus}>
        <main className="chat" aria-label="Conversation" inert={inert || undefined}>
          <header className="chat-head">
            <button type="button" className="icon only-narrow" aria-label="Open conversations" title="Conversations" onClick={onOpenSidebar}>
              <Icon name="menu" />
            </button>
            <h1 className="chat-title" title={title} dir="auto">
              {title}
            </h1>
            <div className="chat-tools">
              {settingsLocked ? (
                models.length > 0 && <ModelNotLoaded failed={!!loadError} />
              ) : (
                <ModelPicker models={models} upstreams={upstreams} value={model} onChange={(id) => void app.setModel(id)} locked={starting ? NEW_CHAT_STARTING : undefined} />
              )}
              <button
                type="button"
                className="icon"
                aria-label="System prompt and parameters"
                title={settingsWhy ?? 'System prompt and parameters'}
                disabled={settingsWhy !== undefined}
                onClick={() => setPromptOpen(true)}
              >
                <Icon name="settings" />
              </button>
              {conversationId && conversation && <ExportMenu id={conversationId} />}
            </div>
          </header>
          {demo && <DemoNotice />}
          {notOffered && <PickUnavailableNotice id={notOffered} />}
          {promptOpen && settingsWhy === undefined && (
            <SettingsDialog
              systemPrompt={conversation ? conversation.systemPrompt : newChat.systemPrompt}
              params={conversation ? conversation.params : newChat.params}
              model={currentModel(models, model)}
              onSave={savePrompt}
              onClose={closePrompt}
              draft={app.settingsDraft(settingsKey)}
              onDraft={(text) => app.setSettingsDraft(settingsKey, text)}
              onRefusedAfterClose={(r) => app.toast(`System prompt and parameters not saved: ${r.text}`, 'error')}
            />
          )}
          <MessageList
            conversationId={conversationId}
            loading={!!conversationId && !thread?.loaded && !loadError}
            firstId={shown[0]?.message.id}
            hasMore={!!thread?.hasMore && !loadError}
            pathLoaded={!thread || topParent(thread) === ''}
            loadingOlder={!!thread?.loadingOlder}
            onNearTop={loadOlder}
          >
            {loadError ? (
              <div className="empty" role="alert">
                <p>{loadError}</p>
                {conversationId && (
                  <button
                    type="button"
                    onClick={(e) => {
                      // The button goes as the load starts: the focus goes to the list, busy while it loads.
                      e.currentTarget.closest<HTMLElement>('.messages')?.focus();
                      void app.loadThread(conversationId);
                    }}
                  >
                    Try again
                  </button>
                )}
              </div>
            ) : shown.length === 0 && (!conversationId || thread?.loaded) ? (
              <div className="empty">
                <h2>How can I help?</h2>
                <p className="hint">Answers appear as they are written. Markdown, code and math are rendered.</p>
              </div>
            ) : (
              shown.map((s) => (
                <MessageItem
                  key={s.message.id}
                  message={s.message}
                  version={s.version}
                  versions={s.versions}
                  moreVersions={s.moreVersions}
                  locked={!!running || busy || queued}
                  modelName={modelName(s.message.model)}
                  queued={!!thread && isQueued(thread, s.message.id)}
                  linkUp={linkUp}
                  offline={offline}
                  retryOnly={retryOnly}
                  unconfirmed={!!thread?.unconfirmed[s.message.id]}
                  unsaved={!!thread?.unsaved[s.message.id]}
                  thinking={thread?.thinking[s.message.id]}
                  reasoner={reasons(s.message.model || model, reasoners, models)}
                />
              ))
            )}
          </MessageList>
          <div className="composer-wrap" ref={composerWrap}>
            <OfflineNotice />
            <LiveNotice conversationId={conversationId} />
            <Composer draftKey={ChatApp.draftKey(conversationId)} streaming={!!running} busy={busy} queued={queued} serverWait={!linkUp ? undefined : conversationId ? thread?.serverWait : newChat.serverWait} />
            <p className="fineprint">Answers can be wrong. Check important information.</p>
          </div>
        </main>
      </VersionFocusContext.Provider>
    </ComposerBox.Provider>
  );
}

/** MODEL_NOT_LOADED is why the model of a conversation not loaded cannot be picked (ChatView). */
export const MODEL_NOT_LOADED = 'The conversation has not loaded yet: its model can be changed once it has.';

/**
 * ModelNotLoaded stands in the model picker's place while the open
 * conversation is not loaded (loading, or failed to): the picker showed the
 * new chat's model there, and a pick made on it went to this conversation.
 * Disabled, as the settings button is then, its title saying why.
 */
function ModelNotLoaded({ failed }: { failed: boolean }) {
  return (
    <select className="model-picker" aria-label="Model" disabled title={MODEL_NOT_LOADED}>
      <option>{failed ? 'Model unknown' : 'Loading…'}</option>
    </select>
  );
}

/**
 * OfflineNotice says, while the link is offline (retried in the background
 * when the server could not be reached, not after a close that ends the
 * retries), so with a Retry. The sidebar's status line says it too, but
 * on a narrow screen the closed sidebar is hidden, so this one is shown only
 * there (app.css). Neither is a live region: LinkAnnouncer (StatusLine.tsx)
 * announces it once, whether the drawer is open or not.
 */
export function OfflineNotice() {
  const link = useAppState((s) => s.link);
  return (
    <div className="offline-notice-region">
      {link.state === 'offline' && (
        <p className="notice offline-notice">
          {linkWords(link)}{' '}
          <RetryButton />
        </p>
      )}
    </div>
  );
}

/**
 * ChatAnnouncements are the open conversation's live regions that must be
 * heard while a phone's drawer covers the chat: an answer ended
 * (AnswerAnnouncer) and its live updates stopped (LiveNotice's words).
 * ChatLayout renders them outside the chat, beside LinkAnnouncer: the chat
 * is inert then, and browsers keep what is inert from assistive
 * technologies, live regions included.
 */
export function ChatAnnouncements({ conversationId }: { conversationId: string | null }) {
  const thread = useAppState((s) => (conversationId ? s.threads[conversationId] : undefined));
  const reason = useAppState((s) => (conversationId ? s.liveMissing[conversationId] : undefined));
  return (
    <>
      <AnswerAnnouncer key={conversationId ?? ''} thread={thread} />
      {/* Present, empty while all is well: the notice is announced once when it appears (politely), not again while it stays. */}
      <div className="sr-only live-announcer" role="status">
        {conversationId && reason !== undefined && liveWords(reason)}
      </div>
    </>
  );
}

/** liveWords says that a conversation's live updates stopped, and why. */
function liveWords(reason: string): string {
  return `Live updates of this conversation stopped (${reason}): new messages and answers may be missing here.`;
}

/**
 * LiveNotice shows, for as long as it lasts, that the conversation's live
 * updates stopped (a subscribe refused for good), with a retry. It is not
 * a live region: ChatAnnouncements says it, heard with the drawer open too.
 */
export function LiveNotice({ conversationId }: { conversationId: string | null }) {
  const app = useApp();
  const reason = useAppState((s) => (conversationId ? s.liveMissing[conversationId] : undefined));
  return (
    <div className="live-notice-region">
      {conversationId && reason !== undefined && (
        <p className="notice live-notice">
          {liveWords(reason)}{' '}
          <LiveRetry onRetry={() => app.retryLive(conversationId)} />
        </p>
      )}
    </div>
  );
}

/**
 * LiveRetry subscribes again. Gone with the notice once that worked, it
 * hands its focus to the message box (focusInstead, as RetryButton), where
 * it fell to the page.
 */
function LiveRetry({ onRetry }: { onRetry: () => void }) {
  const ref = useRef<HTMLButtonElement>(null);
  useFocusInsteadWhenGone(ref);
  return (
    <button ref={ref} type="button" className="link-button" onClick={onRetry}>
      Retry
    </button>
  );
}

/** MessageListProps: what the list shows and how it asks for older messages. */
interface MessageListProps {
  conversationId: string | null;
  loading: boolean;
  /** The first shown message: when older ones are put above it, the view stays where it was. */
  firstId: string | undefined;
  /** Older messages are on the server. */
  hasMore: boolean;
  /**
   * The path shown runs from the conversation's first message: the older
   * pages hold other versions' messages only, not asked for by themselves.
   */
  pathLoaded: boolean;
  loadingOlder: boolean;
  onNearTop: () => void;
  children: React.ReactNode;
}

/**
 * MessageList scrolls with a growing answer while the reader follows it
 * (also when the answer's markdown grows after the list rendered), and asks
 * for older messages when the reader nears the top, keeping what is on
 * screen in place when they arrive. Any scroll up by the reader (a key, a
 * wheel or trackpad step, a finger, the scroll bar) stops the following at
 * once, even a few pixels from the bottom; scrolling back near the bottom,
 * or "Scroll to the latest message", resumes it.
 */
function MessageList({ conversationId, loading, firstId, hasMore, pathLoaded, loadingOlder, onNearTop, children }: MessageListProps) {
  const ref = useRef<HTMLDivElement>(null);
  const composerBox = useContext(ComposerBox);
  const stick = useRef(true);
  // The scroll position the list last put the view at, or saw in a scroll
  // event (null: none yet): a position above it is the reader going up.
  const seen = useRef<number | null>(null);
  const [away, setAway] = useState(false);
  // The first message shown, where it stood in the content and where the
  // view was, as of the last pin or scroll: when older messages are put
  // above it, the view moves by as much as it did.
  const before = useRef<{ firstId: string | undefined; offset: number | null; top: number }>({ firstId: undefined, offset: null, top: 0 });
  const shownFirst = useRef(firstId);
  // The list rendered, or an answer's markdown grew, since the last pin.
  const grew = useRef(false);
  // The reader pressed in the list (a click, a key) since the last pin.
  const pressed = useRef(false);
  const inner = useRef<HTMLDivElement>(null);

  useLayoutEffect(() => {
    stick.current = true;
    seen.current = null;
    setAway(false);
  }, [conversationId]);

  // leave stops the following: the reader went up.
  const leave = useCallback(() => {
    stick.current = false;
    setAway(true);
  }, []);

  // note records where the view and the first message are (see before).
  const note = useCallback((el: HTMLElement) => {
    const id = shownFirst.current;
    before.current = { firstId: id, offset: id ? offsetIn(el, id) : null, top: el.scrollTop };
  }, []);

  // pin keeps a following reader at the bottom, unless the view moved up
  // since the list last put it there (a scroll whose event has not come yet:
  // going down again would undo the reader's step, measured in Chromium as
  // 3 px up, then 0 px from the bottom at the next update).
  const pin = useCallback(() => {
    const el = ref.current;
    grew.current = false;
    pressed.current = false;
    if (!el || !stick.current) return;
    if (wentUp(el, seen.current)) leave();
    else {
      el.scrollTop = el.scrollHeight;
      seen.current = el.scrollTop;
    }
    note(el);
  }, [leave, note]);

  // A render reads no layout while the reader follows: the list's resize
  // observer pins once the frame's layout is done (at most once a frame,
  // however many renders and markdown updates came), but for a list whose
  // content was replaced (another conversation, older messages), pinned
  // at once. Older messages put above a reader away from the bottom keep
  // the same message under the eye.
  useLayoutEffect(() => {
    shownFirst.current = firstId;
    const el = ref.current;
    if (!el) return;
    const prev = before.current;
    const replaced = firstId !== prev.firstId;
    if (stick.current) {
      grew.current = true;
      if (replaced || typeof ResizeObserver === 'undefined') pin();
      return;
    }
    if (!replaced) return;
    const now = prev.firstId && prev.offset !== null ? offsetIn(el, prev.firstId) : null;
    if (now !== null && prev.offset !== null) {
      el.scrollTop = prev.top + (now - prev.offset);
      seen.current = el.scrollTop;
    }
    note(el);
  });

  // The list follows content that changes size after it rendered (a
  // markdown body renders from a deferred value, after the layout effect
  // above: without this, the text of the last publication before an
  // answer's end, all that streamed while a background tab's timers were
  // held, grew below the view; a message laid out once on screen, its
  // height estimated before: app.css), and the list's own changes of size
  // (the composer grows, the window is resized). A section the reader
  // opens (Show more, Thinking) does not move the view: after a press in
  // the list, only a render or the list's own size pins.
  const contentGrew = useCallback(() => {
    grew.current = true;
  }, []);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    // (entries defaults for the stand-ins of tests that call it bare.)
    const resized = new ResizeObserver((entries: readonly ResizeObserverEntry[] = []) => {
      if (grew.current || !pressed.current || entries.some((e) => e.target === el)) pin();
    });
    resized.observe(el);
    if (inner.current) resized.observe(inner.current);
    return () => resized.disconnect();
  }, [pin]);

  // A key that scrolls up stops the following before the scroll it starts
  // (smooth: its first step comes a frame later) is undone by an update.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = ref.current;
      if (el && stick.current && el.scrollTop > 0 && scrollsUp(e, el)) leave();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [leave]);

  useEffect(() => {
    // A first page shorter than the screen cannot be scrolled: ask at once,
    // while the path shown lacks its start (once it runs from the first
    // message, the rest is other versions: it loaded page after page, the
    // view never changing).
    const el = ref.current;
    if (el && hasMore && !pathLoaded && !loadingOlder && !loading && el.scrollHeight <= el.clientHeight + 200) onNearTop();
  }, [hasMore, pathLoaded, loadingOlder, loading, firstId, onNearTop]);

  // The button had the focus when the last older messages came (no more
  // to load: it goes): the focus goes to the list, at its top, not the page.
  const olderButton = useRef<HTMLButtonElement>(null);
  useFocusAfterGone(olderButton, () => ref.current?.focus());

  function onScroll() {
    const el = ref.current;
    if (!el) return;
    const gap = bottomGap(el);
    if (gap <= AT_BOTTOM_PX) stick.current = true;
    else if (wentUp(el, seen.current)) stick.current = false;
    else if (seen.current !== null && el.scrollTop > seen.current && gap < REATTACH_PX) stick.current = true; // back down near the bottom
    seen.current = el.scrollTop;
    setAway(!stick.current);
    note(el);
    if (hasMore && !loadingOlder && el.scrollTop < 300) onNearTop();
  }

  // A wheel or trackpad step up stops the following at once (the scroll
  // event comes a frame later), unless a box inside the list takes it.
  function onWheel(e: React.WheelEvent<HTMLDivElement>) {
    const el = ref.current;
    if (el && stick.current && e.deltaY < 0 && el.scrollTop > 0 && !innerScrollsUp(e.target, el)) leave();
  }

  // A finger dragging the content down (scrolling up) does too.
  const touchY = useRef<number | null>(null);
  function onTouchMove(e: React.TouchEvent<HTMLDivElement>) {
    const el = ref.current;
    const y = e.touches[0]?.clientY;
    if (y === undefined) return;
    const from = touchY.current;
    touchY.current = y;
    if (el && from !== null && y > from && stick.current && el.scrollTop > 0 && !innerScrollsUp(e.target, el)) leave();
  }

  return (
    <div
      className={away ? 'messages away' : 'messages'}
      ref={ref}
      onScroll={onScroll}
      onWheel={onWheel}
      onTouchStart={(e) => (touchY.current = e.touches[0]?.clientY ?? null)}
      onTouchMove={onTouchMove}
      onPointerDown={() => (pressed.current = true)}
      onKeyDown={() => (pressed.current = true)}
      aria-busy={loading || loadingOlder || undefined}
      tabIndex={-1}
    >
      <div className="messages-inner" ref={inner}>
        {hasMore && !loading && (
          <div className="older">
            {/* One button in both states: one replaced by a text while
                loading dropped the focus of the reader who pressed it. */}
            <button
              ref={olderButton}
              type="button"
              className="link-button"
              aria-disabled={loadingOlder || undefined}
              onClick={() => !loadingOlder && onNearTop()}
            >
              {loadingOlder ? 'Loading earlier messages…' : 'Load earlier messages'}
            </button>
          </div>
        )}
        <ContentGrew.Provider value={contentGrew}>{loading ? <p className="hint loading">Loading…</p> : children}</ContentGrew.Provider>
      </div>
      {away && (
        <button
          type="button"
          className="to-bottom"
          aria-label="Scroll to the latest message"
          title="Scroll to the latest message"
          onClick={() => {
            const el = ref.current;
            if (!el) return;
            stick.current = true; // followed from now, whatever streams while the view goes down
            const still = window.matchMedia?.('(prefers-reduced-motion: reduce)').matches;
            el.scrollTo({ top: el.scrollHeight, behavior: still ? 'auto' : 'smooth' });
            // The button goes once at the bottom: the focus goes where the
            // reader goes on from the latest message, not the page.
            focusInstead(composerBox?.current);
          }}
        >
          ↓
        </button>
      )}
    </div>
  );
}

/** AT_BOTTOM_PX: a view this close to the bottom (rounding, zoom) is at it. */
const AT_BOTTOM_PX = 1;

/** REATTACH_PX: a reader scrolling down to this close to the bottom follows the answer again. */
const REATTACH_PX = 80;

/** bottomGap is how far the view of el is above its bottom, in px. */
function bottomGap(el: HTMLElement): number {
  return el.scrollHeight - el.scrollTop - el.clientHeight;
}

/** offsetIn is where message id stands in the content of list el (px from its top), or null when not shown. */
function offsetIn(el: HTMLElement, id: string): number | null {
  const m = el.querySelector(`[data-message-id="${id.replace(/["\\]/g, '\\$&')}"]`); // a CSS string: quote and backslash escaped
  return m ? m.getBoundingClientRect().top - el.getBoundingClientRect().top + el.scrollTop : null;
}

/**
 * wentUp says the view of el is above where the list last put or saw it
 * (seen), and not at the bottom: the reader scrolled up. A view pulled up
 * by content that shrank stays at the bottom, so is not.
 */
function wentUp(el: HTMLElement, seen: number | null): boolean {
  return seen !== null && el.scrollTop < seen - AT_BOTTOM_PX && bottomGap(el) > AT_BOTTOM_PX;
}

/** scrollsUp says key event e scrolls list up: a scrolling key, not typed into a field, with the focus in list or nowhere. */
function scrollsUp(e: KeyboardEvent, list: HTMLElement): boolean {
  const up = e.key === 'ArrowUp' || e.key === 'PageUp' || e.key === 'Home' || (e.key === ' ' && e.shiftKey);
  if (!up || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return false;
  const at = document.activeElement;
  if (!at || at === document.body) return true;
  if (!list.contains(at)) return false;
  return !(at instanceof HTMLInputElement || at instanceof HTMLTextAreaElement || at instanceof HTMLSelectElement || (at as HTMLElement).isContentEditable);
}

/** innerScrollsUp says a box between target and list (a Thinking box) can scroll up itself, taking a wheel or finger step. */
function innerScrollsUp(target: EventTarget, list: HTMLElement): boolean {
  for (let n = target instanceof Element ? target : null; n && n !== list; n = n.parentElement) {
    if (n.scrollTop > 0) return true;
  }
  return false;
}

/**
 * ExportMenu is the Export button's menu. Opened, its first item has the
 * focus, the arrow keys move between the items, and Escape or a pick closes
 * it with the focus back on the button (the item that had it goes with the
 * menu: the focus fell to the page); Tab or a click elsewhere closes it.
 */
function ExportMenu({ id }: { id: string }) {
  const app = useApp();
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const items = () => [...(ref.current?.querySelectorAll<HTMLElement>('[role="menuitem"]') ?? [])];
  useEffect(() => {
    if (!open) return;
    items()[0]?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setOpen(false);
        button.current?.focus();
      } else if (e.key === 'Tab') setOpen(false);
    };
    const onDown = (e: MouseEvent) => !ref.current?.contains(e.target as Node) && setOpen(false);
    document.addEventListener('keydown', onKey);
    document.addEventListener('mousedown', onDown);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('mousedown', onDown);
    };
  }, [open]);
  const pick = (format: 'markdown' | 'json') => {
    setOpen(false);
    button.current?.focus();
    void app.exportConversation(id, format);
  };
  const onMenuKey = (e: React.KeyboardEvent<HTMLDivElement>) => {
    const list = items();
    const at = list.indexOf(document.activeElement as HTMLElement);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: list.length - 1 }[e.key];
    if (to === undefined || list.length === 0) return;
    e.preventDefault();
    list[(to + list.length) % list.length]?.focus();
  };
  return (
    <div className="menu" ref={ref}>
      <button ref={button} type="button" className="icon" aria-label="Export" aria-haspopup="menu" aria-expanded={open} title="Export" onClick={() => setOpen(!open)}>
        <Icon name="download" />
      </button>
      {open && (
        <div className="menu-list" role="menu" aria-label="Export" onKeyDown={onMenuKey}>
          <button type="button" role="menuitem" tabIndex={-1} onClick={() => pick('markdown')}>
            Export as Markdown
          </button>
          <button type="button" role="menuitem" tabIndex={-1} onClick={() => pick('json')}>
            Export as JSON
          </button>
        </div>
      )}
    </div>
  );
}
