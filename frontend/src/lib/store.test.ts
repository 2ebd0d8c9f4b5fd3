import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Conversation } from './protocol';
import { appendPage, initialList, removeConversation, touchConversation, upsertConversation } from './state';
import { Store } from './store';
import { backoffDelay } from './transport';
import { parseRoute, routePath } from './router';
import { filenameFrom, parseRetryAfter } from './api';

describe('Store', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('publishes set at once and batches lazy updates into one notification', () => {
    const s = new Store({ n: 0 }, { throttleMs: 50 });
    const seen: number[] = [];
    s.subscribe(() => seen.push(s.snapshot().n));
    s.set((v) => ({ n: v.n + 1 }));
    expect(seen).toEqual([1]);
    for (let i = 0; i < 100; i++) s.setLazy((v) => ({ n: v.n + 1 }));
    expect(s.state.n).toBe(101);
    expect(s.snapshot().n).toBe(1); // readers still see the published value
    expect(seen).toEqual([1]);
    vi.advanceTimersByTime(50);
    expect(seen).toEqual([1, 101]);
  });

  it('a set flushes pending lazy updates with it', () => {
    const s = new Store({ n: 0 });
    let calls = 0;
    s.subscribe(() => calls++);
    s.setLazy((v) => ({ n: v.n + 1 }));
    s.set((v) => ({ n: v.n + 1 }));
    expect(calls).toBe(1);
    vi.advanceTimersByTime(100);
    expect(calls).toBe(1);
    expect(s.snapshot().n).toBe(2);
  });
});

function c(id: string, updatedAt: string, title = id): Conversation {
  return { id, title, model: 'm', systemPrompt: '', createdAt: updatedAt, updatedAt };
}

