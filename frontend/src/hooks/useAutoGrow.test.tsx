// The message box and the edit box as tall as their text (jsdom, whose
// layout is stood in for: a box's width and its text's height are set by
// the test, and a ResizeObserver is mocked). The composer was fitted only
// when its text changed, so a window made narrower left its text in a
// scroll bar; the edit box was always three rows.

import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Message } from '../lib/protocol';
import { mountEach, renderMessage, typeInto } from '../components/testkit';
import { MAX_BOX_HEIGHT } from './useAutoGrow';

const mount = mountEach();

/** The stand-in layout: each box's width, and the height of its text at that width. */
const layout = { width: 600, textHeight: (ta: HTMLTextAreaElement) => Math.ceil((ta.value.length * 8) / layout.width) * 20 };
const observed = new Map<Element, ResizeObserverCallback>();

beforeEach(() => {
  layout.width = 600;
  vi.spyOn(HTMLTextAreaElement.prototype, 'scrollHeight', 'get').mockImplementation(function (this: HTMLTextAreaElement) {
    return layout.textHeight(this);
  });
  vi.spyOn(HTMLTextAreaElement.prototype, 'getBoundingClientRect').mockImplementation(() => ({ width: layout.width }) as DOMRect);
  vi.stubGlobal(
    'ResizeObserver',
    class {
      constructor(private readonly callback: ResizeObserverCallback) {}
      observe(el: Element) {
        observed.set(el, this.callback);
      }
      disconnect() {
        for (const [el, cb] of observed) if (cb === this.callback) observed.delete(el);
      }
      unobserve() {}
    },
  );
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  observed.clear();
});

/** resize gives the boxes another width, as the browser's observer reports it. */
function resize(width: number) {
  layout.width = width;
  act(() => {
    for (const [el, cb] of [...observed]) cb([{ target: el } as unknown as ResizeObserverEntry], {} as ResizeObserver);
  });
}

const question: Message = { id: 'u1', conversationId: 'c', parentId: '', role: 'user', content: 'A question', status: 'complete', createdAt: '', updatedAt: '' };
const text = 'x'.repeat(300); // 2,400 px of text: 4 lines at 600 px, 8 at 300

describe.each([
  ['the message box', () => mount.host.querySelector<HTMLTextAreaElement>('textarea[aria-label="Message"]')!],
  [
    'the edit box',
    () => {
      if (!mount.host.querySelector('.edit-box')) act(() => mount.host.querySelector<HTMLButtonElement>('button[aria-label="Edit message"]')!.click());
      return mount.host.querySelector<HTMLTextAreaElement>('textarea[aria-label="Edit your message"]')!;
    },
  ],
])('%s', (_name, box) => {
  it('grows with its text, and again when its width changes, up to the cap', () => {
    renderMessage(mount, question);
    typeInto(box(), text);
    expect(box().style.height).toBe('80px');
    resize(300); // narrower: its lines wrap into more
    expect(box().style.height).toBe('160px');
    resize(1200);
    expect(box().style.height).toBe('40px');
    resize(100);
    expect(box().style.height).toBe(`${MAX_BOX_HEIGHT}px`);
  });

  it('is not fitted again when only its own height changed', () => {
    renderMessage(mount, question);
    typeInto(box(), text);
    box().style.height = '123px'; // as if the reader dragged its corner
    resize(layout.width);
    expect(box().style.height).toBe('123px');
  });
});
