// The list of conversations: newest first, infinite scroll, server-side
// search, new chat, inline rename, delete with confirmation; below it the
// account's controls (the account dialog, theme, sign out).

import { memo, useCallback, useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { useFocusAfterGone, useFocusInsteadWhenGone } from '../hooks/composerBox';
import { useTheme } from '../hooks/useTheme';
import { isImeKey } from '../lib/ime';
import { MAX_SEARCH_CHARS, MAX_TITLE_CHARS, clipEdit, lengthStatus } from '../lib/limits';
import { nextTheme } from '../lib/theme';
import type { Conversation } from '../lib/protocol';
import type { AppState } from '../lib/state';
import { AccountDialog } from './AccountDialog';
import { Dialog } from './Dialog';
import { Icon } from './icons';
import { LengthCounter } from './LengthCounter';
import { StatusLine } from './StatusLine';

/** Sidebar renders the conversation list and the account controls. */
export function Sidebar({ open, onClose }: { open: boolean; onClose: () => void }) {
  const app = useApp();
  const list = useAppState((s) => s.list);
  const activeId = useAppState((s) => (s.route.name === 'chat' ? s.route.conversationId : null));
  const user = useAppState((s) => s.session.user);
  const [theme, cycleTheme] = useTheme();
  const [confirm, setConfirm] = useState<Conversation | null>(null);
  const [account, setAccount] = useState(false);
  const closeAccount = useCallback(() => setAccount(false), []);
  // The account dialog belongs to the user it was opened for: another signed
  // in meanwhile (this tab following another that signed A out and B in, the
  // page unchanged) closes it, with what it was waiting for. It stayed open,
  // said "Signed in as B" and told B the answer to A's request. So does the
  // delete confirmation: B read A's title, and Delete sent A's id under B's
  // token. It also closes once its conversation leaves the list (deleted in
  // another tab, the list reset).
  const userId = user?.id ?? null;
  const [accountOf, setAccountOf] = useState(userId);
  if (accountOf !== userId) {
    setAccountOf(userId);
    setAccount(false);
    setConfirm(null);
  }
  if (confirm && !list.items.some((c) => c.id === confirm.id)) setConfirm(null);
  const sentinel = useRef<HTMLLIElement>(null);
  const listEl = useRef<HTMLUListElement>(null);
  const newChat = useRef<HTMLButtonElement>(null);
  const searchField = useRef<HTMLInputElement>(null);
  // The caret of a search edit cut to the limit (clipEdit), put back once
  // the field shows the kept text: setting it moved the caret to the end.
  const searchCaret = useRef<number | null>(null);
  useLayoutEffect(() => {
    const caret = searchCaret.current;
    searchCaret.current = null;
    if (caret !== null && searchField.current === document.activeElement) searchField.current?.setSelectionRange(caret, caret);
  });
  const onSearch = (field: HTMLInputElement) => {
    const caret = field.selectionEnd ?? field.value.length;
    const edit = clipEdit(list.query, field.value, caret, MAX_SEARCH_CHARS);
    if (edit.value !== field.value) searchCaret.current = edit.caret;
    app.setQuery(edit.value);
  };
  const keepFocus = useFocusInList(list.items, listEl, newChat);
  const more = useRef<HTMLButtonElement>(null);
  useFocusAfterLastPage(more, list.items, listEl, searchField);
  const searchError = searchFailed(list) ? list.error : null;

  useEffect(() => {
    const el = sentinel.current;
    if (!el || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) void app.loadMore();
    });
    io.observe(el);
    return () => io.disconnect();
  }, [app, list.nextCursor]);

  const go = (path: string) => {
    app.navigate(path);
    onClose();
  };
  /**
   * clearOnEscape: an Escape in the search field with text clears it and
   * is taken (the browser's own clearing of a search field came with the
   * drawer closing on the same key); the next one closes the drawer.
   */
  const clearOnEscape = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key !== 'Escape' || !e.currentTarget.value || isImeKey(e)) return;
    e.preventDefault();
    e.stopPropagation();
    app.setQuery('');
  };

  return (
    <>
      <nav className={`sidebar${open ? ' open' : ''}`} aria-label="Conversations">
        <div className="side-head">
          <button ref={newChat} type="button" className="new-chat" onClick={() => go('/')}>
            <Icon name="plus" /> New chat
          </button>
          <button type="button" className="icon only-narrow" aria-label="Close conversations" title="Close" onClick={onClose}>
            <Icon name="close" />
          </button>
        </div>
        <div className="search">
          <Icon name="search" size={16} />
          <input
            ref={searchField}
            type="search"
            placeholder="Search conversations"
            onKeyDown={clearOnEscape}
            aria-label="Search conversations"
            dir="auto"
            value={list.query}
            onChange={(e) => onSearch(e.target)}
            aria-invalid={!!searchError || undefined}
            aria-describedby={searchError ? 'search-error' : undefined}
          />
        </div>
        {searchError && (
          <p id="search-error" className="form-error search-error">
            Could not search: {searchError} <ListRetry to={searchField} />
          </p>
        )}
        <SearchStatus list={list} />
        <ul className="conv-list" ref={listEl}>
          {list.items.map((c) => (
            <ConversationItem
              key={c.id}
              c={c}
              active={c.id === activeId}
              onOpen={() => go(`/c/${c.id}`)}
              onDelete={() => setConfirm(c)}
              onFocusIn={keepFocus}
            />
          ))}
          {list.loaded && list.items.length === 0 && !list.loading && !list.error && (
            <li className="hint empty-list">{list.appliedQuery ? 'No conversation matches.' : 'No conversations yet.'}</li>
          )}
          {list.error && !searchError && (
            <li className="form-error">
              {/* An alert: a failed first page or later page was not said (it is new each time: a retry failing again is said again). */}
              <span role="alert">{list.error}</span> <ListRetry to={searchField} />
            </li>
          )}
          {list.nextCursor && (
            <li ref={sentinel} className="hint more">
              {/* One button in both states, aria-disabled while loading: disabled, it lost the focus (to the page). */}
              <button ref={more} type="button" className="link-button" onClick={() => !list.loading && void app.loadMore()} aria-disabled={list.loading || undefined}>
                {list.loading ? 'Loading…' : 'Load more'}
              </button>
            </li>
          )}
        </ul>
        <div className="side-foot">
          <StatusLine />
          <div className="account">
            <span className="who" title={user?.email}>
              {user?.name || user?.email || ''}
            </span>
            <button type="button" className="icon" aria-label="Account" title="Account" aria-haspopup="dialog" onClick={() => setAccount(true)}>
              <Icon name="user" />
            </button>
            <button type="button" className="icon" aria-label={`Theme: ${theme}. Change theme`} title={`Theme: ${theme}. Click for ${nextTheme(theme)}`} onClick={cycleTheme}>
              <Icon name={theme === 'dark' ? 'moon' : theme === 'light' ? 'sun' : 'system'} />
            </button>
            <button type="button" className="icon" aria-label="Sign out" title="Sign out" onClick={() => void app.logout()}>
              <Icon name="logout" />
            </button>
          </div>
        </div>
      </nav>
      {open && <div className="scrim only-narrow" onClick={onClose} aria-hidden="true" />}
      {account && (
        <AccountDialog
          user={user}
          onChangePassword={(currentPassword, newPassword) => app.changePassword(currentPassword, newPassword)}
          onDelete={(password) => app.deleteAccount(password)}
          onClose={closeAccount}
          onRefusedAfterClose={(text) => app.toast(text, 'error')}
        />
      )}
      {confirm && (
        <Dialog
          title="Delete conversation?"
          onClose={() => setConfirm(null)}
          actions={
            <>
              <button type="button" onClick={() => setConfirm(null)} data-autofocus>
                Cancel
              </button>
              <button
                type="button"
                className="danger"
                onClick={() => {
                  const id = confirm.id;
                  setConfirm(null);
                  void app.remove(id);
                }}
              >
                Delete
              </button>
            </>
          }
        >
          <p>
            “<bdi>{confirm.title || 'New chat'}</bdi>” and all its messages will be deleted. This cannot be undone.
          </p>
        </Dialog>
      )}
    </>
  );
}

