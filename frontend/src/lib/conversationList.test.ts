// The sidebar list through ChatApp: live conversation frames, pages, search,
// and the refresh after a reconnect.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Conversation, ServerFrame } from './protocol';
import { SEARCH_AGAIN_MS, SEARCH_RETRY_MAX_MS } from './conversationList';
import { CID, conv, json, message, settle, setup, type ListAnswer } from './testkit';

afterEach(() => history.replaceState(null, '', '/'));

describe('ConversationList', () => {
  it('new activity in a conversation beyond the loaded pages brings it to the top; a delete removes it for good', async () => {
    // The sidebar holds the first page (newest first); older ones are on the next page.
    const first = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two', '2026-01-02T00:00:05.5Z')];
    const { app, socket } = setup({ snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], list: () => ({ conversations: first, nextCursor: 'page2' }) });
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c2']));

    // Another tab sent a message in c1 (not loaded): the frame carries the whole conversation.
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c1', 'one', '2026-01-04T00:00:00Z') });
    expect(ids()).toEqual(['c1', 'c3', 'c2']);
    expect(app.store.state.list.items[0]!.title).toBe('one');

    // Same-second times with trailing zeros dropped order by value ("05Z" is before "05.5Z").
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c0', 'zero', '2026-01-02T00:00:05Z') });
    expect(ids()).toEqual(['c1', 'c3', 'c2']); // older than the oldest loaded: its page brings it
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c2', 'two', '2026-01-04T00:00:00.25Z') });
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c3', 'three', '2026-01-04T00:00:00.2Z') });
    expect(ids()).toEqual(['c2', 'c3', 'c1']);

    // Deleted elsewhere: gone, and a late copy of an update (SSE: two streams) does not bring it back.
    socket().receive({ type: 'conversation', action: 'deleted', conversation: conv('c1', 'one', '2026-01-04T00:00:00Z') });
    expect(ids()).toEqual(['c2', 'c3']);
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c1', 'one', '2026-01-04T00:00:01Z') });
    expect(ids()).toEqual(['c2', 'c3']);
  });

  it('search results are updated in place but never get conversations the server did not match', async () => {
    const all = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two topic', '2026-01-02T00:00:00Z')];
    const { app, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      list: (q) => ({ conversations: all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)), nextCursor: '' }),
    });
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c2']));
    app.setQuery('topic');
    await vi.waitFor(() => expect(app.store.state.list.appliedQuery).toBe('topic'));
    await vi.waitFor(() => expect(ids()).toEqual(['c2']));

    socket().receive({ type: 'conversation', action: 'created', conversation: conv('c4', 'new', '2026-01-05T00:00:00Z') });
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c1', 'old', '2026-01-05T00:00:01Z') });
    expect(ids()).toEqual(['c2']);
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c2', 'two topic, renamed', '2026-01-05T00:00:02Z') });
    expect(app.store.state.list.items.map((c) => c.title)).toEqual(['two topic, renamed']);
    socket().receive({ type: 'conversation', action: 'deleted', conversation: conv('c2', 'two topic, renamed', '2026-01-05T00:00:02Z') });
    expect(ids()).toEqual([]);
  });

  describe('a search\'s first page read again once the live channel is up adds a match made meanwhile (another device)', () => {
    it.each([
      ['after a reconnect (refreshHead)', true],
      ['at the first connection, the page read before it (catch-up)', false],
    ])('%s', async (_, reconnect) => {
      const all = [conv('c3', 'three topic', '2026-01-03T00:00:00Z'), conv('c2', 'two', '2026-01-02T00:00:00Z')];
      const { app, socket, calls } = setup({
        path: '/',
        snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
        list: (q) => ({ conversations: all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)), nextCursor: '' }),
      });
      const ids = () => app.store.state.list.items.map((c) => c.id);
      const searches = () => calls.filter((x) => x.url.startsWith('/api/conversations?') && x.url.includes('q=topic')).length;
      if (reconnect) socket().open();
      await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
      app.setQuery('topic');
      await vi.waitFor(() => expect(ids()).toEqual(['c3']));
      if (reconnect) {
        const first = socket();
        first.cut(); // offline: no frame tells of what follows
        await vi.waitFor(() => expect(socket()).not.toBe(first));
      }
      all.unshift(conv('c9', 'new topic from phone', '2026-01-09T00:00:00Z'));
      const before = searches();
      socket().open();
      await vi.waitFor(() => expect(searches()).toBe(before + 1));
      await vi.waitFor(() => expect(ids()).toEqual(['c9', 'c3']));
    });
  });

  it('a match on a later page of a search that moves up is shown, asked for once however many frames come', async () => {
    // The server's pages, newest activity first, a page each, the cursor the last one's time.
    const all = [
      conv('c4', 'four', '2026-01-04T00:00:00Z'),
      conv('c3', 'three topic', '2026-01-03T00:00:00Z'),
      conv('c2', 'two topic', '2026-01-02T00:00:00Z'),
      conv('c1', 'one', '2026-01-01T00:00:00Z'),
    ];
    const list = (q: URLSearchParams) => {
      const found = all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
      const cursor = q.get('cursor');
      const rest = cursor ? found.filter((c) => c.updatedAt < cursor) : found;
      return { conversations: rest.slice(0, 1), nextCursor: rest.length > 1 ? rest[0]!.updatedAt : '' };
    };
    const { app, socket, calls } = setup({ path: '/', snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], list });
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    const searches = () => calls.filter((x) => x.url.startsWith('/api/conversations?') && x.url.includes('q=topic')).length;
    await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
    app.setQuery('topic');
    await vi.waitFor(() => expect(ids()).toEqual(['c3'])); // c2, a match, is on the next page
    const before = searches();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      // Another device sends into c2: it moves above the cursor of the page shown.
      const moved = (at: string, title = 'two topic') => ({ ...all[2]!, title, updatedAt: at });
      all[2] = moved('2026-01-09T00:00:00Z');
      const frame = (c: Conversation): ServerFrame => ({ type: 'conversation', action: 'updated', conversation: c });
      socket().receive(frame(all[2]!));
      socket().receive(frame(moved('2026-01-09T00:00:01Z', 'Two topic, titled'))); // its title, a second later
      socket().receive(frame({ ...all[0]!, updatedAt: '2026-01-09T00:00:02Z' })); // a send into c4 (no match)
      socket().receive(frame({ ...all[1]!, updatedAt: '2026-01-05T00:00:00Z' })); // shown: updated in place, nothing asked
      socket().receive(frame({ ...all[3]!, updatedAt: '2026-01-02T12:00:00Z' })); // below the page shown: its own page tells
      expect(ids()).toEqual(['c3']); // the server decides what matches
      all[2] = moved('2026-01-09T00:00:01Z', 'Two topic, titled');
      all[0] = { ...all[0]!, updatedAt: '2026-01-09T00:00:02Z' };
      all[1] = { ...all[1]!, updatedAt: '2026-01-05T00:00:00Z' };
      await vi.advanceTimersByTimeAsync(SEARCH_AGAIN_MS - 1);
      expect(searches()).toBe(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(searches()).toBe(before + 1); // one read of the head for every frame before
      await vi.advanceTimersByTimeAsync(SEARCH_AGAIN_MS);
      expect(searches()).toBe(before + 1);
    } finally {
      vi.useRealTimers();
    }
    // The head read again is merged into the list: c3 stays shown below
    // it, and the pages after, from the list's own cursor, repeat none.
    await vi.waitFor(() => expect(ids()).toEqual(['c2', 'c3']));
    await app.loadMore();
    expect(ids()).toEqual(['c2', 'c3']);
    expect(app.store.state.list.nextCursor).toBe('');
  });

  it('a search scrolled past its first page keeps its loaded pages when a frame makes it ask again', async () => {
    // 40 matches, 30 a page; the user sends in a conversation that does not match.
    const all = Array.from({ length: 40 }, (_, i) => conv(`m${i}`, `match ${i} topic`, new Date(Date.UTC(2026, 0, 1, 0, 40 - i)).toISOString()));
    const list = (q: URLSearchParams) => {
      const found = all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
      const cursor = q.get('cursor');
      const rest = cursor ? found.filter((c) => c.updatedAt < cursor) : found;
      const page = rest.slice(0, 30);
      return { conversations: page, nextCursor: rest.length > 30 ? page.at(-1)!.updatedAt : '' };
    };
    const { app, socket, calls } = setup({ path: '/', snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], list });
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    const searches = () => calls.filter((x) => x.url.startsWith('/api/conversations?') && x.url.includes('q=topic')).length;
    await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
    all.push(conv('other', 'chat', '2026-01-01T00:00:00Z'));
    app.setQuery('topic');
    await vi.waitFor(() => expect(searches()).toBe(1));
    await vi.waitFor(() => expect(ids()).toHaveLength(30));
    await app.loadMore();
    const loaded = all.slice(0, 40).map((c) => c.id);
    expect(ids()).toEqual(loaded);
    expect(app.store.state.list.nextCursor).toBe('');
    const before = searches();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      socket().receive({ type: 'conversation', action: 'updated', conversation: conv('other', 'chat', '2026-02-01T00:00:00Z') });
      await vi.advanceTimersByTimeAsync(SEARCH_AGAIN_MS);
      expect(searches()).toBe(before + 1);
    } finally {
      vi.useRealTimers();
    }
    await settle();
    expect(ids()).toEqual(loaded);
    expect(app.store.state.list.nextCursor).toBe('');
  });

  it("a hidden tab's search asks again only once it is shown", async () => {
    // Every tab showing a search would spend the user's searches on frames
    // of conversations it lacks: a hidden one holds its read until shown.
    const all = [conv('c3', 'three topic', '2026-01-03T00:00:00Z'), conv('c2', 'two', '2026-01-02T00:00:00Z')];
    const list = (q: URLSearchParams) => ({ conversations: all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)), nextCursor: '' });
    const { app, socket, calls } = setup({ path: '/', snapshots: [[message('u1', '', 'user', 'hi', 'complete')]], list });
    let visibility = 'hidden';
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
    try {
      socket().open();
      const ids = () => app.store.state.list.items.map((c) => c.id);
      const searches = () => calls.filter((x) => x.url.startsWith('/api/conversations?') && x.url.includes('q=topic')).length;
      await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
      app.setQuery('topic');
      await vi.waitFor(() => expect(ids()).toEqual(['c3']));
      const before = searches();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        all[1] = { ...all[1]!, title: 'two topic', updatedAt: '2026-01-09T00:00:00Z' };
        socket().receive({ type: 'conversation', action: 'updated', conversation: all[1]! });
        await vi.advanceTimersByTimeAsync(SEARCH_AGAIN_MS * 3);
        expect(searches()).toBe(before); // hidden: nothing asked
        visibility = 'visible';
        document.dispatchEvent(new Event('visibilitychange'));
        await vi.advanceTimersByTimeAsync(0);
        expect(searches()).toBe(before + 1); // shown: the read held back
        visibility = 'hidden';
        document.dispatchEvent(new Event('visibilitychange'));
        visibility = 'visible';
        document.dispatchEvent(new Event('visibilitychange'));
        await vi.advanceTimersByTimeAsync(SEARCH_AGAIN_MS);
        expect(searches()).toBe(before + 1); // once
      } finally {
        vi.useRealTimers();
      }
      all.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
      await vi.waitFor(() => expect(ids()).toEqual(['c2', 'c3']));
    } finally {
      delete (document as { visibilityState?: unknown }).visibilityState;
    }
  });

  it('a search that fails shows none of the list before it as its result', async () => {
    const all = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two', '2026-01-02T00:00:00Z')];
    const { app, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url) => (url.includes('q=') ? json({ error: { code: 'rate_limited', message: 'too many searches' } }, 429) : undefined),
      list: () => ({ conversations: all, nextCursor: 'page2' }),
    });
    socket().open();
    const list = () => app.store.state.list;
    await vi.waitFor(() => expect(list().items).toHaveLength(2));
    app.setQuery('topic');
    await vi.waitFor(() => expect(list().error).toBe('too many searches'));
    expect(list().items).toEqual([]);
    expect(list().nextCursor).toBe('');
    app.setQuery('');
    await vi.waitFor(() => expect(list().items).toHaveLength(2)); // the list again, once the search is gone
    expect(list().error).toBeNull();
  });

  it('the plain list failing after a search shows none of the search\'s results as the list, nor reads on from its cursor', async () => {
    const c = (n: number, title: string) => conv(`c${n}`, title, `2026-01-0${n}T00:00:00Z`);
    const all = [c(5, 'five'), c(4, 'four'), c(3, 'three topic'), c(2, 'two'), c(1, 'one topic')];
    let plainFails = false;
    const { app, socket, calls } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url) => (url.startsWith('/api/conversations?') && !url.includes('q=') && plainFails ? new Response('bad gateway', { status: 502 }) : undefined),
      list: (q) => {
        const query = q.get('q');
        if (query) return { conversations: all.filter((x) => x.title.includes(query)), nextCursor: 'after-c1' }; // more matches further down
        return { conversations: q.get('cursor') === 'after-c1' ? [] : all, nextCursor: '' };
      },
    });
    socket().open();
    const list = () => app.store.state.list;
    const ids = () => list().items.map((x) => x.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c5', 'c4', 'c3', 'c2', 'c1']));
    app.setQuery('topic');
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c1']));
    plainFails = true; // a proxy's 502 for the plain list
    app.setQuery('');
    await vi.waitFor(() => expect(list().error).not.toBeNull());
    expect(ids()).not.toEqual(['c3', 'c1']); // the search's matches are not the list
    await app.loadMore(); // the sentinel, or Load more
    expect(calls.filter((x) => x.url.includes('cursor=after-c1') && !x.url.includes('q='))).toEqual([]);
    expect(list().error).not.toBeNull(); // Retry still offered
    plainFails = false;
    await app.reloadList(); // Retry
    expect(ids()).toEqual(['c5', 'c4', 'c3', 'c2', 'c1']);
    expect(list().error).toBeNull();
  });

  it('a search typed after a pause gives up the request of the one before, still on its way', async () => {
    // The server runs a user's searches one at a time: a request left
    // running would make the next search wait for an answer nobody reads.
    const all = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two topic', '2026-01-02T00:00:00Z')];
    const signals = new Map<string, AbortSignal | undefined>();
    const { app, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        const q = url.startsWith('/api/conversations?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('q') : null;
        if (!q) return undefined;
        signals.set(q, init?.signal ?? undefined);
        if (q !== 'to') return undefined;
        return new Promise<Response>((_, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('given up', 'AbortError')));
        }); // a long search: no answer until given up
      },
      list: (q) => ({ conversations: all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)), nextCursor: '' }),
    });
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c2']));
    app.setQuery('to');
    await vi.waitFor(() => expect(signals.has('to')).toBe(true));
    app.setQuery('topic');
    await vi.waitFor(() => expect(app.store.state.list.appliedQuery).toBe('topic'));
    await vi.waitFor(() => expect(ids()).toEqual(['c2']));
    expect(signals.get('to')?.aborted).toBe(true);
    expect(signals.get('topic')?.aborted).toBe(false);
    expect(app.store.state.list.error).toBeNull();
  });

  it('a search typed while the next page of the one before is on its way gives that page up', async () => {
    const all = [conv('c3', 'three topic', '2026-01-03T00:00:00Z'), conv('c2', 'two topic', '2026-01-02T00:00:00Z')];
    let pageSignal: AbortSignal | undefined;
    const { app, socket } = setup({
      snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
      route: (url, init) => {
        if (!url.startsWith('/api/conversations?') || !url.includes('cursor=')) return undefined;
        pageSignal = init?.signal ?? undefined;
        return new Promise<Response>((_, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('given up', 'AbortError')));
        }); // the next page of a long search: no answer until given up
      },
      list: (q) => {
        const found = all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!));
        return q.get('q') === 'to' ? { conversations: found.slice(0, 1), nextCursor: 'next' } : { conversations: found, nextCursor: '' };
      },
    });
    socket().open();
    const ids = () => app.store.state.list.items.map((c) => c.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c3', 'c2']));
    app.setQuery('to');
    await vi.waitFor(() => expect(ids()).toEqual(['c3']));
    void app.loadMore();
    await vi.waitFor(() => expect(pageSignal).toBeDefined());
    app.setQuery('two');
    await vi.waitFor(() => expect(ids()).toEqual(['c2']));
    expect(pageSignal?.aborted).toBe(true);
    expect(app.store.state.list.error).toBeNull();
    expect(app.store.state.list.loading).toBe(false);
  });

  describe('a search chatd answers 503 unavailable with Retry-After (it waited its turn behind the user\'s search before)', () => {
    const all = [conv('c3', 'three', '2026-01-03T00:00:00Z'), conv('c2', 'two topic', '2026-01-02T00:00:00Z')];
    const TURN = 'the request could not be completed in time; retry';
    const busy = (retryAfter: string | null) =>
      new Response(JSON.stringify({ error: { code: 'unavailable', message: TURN } }), {
        status: 503,
        headers: { 'Content-Type': 'application/json', ...(retryAfter !== null ? { 'Retry-After': retryAfter } : {}) },
      });

    /** start shows the list, then answers searches with answers, in turn (the last repeats; undefined: the list's own). */
    async function start(answers: Array<() => Response | Promise<Response> | undefined>) {
      let n = 0;
      const searches: string[] = [];
      const s = setup({
        snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
        route: (url) => {
          if (!url.startsWith('/api/conversations?') || !url.includes('q=')) return undefined;
          searches.push(new URLSearchParams(url.slice(url.indexOf('?') + 1)).get('q')!);
          return answers[Math.min(n++, answers.length - 1)]!();
        },
        list: (q) => ({ conversations: all.filter((c) => !q.get('q') || c.title.includes(q.get('q')!)), nextCursor: '' }),
      });
      s.socket().open();
      await vi.waitFor(() => expect(s.app.store.state.list.items).toHaveLength(2));
      return { ...s, searches, list: () => s.app.store.state.list };
    }

    it('is asked again once after it, loading meanwhile, and shows its result', async () => {
      let answer!: (r: Response) => void;
      const { app, searches, list } = await start([() => busy('0'), () => new Promise<Response>((resolve) => (answer = resolve))]);
      app.setQuery('topic');
      await vi.waitFor(() => expect(searches).toHaveLength(2));
      expect(list()).toMatchObject({ loading: true, error: null }); // not "Could not search" between the two
      answer(json({ conversations: [all[1]], nextCursor: '' }));
      await vi.waitFor(() => expect(list().items.map((c) => c.id)).toEqual(['c2']));
      expect(list()).toMatchObject({ loading: false, error: null });
      expect(searches).toEqual(['topic', 'topic']);
    });

    it('failing again shows the error, asked no more', async () => {
      const { app, searches, list } = await start([() => busy('0')]);
      app.setQuery('topic');
      await vi.waitFor(() => expect(list().error).toBe(TURN));
      await settle();
      expect(searches).toEqual(['topic', 'topic']);
      expect(list()).toMatchObject({ loading: false, items: [] });
    });

    it.each([
      ['without Retry-After', () => busy(null)],
      ['from a proxy (no chatd body)', () => new Response('<html>503</html>', { status: 503, headers: { 'Retry-After': '0' } })],
    ])('%s is not asked again', async (_, refusal) => {
      const { app, searches, list } = await start([refusal, () => undefined]);
      app.setQuery('topic');
      await vi.waitFor(() => expect(list().error).not.toBeNull());
      await settle();
      expect(searches).toEqual(['topic']);
    });

    it('waits at most SEARCH_RETRY_MAX_MS however long its Retry-After', async () => {
      let refuse!: () => void;
      const { app, searches, list } = await start([
        () => new Promise<Response>((resolve) => (refuse = () => resolve(busy('3600')))),
        () => undefined,
      ]);
      app.setQuery('topic');
      await vi.waitFor(() => expect(searches).toHaveLength(1));
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        refuse();
        await vi.advanceTimersByTimeAsync(SEARCH_RETRY_MAX_MS - 1);
        expect(searches).toHaveLength(1);
        expect(list()).toMatchObject({ loading: true, error: null });
        await vi.advanceTimersByTimeAsync(1);
        expect(searches).toHaveLength(2);
      } finally {
        vi.useRealTimers();
      }
      await vi.waitFor(() => expect(list().items.map((c) => c.id)).toEqual(['c2']));
    });

    it('a search typed during the wait gives it up', async () => {
      const { app, searches, list } = await start([() => busy('3600'), () => undefined]);
      app.setQuery('topic');
      await vi.waitFor(() => expect(searches).toHaveLength(1));
      await settle();
      app.setQuery('two');
      await vi.waitFor(() => expect(list().items.map((c) => c.id)).toEqual(['c2']));
      expect(searches).toEqual(['topic', 'two']);
      expect(list().error).toBeNull();
    });
  });

  it('a title that came while the first page was on its way is kept when the page arrives, a conversation deleted meanwhile stays gone', async () => {
    let release = () => {};
    const page = { conversations: [conv('c3', 'New chat', '2026-01-03T00:00:00Z'), conv('c2', 'two', '2026-01-02T00:00:00Z')], nextCursor: '' };
    const { app, socket } = setup({
      path: '/',
      route: (url) => (url.startsWith('/api/conversations?') ? new Promise<Response>((resolve) => (release = () => resolve(json(page)))) : undefined),
    });
    socket().open();
    socket().receive({ type: 'conversation', action: 'updated', conversation: conv('c3', 'Titled by the model', '2026-01-03T00:00:07Z') });
    socket().receive({ type: 'conversation', action: 'deleted', conversation: conv('c2', 'two', '2026-01-02T00:00:00Z') });
    release(); // the page was read before the title was stored and c2 deleted
    await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
    expect(app.store.state.list.items.map((c) => c.title)).toEqual(['Titled by the model']);
  });

  it('a conversation created in another tab while the first page was on its way stays in the sidebar', async () => {
    let release = () => {};
    const page = { conversations: [conv('c3', 'three', '2026-01-03T00:00:00Z')], nextCursor: '' };
    const { app, socket } = setup({
      path: '/',
      route: (url) => (url.startsWith('/api/conversations?') ? new Promise<Response>((resolve) => (release = () => resolve(json(page)))) : undefined),
    });
    socket().open();
    socket().receive({ type: 'conversation', action: 'created', conversation: conv('c9', 'made elsewhere', '2026-01-09T00:00:00Z') });
    release(); // the page was read before c9 was created
    await vi.waitFor(() => expect(app.store.state.list.loaded).toBe(true));
    expect(app.store.state.list.items.map((c) => c.id)).toEqual(['c9', 'c3']);
  });

  it.each([
    ['an updated conversation', (n: string, at: string): ServerFrame => ({ type: 'conversation', action: 'updated', conversation: conv(n, n, at) })],
    ['a message', (n: string, at: string): ServerFrame => ({ type: 'message', conversationId: n, message: { ...message('u9', '', 'user', 'hi', 'complete'), conversationId: n, createdAt: at } })],
  ])('a reload keeps a conversation of page 2 that %s moved up while it was on its way', async (_, frame) => {
    const c = (n: number) => conv(`c${n}`, `conversation ${n}`, `2026-01-0${n}T00:00:00Z`);
    const pages = [[c(6), c(5)], [c(4), c(3)]];
    const listed = (q: URLSearchParams) => {
      const i = q.get('cursor') ? Number(q.get('cursor')) : 0;
      return { conversations: pages[i] ?? [], nextCursor: i + 1 < pages.length ? String(i + 1) : '' };
    };
    let release = () => {};
    let hold = false;
    const { app, socket } = setup({
      path: '/',
      list: listed,
      route: (url) => {
        if (!url.startsWith('/api/conversations?') || !hold) return undefined;
        hold = false;
        const q = new URLSearchParams(url.slice(url.indexOf('?') + 1));
        return new Promise<Response>((resolve) => (release = () => resolve(json(listed(q)))));
      },
    });
    socket().open();
    const ids = () => app.store.state.list.items.map((x) => x.id);
    await vi.waitFor(() => expect(ids()).toEqual(['c6', 'c5']));
    await app.loadMore();
    expect(ids()).toEqual(['c6', 'c5', 'c4', 'c3']);
    hold = true;
    const reloaded = app.reloadList(); // Retry, a reconnect after an error, a search cleared
    socket().receive(frame('c3', '2026-01-09T00:00:00Z'));
    release(); // the head was read before c3 moved up
    await reloaded;
    expect(ids()).toEqual(['c3', 'c6', 'c5']); // page 2 (from its cursor) brings c4
  });

  describe('after a reconnect', () => {
    const c = (n: number) => conv(`c${n}`, `conversation ${n}`, `2026-01-0${n}T00:00:00Z`);

    /**
     * keyset is a server listing as chatd does: newest activity first (ids
     * break ties), pages of `size`, each cursor the place of its page's last
     * conversation, so that a page read after changes starts where that
     * conversation now sorts.
     */
    function keyset(size: number, convs: Conversation[]) {
      const all = new Map(convs.map((x) => [x.id, x]));
      const order = () => [...all.values()].sort((a, b) => (a.updatedAt !== b.updatedAt ? (a.updatedAt < b.updatedAt ? 1 : -1) : a.id < b.id ? 1 : -1));
      const list: ListAnswer = (q) => {
        const cursor = q.get('cursor');
        const [at, id] = cursor ? (JSON.parse(cursor) as [string, string]) : ['', ''];
        const after = order().filter((x) => !cursor || x.updatedAt < at || (x.updatedAt === at && x.id < id));
        const page = after.slice(0, size);
        return { conversations: page, nextCursor: after.length > size ? JSON.stringify([page.at(-1)!.updatedAt, page.at(-1)!.id]) : '' };
      };
      return { all, list, ids: () => order().map((x) => x.id) };
    }

    /**
     * reconnectAfter starts the app on `server`'s list (all pages loaded), cuts the socket, lets `meanwhile` change the server, and reconnects.
     * The server's pages are `pages` (cursors their index), or its `list`.
     */
    async function reconnectAfter(server: { pages?: Conversation[][]; list?: ListAnswer }, meanwhile: () => void, holdRefresh = false) {
      let release = () => {};
      let held = false;
      const listed: ListAnswer =
        server.list ??
        ((q) => {
          const pages = server.pages ?? [];
          const i = q.get('cursor') ? Number(q.get('cursor')) : 0;
          return { conversations: pages[i] ?? [], nextCursor: i + 1 < pages.length ? String(i + 1) : '' };
        });
      const s = setup({
        path: '/',
        snapshots: [[message('u1', '', 'user', 'hi', 'complete')]],
        list: listed,
        route: (url) => {
          if (!url.startsWith('/api/conversations?') || !held) return undefined;
          held = false;
          const q = new URLSearchParams(url.slice(url.indexOf('?') + 1));
          return new Promise<Response>((resolve) => (release = () => resolve(json(listed(q)))));
        },
      });
      s.socket().open();
      const listCalls = () => s.calls.filter((x) => x.url.startsWith('/api/conversations?')).length;
      await vi.waitFor(() => expect(s.app.store.state.list.loaded).toBe(true));
      while (s.app.store.state.list.nextCursor) {
        const n = listCalls();
        void s.app.loadMore();
        await vi.waitFor(() => expect(listCalls()).toBe(n + 1));
        await vi.waitFor(() => expect(s.app.store.state.list.loading).toBe(false));
      }
      const first = s.socket();
      first.cut(); // a laptop lid closed, a network lost
      meanwhile(); // its conversation frames never reach this tab
      await vi.waitFor(() => expect(s.socket()).not.toBe(first));
      const before = listCalls();
      held = holdRefresh;
      s.socket().open();
      await vi.waitFor(() => expect(listCalls()).toBe(before + 1));
      return { ...s, release, ids: () => s.app.store.state.list.items.map((x) => x.id) };
    }

    /** loadToEnd reads the list's next pages until the last (the sidebar's Load more, or its sentinel). */
    async function loadToEnd(app: ReturnType<typeof setup>['app']) {
      for (let n = 0; app.store.state.list.nextCursor; n++) {
        if (n > 20) throw new Error(`no last page: ${app.store.state.list.nextCursor}`);
        await app.loadMore();
      }
    }

    it('drops a conversation deleted elsewhere while the tab was offline', async () => {
      const server = { pages: [[c(3), c(2)]] };
      const { ids } = await reconnectAfter(server, () => (server.pages = [[c(2)]]));
      await vi.waitFor(() => expect(ids()).toEqual(['c2']));
    });

    it('drops within the refreshed first page; the older ones, read again from its cursor, come in the server\'s order', async () => {
      const server = { pages: [[c(6), c(5)], [c(4), c(3)]] };
      const { app, ids } = await reconnectAfter(server, () => (server.pages = [[c(6), c(4)], [c(2)]])); // c5 and c3 deleted, c2 back (say)
      await vi.waitFor(() => expect(ids()).toEqual(['c6', 'c4']));
      expect(app.store.state.list.nextCursor).toBe('1'); // the refreshed page's
      await loadToEnd(app);
      expect(ids()).toEqual(['c6', 'c4', 'c2']);
    });

    it.each([
      ['more changes than a page holds (two created, one moved up)', (all: Map<string, Conversation>) => {
        for (const n of [7, 8]) all.set(`c${n}`, c(n));
        all.set('c3', { ...c(3), updatedAt: '2026-01-09T00:00:00Z' }); // a message sent in it on the phone
      }],
      ['a conversation of a loaded later page deleted', (all: Map<string, Conversation>) => void all.delete('c2')],
      ['both', (all: Map<string, Conversation>) => {
        for (const n of [7, 8, 9]) all.set(`c${n}`, c(n));
        all.delete('c1');
      }],
      ['nothing', () => {}],
    ])('%s elsewhere while offline: the list paged to its end is the server\'s', async (_, meanwhile) => {
      const server = keyset(2, [1, 2, 3, 4, 5, 6].map(c));
      const { app, ids } = await reconnectAfter(server, () => meanwhile(server.all));
      const head = server.list(new URLSearchParams()).conversations.map((x) => x.id);
      await vi.waitFor(() => expect(ids()).toEqual(head)); // the refreshed page; the ones after come with their pages
      await loadToEnd(app);
      expect(ids()).toEqual(server.ids());
    });

    it('a next page read from the cursor before the refresh is not added after it', async () => {
      // Its cursor is the old list's: what changed elsewhere sorts above it, beyond the refreshed page.
      const server = keyset(2, [1, 2, 3, 4, 5, 6].map(c));
      let release = () => {};
      let holdNext = false;
      const { app, socket, calls } = setup({
        path: '/',
        list: server.list,
        route: (url) => {
          if (!url.startsWith('/api/conversations?') || !url.includes('cursor=') || !holdNext) return undefined;
          holdNext = false;
          const q = new URLSearchParams(url.slice(url.indexOf('?') + 1));
          const answer = server.list(q); // read now, answered later
          return new Promise<Response>((resolve) => (release = () => resolve(json(answer))));
        },
      });
      socket().open();
      const ids = () => app.store.state.list.items.map((x) => x.id);
      await vi.waitFor(() => expect(ids()).toEqual(['c6', 'c5']));
      holdNext = true;
      const next = app.loadMore();
      await vi.waitFor(() => expect(holdNext).toBe(false));
      const first = socket();
      first.cut();
      for (const n of [7, 8, 9]) server.all.set(`c${n}`, c(n));
      await vi.waitFor(() => expect(socket()).not.toBe(first));
      socket().open();
      await vi.waitFor(() => expect(ids()).toEqual(['c9', 'c8']));
      const listCalls = calls.filter((x) => x.url.startsWith('/api/conversations?')).length;
      release();
      await next;
      expect(ids()).toEqual(['c9', 'c8']);
      expect(app.store.state.list.loading).toBe(false);
      await loadToEnd(app);
      expect(ids()).toEqual(server.ids());
      expect(calls.filter((x) => x.url.startsWith('/api/conversations?')).length).toBeGreaterThan(listCalls);
    });

    it('a search applied: the refreshed page\'s matches are shown, and paged to its end the list is the server\'s matches', async () => {
      const topic = (n: number) => ({ ...c(n), title: `topic ${n}` });
      const server = keyset(2, [1, 2, 3, 4, 5, 6].map(topic));
      const search: ListAnswer = (q) => {
        const found = keyset(2, [...server.all.values()].filter((x) => x.title.includes(q.get('q') ?? '')));
        return found.list(q);
      };
      const { app, socket } = setup({ path: '/', list: search });
      socket().open();
      const ids = () => app.store.state.list.items.map((x) => x.id);
      await vi.waitFor(() => expect(ids()).toEqual(['c6', 'c5']));
      app.setQuery('topic');
      await vi.waitFor(() => expect(app.store.state.list.appliedQuery).toBe('topic'));
      await vi.waitFor(() => expect(app.store.state.list.loading).toBe(false));
      await loadToEnd(app);
      expect(ids()).toEqual(['c6', 'c5', 'c4', 'c3', 'c2', 'c1']);
      const first = socket();
      first.cut();
      for (const n of [7, 8, 9]) server.all.set(`c${n}`, topic(n)); // new matches on the phone
      server.all.delete('c2');
      await vi.waitFor(() => expect(socket()).not.toBe(first));
      socket().open();
      await vi.waitFor(() => expect(ids()).toEqual(['c9', 'c8']));
      await loadToEnd(app);
      expect(ids()).toEqual(server.ids());
    });

    it('keeps a conversation created while the refresh was on its way', async () => {
      const server = { pages: [[c(3), c(2)]] };
      const { socket, release, ids } = await reconnectAfter(server, () => (server.pages = [[c(3)]]), true);
      socket().receive({ type: 'conversation', action: 'created', conversation: c(7) });
      expect(ids()).toEqual(['c7', 'c3', 'c2']);
      release(); // the page was made before c7
      await vi.waitFor(() => expect(ids()).toEqual(['c7', 'c3']));
    });

    it('keeps a title that came while the refresh was on its way: the older page does not undo it', async () => {
      const server = { pages: [[c(3), c(2)]] };
      const { app, socket, release, ids } = await reconnectAfter(server, () => (server.pages = [[c(3)]]), true);
      const titled = { ...c(3), title: 'Titled by the model', updatedAt: '2026-01-03T00:00:09Z' };
      socket().receive({ type: 'conversation', action: 'updated', conversation: titled });
      const title = () => app.store.state.list.items.find((x) => x.id === 'c3')?.title;
      expect(title()).toBe('Titled by the model');
      release(); // the page was made before the title (and after c2 was deleted)
      await vi.waitFor(() => expect(ids()).toEqual(['c3']));
      expect(title()).toBe('Titled by the model');
    });

    /** movedUp are frames that bring c3, on page 2, above the first page: new activity after the head was read. */
    const movedUp: Array<[string, ServerFrame]> = [
      ['an updated conversation', { type: 'conversation', action: 'updated', conversation: { ...c(3), updatedAt: '2026-01-09T00:00:00Z' } }],
      ['a message', { type: 'message', conversationId: 'c3', message: { ...message('u9', '', 'user', 'hi', 'complete'), conversationId: 'c3', createdAt: '2026-01-09T00:00:00Z' } }],
    ];

    it.each(movedUp)('keeps a conversation of page 2 that %s moved up while the refresh was on its way', async (_, frame) => {
      const server = { pages: [[c(6), c(5)], [c(4), c(3)]] };
      const { socket, release, ids } = await reconnectAfter(server, () => (server.pages = [[c(6), c(4)], [c(3)]]), true); // c5 deleted
      socket().receive(frame);
      expect(ids()).toEqual(['c3', 'c6', 'c5', 'c4']);
      release(); // the head was read before c3 moved up (page 2 no longer has it once it did)
      await vi.waitFor(() => expect(ids()).not.toContain('c5'));
      expect(ids()).toEqual(['c3', 'c6', 'c4']);
    });
  });

    it('an open conversation renamed while its reload was on its way keeps the new title, in the list and the header', async () => {
      const at = (t: string) => ({ ...conv(CID, t === 'old' ? 'Old title' : 'New title', t === 'old' ? '2026-01-02T00:00:00Z' : '2026-01-02T00:00:05Z') });
      let hold = false;
      let release = () => {};
      let messages = [message('u1', '', 'user', 'hi', 'complete')];
      const snapshot = () => json({ conversation: at('old'), messages, activeMessageId: messages.at(-1)!.id });
      const { app, socket, calls } = setup({
        list: () => ({ conversations: [at('old')], nextCursor: '' }),
        route: (url, init) => {
          if (url !== `/api/conversations/${CID}` || (init?.method ?? 'GET') !== 'GET') return undefined;
          if (!hold) return snapshot();
          hold = false;
          return new Promise<Response>((resolve) => (release = () => resolve(snapshot())));
        },
      });
      socket().open();
      const shownTitles = () => [app.store.state.list.items[0]?.title, app.store.state.threads[CID]?.conversation?.title];
      await vi.waitFor(() => expect(shownTitles()).toEqual(['Old title', 'Old title']));
      const first = socket();
      first.cut();
      await vi.waitFor(() => expect(socket()).not.toBe(first));
      const snapshots = () => calls.filter((x) => x.url === `/api/conversations/${CID}`).length;
      const before = snapshots();
      hold = true;
      messages = [...messages, message('a1', 'u1', 'assistant', 'hello', 'complete')];
      socket().open(); // the reconnect reloads the open conversation
      await vi.waitFor(() => expect(snapshots()).toBe(before + 1));
      socket().receive({ type: 'conversation', action: 'updated', conversation: at('new') }); // renamed in another tab
      expect(shownTitles()).toEqual(['New title', 'New title']);
      release(); // the snapshot was read before the rename
      await vi.waitFor(() => expect(app.store.state.threads[CID]?.messages.a1).toBeDefined());
      expect(shownTitles()).toEqual(['New title', 'New title']);
    });
});
