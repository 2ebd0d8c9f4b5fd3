// The open conversation in the DOM (jsdom): its settings dialog.

import { act } from 'react';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp, NEW_CHAT_STARTING, SETTINGS_NOT_LOADED } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { POLITE_STATUS_ID } from '../lib/politeStatus';
import { unavailableNotice } from '../lib/models';
import type { Message } from '../lib/protocol';
import { CID, conv, message, setup } from '../lib/testkit';
import { mergeOlder, mergeSnapshot, newThread, selectVersion, stepVersion, type SnapshotPage, type Thread } from '../lib/thread';
import { ChatView, MODEL_NOT_LOADED } from './ChatView';
import { linkWords } from './StatusLine';
import { mountEach } from './testkit';

const mount = mountEach();

/** loaded puts conversations into app's store as loaded, with no messages and an empty system prompt. */
function loaded(app: ChatApp, ...ids: string[]) {
  act(() =>
    app.store.set((s) => ({ ...s, threads: { ...s.threads, ...Object.fromEntries(ids.map((id) => [id, mergeSnapshot(newThread(id), conv(id, 'T', '2026-01-01T00:00:00Z'), [])])) } })),
  );
}

describe('ChatView settings dialog', () => {
  it('is not offered while the conversation is not loaded (loading, or failed to), saying why: it would show and save the new chat\'s', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, newChat: { ...s.newChat, systemPrompt: 'The new chat’s prompt' } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId="c1" onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const button = () => mount.host.querySelector<HTMLButtonElement>('button[aria-label="System prompt and parameters"]')!;
    const offered = () => [button().disabled, button().title];
    expect(offered()).toEqual([true, SETTINGS_NOT_LOADED]); // loading
    act(() => button().click());
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
    act(() => app.store.set((s) => ({ ...s, threadErrors: { c1: 'The server could not be reached.' } })));
    expect(offered()).toEqual([true, SETTINGS_NOT_LOADED]); // failed to load
    act(() => app.store.set((s) => ({ ...s, threadErrors: {} })));
    loaded(app, 'c1');
    expect(offered()).toEqual([false, 'System prompt and parameters']);
    act(() => button().click());
    expect(mount.host.querySelector<HTMLTextAreaElement>('[role="dialog"] textarea')!.value).toBe(''); // c1's, not the new chat's
  });

  it('closes when another conversation is shown (Back while it is open), so nothing of one is saved onto the other', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    loaded(app, 'c1', 'c2');
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

describe('ChatView settings dialog closed by navigation', () => {
  /** setUp renders ChatView of a ChatApp offline, conversations c1 and c2 loaded with an empty system prompt. */
  function setUp() {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    loaded(app, 'c1', 'c2');
    const show = (id: string | null) =>
      act(() =>
        mount.root.render(
          <AppProvider value={app}>
            <ChatView conversationId={id} onOpenSidebar={() => undefined} />
          </AppProvider>,
        ),
      );
    const open = () => act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="System prompt and parameters"]')!.click());
    const prompt = () => mount.host.querySelector<HTMLTextAreaElement>('[role="dialog"] textarea');
    const type = (value: string) =>
      act(() => {
        Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value')!.set!.call(prompt()!, value);
        prompt()!.dispatchEvent(new Event('input', { bubbles: true }));
      });
    const press = (label: string) =>
      act(() => [...mount.host.querySelectorAll<HTMLButtonElement>('[role="dialog"] button')].find((b) => b.textContent === label)!.click());
    const restoredNote = () => [...mount.host.querySelectorAll('[role="dialog"] .hint')].some((p) => p.textContent?.startsWith('Your unsaved system prompt is back'));
    return { app, show, open, prompt, type, press, restoredNote };
  }

  it('keeps a typed system prompt for its conversation, shown again when the dialog is opened there, until Cancel discards it', () => {
    const { show, open, prompt, type, press, restoredNote } = setUp();
    show('c1');
    open();
    type('Be brief.');
    show('c2'); // Back: the dialog closes
    expect(prompt()).toBeNull();
    open();
    expect(prompt()!.value).toBe(''); // not c1's text
    expect(restoredNote()).toBe(false);
    press('Cancel');
    show('c1');
    open();
    expect(prompt()!.value).toBe('Be brief.');
    expect(restoredNote()).toBe(true);
    press('Cancel');
    open();
    expect(prompt()!.value).toBe('');
    expect(restoredNote()).toBe(false);
  });

  it('saves the text kept, then forgets it', async () => {
    const { app, show, open, prompt, type, press } = setUp();
    const save = vi.spyOn(app, 'saveSettings').mockResolvedValue(null);
    show('c1');
    open();
    type('Be brief.');
    show('c2');
    show('c1');
    open();
    await act(async () => press('Save'));
    expect(save).toHaveBeenCalledWith('Be brief.', {});
    expect(prompt()).toBeNull();
    expect(app.settingsDraft('c1')).toBeUndefined();
  });

  it('forgets a text typed back to the stored one', () => {
    const { app, show, open, type } = setUp();
    show('c1');
    open();
    type('Be brief.');
    type('');
    show('c2');
    expect(app.settingsDraft('c1')).toBeUndefined();
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
    // Said in the page's polite region, which stays: one in the message element came new with each version.
    const region = document.createElement('div');
    region.id = POLITE_STATUS_ID;
    document.body.append(region);
    onTestFinished(() => region.remove());
    const said = () => region.textContent;
    const read = () => mount.host.querySelector('.msg-user .versions .sr-only')?.textContent;
    const press = (label: string) => {
      const b = document.activeElement as HTMLButtonElement;
      expect(b.getAttribute('aria-label')).toBe(label);
      act(() => b.click());
    };
    expect(shown()).toBe('1/3');
    expect(read()).toBe('Version 1 of 3'); // in words for a screen reader ("1/3" is read "1 slash 3")
    expect(mount.host.querySelector('.msg-user [aria-live], .msg-user [role="status"]')).toBeNull();
    mount.host.querySelector<HTMLButtonElement>('.msg-user button[aria-label="Next version"]')!.focus();
    press('Next version');
    expect(shown()).toBe('2/3');
    expect(said()).toBe('Version 2 of 3');
    press('Next version');
    expect(shown()).toBe('3/3');
    // At the last version Next is disabled: the focus is on Previous.
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Previous version');
    expect(said()).toBe('Version 3 of 3');
    press('Previous version');
    expect(shown()).toBe('2/3');
    expect(said()).toBe('Version 2 of 3');
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
  /**
   * shownWithOlder shows a conversation of messages, older ones on the
   * server (hasMore), with app.loadOlder spied on (it loads nothing).
   * jsdom lays nothing out: every page is shorter than the screen.
   */
  function shownWithOlder(messages: Message[]) {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const thread = mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), messages, { hasMore: true });
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: thread } })));
    const loadOlder = vi.spyOn(app, 'loadOlder').mockImplementation(async () => undefined);
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    return { app, loadOlder };
  }

  it('Load earlier messages keeps the focus while it loads and, the last ones loaded, leaves it on the list, not the page', () => {
    const { app, loadOlder } = shownWithOlder([message('q2', 'a1', 'user', 'Question', 'complete')]);
    const set = (patch: Partial<Thread>) => act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: { ...s.threads[CID]!, ...patch } } })));
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

  it.each([
    ['lacks its start', [message('q2', 'a1', 'user', 'Question', 'complete')], 1],
    // A new first question (an edit of the first one): older pages hold the old versions only.
    ['runs from the first message', [message('q9', '', 'user', 'Question again', 'complete')], 0],
  ])('a short page whose path %s asks for older messages by itself only when it lacks its start', (_name, messages, asks) => {
    const { loadOlder } = shownWithOlder(messages);
    expect(loadOlder).toHaveBeenCalledTimes(asks);
    expect([...mount.host.querySelectorAll('button')].some((b) => b.textContent === 'Load earlier messages')).toBe(true);
  });
});

