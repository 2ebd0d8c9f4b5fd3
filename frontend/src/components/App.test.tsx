// The app's page (jsdom): nothing rendered of a user's messages outlives
// that user's session in this tab, the tab's title (a conversation's)
// included; Back with a phone's drawer open closes the drawer.

import { act } from 'react';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { markdownCacheSize, renderBlocks } from '../lib/markdown';
import { memoryKV } from '../lib/persist';
import type { User } from '../lib/protocol';
import { isDrawerEntry } from '../lib/router';
import { CID, conv, settle, setup } from '../lib/testkit';
import { App } from './App';
import { CHAT_FAILED } from './ChatErrorBoundary';
import { mountEach } from './testkit';

const mount = mountEach();

function user(id: string): User {
  return { id, email: `${id}@example.com`, name: id, createdAt: '', updatedAt: '' } as User;
}

describe('App and the markdown block cache', () => {
  afterEach(() => history.replaceState(null, '', '/'));

  it.each([
    ['signing out', (app: ChatApp) => app.logout()],
    ['another user taking the tab', async (app: ChatApp) => app.store.set((s) => ({ ...s, session: { token: 't2', user: user('v'), notice: null } }))],
  ])('is emptied on %s', async (_name, change) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, route: { name: 'chat', conversationId: null }, session: { token: 't', user: user('u'), notice: null } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <App />
        </AppProvider>,
      ),
    );
    renderBlocks('# A private answer\n\nWith a second paragraph.'); // as the user's thread rendered it
    expect(markdownCacheSize().entries).toBeGreaterThan(0);
    await act(() => change(app));
    expect(markdownCacheSize()).toEqual({ entries: 0, chars: 0 });
  });
});

describe("App and the tab's title", () => {
  const GONE = 'dddddddddddddddddddddddd';
  afterEach(() => history.replaceState(null, '', '/'));

  /** openTitled mounts the page signed in on conversation CID (titled 't') and waits for the tab to show its title. */
  async function openTitled() {
    const t = setup(); // GONE is answered a 404 without chatd's word: its error shows in its place
    act(() =>
      mount.root.render(
        <AppProvider value={t.app}>
          <App />
        </AppProvider>,
      ),
    );
    await act(() => vi.waitFor(() => expect(document.title).toBe('t · chatd')));
    return t;
  }

  it.each([
    ['signing out', ({ app }: ReturnType<typeof setup>) => app.logout()],
    ['the session ending (a token refused)', async ({ app }: ReturnType<typeof setup>) => app.expire()],
    ['the account deleted elsewhere (its socket closed with 4401)', async ({ socket }: ReturnType<typeof setup>) => {
      socket().open();
      socket().cut(4401, 'account deleted');
    }],
  ])("is chatd again on %s: the sign-in page and its history entry show no conversation's title", async (_name, end) => {
    const t = await openTitled();
    await act(() => end(t));
    expect(location.pathname).toBe('/login');
    expect(mount.host.querySelector('main.chat')).toBeNull();
    expect(document.title).toBe('chatd');
  });

  it('is chatd on the new chat and on a conversation not found', async () => {
    const { app } = await openTitled();
    act(() => app.navigate('/'));
    expect(document.title).toBe('chatd');
    act(() => app.navigate(`/c/${CID}`));
    expect(document.title).toBe('t · chatd');
    await act(async () => {
      app.navigate(`/c/${GONE}`);
      await vi.waitFor(() => expect(app.store.state.threadErrors[GONE]).toBeDefined());
    });
    expect(mount.host.querySelector('main.chat')?.textContent).toContain(app.store.state.threadErrors[GONE]);
    expect(document.title).toBe('chatd');
  });
});

