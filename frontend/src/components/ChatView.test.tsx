// The open conversation in the DOM (jsdom): its settings dialog.

import { act } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { CID, conv, message } from '../lib/testkit';
import { mergeSnapshot, newThread, selectVersion, stepVersion } from '../lib/thread';
import { ChatView } from './ChatView';
import { mountEach } from './testkit';

const mount = mountEach();

describe('ChatView settings dialog', () => {
  it('closes when another conversation is shown (Back while it is open), so nothing of one is saved onto the other', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const render = (id: string | null) =>
      act(() =>
        mount.root.render(
          <AppProvider value={app}>
            <ChatView conversationId={id} onOpenSidebar={() => undefined} />
          </AppProvider>,
        ),
      );
    render('c1');
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="System prompt and parameters"]')!.click());
    expect(mount.host.querySelector('[role="dialog"]')).not.toBeNull();
    render('c1'); // the same conversation rendered again: it stays
    expect(mount.host.querySelector('[role="dialog"]')).not.toBeNull();
    render('c2');
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
    render('c1'); // and does not come back with the first
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
  });
});

describe('ChatView settings saved after the dialog closed', () => {
  it('a refusal that comes after Escape or Cancel is said in a toast, not lost', async () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    let answer: (r: { text: string } | null) => void = () => undefined;
    vi.spyOn(app, 'saveSettings').mockImplementation(() => new Promise((resolve) => (answer = resolve)));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={null} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="System prompt and parameters"]')!.click());
    act(() => [...mount.host.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === 'Save')!.click());
    act(() => {
      document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    });
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
    await act(async () => answer({ text: 'The server could not be reached.' }));
    expect(app.store.state.toasts.map((t) => [t.kind, t.text])).toEqual([['error', 'System prompt and parameters not saved: The server could not be reached.']]);
  });
});

describe('ChatView versions', () => {
  it('stepping through versions with the keyboard keeps the focus on the Previous / Next button, not the page', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    // Three versions of the first question, each with its answer.
    const messages = ['q1', 'q2', 'q3'].flatMap((q) => [message(q, '', 'user', `Question ${q}`, 'complete'), message(`a-${q}`, q, 'assistant', `Answer ${q}`, 'complete')]);
    const thread = selectVersion(mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), messages), 'q1');
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: thread } })));
    vi.spyOn(app, 'switchVersion').mockImplementation((id, dir) =>
      app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: stepVersion(s.threads[CID]!, id, dir) } })),
    );
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const shown = () => mount.host.querySelector('.msg-user .version-count')?.textContent;
    const said = () => mount.host.querySelector('.msg-user .versions [aria-live]')?.textContent;
    const press = (label: string) => {
      const b = document.activeElement as HTMLButtonElement;
      expect(b.getAttribute('aria-label')).toBe(label);
      act(() => b.click());
    };
    expect(shown()).toBe('1/3');
    expect(said()).toBe('Version 1 of 3'); // in words for a screen reader ("1/3" is read "1 slash 3")
    mount.host.querySelector<HTMLButtonElement>('.msg-user button[aria-label="Next version"]')!.focus();
    press('Next version');
    expect(shown()).toBe('2/3');
    expect(said()).toBe('Version 2 of 3');
    press('Next version');
    expect(shown()).toBe('3/3');
    // At the last version Next is disabled: the focus is on Previous.
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Previous version');
    press('Previous version');
    expect(shown()).toBe('2/3');
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Previous version');
  });
});

describe('ChatView Export menu', () => {
  function render() {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const exported = vi.spyOn(app, 'exportConversation').mockImplementation(async () => undefined);
    const thread = mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), [message('q1', '', 'user', 'Question', 'complete')]);
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: thread } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Export"]')!;
    button.focus();
    act(() => button.click());
    return { button, exported };
  }
  const key = (k: string) =>
    act(() => {
      (document.activeElement ?? document.body).dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
    });
  const focused = () => document.activeElement?.textContent;

  it('opened, its first item has the focus and the arrow keys move between the items', () => {
    render();
    expect(focused()).toBe('Export as Markdown');
    key('ArrowDown');
    expect(focused()).toBe('Export as JSON');
    key('ArrowDown');
    expect(focused()).toBe('Export as Markdown');
    key('ArrowUp');
    expect(focused()).toBe('Export as JSON');
  });

  it.each([
    ['Escape', () => key('Escape'), false],
    ['a pick', () => act(() => (document.activeElement as HTMLElement).click()), true],
  ])('closed with %s, it gives the focus back to the Export button, not the page', (_name, close, picked) => {
    const { button, exported } = render();
    expect(document.activeElement?.getAttribute('role')).toBe('menuitem');
    close();
    expect(mount.host.querySelector('[role="menu"]')).toBeNull();
    expect(document.activeElement).toBe(button);
    expect(exported).toHaveBeenCalledTimes(picked ? 1 : 0);
  });
});

describe('ChatView older messages', () => {
  it('Load earlier messages keeps the focus while it loads and, the last ones loaded, leaves it on the list, not the page', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const thread = mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), [message('q2', 'a1', 'user', 'Question', 'complete')], { hasMore: true });
    const set = (patch: Partial<typeof thread>) => act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: { ...s.threads[CID]!, ...patch } } })));
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: thread } })));
    // (jsdom lays nothing out: the list asks at once for the page above, as a short first page does.)
    const loadOlder = vi.spyOn(app, 'loadOlder').mockImplementation(async () => undefined);
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const button = [...mount.host.querySelectorAll<HTMLButtonElement>('button')].find((b) => b.textContent === 'Load earlier messages')!;
    button.focus();
    const asked = loadOlder.mock.calls.length;
    act(() => button.click());
    expect(loadOlder).toHaveBeenCalledTimes(asked + 1);
    set({ loadingOlder: true });
    expect(document.activeElement).toBe(button);
    expect(button.textContent).toBe('Loading earlier messages…');
    act(() => button.click()); // it waits: not asked twice
    expect(loadOlder).toHaveBeenCalledTimes(asked + 1);
    set({ loadingOlder: false, hasMore: false });
    expect(document.activeElement).toBe(mount.host.querySelector('.messages'));
  });
});