describe('ChatView edit box when the shown branch changes elsewhere', () => {
  // q1 / a1, then two versions of the second question (q2, q2b), each with
  // its answer; and a second version of the first question (q1b), without
  // the second question under it.
  const messages = [
    message('q1', '', 'user', 'First', 'complete'),
    message('a1', 'q1', 'assistant', 'Answer 1', 'complete'),
    message('q2', 'a1', 'user', 'Second', 'complete'),
    message('a2', 'q2', 'assistant', 'Answer 2', 'complete'),
    message('q2b', 'a1', 'user', 'Second, again', 'complete'),
    message('a2b', 'q2b', 'assistant', 'Answer 2b', 'complete'),
    message('q1b', '', 'user', 'First, again', 'complete'),
  ];

  function setupEdit() {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const show = (...ids: string[]) =>
      act(() =>
        app.store.set((s) => ({
          ...s,
          threads: { ...s.threads, [CID]: ids.reduce(selectVersion, s.threads[CID] ?? mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), messages)) },
        })),
      );
    show('q1', 'q2');
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const second = [...mount.host.querySelectorAll('.msg-user')].find((m) => m.textContent?.includes('Second'))!;
    act(() => second.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
    const box = mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')!;
    act(() => {
      Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value')!.set!.call(box, 'Second, as I mean it');
      box.dispatchEvent(new Event('input', { bubbles: true }));
    });
    return { app, show };
  }

  it('another version of the edited message shown: the edit box stays open with what was typed', () => {
    const { app, show } = setupEdit();
    show('q2b'); // another tab stepped to the other version of the message being edited
    const box = mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea');
    expect(box?.value).toBe('Second, as I mean it');
    expect(document.activeElement).toBe(box);
    // Cancelled (its changes discarded, when asked), then opened again: a new edit, of the version shown.
    act(() => [...mount.host.querySelectorAll<HTMLButtonElement>('.edit-box button')].find((b) => b.textContent === 'Cancel')!.click());
    act(() => [...mount.host.querySelectorAll<HTMLButtonElement>('.edit-box button')].find((b) => b.textContent === 'Discard')!.click());
    act(() => mount.host.querySelector<HTMLButtonElement>('[data-message-id="q2b"] button[aria-label="Edit message"]')!.click());
    expect(mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')?.value).toBe('Second, again');
    const again = mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')!;
    act(() => {
      Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value')!.set!.call(again, 'Second, as I mean it');
      again.dispatchEvent(new Event('input', { bubbles: true }));
    });
    // Sent from there, it is a new version under the same parent.
    const edit = vi.spyOn(app, 'editAndResend').mockImplementation(async () => undefined);
    act(() => [...mount.host.querySelectorAll<HTMLButtonElement>('.edit-box button')].find((b) => b.textContent === 'Send')!.click());
    expect(edit).toHaveBeenCalledWith('q2b', 'Second, as I mean it');
    show('q2'); // closed once sent: it does not open again
    expect(mount.host.querySelector('.edit-box')).toBeNull();
  });

  it('reopened on the other version, it does not take the focus from where the user went meanwhile', () => {
    const { show } = setupEdit();
    const composer = mount.host.querySelector<HTMLTextAreaElement>('.composer textarea, textarea[aria-label="Message"]')!;
    composer.focus();
    show('q2b');
    expect(mount.host.querySelector<HTMLTextAreaElement>('.edit-box textarea')?.value).toBe('Second, as I mean it');
    expect(document.activeElement).toBe(composer);
  });

  it('a branch without the edited message shown: its text goes to the message box, said in a toast', () => {
    const { app, show } = setupEdit();
    show('q1b');
    expect(mount.host.querySelector('.edit-box')).toBeNull();
    expect(app.draft(CID)).toBe('Second, as I mean it');
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(['The message you were editing is no longer shown: your edit is in the message box.']);
    show('q1'); // back: the edit is in the composer, not open twice
    expect(mount.host.querySelector('.msg-user')?.textContent).toContain('First');
    expect(mount.host.querySelector('.edit-box')).toBeNull();
  });

  it('an edit left unchanged is just closed, nothing put in the message box', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    app.edits.open(CID, 'a1', 'Second');
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: selectVersion(mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), messages), 'q1b') } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    expect(app.draft(CID)).toBe('');
    expect(app.store.state.toasts).toEqual([]);
    expect(app.edits.get(CID, 'a1')).toBeUndefined();
  });
});

