// The conversation list in the DOM (jsdom): where the focus goes after a rename.

import { act } from 'react';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import type { Conversation } from '../lib/protocol';
import type { AppState } from '../lib/state';
import { App } from './App';
import { Sidebar, searchResult } from './Sidebar';
import { mountEach, watchLive } from './testkit';

const mount = mountEach();
let renamedElsewhere: (title: string) => void = () => undefined;

function render() {
  const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
  const rename = vi.spyOn(app, 'rename').mockImplementation(async () => undefined);
  const c = { id: 'c1', title: 'Old title', model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' };
  act(() => app.store.set((s) => ({ ...s, list: { ...s.list, items: [c], loaded: true } })));
  renamedElsewhere = (title) => app.store.set((s) => ({ ...s, list: { ...s.list, items: [{ ...c, title }] } }));
  act(() =>
    mount.root.render(
      <AppProvider value={app}>
        <Sidebar open onClose={() => undefined} />
      </AppProvider>,
    ),
  );
  return { rename };
}

/** startRename opens the rename field of "Old title", types title into it and returns it. */
function startRename(title: string) {
  act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Rename “Old title”"]')!.click());
  const input = mount.host.querySelector<HTMLInputElement>('input[aria-label="Conversation title"]')!;
  act(() => {
    const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
    set.call(input, title);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  return input;
}

/**
 * renderApp mounts the whole app on the chat route (the narrow-screen
 * layout, whose sidebar opens as a drawer), its list holding items, and
 * returns the button that opens the sidebar and a getter of the sidebar.
 */
function renderApp(items: Conversation[] = []) {
  const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
  act(() =>
    app.store.set((s) => ({
      ...s,
      route: { name: 'chat', conversationId: null },
      ...(items.length > 0 ? { list: { ...s.list, items, loaded: true } } : {}),
    })),
  );
  act(() =>
    mount.root.render(
      <AppProvider value={app}>
        <App />
      </AppProvider>,
    ),
  );
  return {
    app,
    opener: mount.host.querySelector<HTMLButtonElement>('button[aria-label="Open conversations"]')!,
    nav: () => mount.host.querySelector('nav.sidebar')!,
  };
}

/** key dispatches a keydown on el and returns it (cancelable, as a browser's is). */
function key(el: Element, k: string): KeyboardEvent {
  const ev = new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true });
  act(() => {
    el.dispatchEvent(ev);
  });
  return ev;
}

describe('Sidebar rename', () => {
  it.each([
    ['Enter saves', 'Enter', true],
    ['Escape cancels', 'Escape', false],
  ])('%s and puts the focus back on the Rename button, not the page', (_name, k, saved) => {
    const { rename } = render();
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Rename “Old title”"]')!;
    button.focus();
    act(() => button.click());
    const input = mount.host.querySelector<HTMLInputElement>('input[aria-label="Conversation title"]')!;
    expect(document.activeElement).toBe(input);
    act(() => {
      const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
      set.call(input, 'New title');
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
    const ev = key(input, k);
    expect(rename).toHaveBeenCalledTimes(saved ? 1 : 0);
    // The key's default is prevented: in a browser its press would
    // otherwise land on the Rename button, now focused, and click it (the
    // field opened again: the browser suite's rename over SSE caught it).
    expect(ev.defaultPrevented).toBe(true);
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Rename “Old title”');
  });
});

describe('Sidebar rename with an input method', () => {
  it.each([
    ['while composing (isComposing)', { isComposing: true }],
    ['just after composing in Safari (compositionend came first: keyCode 229)', { keyCode: 229 }],
  ])('the Enter that confirms a conversion %s does not save: the field stays open', (_name, init) => {
    const { rename } = render();
    const input = startRename('新しい題');
    const ime = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true, ...init });
    act(() => void input.dispatchEvent(ime));
    expect(rename).not.toHaveBeenCalled();
    expect(ime.defaultPrevented).toBe(false);
    expect(mount.host.querySelector('input[aria-label="Conversation title"]')).toBe(input);
    expect(document.activeElement).toBe(input);
    key(input, 'Enter'); // the user's Enter
    expect(rename).toHaveBeenCalledWith('c1', '新しい題');
  });

  it.each([
    ['while composing (isComposing)', { isComposing: true }],
    ['just after composing in Safari (compositionend came first: keyCode 229)', { keyCode: 229 }],
  ])('the Escape that cancels a conversion %s does not cancel the rename', (_name, init) => {
    render();
    const input = startRename('新しい題');
    act(() => void input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true, ...init })));
    expect(mount.host.querySelector('input[aria-label="Conversation title"]')).toBe(input);
    expect(input.value).toBe('新しい題');
    key(input, 'Escape'); // the user's Escape
    expect(mount.host.querySelector('input[aria-label="Conversation title"]')).toBeNull();
  });
});

