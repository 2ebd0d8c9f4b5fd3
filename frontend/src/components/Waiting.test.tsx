// An answer streaming without text or reasoning yet, in the DOM (jsdom):
// after a few seconds it says how long it has waited, ticking each second,
// its words announced once.

import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Message } from '../lib/protocol';
import { mountEach, renderMessage } from './testkit';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  vi.setSystemTime(Date.parse('2026-01-01T00:00:10Z'));
});
const mount = mountEach();
afterEach(() => vi.useRealTimers());

function streaming(extra: Partial<Message> = {}): Message {
  return { id: 'a1', conversationId: 'c', parentId: 'u1', role: 'assistant', content: '', status: 'streaming', model: 'm', createdAt: '2026-01-01T00:00:10Z', updatedAt: '', ...extra };
}

function render(m: Message, reasoner = false) {
  renderMessage(mount, m, { reasoner });
}

const label = () => mount.host.querySelector('.waiting-label')?.textContent ?? null;
const live = () => mount.host.querySelector('[role="status"]');
const tick = (ms: number) => act(() => vi.advanceTimersByTime(ms));

describe('Waiting', () => {
  it('shows only the typing dots for the first seconds, then how long the answer has waited, each second', () => {
    render(streaming());
    // Named as an image: a name on a plain div is not read by screen readers.
    expect(mount.host.querySelector('.typing[role="img"]')?.getAttribute('aria-label')).toBe('The answer is being written');
    expect(label()).toBe('');
    tick(2000);
    expect(label()).toBe('');
    tick(1000);
    expect(label()).toBe('Waiting for the model… 3 s');
    tick(9000);
    expect(label()).toBe('Waiting for the model… 12 s');
  });

  it('says "Thinking…" for a model known to reason', () => {
    render(streaming({ model: 'o3-mini' }), true);
    tick(5000);
    expect(label()).toBe('Thinking… 5 s');
  });

  it('announces its words once: the live region is there from the start and its text does not change with the seconds', () => {
    render(streaming());
    const region = live();
    expect(region?.getAttribute('aria-live')).toBe('polite');
    expect(region?.closest('[aria-busy="true"]')).toBeNull(); // a busy ancestor may hold its announcement back
    expect(region?.textContent).toBe('');
    tick(3000);
    expect(live()).toBe(region); // the same element: its change is what is announced
    expect(region?.textContent).toBe('Waiting for the model…');
    const changes: string[] = [];
    const watch = new MutationObserver(() => changes.push(region?.textContent ?? ''));
    watch.observe(region!, { subtree: true, childList: true, characterData: true });
    tick(5000);
    watch.disconnect();
    expect(changes).toEqual([]);
    expect(label()).toBe('Waiting for the model… 8 s');
  });

  it('counts from the answer\'s start, as the server dated it, when the tab joined later', () => {
    render(streaming({ createdAt: '2026-01-01T00:00:01Z' }));
    expect(label()).toBe('Waiting for the model… 9 s');
  });

  it.each([
    ['text', streaming({ content: 'Hello' })],
    ['reasoning (the Thinking section counts instead)', streaming({ reasoning: 'Let me see' })],
    ['an ended answer', streaming({ status: 'complete', content: 'Done' })],
  ])('is not shown for an answer with %s', (_, m) => {
    render(m);
    tick(5000);
    expect(mount.host.querySelector('.waiting')).toBeNull();
  });
});

describe('MessageItem aria-busy', () => {
  it.each([
    ['a silent wait', false, streaming()],
    ['text being written', true, streaming({ content: 'Hel' })],
    ['reasoning being written', true, streaming({ reasoning: 'Let me' })],
    ['an ended answer', false, streaming({ status: 'complete', content: 'Done' })],
  ])('for %s: busy %s', (_, busy, m) => {
    render(m);
    expect(mount.host.querySelector('article')?.getAttribute('aria-busy')).toBe(busy ? 'true' : null);
  });
});