describe('ChatView offline notice', () => {
  it('says the link is offline with a Retry in the chat itself (the hidden drawer holds the only other one)', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const retry = vi.spyOn(app, 'retryConnection').mockImplementation(() => undefined);
    const render = () =>
      act(() =>
        mount.root.render(
          <AppProvider value={app}>
            <ChatView conversationId={null} onOpenSidebar={() => undefined} />
          </AppProvider>,
        ),
      );
    render();
    const region = () => mount.host.querySelector('main .offline-notice-region');
    expect(region()).not.toBeNull();
    expect(region()!.textContent).toBe('');
    act(() => app.store.set((s) => ({ ...s, link: { state: 'offline', kind: 'ws', detail: 'message too big' } })));
    expect(region()!.textContent).toBe('Offline (message too big): messages you send wait and go out once the connection is back. Retry');
    expect(region()!.closest('[role="status"], [aria-live]')).toBeNull(); // LinkAnnouncer says it (App)
    const button = [...region()!.querySelectorAll('button')].find((b) => b.textContent === 'Retry');
    expect(button).toBeDefined();
    act(() => button!.focus());
    act(() => button!.click());
    expect(retry).toHaveBeenCalledTimes(1);
    act(() => app.store.set((s) => ({ ...s, link: { state: 'reconnecting', kind: 'ws' } })));
    expect(region()!.textContent).toBe('');
    // The Retry had the focus: it goes to the message box, not the page.
    expect(document.activeElement).toBe(mount.host.querySelector('textarea[aria-label="Message"]'));
  });
});