/**
 * searchFailed says whether the search itself failed (its first page): its
 * error is shown by the search field, and the list, emptied
 * (ConversationList.reload), shows no other search's conversations. A later
 * page that failed is said at the end of the list, below the results.
 */
function searchFailed(list: AppState['list']): boolean {
  return !!list.appliedQuery && list.error !== null && list.items.length === 0 && !list.loading;
}

/**
 * searchResult says what a search found, once its first page is in: how
 * many conversations match ("or more" when more pages follow), or none,
 * with the search's text, or that it failed and why. Empty without a
 * search, or while it runs. Not
 * the words of the list's own "No conversation matches.": one text twice
 * in the page is found twice.
 */
export function searchResult(list: AppState['list']): string {
  if (searchFailed(list)) return `Search for “${list.appliedQuery}” failed: ${list.error}`;
  if (!list.appliedQuery || !list.loaded || list.loading || list.error) return '';
  const n = list.items.length;
  const more = list.nextCursor ? ' or more' : '';
  const count = n === 0 ? 'No conversations match' : `${n}${more} ${n === 1 && !more ? 'conversation matches' : 'conversations match'}`;
  return `${count} “${list.appliedQuery}”.`;
}

/**
 * SearchStatus tells a screen reader what a search found: the list
 * changing under the search field said nothing. A visually hidden polite
 * region, present (empty) from the start.
 */