describe('Sidebar rename while another tab renames', () => {
  it.each([
    ['left unchanged, does not undo the other tab’s rename', null, 0],
    ['typed over, renames to what was typed', 'Mine', 1],
  ])('the field, %s', (_name, typed, renames) => {
    const { rename } = render();
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Rename “Old title”"]')!.click());
    const input = mount.host.querySelector<HTMLInputElement>('input[aria-label="Conversation title"]')!;
    if (typed !== null) {
      act(() => {
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, typed);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      });
    }
    act(() => renamedElsewhere('Their title')); // renamed in another tab meanwhile: the list has the new title
    key(input, 'Enter');
    expect(rename).toHaveBeenCalledTimes(renames);
    if (renames) expect(rename).toHaveBeenCalledWith('c1', typed);
  });
});

describe('Sidebar focus when a conversation goes', () => {
  const conv = (id: string) => ({ id, title: `Title ${id}`, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' });

  function renderList(ids: string[]) {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const gone = (id: string) => act(() => app.store.set((s) => ({ ...s, list: { ...s.list, items: s.list.items.filter((c) => c.id !== id) } })));
    vi.spyOn(app, 'remove').mockImplementation(async (id) => gone(id));
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, items: ids.map(conv), loaded: true } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    return { gone };
  }
  const button = (label: string) => [...document.querySelectorAll<HTMLButtonElement>('button')].find((b) => (b.getAttribute('aria-label') ?? b.textContent?.trim()) === label)!;

  it.each([
    ['the first', ['c1', 'c2', 'c3'], 'c1', 'Title c2'],
    ['a middle one', ['c1', 'c2', 'c3'], 'c2', 'Title c3'],
    ['the last', ['c1', 'c2', 'c3'], 'c3', 'Title c2'],
    ['the only one', ['c1'], 'c1', 'New chat'],
  ])('deleted from its Delete button (%s), the focus goes to the conversation in its place, not the page', async (_name, ids, id, to) => {
    renderList(ids);
    const del = button(`Delete “Title ${id}”`);
    del.focus();
    act(() => del.click());
    expect(document.activeElement?.textContent).toBe('Cancel'); // the confirmation
    await act(async () => button('Delete').click());
    expect(document.activeElement).not.toBe(document.body);
    expect(document.activeElement?.textContent?.trim()).toBe(to);
  });

  it('deleted in another tab while renamed here, the focus goes to the conversation in its place', () => {
    const { gone } = renderList(['c1', 'c2']);
    act(() => button('Rename “Title c1”').click());
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Conversation title');
    gone('c1');
    expect(document.activeElement?.textContent).toBe('Title c2');
  });

  it('a conversation deleted elsewhere leaves alone the focus the reader put outside the list', () => {
    const { gone } = renderList(['c1', 'c2']);
    button('Rename “Title c1”').focus();
    const search = document.querySelector<HTMLInputElement>('input[type="search"]')!;
    search.focus();
    gone('c1');
    expect(document.activeElement).toBe(search);
  });
});

describe('Sidebar focus when Load more or Retry goes', () => {
  // Load more was disabled while it loaded (Chromium moves a disabled
  // button's focus to the page) and went with the last page; Retry went as
  // the reload started: the focus fell to the page each time.
  const conv = (id: string) => ({ id, title: `Title ${id}`, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' });
  const button = (name: string) => [...document.querySelectorAll<HTMLButtonElement>('nav button')].find((b) => b.textContent?.trim() === name);
  const search = () => document.querySelector<HTMLInputElement>('input[type="search"]')!;

  function renderList(list: Partial<AppState['list']>) {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const loadMore = vi.spyOn(app, 'loadMore').mockImplementation(async () => undefined);
    const reloadList = vi.spyOn(app, 'reloadList').mockImplementation(async () => undefined);
    const set = (patch: Partial<AppState['list']>) => act(() => app.store.set((s) => ({ ...s, list: { ...s.list, ...patch } })));
    set({ loaded: true, ...list });
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    return { loadMore, reloadList, set };
  }

  it.each([
    ['a next page', ['c3'], 'n2', () => button('Load more')],
    ['the last page', ['c3', 'c4'], '', () => document.querySelector('li[data-conversation-id="c3"] a')],
    ['the last page, empty', [], '', () => search()],
  ])('Load more keeps the focus while it loads; %s in, it is on Load more, else the first new conversation, else the search field', (_name, ids, next, to) => {
    const { loadMore, set } = renderList({ items: [conv('c1'), conv('c2')], nextCursor: 'n1' });
    const more = button('Load more')!;
    act(() => more.focus());
    act(() => more.click());
    expect(loadMore).toHaveBeenCalledTimes(1);
    set({ loading: true });
    expect(more.disabled).toBe(false); // aria-disabled: it keeps the focus
    expect(more.getAttribute('aria-disabled')).toBe('true');
    expect(document.activeElement).toBe(more);
    act(() => more.click()); // it waits: not asked twice
    expect(loadMore).toHaveBeenCalledTimes(1);
    set({ loading: false, items: [conv('c1'), conv('c2'), ...ids.map(conv)], nextCursor: next });
    expect(document.activeElement).not.toBe(document.body);
    expect(document.activeElement).toBe(to());
  });

  it.each([
    ['the list', { items: [conv('c1')], error: 'The server could not be reached.' }],
    ['a search', { items: [], query: 'go', appliedQuery: 'go', error: 'Too many requests' }],
  ])('the Retry of %s, gone as the reload starts, hands its focus to the search field', (_name, list) => {
    const { reloadList, set } = renderList(list);
    const retry = button('Retry')!;
    act(() => retry.focus());
    act(() => retry.click());
    expect(reloadList).toHaveBeenCalledTimes(1);
    set({ loading: true, error: null });
    expect(button('Retry')).toBeUndefined();
    expect(document.activeElement).toBe(search());
  });

  it('says a failed list load or later page as an alert, again when a retry fails again', () => {
    const { set } = renderList({ items: [conv('c1')], nextCursor: 'n1' });
    const alerts = () => [...mount.host.querySelectorAll('.conv-list [role="alert"]')];
    expect(alerts()).toEqual([]);
    set({ error: 'The server could not be reached.' });
    expect(alerts().map((a) => a.textContent)).toEqual(['The server could not be reached.']);
    const first = alerts()[0];
    set({ loading: true, error: null });
    expect(alerts()).toEqual([]);
    set({ loading: false, error: 'The server could not be reached.' });
    expect(alerts().map((a) => a.textContent)).toEqual(['The server could not be reached.']);
    expect(alerts()[0]).not.toBe(first); // a new alert: said again
    expect(mount.host.querySelector('.conv-list .form-error')?.textContent).toBe('The server could not be reached. Retry');
  });

  it('says a Load more that fails again with the same error again', async () => {
    // The list's own loadMore (not stubbed): it kept the error while it
    // loaded, so a second failure wrote the same text in the same alert,
    // and nothing was said.
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const loadMore = vi.spyOn(app, 'loadMore');
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, loaded: true, items: [conv('c1')], nextCursor: 'n1' } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    const heard = watchLive(mount.host);
    const said: string[][] = [];
    for (const n of [1, 2]) {
      await act(async () => {
        button('Load more')!.click();
        await loadMore.mock.results[n - 1]!.value;
      });
      said.push(heard().filter((t) => t === app.store.state.list.error));
    }
    expect(app.store.state.list.error).toBeTruthy();
    expect(said).toEqual([[app.store.state.list.error], [app.store.state.list.error]]);
  });
});

describe('Sidebar delete confirmation', () => {
  // It stayed open across a user switch (another tab signed A out and B in):
  // B read A's title in "will be deleted", and Delete sent A's id under B's
  // token (404, forgotten); and it outlived its conversation deleted elsewhere.
  const conv = (id: string) => ({ id, title: `Title ${id}`, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' });
  const user = (id: string) => ({ id, email: `${id}@example.com`, name: id, createdAt: '', updatedAt: '' });
  const button = (label: string) => [...document.querySelectorAll<HTMLButtonElement>('button')].find((b) => (b.getAttribute('aria-label') ?? b.textContent?.trim()) === label);

  it.each([
    ['another user signs in', (s: AppState): AppState => ({ ...s, session: { ...s.session, user: user('B') } })],
    ['its conversation goes (deleted in another tab)', (s: AppState): AppState => ({ ...s, list: { ...s.list, items: s.list.items.filter((c) => c.id !== 'c1') } })],
  ])('closes when %s', (_name, change) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const remove = vi.spyOn(app, 'remove').mockImplementation(async () => undefined);
    act(() => app.store.set((s) => ({ ...s, session: { ...s.session, token: 't', user: user('A') }, list: { ...s.list, items: [conv('c1'), conv('c2')], loaded: true } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    act(() => button('Delete “Title c1”')!.click());
    expect(document.querySelector('[role="dialog"]')?.textContent).toContain('“Title c1” and all its messages will be deleted');
    act(() => app.store.set(change));
    expect(document.querySelector('[role="dialog"]')).toBeNull();
    expect(button('Delete')).toBeUndefined();
    expect(remove).not.toHaveBeenCalled();
  });
});

describe('Sidebar search', () => {
  // A failed search said nothing (searchResult was ''), its error sat below
  // the old unfiltered list, tied to nothing, and a pasted long query was
  // sent whole, for the server to refuse ("q: must be at most 200 characters").
  it('says a failed search by the field, links it, and shows no list as its result', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, query: 'go', appliedQuery: 'go', loaded: true, error: 'Too many requests (try again in 20 seconds)' } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    const search = mount.host.querySelector<HTMLInputElement>('input[type="search"]')!;
    expect(search.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(search.getAttribute('aria-describedby')!)?.textContent).toBe('Could not search: Too many requests (try again in 20 seconds) Retry');
    expect(mount.host.querySelector('nav [role="status"]:not(.status-line)')?.textContent).toBe('Search for “go” failed: Too many requests (try again in 20 seconds)');
    expect(mount.host.querySelector('.conv-list')?.textContent).toBe(''); // neither "No conversation matches." nor the error again
  });

  it('tells a screen reader what a search found, once it is in', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const c = { id: 'c1', title: 'Go channels', model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' };
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, items: [c], loaded: true } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    const status = () => mount.host.querySelector('nav [role="status"]:not(.status-line)')?.textContent;
    expect(status()).toBe('');
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, query: 'go', appliedQuery: 'go', loading: true } })));
    expect(status()).toBe('');
    act(() => app.store.set((s) => ({ ...s, list: { ...s.list, loading: false } })));
    expect(status()).toBe('1 conversation matches “go”.');
  });

  it.each([
    [{ appliedQuery: '' }, ''],
    [{ appliedQuery: 'x', loading: true }, ''],
    [{ appliedQuery: 'x', error: 'offline' }, ''], // a later page failed: the results stand
    [{ appliedQuery: 'x', items: [], error: 'Too many requests' }, 'Search for “x” failed: Too many requests'],
    [{ appliedQuery: 'x', items: [] }, 'No conversations match “x”.'],
    [{ appliedQuery: 'x', items: [1, 2] }, '2 conversations match “x”.'],
    [{ appliedQuery: 'x', items: [1], nextCursor: 'n' }, '1 or more conversations match “x”.'],
  ])('%o: %s', (patch, text) => {
    const base = { items: [1], nextCursor: '', query: '', appliedQuery: '', loading: false, loaded: true, error: null };
    expect(searchResult({ ...base, ...patch } as unknown as Parameters<typeof searchResult>[0])).toBe(text);
  });
});