describe('list updates', () => {
  const base = appendPage(initialList, [c('b', '2026-01-02'), c('a', '2026-01-01')], 'cur');

  it('inserts and moves conversations newest first', () => {
    let l = upsertConversation(base, c('n', '2026-01-03'));
    expect(l.items.map((x) => x.id)).toEqual(['n', 'b', 'a']);
    l = touchConversation(l, 'a', '2026-01-04');
    expect(l.items.map((x) => x.id)).toEqual(['a', 'n', 'b']);
    l = removeConversation(l, 'n');
    expect(l.items.map((x) => x.id)).toEqual(['a', 'b']);
  });

  it('renames in place', () => {
    const l = upsertConversation(base, c('a', '2026-01-01', 'Renamed'));
    expect(l.items.find((x) => x.id === 'a')?.title).toBe('Renamed');
  });

  it('does not add new conversations to search results', () => {
    const searching = { ...base, appliedQuery: 'x' };
    expect(upsertConversation(searching, c('n', '2026-01-03')).items.length).toBe(2);
  });

  it('orders same-second times by their value, not their text', () => {
    // The server drops trailing zeros: as strings "05Z" > "05.5Z" and "05.1Z" > "05.15Z".
    const l = appendPage(initialList, [], '');
    const items = [
      c('x', '2026-01-01T00:00:05Z'),
      c('y', '2026-01-01T00:00:05.5Z'),
      c('z', '2026-01-01T00:00:05.1Z'),
      c('w', '2026-01-01T00:00:05.15Z'),
      c('v', '2026-01-01T00:00:05.123456789Z'),
    ].reduce((acc, x) => upsertConversation(acc, x), l).items;
    expect(items.map((x) => x.id)).toEqual(['y', 'w', 'v', 'z', 'x']);
  });

  it('breaks ties in time by id, newest id first', () => {
    const at = '2026-01-01T00:00:05.25Z';
    const l = [c('a1', at), c('a3', '2026-01-01T00:00:05.250Z'), c('a2', at)].reduce((acc, x) => upsertConversation(acc, x), appendPage(initialList, [], ''));
    expect(l.items.map((x) => x.id)).toEqual(['a3', 'a2', 'a1']);
  });

  it('touch moves only forward, comparing times by value', () => {
    let l = appendPage(initialList, [c('b', '2026-01-01T00:00:05.5Z'), c('a', '2026-01-01T00:00:05.1Z')], '');
    l = touchConversation(l, 'a', '2026-01-01T00:00:05Z'); // earlier than a's time: no change
    expect(l.items.map((x) => x.id)).toEqual(['b', 'a']);
    expect(l.items[1]!.updatedAt).toBe('2026-01-01T00:00:05.1Z');
    l = touchConversation(l, 'a', '2026-01-01T00:00:05.55Z');
    expect(l.items.map((x) => x.id)).toEqual(['a', 'b']);
  });

  it('adds a conversation missing from the loaded pages when it sorts within them', () => {
    // Two pages of three exist; the first is loaded (its oldest item is 'c').
    const paged = appendPage(initialList, [c('e', '2026-01-05'), c('d', '2026-01-04'), c('c', '2026-01-03')], 'next');
    // New activity in 'a' (on the unloaded page): it moves to the top.
    let l = upsertConversation(paged, c('a', '2026-01-06'));
    expect(l.items.map((x) => x.id)).toEqual(['a', 'e', 'd', 'c']);
    // A rename of an old one that did not move stays for its page to bring.
    l = upsertConversation(l, c('b', '2026-01-02', 'Renamed'));
    expect(l.items.map((x) => x.id)).toEqual(['a', 'e', 'd', 'c']);
    // With every page loaded, it goes where it sorts.
    l = upsertConversation({ ...l, nextCursor: '' }, c('b', '2026-01-02', 'Renamed'));
    expect(l.items.map((x) => x.id)).toEqual(['a', 'e', 'd', 'c', 'b']);
    // Not when asked not to (a conversation opened by its link).
    expect(upsertConversation(paged, c('f', '2026-01-07'), 'no').items.map((x) => x.id)).toEqual(['e', 'd', 'c']);
  });

  it('search results take updates of their items but never new items, but for a page of the search listing them', () => {
    const results = { ...appendPage(initialList, [c('d', '2026-01-04'), c('c', '2026-01-03')], ''), appliedQuery: 'topic' };
    let l = upsertConversation(results, c('a', '2026-01-06', 'does not match'));
    expect(l.items.map((x) => x.id)).toEqual(['d', 'c']);
    l = upsertConversation(l, c('c', '2026-01-06', 'topic, renamed'));
    expect(l.items.map((x) => [x.id, x.title])).toEqual([
      ['c', 'topic, renamed'],
      ['d', 'd'],
    ]);
    l = upsertConversation(l, c('e', '2026-01-07', 'topic from another device'), 'listed');
    expect(l.items.map((x) => x.id)).toEqual(['e', 'c', 'd']);
  });

  it('appends pages without duplicates', () => {
    const l = appendPage(base, [c('a', '2026-01-01'), c('z', '2025-12-31')], '');
    expect(l.items.map((x) => x.id)).toEqual(['b', 'a', 'z']);
    expect(l.nextCursor).toBe('');
  });
});

describe('helpers', () => {
  it('backoff grows exponentially with jitter and a cap', () => {
    expect(backoffDelay(0, 500, 30000, () => 0)).toBe(250);
    expect(backoffDelay(0, 500, 30000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 30000, () => 1)).toBe(4000);
    expect(backoffDelay(30, 500, 30000, () => 1)).toBe(30000);
    expect(backoffDelay(30, 500, 30000, () => 0)).toBe(15000);
  });

  it('routes', () => {
    expect(parseRoute('/c/0123456789abcdef01234567')).toEqual({ name: 'chat', conversationId: '0123456789abcdef01234567' });
    expect(parseRoute('/c/not-an-id')).toEqual({ name: 'chat', conversationId: null });
    expect(parseRoute('/login')).toEqual({ name: 'login' });
    expect(routePath({ name: 'chat', conversationId: null })).toBe('/');
  });

  it('Retry-After and Content-Disposition', () => {
    expect(parseRetryAfter('12')).toBe(12);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(filenameFrom('attachment; filename="chat.md"')).toBe('chat.md');
    expect(filenameFrom("attachment; filename*=UTF-8''%E4%B8%AD.json")).toBe('中.json');
    expect(filenameFrom('attachment; filename="../../x.md"')).toBe('.._.._x.md');
  });
});
