// The sidebar list through ChatApp: live conversation frames, pages and search.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { conv, message, setup } from './testkit';

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
});
