// The toasts in the DOM (jsdom): one the reader is on stays.

import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { AppProvider } from '../hooks/app';
import { ChatApp } from '../lib/chat';
import { memoryKV } from '../lib/persist';
import { mountEach } from './testkit';
import { Toasts } from './Toasts';
import { App } from './App';

const mount = mountEach();

describe('Toasts', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function render() {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Toasts />
          <button type="button">elsewhere</button>
          <textarea aria-label="Message" />
        </AppProvider>,
      ),
    );
    return app;
  }
  const texts = () => [...mount.host.querySelectorAll('.toast span')].map((s) => s.textContent);

  it('an info toast hides by itself after a while', () => {
    const app = render();
    act(() => app.toast('Link copied.', 'info'));
    expect(texts()).toEqual(['Link copied.']);
    act(() => vi.advanceTimersByTime(4000));
    expect(texts()).toEqual([]);
  });

  // An error hid after 8 s: before a keyboard or screen reader user, for
  // whom the toasts come last, could reach it (WCAG 2.2.1).
  it('an error stays until dismissed', () => {
    const app = render();
    act(() => app.toast('Could not save: offline', 'error'));
    act(() => vi.advanceTimersByTime(60_000));
    expect(texts()).toEqual(['Could not save: offline']);
    act(() => mount.host.querySelector<HTMLButtonElement>('.toast button')!.click());
    expect(texts()).toEqual([]);
  });

  it('a fifth toast makes room by dropping the oldest info one, not an error', () => {
    const app = render();
    act(() => app.toast('Could not delete: offline', 'error'));
    for (const t of ['one', 'two', 'three', 'four']) act(() => app.toast(t, 'info'));
    expect(texts()).toEqual(['Could not delete: offline', 'two', 'three', 'four']);
    for (const t of ['e2', 'e3', 'e4', 'e5']) act(() => app.toast(t, 'error'));
    expect(texts()).toEqual(['e2', 'e3', 'e4', 'e5']); // errors only: the oldest goes
  });

  it('one whose Dismiss button has the focus stays, with the focus, until the focus leaves', () => {
    const app = render();
    act(() => app.toast('Saved.', 'info'));
    const dismiss = mount.host.querySelector<HTMLButtonElement>('.toast button')!;
    act(() => dismiss.focus());
    act(() => vi.advanceTimersByTime(4000));
    expect(texts()).toEqual(['Saved.']);
    expect(document.activeElement).toBe(dismiss);
    act(() => app.toast('Next one', 'info')); // others come and go meanwhile
    expect(texts()).toEqual(['Saved.', 'Next one']);
    act(() => [...mount.host.querySelectorAll('button')].find((b) => b.textContent === 'elsewhere')!.focus());
    expect(texts()).toEqual(['Next one']);
  });

  it.each([
    ['the only one', ['Only'], 0, 'elsewhere'],
    ['one of two', ['First', 'Second'], 0, 'Second'],
    ['the last of two', ['First', 'Second'], 1, 'First'],
  ])('dismissing %s from the keyboard moves the focus to another toast\'s Dismiss, else back where it came from, and the next toasts hide by themselves', (_, shown, index, focusedText) => {
    const app = render();
    for (const t of shown) act(() => app.toast(t, 'info'));
    const elsewhere = [...mount.host.querySelectorAll('button')].find((b) => b.textContent === 'elsewhere')!;
    act(() => elsewhere.focus());
    const button = mount.host.querySelectorAll<HTMLButtonElement>('.toast button')[index]!;
    act(() => button.focus());
    act(() => button.click());
    const at = document.activeElement;
    expect(at === elsewhere ? 'elsewhere' : at?.closest('.toast')?.querySelector('span')?.textContent).toBe(focusedText);
    if (at !== elsewhere) return;
    act(() => app.toast('Later', 'info'));
    act(() => vi.advanceTimersByTime(4000));
    expect(texts()).toEqual([]); // the focus is no longer held on the toasts
  });

  it('dismissing the last toast from the keyboard when where the focus came from was disabled meanwhile (Send while busy) gives the focus to the message box, and the next toasts hide by themselves', () => {
    const app = render();
    act(() => app.toast('Only', 'info'));
    const elsewhere = [...mount.host.querySelectorAll('button')].find((b) => b.textContent === 'elsewhere')!;
    act(() => elsewhere.focus());
    const button = mount.host.querySelector<HTMLButtonElement>('.toast button')!;
    act(() => button.focus());
    elsewhere.disabled = true;
    act(() => button.click());
    expect(document.activeElement).toBe(mount.host.querySelector('textarea'));
    act(() => app.toast('Later', 'info'));
    act(() => vi.advanceTimersByTime(4000));
    expect(texts()).toEqual([]);
  });

  it('the toasts dropped when the session ends leave the screen even under the pointer: the next user never sees them', async () => {
    const app = render();
    const region = mount.host.querySelector('.toasts')!;
    act(() => app.toast('Private to the last user', 'info'));
    act(() => {
      region.dispatchEvent(new MouseEvent('mouseover', { bubbles: true, relatedTarget: document.body }));
    });
    await act(() => app.logout());
    expect(texts()).toEqual([]);
    act(() => app.toast('For the next one', 'info'));
    expect(texts()).toEqual(['For the next one']);
  });

  it('one under the pointer stays until the pointer leaves; Dismiss still hides it at once', () => {
    const app = render();
    act(() => app.toast('First', 'info'));
    act(() => app.toast('Second', 'info'));
    const region = mount.host.querySelector('.toasts')!;
    act(() => {
      region.dispatchEvent(new MouseEvent('mouseover', { bubbles: true, relatedTarget: document.body }));
    });
    act(() => vi.advanceTimersByTime(4000));
    expect(texts()).toEqual(['First', 'Second']);
    act(() => mount.host.querySelector<HTMLButtonElement>('.toast button')!.click());
    expect(texts()).toEqual(['Second']);
    act(() => {
      region.dispatchEvent(new MouseEvent('mouseout', { bubbles: true, relatedTarget: document.body }));
    });
    expect(texts()).toEqual([]);
  });
});

