// The message box in the DOM (jsdom): where the focus goes on sending.

import { act } from 'react';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { MAX_MESSAGE_CHARS } from '../lib/limits';
import { Composer, STOP_TAP_GUARD_MS } from './Composer';
import { mountEach, typeInto, watchLive } from './testkit';

const mount = mountEach();

/** pointer makes the page's pointer a finger (coarse) or a mouse (fine) for the test. */
function pointer(coarse: boolean) {
  vi.stubGlobal('matchMedia', (q: string) => ({
    matches: q === '(pointer: coarse)' ? coarse : q === '(pointer: fine)' ? !coarse : false,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
  }));
  onTestFinished(() => void vi.unstubAllGlobals());
}

/**
 * tap presses el as a browser does with a finger: the press moves the focus
 * to it unless its pointerdown or mousedown is cancelled (a cancelled
 * pointerdown sends no mousedown), then its click, of detail 1 (a key's is 0).
 */
function tap(el: HTMLElement) {
  act(() => {
    const down = new MouseEvent('pointerdown', { bubbles: true, cancelable: true });
    el.dispatchEvent(down);
    const mouse = new MouseEvent('mousedown', { bubbles: true, cancelable: true });
    if (!down.defaultPrevented) el.dispatchEvent(mouse);
    if (!down.defaultPrevented && !mouse.defaultPrevented) el.focus();
    el.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, detail: 1 }));
  });
}

function render(streaming = false) {
  const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
  const send = vi.spyOn(app, 'send').mockImplementation(async () => undefined);
  const stop = vi.spyOn(app, 'stop').mockImplementation(async () => undefined);
  app.setDraft('new', 'a question');
  act(() =>
    mount.root.render(
      <AppProvider value={app}>
        <Composer draftKey="new" streaming={streaming} busy={false} />
      </AppProvider>,
    ),
  );
  return { send, stop };
}

