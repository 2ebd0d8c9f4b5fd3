// A send or regenerate over the SSE fallback that chatd refuses for good
// (400 unknown_model: the conversation's model not available right now)
// is told, as over a WebSocket, and not repeated behind the user's back.
// A 503, chatd's (a shutdown, a request it could not get through in time:
// the message may have been taken) or a proxy's, is a moment: the send is
// kept and repeated with its clientMessageId, which the server answers
// once. chatd's own 503 (its JSON error body) says why, in a toast once and
// in the composer; a proxy's says nothing more than a lost connection.
// A 401 ends the session before the refusal reaches the send: its text
// stays held in storage, for the next sign-in, as after a cut.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatApp } from './chat';
import { memoryKV } from './persist';
import { CID, json, message, setup } from './testkit';

const REFUSAL = 'model "gone" is not available right now (Local cannot list its models: Could not reach the model provider); try again later, or pick another model';

/** sseSetup is a ChatApp over SSE whose POSTs of send and regenerate answer with answer(); kv: the storage it starts from. */
function sseSetup(answer: () => Response, kv?: ReturnType<typeof memoryKV>) {
  sessionStorage.setItem('chatd.transport', 'sse');
  const t = setup({
    kv,
    snapshots: [[message('u1', '', 'user', 'hi', 'complete'), message('a1', 'u1', 'assistant', 'Hello', 'complete', { model: 'm' })]],
    route: (url, init) => {
      if (init?.method === 'POST' && (url.endsWith('/messages') || url.endsWith('/regenerate'))) return answer();
      if (url === '/api/auth/login') return json({ token: 'tok2', user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } });
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

describe('a send or regenerate over SSE refused', () => {
  afterEach(() => sessionStorage.clear());

  it.each([
    ['send', `Message not sent: ${REFUSAL}`],
    ['regenerate', `Could not regenerate: ${REFUSAL}`],
  ] as const)("for good (400 unknown_model): a %s is refused with chatd's message, not queued", async (what, toast) => {
    const { app, thread, posts } = sseSetup(() => json({ error: { code: 'unknown_model', message: REFUSAL } }, 400));
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

  const NO_MODEL = 'no model is available: Local cannot list its models: Could not reach the model provider; try again later';
  it.each([
    ['by chatd (no model can be listed)', () => json({ error: { code: 'unavailable', message: NO_MODEL } }, 503), NO_MODEL],
    ['by a proxy (no chatd body)', () => new Response('<html>Service Unavailable</html>', { status: 503, headers: { 'Content-Type': 'text/html' } }), undefined],
  ] as const)('with 503 %s: the send is queued to be repeated, not refused; chatd\'s reason is said', async (_, answer, reason) => {
    const { app, thread, posts } = sseSetup(answer);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.link).toMatchObject({ state: 'connected', kind: 'sse' }));
    await app.send('again');
    await vi.waitFor(() => expect(thread()?.queued.map((q) => q.content)).toEqual(['again']));
    expect(posts()).toHaveLength(1);
    expect(app.store.state.toasts.map((t) => t.text).filter((t) => t.startsWith('Message not sent:'))).toEqual([]);
    // Only chatd's own refusal says why, once, and makes the composer wait for the server rather than the connection.
    expect(thread()?.serverWait).toBe(reason);
    const told = reason ? ['Message not sent yet: No model is available: Local cannot list its models: Could not reach the model provider. It is sent when the server can take it.'] : [];
    expect(app.store.state.toasts.map((t) => t.text)).toEqual(told);
  });
});

describe('a send over SSE answered 401 (the token revoked or expired: the session ends before the refusal reaches the send)', () => {
  afterEach(() => sessionStorage.clear());

  it.each([
    ['a message from the composer', 'my long message', (app: ChatApp) => app.send('my long message'), 'my long message'],
    ['an edit', 'typed meanwhile', (app: ChatApp) => app.editAndResend('u1', 'my long message'), 'typed meanwhile\n\nmy long message'],
  ] as const)('%s: its text stays held in storage, and is in the composer at the next sign-in', async (_, typed, sending, composer) => {
    const kv = memoryKV();
    kv.setItem('chatd.token', 'tok');
    kv.setItem('chatd.draftsOwner', 'u'); // as its sign-in made it
    const { app, thread, posts } = sseSetup(() => json({ error: { code: 'unauthorized', message: 'token revoked' } }, 401), kv);
    await vi.waitFor(() => expect(thread()?.loaded).toBe(true));
    await vi.waitFor(() => expect(app.store.state.link).toMatchObject({ state: 'connected', kind: 'sse' }));
    app.setDraft(CID, typed); // the composer's text
    await sending(app);
    expect(app.store.state.session.token).toBeNull();
    const cmid = String((posts()[0]!.body as { clientMessageId: string }).clientMessageId);
    expect(JSON.parse(kv.getItem(`chatd.slot.sending.page.${CID}.${cmid}`) ?? 'null')).toMatchObject({ text: 'my long message' });

    await app.login('a@b.c', 'pw');
    app.navigate(`/c/${CID}`);
    await vi.waitFor(() => expect(app.store.state.drafts[CID]).toBe(composer));
    expect(kv.getItem(`chatd.slot.sending.page.${CID}.${cmid}`)).toBeNull(); // taken up
  });
});
