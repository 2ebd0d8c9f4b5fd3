// A send or regenerate over the SSE fallback that chatd refuses with 503
// (its JSON body naming the code: the conversation's model not available
// right now, a database outage) is told, as over a WebSocket, and not
// repeated behind the user's back; a proxy's bare 503 stays a lost
// connection, the send queued and repeated.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { CID, json, message, setup } from './testkit';

const REFUSAL = 'model "gone" is not available right now (Local cannot list its models: Could not reach the model provider); try again later, or pick another model';

/** sseSetup is a ChatApp over SSE whose POSTs of send and regenerate answer with answer(). */
function sseSetup(answer: () => Response) {
  sessionStorage.setItem('chatd.transport', 'sse');
  const t = setup({
    snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete', { model: 'm' })]],
    route: (url, init) => {
      if (init?.method === 'POST' && (url.endsWith('/messages') || url.endsWith('/regenerate'))) return answer();
      if (url.startsWith('/api/events')) {
        const body = new ReadableStream<Uint8Array>({ start: () => undefined });
        return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
      }
      return undefined;
    },
  });
  const posts = () => t.calls.filter((c) => c.method === 'POST' && (c.url.endsWith('/messages') || c.url.endsWith('/regenerate')));
  return { ...t, posts };
}

describe('a send or regenerate over SSE answered 503', () => {
  afterEach(() => sessionStorage.clear());

  it.each([
    ['send', `Message not sent: ${REFUSAL}`],
    ['regenerate', `Could not regenerate: ${REFUSAL}`],
  ] as const)("by chatd (its JSON body): a %s is refused with chatd's message, not queued", async (what, toast) => {
    const { app, thread, posts } = sseSetup(() => json({ error: { code: 'unavailable', message: REFUSAL } }, 503));
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.link).toMatchObject({ state: 'connected', kind: 'sse' }));
    if (what === 'send') {
      app.setDraft(CID, 'again');
      await app.send('again');
    } else {
      await app.regenerate('a1');
    }
    await vi.waitFor(() => expect(app.store.state.toasts.map((t) => t.text)).toEqual([toast]));
    expect(thread()?.queued).toEqual([]);
    expect(app.store.state.busy[CID]).toBeUndefined();
    expect(posts()).toHaveLength(1);
    if (what === 'send') expect(app.draft(CID)).toBe('again'); // given back
  });

  it("by a proxy (no chatd body): the send is queued to be repeated, not refused", async () => {
    const { app, thread, posts } = sseSetup(() => new Response('<html>Service Unavailable</html>', { status: 503, headers: { 'Content-Type': 'text/html' } }));
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.link).toMatchObject({ state: 'connected', kind: 'sse' }));
    await app.send('again');
    await vi.waitFor(() => expect(thread()?.queued.map((q) => q.content)).toEqual(['again']));
    expect(posts()).toHaveLength(1);
    expect(app.store.state.toasts.map((t) => t.text).filter((t) => t.startsWith('Message not sent'))).toEqual([]);
  });
});