describe('Composer', () => {
  it('sent with its button (mouse or keyboard), the focus goes back to the message box for the next message', () => {
    const { send } = render();
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Send message"]')!;
    button.focus();
    act(() => button.click());
    expect(send).toHaveBeenCalledWith('a question');
    expect(document.activeElement).toBe(mount.host.querySelector('textarea'));
  });

  it('stopped with its button, the focus goes to the message box too (the button is disabled once the answer ends)', () => {
    const { stop } = render(true);
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Stop generating"]')!;
    button.focus();
    act(() => button.click());
    expect(stop).toHaveBeenCalled();
    expect(document.activeElement).toBe(mount.host.querySelector('textarea'));
  });

  // Disabled, the Send that took its place dropped the focus to the page
  // (Chromium): the next Tab went to New chat.
  it('Stop focused when the answer ends by itself, the focus stays on the button, Send now, aria-disabled with the box empty: a press sends nothing', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const send = vi.spyOn(app, 'send').mockImplementation(async () => undefined);
    const view = (streaming: boolean) => (
      <AppProvider value={app}>
        <Composer draftKey="new" streaming={streaming} busy={false} />
      </AppProvider>
    );
    act(() => mount.root.render(view(true)));
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Stop generating"]')!;
    button.focus();
    act(() => mount.root.render(view(false)));
    const focused = document.activeElement as HTMLButtonElement;
    expect(focused.getAttribute('aria-label')).toBe('Send message');
    expect(focused.matches(':disabled'), 'a disabled button loses the focus').toBe(false);
    expect(focused.getAttribute('aria-disabled')).toBe('true');
    act(() => focused.click());
    expect(send).not.toHaveBeenCalled();
    act(() => app.setDraft('new', 'a question'));
    expect(focused.hasAttribute('aria-disabled')).toBe(false);
  });

  it.each([
    ['a touch screen: Enter adds a line (a phone has no Shift+Enter), the button sends', true, false, 'Send a message', 'enter'],
    ['a mouse and keyboard: Enter sends', false, true, 'Send a message (Enter to send, Shift+Enter for a new line)', 'send'],
  ])('%s', (_name, coarse, sends, placeholder, hint) => {
    pointer(coarse);
    const { send } = render();
    const ta = mount.host.querySelector('textarea')!;
    expect(ta.placeholder).toBe(placeholder);
    expect(ta.getAttribute('enterkeyhint')).toBe(hint);
    const enter = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true });
    act(() => void ta.dispatchEvent(enter));
    expect(send).toHaveBeenCalledTimes(sends ? 1 : 0);
    expect(enter.defaultPrevented).toBe(sends); // not prevented: the browser adds the line
    act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', ctrlKey: true, bubbles: true, cancelable: true })));
    expect(send).toHaveBeenCalledWith('a question'); // a tablet's hardware keyboard: Ctrl+Enter
  });

  it.each([
    ['Send', false, 'Send message'],
    ['Stop', true, 'Stop generating'],
  ])('on a touch screen, tapping %s leaves the focus in the box: the keyboard stays up', (_name, streaming, label) => {
    pointer(true);
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const { send, stop } = render(streaming);
    vi.advanceTimersByTime(STOP_TAP_GUARD_MS);
    const ta = mount.host.querySelector('textarea')!;
    ta.focus();
    tap(mount.host.querySelector<HTMLButtonElement>(`button[aria-label="${label}"]`)!);
    expect((streaming ? stop : send)).toHaveBeenCalledTimes(1);
    expect(document.activeElement).toBe(ta);
  });

  it('on a touch screen, a double tap on Send does not stop the answer it asked for: Stop takes taps once it has been there a moment, keys at once', () => {
    pointer(true);
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const send = vi.spyOn(app, 'send').mockImplementation(async () => undefined);
    const stop = vi.spyOn(app, 'stop').mockImplementation(async () => undefined);
    app.setDraft('new', 'a question');
    const view = (streaming: boolean) => (
      <AppProvider value={app}>
        <Composer draftKey="new" streaming={streaming} busy={false} />
      </AppProvider>
    );
    act(() => mount.root.render(view(false)));
    tap(mount.host.querySelector<HTMLButtonElement>('button[aria-label="Send message"]')!);
    expect(send).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(50);
    act(() => mount.root.render(view(true))); // the answer starts: Stop takes Send's place
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Stop generating"]')!;
    for (const ms of [150, 200, STOP_TAP_GUARD_MS - 350 - 1]) {
      vi.advanceTimersByTime(ms);
      tap(button); // the double tap's second
    }
    expect(stop).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    tap(button);
    expect(stop).toHaveBeenCalledTimes(1);

    act(() => mount.root.render(view(false)));
    act(() => mount.root.render(view(true)));
    act(() => button.click()); // a key on the focused button (click of detail 0): at once
    expect(stop).toHaveBeenCalledTimes(2);
  });

  it('with a mouse, Stop stops at once, however soon after it took Send\'s place', () => {
    pointer(false);
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const { stop } = render(true);
    tap(mount.host.querySelector<HTMLButtonElement>('button[aria-label="Stop generating"]')!);
    expect(stop).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['while composing (isComposing)', { isComposing: true }],
    ['just after composing in Safari (compositionend came first: keyCode 229)', { keyCode: 229 }],
  ])('the Enter that confirms an input method\'s conversion %s does not send', (_name, init) => {
    const { send } = render();
    const ta = mount.host.querySelector('textarea')!;
    const ime = new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true, ...init });
    act(() => void ta.dispatchEvent(ime));
    expect(send).not.toHaveBeenCalled();
    expect(ime.defaultPrevented).toBe(false); // the input method takes it
    act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })));
    expect(send).toHaveBeenCalledWith('a question');
  });

  it('a new chat waiting for the server: the box is read-only (the text sent is the one shown), and Cancel gives it up, the box editable again', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    const cancel = vi.spyOn(app, 'cancelNewChat').mockImplementation(() => app.store.set((s) => ({ ...s, busy: {}, newChat: { ...s.newChat, waiting: false } })));
    app.setDraft('new', 'a question');
    act(() => app.store.set((s) => ({ ...s, busy: { new: true }, newChat: { ...s.newChat, waiting: true } })));
    const view = (busy: boolean) => (
      <AppProvider value={app}>
        <Composer draftKey="new" streaming={false} busy={busy} />
      </AppProvider>
    );
    act(() => mount.root.render(view(true)));
    const ta = mount.host.querySelector('textarea')!;
    expect(ta.readOnly).toBe(true);
    expect(mount.host.querySelector('[role="status"]')?.textContent).toContain('starts as soon as the server can be reached');
    act(() => {
      Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value')!.set!.call(ta, 'edited meanwhile');
      ta.dispatchEvent(new Event('input', { bubbles: true }));
    });
    expect(app.draft('new')).toBe('a question');
    const button = [...mount.host.querySelectorAll('button')].find((b) => b.textContent === 'Cancel')!;
    act(() => button.click());
    expect(cancel).toHaveBeenCalledTimes(1);
    act(() => mount.root.render(view(false)));
    expect(ta.readOnly).toBe(false);
    expect(mount.host.querySelector('[role="status"]')).toBeNull();
    expect(document.activeElement).toBe(ta);
    expect(app.draft('new')).toBe('a question');
  });

  it.each([
    ['the server could not be reached', undefined, 'Your new conversation starts as soon as the server can be reached, with the message below.'],
    [
      'chatd answered not now (its reason)',
      'the server is shutting down; retry',
      'Waiting for the server: The server is shutting down. Your new conversation starts when it can take it, with the message below.',
    ],
  ])('a new chat waiting because %s: the composer says what it waits for', (_, serverWait, notice) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, busy: { new: true }, newChat: { ...s.newChat, waiting: true, serverWait } })));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Composer draftKey="new" streaming={false} busy serverWait={serverWait} />
        </AppProvider>,
      ),
    );
    expect(mount.host.querySelector('[role="status"]')?.textContent).toBe(notice);
  });

  it.each([
    ['the connection is lost', undefined, 'Your last message is sent when the connection is back; then you can send the next.', 'Your last message waits for the connection'],
    [
      'the server refused it for now (its reason)',
      'no model is available: Local cannot list its models; try again later',
      'Waiting for the server: No model is available: Local cannot list its models. Your last message is sent when it can take it; then you can send the next.',
      'Your last message waits for the server',
    ],
  ])('a message waiting because %s: the composer says what it waits for', (_, serverWait, notice, why) => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Composer draftKey="c1" streaming={false} busy={false} queued serverWait={serverWait} />
        </AppProvider>,
      ),
    );
    expect(mount.host.querySelector('[role="status"]')?.textContent).toBe(notice);
    expect(mount.host.querySelector('button[aria-label="Send message"]')?.getAttribute('title')).toBe(why);
  });

  // The counter was the alert itself: its count ("Remove 2 characters…")
  // changed at each key typed over the limit, each key interrupting the
  // screen reader. It is said once as the text goes over.
  it('going over the length limit is said once, not again at each key typed over it; the counter itself is not live', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    app.setDraft('new', 'a'.repeat(MAX_MESSAGE_CHARS));
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Composer draftKey="new" streaming={false} busy={false} />
        </AppProvider>,
      ),
    );
    const ta = mount.host.querySelector('textarea')!;
    const said = watchLive(mount.host);
    const over = 'Over the limit of 32,000 characters: too long to send.';
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS + 1));
    expect(said()).toEqual([over]);
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS + 2));
    expect(said()).toEqual([]);
    const counter = document.getElementById(ta.getAttribute('aria-describedby')!)!;
    expect(counter.textContent).toBe('32,002 / 32,000 characters: too long to send. Remove 2 characters, or split it into several messages.');
    expect(counter.closest('[role], [aria-live]')).toBeNull();
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS)); // back under: nothing to say
    expect(said()).toEqual([]);
    typeInto(ta, 'a'.repeat(MAX_MESSAGE_CHARS + 1)); // over again: said again
    expect(said()).toEqual([over]);
  });

  // JavaScript's trim() kept U+0085 (sent, then refused by the server) and
  // dropped nothing of U+200B, U+2800 or U+3164 (stored as blank bubbles):
  // the box's text must show something (lib/visible.ts, the server's rule).
  it.each([
    ['U+0085 next line', '\u0085', false],
    ['U+200B zero width space', '\u200b', false],
    ['U+2800 braille blank', '\u2800 ', false],
    ['U+3164 Hangul filler', '\u3164', false],
    ['U+FEFF byte order mark', '\ufeff', false],
    ['a Hangul letter', '\u3131', true],
  ])('a message of %s: can be sent %s', (_name, text, sendable) => {
    const { send } = render();
    const ta = mount.host.querySelector('textarea')!;
    typeInto(ta, text);
    const button = mount.host.querySelector<HTMLButtonElement>('button[aria-label="Send message"]')!;
    expect(button.getAttribute('aria-disabled') === 'true').toBe(!sendable);
    act(() => void ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true })));
    expect(send).toHaveBeenCalledTimes(sendable ? 1 : 0);
  });
});