describe('Toasts for a screen reader', () => {
  /** liveRegions are the live regions an element is in, itself included. */
  function liveRegions(el: Element): Element[] {
    const live = new Set(['alert', 'status', 'log', 'marquee', 'timer']);
    const out: Element[] = [];
    for (let e: Element | null = el; e; e = e.parentElement) {
      if (e.hasAttribute('aria-live') || live.has(e.getAttribute('role') ?? '')) out.push(e);
    }
    return out;
  }

  it('each toast is in exactly one live region, there before it: assertive for an error, polite for the rest', () => {
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() =>
      mount.root.render(
        <AppProvider value={app}>
          <Toasts />
        </AppProvider>,
      ),
    );
    const regions = [...mount.host.querySelectorAll('[aria-live]')];
    expect(regions.map((r) => r.getAttribute('aria-live'))).toEqual(['assertive', 'polite']); // in the page with no toast yet
    act(() => app.toast('Saved elsewhere', 'info'));
    act(() => app.toast('Could not save: offline', 'error'));
    const toasts = [...mount.host.querySelectorAll('.toast')];
    expect(toasts).toHaveLength(2);
    const live = toasts.map((t) => ({ text: t.querySelector('span')?.textContent, regions: liveRegions(t).map((r) => r.getAttribute('aria-live') ?? r.getAttribute('role')) }));
    expect(live).toEqual([
      { text: 'Could not save: offline', regions: ['assertive'] },
      { text: 'Saved elsewhere', regions: ['polite'] },
    ]);
    expect(liveRegions(toasts[0]!)[0]).toBe(regions[0]);
    expect(liveRegions(toasts[1]!)[0]).toBe(regions[1]);
  });
});

describe('Toasts on a narrow screen', () => {
  // Errors stay until dismissed: at the top they covered a phone's chat
  // header (title, model picker, menu). They stand above the composer, and
  // the message list leaves room below its newest message for them: both by
  // heights published on the page's root (jsdom lays nothing out: the
  // heights are stubbed, and the e2e suite checks the layout).
  it('publishes the composer\'s and the toasts\' heights, kept as they change, that app.css places the toasts by (app.css.test.ts)', () => {
    const heights: Record<string, number> = { 'composer-wrap': 120, toasts: 0 };
    vi.spyOn(HTMLElement.prototype, 'getBoundingClientRect').mockImplementation(function (this: HTMLElement) {
      const h = Object.entries(heights).find(([c]) => this.classList.contains(c))?.[1] ?? 0;
      return { height: h, width: 0, top: 0, left: 0, bottom: h, right: 0, x: 0, y: 0, toJSON: () => ({}) } as DOMRect;
    });
    const observers: (() => void)[] = [];
    vi.stubGlobal('ResizeObserver', class {
      constructor(private cb: () => void) {}
      observe() { observers.push(this.cb); }
      disconnect() { observers.splice(observers.indexOf(this.cb), 1); }
    });
    onTestFinished(() => void (vi.unstubAllGlobals(), vi.restoreAllMocks()));
    const app = new ChatApp({ kv: memoryKV(), fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch, throttleMs: 0 });
    act(() => app.store.set((s) => ({ ...s, route: { name: 'chat', conversationId: null } })));
    act(() => mount.root.render(<AppProvider value={app}><App /></AppProvider>));
    const root = document.documentElement.style;
    expect(root.getPropertyValue('--composer-height')).toBe('120px');
    expect(root.getPropertyValue('--toasts-height')).toBe('0px');
    act(() => app.toast('Not sent: the server refused it.', 'error'));
    heights.toasts = 44;
    act(() => observers.forEach((f) => f()));
    expect(root.getPropertyValue('--toasts-height')).toBe('44px');
    act(() => mount.root.render(<></>));
    expect(root.getPropertyValue('--composer-height')).toBe(''); // gone with the chat (the sign-in page has no composer)
  });
});