describe('ChatLayout', () => {
  /** liveSaying returns the live regions (status, alert, aria-live but off) whose text holds words. */
  const liveSaying = (words: string) =>
    [...mount.host.querySelectorAll('[role="status"], [role="alert"], [aria-live]')].filter(
      (el) => el.getAttribute('aria-live') !== 'off' && el.textContent!.includes(words),
    );

  it.each([['closed'], ['open']])('offline with the narrow-screen sidebar %s: one live region says it, outside both, and Retry is in each', (drawer) => {
    const { app, opener } = renderApp();
    const retry = vi.spyOn(app, 'retryConnection').mockImplementation(() => undefined);
    if (drawer === 'open') act(() => opener.click());
    expect(liveSaying('Connecting')).toHaveLength(1);
    act(() => app.store.set((s) => ({ ...s, link: { state: 'offline', kind: 'ws', detail: 'message too big' } })));
    const live = liveSaying('Offline');
    expect(live).toHaveLength(1);
    expect(live[0]!.textContent).toBe('Offline (message too big): messages you send wait and go out once the connection is back.');
    // Not in the sidebar (hidden when closed on a phone) nor in the chat's notice (hidden on a desktop: app.css).
    expect(live[0]!.closest('nav, .offline-notice-region')).toBeNull();
    const retries = [...mount.host.querySelectorAll('button')].filter((b) => b.textContent === 'Retry');
    expect(retries.map((b) => (b.closest('nav') ? 'sidebar' : b.closest('main') ? 'chat' : 'elsewhere'))).toEqual(['sidebar', 'chat']);
    act(() => retries[1]!.click());
    expect(retry).toHaveBeenCalledTimes(1);
    act(() => app.store.set((s) => ({ ...s, link: { state: 'connected', kind: 'ws' } })));
    expect(liveSaying('Offline')).toHaveLength(0);
    expect(liveSaying('Connected')).toHaveLength(1); // a Retry that worked is heard on a phone too
  });

  it.each([
    ['Escape', () => key(document.activeElement ?? document.body, 'Escape')],
    ['its close button', () => act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Close conversations"]')!.click())],
  ])('the narrow-screen sidebar takes the focus when opened and, closed with %s, gives it back to the button that opened it', (_name, close) => {
    const { opener } = renderApp();
    opener.focus();
    act(() => opener.click());
    expect(mount.host.querySelector('nav.sidebar')!.contains(document.activeElement)).toBe(true);
    expect(document.activeElement?.textContent?.trim()).toBe('New chat');
    close();
    expect(mount.host.querySelector('nav.sidebar.open')).toBeNull();
    expect(document.activeElement).toBe(opener);
  });


  it.each([
    ['narrow (a phone, a desktop at 200% zoom)', true, true],
    ['wide (the sidebar beside the chat)', false, false],
  ])('on a %s screen the chat behind the open sidebar is inert: Tab and a screen reader stay in the drawer', (_name, narrow, inert) => {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: narrow && q === '(max-width: 760px)', addEventListener: () => undefined, removeEventListener: () => undefined }));
    onTestFinished(() => void vi.unstubAllGlobals());
    const { opener } = renderApp();
    const chat = () => mount.host.querySelector('main.chat')!;
    expect(chat().hasAttribute('inert')).toBe(false);
    opener.focus();
    act(() => opener.click());
    expect(chat().hasAttribute('inert')).toBe(inert);
    expect(mount.host.querySelector('nav.sidebar')!.closest('[inert]')).toBeNull();
    key(document.activeElement ?? document.body, 'Escape');
    expect(chat().hasAttribute('inert')).toBe(false);
    expect(document.activeElement).toBe(opener);
  });

  /** drawerOpen mounts the app on a narrow screen with its drawer open, the chat behind it inert. */
  function drawerOpen() {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: q === '(max-width: 760px)', addEventListener: () => undefined, removeEventListener: () => undefined }));
    onTestFinished(() => void vi.unstubAllGlobals());
    const r = renderApp();
    act(() => r.opener.click());
    expect(mount.host.querySelector('main.chat')!.hasAttribute('inert')).toBe(true);
    return r;
  }
  /** focusShown says where the focus is: not the page, and nothing inert (jsdom lets inert elements take it, browsers do not). */
  const focusShown = () => {
    const at = document.activeElement;
    expect(at).not.toBe(document.body);
    expect(at?.closest('[inert]')).toBeNull();
    return at;
  };

  it('the drawer\'s Retry, gone once connected with the chat behind inert, hands the focus to the status line, not the page', () => {
    const { app } = drawerOpen();
    act(() => app.store.set((s) => ({ ...s, link: { state: 'offline', kind: 'ws', detail: 'message too big' } })));
    const retry = [...mount.host.querySelectorAll<HTMLButtonElement>('nav button')].find((b) => b.textContent === 'Retry')!;
    act(() => retry.focus());
    act(() => app.store.set((s) => ({ ...s, link: { state: 'connected', kind: 'ws' } })));
    expect(focusShown()?.classList.contains('status-line')).toBe(true);
  });

  it('a toast dismissed with the keyboard, nowhere to go back to, leaves the focus in the open drawer, not the inert chat', () => {
    const { app } = drawerOpen();
    act(() => app.toast('Something failed', 'error'));
    const dismiss = mount.host.querySelector<HTMLButtonElement>('.toast button')!;
    act(() => (document.activeElement as HTMLElement | null)?.blur());
    act(() => dismiss.focus());
    act(() => dismiss.click());
    expect(mount.host.querySelector('.toast')).toBeNull();
    expect(mount.host.querySelector('nav.sidebar')!.contains(focusShown()!)).toBe(true);
  });

  it('Escape cancelling a rename in the open (narrow-screen) sidebar leaves the sidebar open; another Escape closes it', () => {
    const c = { id: 'c1', title: 'Old title', model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' };
    const { opener, nav } = renderApp([c]);
    act(() => opener.click());
    expect(nav().classList.contains('open')).toBe(true);
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Rename “Old title”"]')!.click());
    key(mount.host.querySelector('input[aria-label="Conversation title"]')!, 'Escape');
    expect(nav().classList.contains('open')).toBe(true);
    key(document.activeElement ?? document.body, 'Escape');
    expect(nav().classList.contains('open')).toBe(false);
  });

  it('the Escape that cancels a conversion in the open (narrow-screen) sidebar does not close it', () => {
    const { opener, nav } = renderApp();
    act(() => opener.click());
    const search = nav().querySelector('input')!;
    act(() => void search.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true, cancelable: true, isComposing: true })));
    expect(nav().classList.contains('open')).toBe(true);
    key(search, 'Escape');
    expect(nav().classList.contains('open')).toBe(false);
  });
});