function SearchStatus({ list }: { list: AppState['list'] }) {
  return (
    <p className="sr-only" role="status">
      {searchResult(list)}
    </p>
  );
}

/**
 * useFocusInList keeps the focus in the list when the conversation whose
 * item had it goes (deleted here, its Delete button having the focus back
 * from the confirmation, or elsewhere, while renamed here): it moves to the
 * conversation now in its place, else the one before, else New chat. It
 * fell to the page. The focus the reader put elsewhere stays there. It
 * returns what each item calls when it takes the focus.
 */
function useFocusInList(items: readonly Conversation[], listEl: RefObject<HTMLUListElement | null>, fallback: RefObject<HTMLElement | null>) {
  const focused = useRef<string | null>(null);
  const before = useRef(items);
  useLayoutEffect(() => {
    const id = focused.current;
    const index = id === null ? -1 : before.current.findIndex((c) => c.id === id);
    before.current = items;
    if (id === null || items.some((c) => c.id === id)) return;
    focused.current = null;
    if (index < 0 || (document.activeElement && document.activeElement !== document.body)) return;
    const next = items[Math.min(index, items.length - 1)];
    const item = [...(listEl.current?.querySelectorAll<HTMLElement>('li[data-conversation-id]') ?? [])].find((li) => li.dataset.conversationId === next?.id);
    const link = item?.querySelector<HTMLElement>('a');
    (link ?? fallback.current)?.focus();
  }, [items, listEl, fallback]);
  return useCallback((id: string) => {
    focused.current = id;
  }, []);
}

/**
 * useFocusAfterLastPage keeps in the list the focus of Load more (more),
 * gone with the last page: it goes to the first conversation that page
 * brought, else the search field (to). It fell to the page.
 */
function useFocusAfterLastPage(
  more: RefObject<HTMLButtonElement | null>,
  items: readonly Conversation[],
  listEl: RefObject<HTMLUListElement | null>,
  to: RefObject<HTMLElement | null>,
) {
  // The items of the render before; useFocusAfterGone's effect, declared
  // first, runs before this one changes it.
  const before = useRef(items);
  useFocusAfterGone(more, () => {
    const shown = new Set(before.current.map((c) => c.id));
    const first = items.find((c) => !shown.has(c.id));
    const item = first && [...(listEl.current?.querySelectorAll<HTMLElement>('li[data-conversation-id]') ?? [])].find((li) => li.dataset.conversationId === first.id);
    const link = item?.querySelector<HTMLElement>('a');
    (link ?? to.current)?.focus();
  });
  useLayoutEffect(() => {
    before.current = items;
  });
}

/**
 * ListRetry reads the list again. Gone as that starts (the error it
 * retries is dropped), it hands its focus to the search field (to), just
 * above the list. It fell to the page.
 */