describe('ChatView new chat waiting', () => {
  it('says chatd\'s reason while the link is up, the connection while it is not', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const reason = 'the server is shutting down; retry';
    act(() => app.store.set((s) => ({ ...s, busy: { new: true }, newChat: { ...s.newChat, waiting: true, serverWait: reason } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={null} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const notice = () => mount.host.querySelector('.composer-wrap .counter [role="status"]')?.textContent;
    act(() => app.store.set((s) => ({ ...s, link: { state: 'connected', kind: 'ws' } })));
    expect(notice()).toBe('Waiting for the server: The server is shutting down. Your new conversation starts when it can take it, with the message below.');
    act(() => app.store.set((s) => ({ ...s, link: { state: 'reconnecting', kind: 'ws' } })));
    expect(notice()).toBe('Your new conversation starts as soon as the server can be reached, with the message below.');
  });
});

describe('ChatView new chat sent and waiting for its conversation', () => {
  it('offers neither its settings nor another model, saying why, as its composer is read-only; again once cancelled', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, models: [{ id: 'm', name: 'M', demo: false, default: true }, { id: 'o', name: 'O', demo: false, default: false }] })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={null} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const button = () => mount.host.querySelector<HTMLButtonElement>('button[aria-label="System prompt and parameters"]')!;
    const picker = () => mount.host.querySelector<HTMLSelectElement>('select[aria-label="Model"]')!;
    const offered = () => ({ settings: [button().disabled, button().title], picker: [picker().disabled, picker().title] });
    expect(offered()).toEqual({ settings: [false, 'System prompt and parameters'], picker: [false, 'Model'] });
    act(() => app.store.set((s) => ({ ...s, busy: { new: true }, newChat: { ...s.newChat, waiting: true } })));
    expect(offered()).toEqual({ settings: [true, NEW_CHAT_STARTING], picker: [true, NEW_CHAT_STARTING] });
    act(() => button().click());
    expect(mount.host.querySelector('[role="dialog"]')).toBeNull();
    act(() => app.store.set((s) => ({ ...s, busy: {}, newChat: { ...s.newChat, waiting: false } }))); // cancelled
    expect(offered()).toEqual({ settings: [false, 'System prompt and parameters'], picker: [false, 'Model'] });
  });
});