describe('App on a narrow screen: Escape in the drawer\'s search', () => {
  // One Escape both cleared the search (the browser's own, for a search
  // field) and closed the drawer: the reader lost the list they had found.
  afterEach(() => history.replaceState(null, '', '/'));

  it('with text, clears it and leaves the drawer open; the next Escape closes it', async () => {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: q === '(max-width: 760px)', addEventListener: () => undefined, removeEventListener: () => undefined }));
    onTestFinished(() => void vi.unstubAllGlobals());
    const { app } = setup();
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <App />
        </AppProvider>,
      ),
    );
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Open conversations"]')!.click());
    act(() => app.setQuery('report'));
    const search = mount.host.querySelector<HTMLInputElement>('input[aria-label="Search conversations"]')!;
    search.focus();
    const escape = () => {
      const e = new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true });
      act(() => void search.dispatchEvent(e));
      return e;
    };
    const drawerOpen = () => !!mount.host.querySelector('nav.sidebar.open');
    expect(escape().defaultPrevented).toBe(true); // the browser's own clearing is this one
    expect(app.store.state.list.query).toBe('');
    expect(drawerOpen()).toBe(true);
    await act(async () => {
      const pop = new Promise((resolve) => window.addEventListener('popstate', resolve, { once: true })); // the drawer's entry taken back
      escape();
      await pop;
    });
    expect(drawerOpen()).toBe(false);
  });
});