function ListRetry({ to }: { to: RefObject<HTMLElement | null> }) {
  const app = useApp();
  const ref = useRef<HTMLButtonElement>(null);
  useFocusInsteadWhenGone(ref, () => to.current?.focus());
  return (
    <button ref={ref} type="button" className="link-button" onClick={() => void app.reloadList()}>
      Retry
    </button>
  );
}

/** TITLE_COUNTER_FROM is the title's length from which its counter shows. */
const TITLE_COUNTER_FROM = MAX_TITLE_CHARS - 20;

interface ItemProps {
  c: Conversation;
  active: boolean;
  onOpen: () => void;
  onDelete: () => void;
  /** The item (its link, buttons or title field) took the focus. */
  onFocusIn: (id: string) => void;
}

const ConversationItem = memo(function ConversationItem({ c, active, onOpen, onDelete, onFocusIn }: ItemProps) {
  const app = useApp();
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(c.title);
  /** The title the field started with: a rename made elsewhere meanwhile is not undone by an unchanged field. */
  const started = useRef(c.title);
  const input = useRef<HTMLInputElement>(null);
  const renameButton = useRef<HTMLButtonElement>(null);
  /** The rename ended from the keyboard (Enter, Escape): the focus goes back to the Rename button. */
  const refocus = useRef(false);
  // Counted as the server counts it (code points, trimmed): the field's
  // maxLength counted UTF-16 units and cut a pasted title, even inside an
  // emoji. Over the limit it is not saved, and says so; Escape gives it up.
  const length = lengthStatus(title.trim(), MAX_TITLE_CHARS, TITLE_COUNTER_FROM, 'field');
  const counterId = useId();

  useEffect(() => {
    if (editing) {
      input.current?.focus();
      input.current?.select();
    } else if (refocus.current) {
      // The field is gone: without this the focus would fall to the page.
      // Not after a blur: the focus is where the reader put it.
      refocus.current = false;
      renameButton.current?.focus();
    }
  }, [editing]);

  function save() {
    if (length.over) return; // the counter under the field says why
    setEditing(false);
    const t = title.trim();
    if (t && t !== started.current.trim() && t !== c.title) void app.rename(c.id, t);
  }
  function onKey(e: KeyboardEvent<HTMLInputElement>) {
    if (e.key === 'Enter' && !isImeKey(e)) {
      // The Enter that confirms an input method's conversion is the IME's:
      // the title is still being typed.
      // Without preventDefault the key's press would land on the Rename
      // button the focus moves to, and click it: the field would open again.
      e.preventDefault();
      if (length.over) return;
      refocus.current = true;
      save();
    } else if (e.key === 'Escape' && !isImeKey(e)) {
      // (An Escape cancelling a conversion is the input method's: the title is still being typed.)
      e.preventDefault();
      refocus.current = true;
      setTitle(c.title);
      setEditing(false);
    }
  }

  if (editing) {
    return (
      <li className="conv editing" onFocus={() => onFocusIn(c.id)}>
        <input
          ref={input}
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          onKeyDown={onKey}
          onBlur={save}
          aria-label="Conversation title"
          dir="auto"
          aria-describedby={length.show ? counterId : undefined}
          aria-invalid={length.over || undefined}
        />
        <LengthCounter id={counterId} length={length} className="counter title-counter" />
      </li>
    );
  }
  return (
    <li className={`conv${active ? ' active' : ''}`} data-conversation-id={c.id} onFocus={() => onFocusIn(c.id)}>
      <a
        href={`/c/${c.id}`}
        aria-current={active ? 'page' : undefined}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          onOpen();
        }}
        title={c.title || 'New chat'}
        dir="auto"
      >
        {c.title || 'New chat'}
      </a>
      <span className="conv-actions">
        <button
          ref={renameButton}
          type="button"
          className="icon"
          aria-label={`Rename “${c.title || 'New chat'}”`}
          title="Rename"
          onClick={() => {
            started.current = c.title;
            setTitle(c.title);
            setEditing(true);
          }}
        >
          <Icon name="pencil" size={15} />
        </button>
        <button type="button" className="icon" aria-label={`Delete “${c.title || 'New chat'}”`} title="Delete" onClick={onDelete}>
          <Icon name="trash" size={15} />
        </button>
      </span>
    </li>
  );
});
