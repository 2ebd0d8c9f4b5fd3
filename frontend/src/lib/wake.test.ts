// The signs of a wake, with fake timers and a scripted visibility.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WakeWatch, type WakeReason } from './wake';

let visibility: DocumentVisibilityState = 'visible';

beforeEach(() => {
  vi.useFakeTimers();
  visibility = 'visible';
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
});
afterEach(() => {
  vi.useRealTimers();
  delete (document as { visibilityState?: unknown }).visibilityState;
});

function setVisibility(v: DocumentVisibilityState) {
  visibility = v;
  document.dispatchEvent(new Event('visibilitychange'));
}

function watch() {
  const seen: WakeReason[] = [];
  const w = new WakeWatch({ onWake: (why) => seen.push(why), tickMs: 10_000, lateMs: 15_000 });
  w.start();
  return { w, seen };
}

describe('WakeWatch', () => {
  it('the page shown again after being hidden is a wake; a visibility event without hiding is not', () => {
    const { w, seen } = watch();
    setVisibility('visible');
    expect(seen).toEqual([]);
    setVisibility('hidden');
    expect(seen).toEqual([]);
    setVisibility('visible');
    expect(seen).toEqual(['visible']);
    w.stop();
    setVisibility('hidden');
    setVisibility('visible');
    expect(seen).toEqual(['visible']);
  });

  it('the browser going online is a wake', () => {
    const { w, seen } = watch();
    window.dispatchEvent(new Event('online'));
    expect(seen).toEqual(['online']);
    w.stop();
    window.dispatchEvent(new Event('online'));
    expect(seen).toEqual(['online']);
  });

  it('a timer firing much later than due (a machine back from sleep) is a wake; timers on time are not', async () => {
    const { w, seen } = watch();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(seen).toEqual([]);
    // Asleep for five minutes: the clock moves, no timer runs.
    vi.setSystemTime(Date.now() + 5 * 60_000);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(seen).toEqual(['late']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(seen).toEqual(['late']);
    w.stop();
    vi.setSystemTime(Date.now() + 5 * 60_000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(seen).toEqual(['late']);
  });

  it('a late timer in a hidden page is no wake: hidden pages have their timers throttled', async () => {
    const { w, seen } = watch();
    setVisibility('hidden');
    // Chromium runs a hidden page's timers once a minute.
    vi.setSystemTime(Date.now() + 60_000);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(seen).toEqual([]);
    setVisibility('visible');
    expect(seen).toEqual(['visible']);
    w.stop();
  });
});