describe('App on a narrow screen: the drawer and Back', () => {
  const B = 'bbbbbbbbbbbbbbbbbbbbbbbb';
  const C = 'cccccccccccccccccccccccc';
  afterEach(() => history.replaceState(null, '', '/'));

  /** nextPop resolves on the next popstate (after the app's listeners), or fails after a second: none came. */
  function nextPop(what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no popstate: ${what}`)), 1000);
      window.addEventListener('popstate', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  async function back(what: string) {
    await act(async () => {
      const pop = nextPop(what);
      history.back();
      await pop;
    });
  }

  /**
   * openDrawer starts the app signed in on conversation CID, goes to B (a
   * history entry), mounts the page on a phone and opens the drawer, its
   * list holding C (and B, listB).
   */
  async function openDrawer(listB = false) {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: q === '(max-width: 760px)', addEventListener: () => undefined, removeEventListener: () => undefined }));
    onTestFinished(() => void vi.unstubAllGlobals());
    const listed = [...(listB ? [conv(B, 'Second', '2026-01-02T00:00:00Z')] : []), conv(C, 'Third', '2026-01-01T00:00:00Z')];
    const { app, socket } = setup({
      list: () => ({ conversations: listed, nextCursor: '' }),
      route: (url, init) => (url === `/api/conversations/${B}` && init?.method === 'DELETE' ? new Response(null, { status: 204 }) : undefined),
    });
    act(() => app.navigate(`/c/${B}`));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <App />
        </AppProvider>,
      ),
    );
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Open conversations"]')!.click());
    expect(mount.host.querySelector('nav.sidebar.open')).not.toBeNull();
    const route = () => (app.store.state.route.name === 'chat' ? app.store.state.route.conversationId : null);
    return { app, socket, route, drawerOpen: () => !!mount.host.querySelector('nav.sidebar.open') };
  }

  it('Back closes the open drawer and nothing else: the chat behind it stays', async () => {
    const { route, drawerOpen } = await openDrawer();
    await back('Back with the drawer open');
    expect(drawerOpen()).toBe(false);
    expect(location.pathname).toBe(`/c/${B}`);
    expect(route()).toBe(B);
    await back('Back again'); // now Back leaves the page, as before the drawer opened
    expect(route()).toBe(CID);
  });

  it.each([
    ['its close button', () => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Close conversations"]')!.click()],
    ['the scrim', () => mount.host.querySelector<HTMLElement>('.scrim')!.click()],
    ['Escape', () => void document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true }))],
  ])('closed with %s, the drawer takes its history entry back: the next Back leaves the page', async (_name, close) => {
    const { route, drawerOpen } = await openDrawer();
    await act(async () => {
      const pop = nextPop('the drawer\'s entry taken back');
      close();
      await pop;
    });
    expect(drawerOpen()).toBe(false);
    expect(isDrawerEntry(history.state)).toBe(false);
    expect(route()).toBe(B);
    await back('Back after the drawer closed');
    expect(route()).toBe(CID);
  });

  it.each([
    ['deleted in another tab (its frame)', async ({ socket }: Awaited<ReturnType<typeof openDrawer>>) => {
      socket().open();
      act(() => socket().receive({ type: 'conversation', action: 'deleted', conversation: conv(B, 'Second', '2026-01-02T00:00:00Z') }));
    }],
    ['deleted with its Delete in the drawer', async ({ app }: Awaited<ReturnType<typeof openDrawer>>) => {
      const button = (label: string) => [...mount.host.ownerDocument.querySelectorAll<HTMLButtonElement>('button')].find((b) => (b.getAttribute('aria-label') ?? b.textContent?.trim()) === label)!;
      await act(() => vi.waitFor(() => expect(button('Delete “Second”')).toBeDefined())); // the list loads
      act(() => button('Delete “Second”').click());
      await act(async () => button('Delete').click());
      await act(() => vi.waitFor(() => expect(app.store.state.list.items.map((c) => c.id)).toEqual([C])));
    }],
  ])('the open conversation %s while the drawer is open: Back closes the drawer and stays on the new chat', async (_, deleteB) => {
    const opened = await openDrawer(true);
    const { app, route, drawerOpen } = opened;
    await deleteB(opened);
    expect(route()).toBe(null);
    expect(drawerOpen()).toBe(true);
    const told = app.store.state.toasts.map((t) => t.text);
    await back('Back with the drawer open');
    expect(drawerOpen()).toBe(false);
    expect(route()).toBe(null); // not the deleted one, whose entry the drawer's was over
    expect(location.pathname).toBe('/');
    await act(() => settle()); // a read of B, had it gone there, answered
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(told); // no second notice
    await back('Back again');
    expect(route()).toBe(CID);
  });

  it('a conversation picked in the drawer takes the drawer\'s entry: Back goes to the one it was opened on', async () => {
    const { route, drawerOpen } = await openDrawer();
    await act(() => vi.waitFor(() => expect(mount.host.querySelector(`a[href="/c/${C}"]`)).not.toBeNull())); // the list loads
    act(() => mount.host.querySelector<HTMLAnchorElement>(`a[href="/c/${C}"]`)!.click());
    expect(drawerOpen()).toBe(false);
    expect(route()).toBe(C);
    await back('Back from the picked conversation');
    expect(isDrawerEntry(history.state)).toBe(false);
    expect(route()).toBe(B);
    await back('Back again');
    expect(route()).toBe(CID);
  });
});

describe('App when the chat fails to render', () => {
  afterEach(() => history.replaceState(null, '', '/'));

  it('keeps the message box, and the focus in it, when the conversation shown changes (a new chat\'s first send creating it)', async () => {
    const t = setup();
    act(() => t.app.navigate('/'));
    act(() =>
      mount.root.render(
        <AppProvider value={t.app}>
          <App />
        </AppProvider>,
      ),
    );
    const box = mount.host.querySelector<HTMLTextAreaElement>('textarea[aria-label="Message"]');
    expect(box).not.toBeNull();
    box!.focus();
    act(() => t.app.navigate(`/c/${CID}`, true)); // as the created conversation takes the new chat's place
    await act(() => vi.waitFor(() => expect(t.app.store.state.threads[CID]?.loaded).toBe(true)));
    expect(mount.host.querySelector('textarea[aria-label="Message"]')).toBe(box); // not rebuilt: a phone's keyboard stays open
    expect(document.activeElement).toBe(box);
  });

  it('says so in the chat\'s place with a Reload button, the sidebar kept, where React left a blank page', async () => {
    const t = setup();
    const failures = vi.spyOn(console, 'error').mockImplementation(() => {}); // React and the boundary report the error
    onTestFinished(() => failures.mockRestore());
    act(() => t.app.navigate(`/c/${CID}`));
    act(() =>
      mount.root.render(
        <AppProvider value={t.app}>
          <App />
        </AppProvider>,
      ),
    );
    await act(() => vi.waitFor(() => expect(t.app.store.state.threads[CID]?.loaded).toBe(true)));
    // A thread the view cannot render (as a path deeper than the stack once was).
    act(() => t.app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: { ...s.threads[CID]!, queued: null as never } } })));
    const alert = mount.host.querySelector('main.chat [role="alert"]');
    expect(alert?.textContent).toContain(CHAT_FAILED);
    const reload = [...mount.host.querySelectorAll('main.chat button')].find((b) => b.textContent === 'Reload');
    expect(reload).toBeDefined();
    expect(document.activeElement).toBe(reload);
    expect(mount.host.querySelector('nav.sidebar')).not.toBeNull();
  });
});
