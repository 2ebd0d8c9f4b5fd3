import { useCallback, useEffect, useRef, useState } from 'react';
import { useAppState } from '../hooks/app';
import { useForgetRendered } from '../hooks/useForgetRendered';
import { useNarrow } from '../hooks/useNarrow';
import { isImeNativeKey } from '../lib/ime';
import { POLITE_STATUS_ID } from '../lib/politeStatus';
import { DRAWER_ENTRY, isDrawerEntry } from '../lib/router';
import { AuthPage } from './AuthPage';
import { ChatAnnouncements, ChatView } from './ChatView';
import { ChatErrorBoundary } from './ChatErrorBoundary';
import { Sidebar } from './Sidebar';
import { LinkAnnouncer } from './StatusLine';
import { Toasts } from './Toasts';

/** App picks the page for the route. */
export function App() {
  const route = useAppState((s) => s.route);
  useForgetRendered();
  return (
    <>
      {route.name === 'chat' ? <ChatLayout conversationId={route.conversationId} /> : <AuthPage mode={route.name} />}
      <Toasts />
      <PoliteStatus />
    </>
  );
}

/**
 * useSidebarFocus moves the focus with the narrow screens' sidebar: opened,
 * into it (New chat), where it stayed on the button behind the scrim;
 * closed with the focus inside it (Escape, its close button, a
 * conversation picked), back to what opened it: the hidden sidebar drops
 * the focus to the page.
 */
function useSidebarFocus(open: boolean): void {
  const opener = useRef<HTMLElement | null>(null);
  useEffect(() => {
    const nav = document.querySelector<HTMLElement>('nav.sidebar');
    if (open) {
      opener.current = document.activeElement as HTMLElement | null;
      nav?.querySelector<HTMLElement>('button, a, input')?.focus();
      return;
    }
    const at = document.activeElement;
    if (opener.current && (!at || at === document.body || nav?.contains(at))) opener.current.focus();
    opener.current = null;
  }, [open]);
}

/**
 * useDrawerHistory gives the narrow screens' open drawer a history entry
 * (DRAWER_ENTRY, the same URL), where Back went back in the chat behind
 * it and left it open: Back now closes it and does nothing else. Closed
 * another way (the scrim, its close button, Escape, a wider window), it
 * takes its entry back; a page picked in it took the entry's place
 * (ChatApp.navigate), and there is nothing to take back.
 */
function useDrawerHistory(drawer: boolean, close: () => void): void {
  useEffect(() => {
    if (!drawer) return;
    if (!isDrawerEntry(history.state)) history.pushState(DRAWER_ENTRY, '', location.href);
    const onPop = () => {
      if (!isDrawerEntry(history.state)) close();
    };
    window.addEventListener('popstate', onPop);
    return () => {
      window.removeEventListener('popstate', onPop);
      if (isDrawerEntry(history.state)) history.back();
    };
  }, [drawer, close]);
}

/**
 * PoliteStatus is the page's polite live region for confirmations
 * (lib/politeStatus.ts fills it): present, empty, from the start, so that
 * what is put in it is announced. React renders no children in it.
 */
export function PoliteStatus() {
  return <div id={POLITE_STATUS_ID} className="sr-only" role="status" />;
}

function ChatLayout({ conversationId }: { conversationId: string | null }) {
  const [open, setOpen] = useState(false);
  const close = useCallback(() => setOpen(false), []);
  const narrow = useNarrow();
  useSidebarFocus(open);
  useEffect(() => {
    if (!open) return;
    // An Escape already taken inside the sidebar (a rename cancelled) is
    // not also a request to close it.
    // Nor is one cancelling an input method's conversion (in the search box, a rename).
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && !e.defaultPrevented && !isImeNativeKey(e) && setOpen(false);
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [open]);
  // The open drawer covers the chat with its scrim: the chat is inert
  // meanwhile, so Tab stays in the drawer and a screen reader does not read
  // what is behind it. On a wide screen the sidebar is beside the chat.
  // What must be heard meanwhile is said outside it (LinkAnnouncer, ChatAnnouncements).
  const drawer = open && narrow;
  useDrawerHistory(drawer, close);
  return (
    <div className="layout">
      <Sidebar open={open} onClose={close} />
      <ChatErrorBoundary conversationId={conversationId} onOpenSidebar={() => setOpen(true)}>
        <ChatView conversationId={conversationId} onOpenSidebar={() => setOpen(true)} inert={drawer} />
      </ChatErrorBoundary>
      <LinkAnnouncer />
      <ChatAnnouncements conversationId={conversationId} />
    </div>
  );
}