describe('Sidebar fields counted as the server counts them (code points)', () => {
  // Their maxLength counted UTF-16 units: 195 letters and 👨‍👩‍👧 (200
  // characters for the server) lost the last person and kept a dangling
  // joiner, and 150 emoji (a valid title) were cut to 100, silently.
  const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}';

  it.each([
    ['195 letters and an emoji family (200 characters)', 'a'.repeat(195) + family],
    ['150 emoji', '\u{1F600}'.repeat(150)],
  ])('a title of %s is kept whole and saved', (_name, title) => {
    const { rename } = render();
    const input = startRename(title);
    expect(input.maxLength).toBe(-1); // no cut by the browser
    act(() => void input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })));
    expect(rename).toHaveBeenCalledWith('c1', title);
  });

  it('a title over 200 characters is refused, saying why, and the field stays until it is shortened or given up', () => {
    const { rename } = render();
    const input = startRename('\u{1F600}'.repeat(201));
    act(() => void input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })));
    expect(document.activeElement).toBe(input);
    act(() => input.blur()); // a blur saves a title: not this one
    expect(rename).not.toHaveBeenCalled();
    expect(input.isConnected).toBe(true);
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(input.getAttribute('aria-describedby')!)?.textContent).toBe('201 / 200 characters: too long. Shorten it by 1 character.');
  });

  it('a search is cut to 200 characters, never inside one', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const setQuery = vi.spyOn(app, 'setQuery').mockImplementation(() => undefined);
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    const search = mount.host.querySelector<HTMLInputElement>('input[type="search"]')!;
    expect(search.maxLength).toBe(-1);
    const type = (value: string) =>
      act(() => {
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(search, value);
        search.dispatchEvent(new Event('input', { bubbles: true }));
      });
    type('\u{1F600}'.repeat(150));
    expect(setQuery).toHaveBeenLastCalledWith('\u{1F600}'.repeat(150));
    type('a'.repeat(197) + family);
    expect(setQuery).toHaveBeenLastCalledWith('a'.repeat(197));
  });

  // Cut at its end, a letter typed in the middle of a full search dropped
  // the search's last character and moved the caret to the end.
  it('a letter typed in the middle of a full search is refused, the text and the caret as they were', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const setQuery = vi.spyOn(app, 'setQuery').mockImplementation((query) => app.store.set((s) => ({ ...s, list: { ...s.list, query } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Sidebar open onClose={() => undefined} />
        </AppProvider>,
      ),
    );
    const search = mount.host.querySelector<HTMLInputElement>('input[type="search"]')!;
    act(() => search.focus());
    const full = 'a'.repeat(100) + 'b'.repeat(100);
    const type = (value: string, caret: number) =>
      act(() => {
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(search, value);
        search.setSelectionRange(caret, caret);
        search.dispatchEvent(new Event('input', { bubbles: true }));
      });
    type(full, 200);
    expect(app.store.state.list.query).toBe(full);
    type('a'.repeat(100) + 'x' + 'b'.repeat(100), 101);
    expect(setQuery).toHaveBeenLastCalledWith(full);
    expect(search.value).toBe(full);
    expect([search.selectionStart, search.selectionEnd]).toEqual([100, 100]);
  });
});