describe('ChatView model picker', () => {
  const listed = [
    { id: 'demo', name: 'Demo', demo: true, default: true },
    { id: 'other', name: 'Other', demo: false, default: false },
  ];
  /** setUp renders the chat of conversationId (null: a new chat) over a ChatApp offline, the models given. */
  function setUp(conversationId: string | null, models: Array<{ id: string; name: string; demo: boolean; default: boolean }>) {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, models })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={conversationId} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const picker = () => mount.host.querySelector<HTMLSelectElement>('select[aria-label="Model"]')!;
    const shown = () => ({ value: picker().value, label: picker().selectedOptions[0]?.textContent, demoNote: !!mount.host.querySelector('.demo-note:not(.model-unavailable)') });
    return { app, picker, shown };
  }

  it('shows the default for the new chat\'s saved pick the list lacks, saying so (new chats use it), and the pick once listed', () => {
    const { app, shown } = setUp(null, listed);
    const note = () => mount.host.querySelector('.model-unavailable')?.textContent;
    act(() => app.store.set((s) => ({ ...s, newChat: { ...s.newChat, model: 'm' } })));
    expect(shown()).toEqual({ value: 'demo', label: 'Demo (offline)', demoNote: true });
    expect(note()).toBe(unavailableNotice('m'));
    act(() => app.store.set((s) => ({ ...s, models: [...listed, { id: 'm', name: 'M', demo: false, default: false }] })));
    expect(shown()).toEqual({ value: 'm', label: 'M', demoNote: false });
    expect(note()).toBeUndefined();
  });

  it('shows a conversation\'s stored model the list lacks as unavailable, not the default', () => {
    const { app, picker, shown } = setUp(CID, listed);
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: mergeSnapshot(newThread(CID), { ...conv(CID, 'T', '2026-01-01T00:00:00Z'), model: 'gone' }, []) } })));
    expect(shown()).toEqual({ value: 'gone', label: 'gone (unavailable)', demoNote: false });
    expect(picker().selectedOptions[0]?.disabled).toBe(true); // not offered to be picked again
    expect(picker().title).toMatch(/not offered by the server right now/);
  });

  it('shows no model, disabled and saying why, while the conversation is not loaded (loading, or failed to): not the new chat\'s', () => {
    const { app, picker, shown } = setUp(CID, listed); // the new chat's model: the default, the demo
    const offered = () => ({ ...shown(), disabled: picker().disabled, title: picker().title });
    const locked = (label: string) => ({ value: label, label, demoNote: false, disabled: true, title: MODEL_NOT_LOADED });
    expect(offered()).toEqual(locked('Loading…'));
    act(() => app.store.set((s) => ({ ...s, threadErrors: { [CID]: 'The server could not be reached.' } })));
    expect(offered()).toEqual(locked('Model unknown'));
    act(() => app.store.set((s) => ({ ...s, threadErrors: {}, threads: { ...s.threads, [CID]: mergeSnapshot(newThread(CID), { ...conv(CID, 'T', '2026-01-01T00:00:00Z'), model: 'other' }, []) } })));
    expect(offered()).toEqual({ value: 'other', label: 'Other', demoNote: false, disabled: false, title: 'Model' });
  });

  it('with no model picked shows the default', () => {
    const { shown } = setUp(null, listed);
    expect(shown()).toEqual({ value: 'demo', label: 'Demo (offline)', demoNote: true });
  });
});

describe('ChatView: a streaming answer whose live channel closed', () => {
  it.each([
    ['a cut (1006), reconnected by itself', 1006, 'Connection lost. Reconnecting…', 'reconnecting'],
    ['a policy violation (1008), not reconnected', 1008, 'Offline: the answer continues on the server and resumes here where it stopped once you press Retry to reconnect.', 'offline'],
    ['a frame too big (1009), not reconnected', 1009, 'Offline: the answer continues on the server and resumes here where it stopped once you press Retry to reconnect.', 'offline'],
  ])('after %s says what the status line says', async (_name, code, says, state) => {
    const { app, socket, answer } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hel', 'streaming')]] });
    await vi.waitFor(() => expect(answer()?.status).toBe('streaming'));
    socket().open();
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const note = () => mount.host.querySelector('.msg-assistant .msg-status')?.textContent ?? '';
    expect(note()).toBe('');
    act(() => socket().cut(code));
    expect(app.store.state.link.state).toBe(state);
    expect(note()).toContain(says);
    if (state === 'offline') expect(note()).not.toContain('Reconnecting');
    // Queued sends go out once Retry is pressed: nothing reconnects by itself after a policy close.
    if (state === 'offline') expect(linkWords(app.store.state.link)).toMatch(/^Offline: .+\. Messages you send wait and go out once you press Retry\.$/);
    await app.logout(); // its reconnects end
  });
});

describe('ChatView focus of buttons that go once pressed', () => {
  function render(app: ChatApp) {
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
  }
  const newApp = () => new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });

  it('a failed load\'s Try again hands its focus to the list, which shows the load and then the conversation', () => {
    const app = newApp();
    act(() => app.store.set((s) => ({ ...s, threadErrors: { [CID]: 'The server could not be reached.' } })));
    vi.spyOn(app, 'loadThread').mockImplementation(async () => app.store.set((s) => ({ ...s, threadErrors: {} })));
    render(app);
    const again = [...mount.host.querySelectorAll('button')].find((b) => b.textContent === 'Try again')!;
    act(() => again.focus());
    act(() => again.click());
    expect(mount.host.contains(again)).toBe(false);
    expect(document.activeElement).toBe(mount.host.querySelector('.messages'));
    loaded(app, CID);
    expect(document.activeElement).toBe(mount.host.querySelector('.messages'));
  });

  it.each([
    ['motion', false, 'smooth'],
    ['reduced motion', true, 'auto'],
  ])('"Scroll to the latest message" (%s) scrolls, at once under reduced motion, and hands its focus to the message box as it goes', (_name, reduce, behavior) => {
    vi.stubGlobal('matchMedia', (q: string) => ({ matches: reduce && q === '(prefers-reduced-motion: reduce)' }));
    onTestFinished(() => void vi.unstubAllGlobals());
    const app = newApp();
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), [message('q1', '', 'user', 'Question', 'complete')]) } })));
    render(app);
    const list = mount.host.querySelector<HTMLDivElement>('.messages')!;
    let top = 0;
    Object.defineProperty(list, 'scrollHeight', { configurable: true, get: () => 2000 });
    Object.defineProperty(list, 'clientHeight', { configurable: true, get: () => 500 });
    Object.defineProperty(list, 'scrollTop', { configurable: true, get: () => top, set: (v: number) => (top = v) });
    const scrolled = vi.fn((o: ScrollToOptions) => {
      top = (o.top ?? 0) - 500;
      list.dispatchEvent(new Event('scroll'));
    });
    list.scrollTo = scrolled as unknown as typeof list.scrollTo;
    top = 1500;
    act(() => list.dispatchEvent(new Event('scroll'))); // at the bottom
    top = 0;
    act(() => list.dispatchEvent(new Event('scroll'))); // the reader scrolled up
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Scroll to the latest message"]')!;
    act(() => button.focus());
    act(() => button.click());
    expect(scrolled).toHaveBeenCalledWith({ top: 2000, behavior });
    expect(mount.host.contains(button)).toBe(false);
    expect(document.activeElement).toBe(mount.host.querySelector('textarea[aria-label="Message"]'));
  });
});

describe('ChatView following a streaming answer', () => {
  /**
   * setUp renders a conversation whose answer streams, the list given a
   * layout: 500 px tall, its content 40 px a delta taller, its scrollTop
   * kept within range (as a browser clamps it), and resize observers told
   * of a frame's changes of size when frame() is called.
   */
  function setUp(msgs = [message('u1', '', 'user', 'Question', 'complete'), message('a1', 'u1', 'assistant', 'Hel', 'streaming')], page: SnapshotPage = {}) {
    const observers = new Set<{ callback: ResizeObserverCallback; targets: Element[] }>();
    vi.stubGlobal(
      'ResizeObserver',
      class {
        private readonly o: { callback: ResizeObserverCallback; targets: Element[] };
        constructor(callback: ResizeObserverCallback) {
          this.o = { callback, targets: [] };
          observers.add(this.o);
        }
        observe(t: Element) {
          this.o.targets.push(t);
        }
        unobserve() {}
        disconnect() {
          observers.delete(this.o);
        }
      },
    );
    onTestFinished(() => void vi.unstubAllGlobals());
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: mergeSnapshot(newThread(CID), conv(CID, 'T', '2026-01-01T00:00:00Z'), msgs, page) } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <ChatView conversationId={CID} onOpenSidebar={() => undefined} />
        </AppProvider>,
      ),
    );
    const list = mount.host.querySelector<HTMLDivElement>('.messages')!;
    const content = mount.host.querySelector<HTMLDivElement>('.messages-inner')!;
    let height = 2000;
    let top = 0;
    let reads = 0;
    Object.defineProperty(list, 'scrollHeight', { configurable: true, get: () => (reads++, height) });
    Object.defineProperty(list, 'clientHeight', { configurable: true, get: () => 500 });
    Object.defineProperty(list, 'scrollTop', { configurable: true, get: () => top, set: (v: number) => (top = Math.max(0, Math.min(v, height - 500))) });
    const bottom = () => height - 500;
    /** frame ends a frame whose layout changed the content's size: the observers hear of it. */
    const frame = () =>
      act(() => {
        for (const o of [...observers]) if (o.targets.includes(content)) o.callback([{ target: content } as unknown as ResizeObserverEntry], {} as ResizeObserver);
      });
    /** render grows the answer (and the content, px): the list renders again. */
    const render = (px = 40) => {
      height += px;
      act(() =>
        app.store.set((s) => {
          const t = s.threads[CID]!;
          const a = t.messages.a1!;
          return { ...s, threads: { ...s.threads, [CID]: { ...t, messages: { ...t.messages, a1: { ...a, content: a.content + ' more' } } } } };
        }),
      );
    };
    /** delta is a render and the frame that lays it out. */
    const delta = (px = 40) => {
      render(px);
      frame();
    };
    /** scroll moves the view as the reader does; with event, its scroll event comes before the next update. */
    const scroll = (to: number, event = true) => {
      top = to;
      if (event) act(() => list.dispatchEvent(new Event('scroll')));
    };
    /** shrink makes the content px shorter, the view clamped to it. */
    const shrink = (px: number) => {
      height -= px;
      top = Math.min(top, height - 500);
    };
    const toLatest = () => mount.host.querySelector('button[aria-label="Scroll to the latest message"]');
    delta(); // followed so far
    expect(list.scrollTop).toBe(bottom());
    return { app, list, render, frame, delta, scroll, bottom, shrink, toLatest, reads: () => reads, grow: (px: number) => (height += px) };
  }

  it('reads the layout (scrollHeight) at most once a frame, not at each render: it pins after the frame\'s layout', () => {
    const { list, render, frame, bottom, reads } = setUp();
    const at = reads();
    render();
    render();
    render();
    expect(reads()).toBe(at);
    expect(list.scrollTop).toBe(bottom() - 120); // not pinned yet: the frame's layout has not come
    frame();
    expect(reads()).toBe(at + 1);
    expect(list.scrollTop).toBe(bottom());
  });

  it('follows content that changes size without a render (a message laid out at its real height), but not a section the reader opens', () => {
    const { list, frame, bottom, grow } = setUp();
    grow(300); // a message above laid out at its real height, not its estimate
    frame();
    expect(list.scrollTop).toBe(bottom());
    act(() => list.dispatchEvent(new Event('pointerdown', { bubbles: true }))); // the reader opens Thinking
    const at = list.scrollTop;
    grow(200);
    frame();
    expect(list.scrollTop).toBe(at);
  });

  it.each([
    ['its scroll event seen', true],
    ['before its scroll event came (a smooth scroll\'s first step)', false],
  ])('a scroll up of 30 px, well within 80 px of the bottom, stops the following (%s)', (_name, event) => {
    const { list, delta, scroll, bottom, toLatest } = setUp();
    const at = bottom() - 30;
    scroll(at, event);
    delta();
    expect(list.scrollTop).toBe(at);
    delta();
    expect(list.scrollTop).toBe(at);
    expect(toLatest()).not.toBeNull();
    expect(list.classList.contains('away')).toBe(true); // the browser anchors scrolling again (app.css)
  });

  it('wheel or trackpad steps of 20 px up are not undone by the updates between them', () => {
    const { list, delta, bottom } = setUp();
    for (let i = 0; i < 3; i++) {
      act(() => list.dispatchEvent(new WheelEvent('wheel', { deltaY: -20, bubbles: true })));
      delta(); // before the step moved the view
      list.scrollTop -= 20;
      act(() => list.dispatchEvent(new Event('scroll')));
    }
    expect(bottom() - list.scrollTop).toBe(3 * 40 + 3 * 20);
  });

  it('an arrow key up stops the following before its smooth scroll moves the view', () => {
    const { list, delta, bottom } = setUp();
    const at = list.scrollTop;
    act(() => document.body.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowUp', bubbles: true })));
    delta();
    expect(list.scrollTop).toBe(at);
    expect(bottom() - list.scrollTop).toBe(40);
  });

  it('follows again once the reader scrolls back to (near) the bottom, or presses "Scroll to the latest message"', () => {
    const { list, delta, scroll, bottom, toLatest } = setUp();
    scroll(bottom() - 300);
    delta();
    scroll(bottom() - 50); // down, within 80 px
    delta();
    expect(list.scrollTop).toBe(bottom());
    expect(toLatest()).toBeNull();
    expect(list.classList.contains('away')).toBe(false);
    scroll(bottom() - 300);
    scroll(bottom());
    delta();
    expect(list.scrollTop).toBe(bottom());
    scroll(bottom() - 300);
    list.scrollTo = (() => undefined) as typeof list.scrollTo; // a smooth scroll, still under way
    act(() => (toLatest() as HTMLButtonElement).click());
    delta();
    expect(list.scrollTop).toBe(bottom());
  });

  it('a view pulled up by content that shrank, at the bottom, keeps following', () => {
    const { list, delta, bottom, shrink } = setUp();
    shrink(100); // a browser pulls the view up 100 px, keeping it at the bottom
    act(() => list.dispatchEvent(new Event('scroll')));
    delta();
    expect(list.scrollTop).toBe(bottom());
    shrink(100); // and a render before its scroll event came
    delta(0);
    expect(list.scrollTop).toBe(bottom());
  });

  it('older messages put above a reader scrolled up keep the same message under the eye, though the answer grew below meanwhile', () => {
    const { app, list, delta, scroll, bottom, grow } = setUp([message('u1', 'a0', 'user', 'Question', 'complete'), message('a1', 'u1', 'assistant', 'Hel', 'streaming')], { hasMore: true });
    vi.spyOn(app, 'loadOlder').mockImplementation(async () => undefined);
    // u1 stands 600 px lower in the content once the older messages are above it.
    let above = 0;
    vi.spyOn(Element.prototype, 'getBoundingClientRect').mockImplementation(function (this: Element) {
      const y = this.getAttribute('data-message-id') === 'u1' ? 100 + above - list.scrollTop : 0;
      return { top: y, bottom: y, left: 0, right: 0, width: 0, height: 0, x: 0, y, toJSON: () => y } as DOMRect;
    });
    scroll(bottom() - 300);
    const at = list.scrollTop;
    delta(); // the answer grows below, while the page above is fetched
    delta();
    above = 600;
    grow(600);
    act(() => app.store.set((s) => ({ ...s, threads: { ...s.threads, [CID]: mergeOlder(s.threads[CID]!, [message('q0', '', 'user', 'Q', 'complete'), message('a0', 'q0', 'assistant', 'A', 'complete')], false) } })));
    expect(mount.host.querySelector('[data-message-id]')?.getAttribute('data-message-id')).toBe('q0');
    expect(list.scrollTop).toBe(at + 600);
  });
});
