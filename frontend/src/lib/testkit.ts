// Test stand-ins for the browser's WebSocket and fetch, shared by the
// ChatApp tests (the real server is covered by e2e/). Not part of the app.

import { afterEach, vi } from 'vitest';
import { ChatApp } from './chat';
import type { Pages } from './pages';
import { memoryKV, type KV } from './persist';
import type { Conversation, Message } from './protocol';
import { isGoingAway } from './transport';

/** CID is the conversation the tests open. */
export const CID = '0123456789abcdef01234567';

/** FakeSocket is a scripted WebSocket: the test opens, feeds and closes it. */
export class FakeSocket {
  readyState = 0;
  /** The subprotocols asked for (the token is "bearer.<token>"). */
  protocols: string[] = [];
  sent: Array<Record<string, unknown>> = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null = null;
  send(d: string) {
    this.sent.push(JSON.parse(d) as Record<string, unknown>);
  }
  close() {
    this.readyState = 3;
  }
  /**
   * open opens the socket as the server does for a session it confirms:
   * the open event, then hello (the first frame, sent once the session is
   * confirmed).
   */
  open() {
    this.accept();
    this.hello();
  }
  /** hello receives the hello frame, session confirmed. */
  hello() {
    this.receive({ type: 'hello', protocol: 'chat.v1', userId: 'u1', maxFrameBytes: 65536, connectionId: 'conn1', session: 'confirmed' });
  }
  /** accept fires only the open event: a socket the server accepted and has not greeted (yet). */
  accept() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(f: object) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  /**
   * cut closes the socket from the far side (a network failure, or the
   * server's close code and reason). The retry after a server going away
   * (1001, 1012), which the client spreads over 3 s (ws.test pins it), is
   * drawn at the window's start, so a test waits no real seconds for it.
   */
  cut(code = 1006, reason = '') {
    this.readyState = 3;
    const random = Math.random;
    if (isGoingAway(code)) Math.random = () => 0;
    try {
      this.onclose?.({ code, reason });
    } finally {
      Math.random = random;
    }
  }
  /** framesOf returns the frames of a type the client wrote. */
  framesOf(type: string) {
    return this.sent.filter((f) => f.type === type);
  }
}

/** message builds a stored message of the test conversation; its createdAt follows its id's length. */
export function message(id: string, parentId: string, role: Message['role'], content: string, status: Message['status'], extra: Partial<Message> = {}): Message {
  return { id, conversationId: CID, parentId, role, content, status, createdAt: `2026-01-01T00:00:0${id.length}Z`, updatedAt: '', ...extra };
}

/** conv builds a conversation. */
export function conv(id: string, title: string, updatedAt: string): Conversation {
  return { id, title, model: 'm', systemPrompt: '', createdAt: '2026-01-01T00:00:00Z', updatedAt };
}

/** json answers a fetch with a JSON body (and the headers given). */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

/** Route answers a request the test cares about, or returns undefined for the defaults. */
export type Route = (url: string, init: RequestInit | undefined) => Response | Promise<Response> | undefined;

/** A list page the scripted server answers GET /api/conversations with. */
export type ListAnswer = (params: URLSearchParams) => { conversations: Conversation[]; nextCursor: string };

/** SetupOptions script the fake server. */
export interface SetupOptions {
  /** Successive GET /api/conversations/CID answers' messages (the last repeats). */
  snapshots?: Array<Message[]>;
  /** Extra fields of the snapshot answers (hasMore, activeMessageId). */
  snapshotExtra?: Record<string, unknown>;
  list?: ListAnswer;
  route?: Route;
  /** The page to start on; defaults to /c/CID. */
  path?: string;
  /** Which pages are open; defaults to this page alone (fixedPages). */
  pages?: Pages;
  /** The storage; defaults to a new one (a reload passes the one before). */
  kv?: KV;
}

/**
 * settle lets every pending promise and zero-delay timer run, five rounds
 * deep: a check that something did NOT happen waits on it, where
 * vi.waitFor would pass at its first try, before the client acted.
 */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

/** started are the apps setup started in the running case, disposed after it. */
const started = new Set<ChatApp>();
afterEach(() => {
  for (const app of started) app.dispose();
  started.clear();
});

/** setup starts a signed-in ChatApp against the scripted server and socket. */
export function setup(opts: SetupOptions = {}) {
  const calls: Array<{ method: string; url: string; body?: unknown; auth?: string }> = [];
  const snapshots = opts.snapshots ?? [[]];
  let snap = 0;
  const fetchImpl = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? 'GET';
    const auth = (init?.headers as Record<string, string> | undefined)?.Authorization;
    calls.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : undefined, auth });
    const custom = await opts.route?.(url, init);
    if (custom) return custom;
    if (url.startsWith('/api/models')) return json({ models: [{ id: 'm', name: 'M', demo: false, default: true }] });
    if (url.startsWith('/api/auth/me')) return json({ user: { id: 'u', email: 'a@b.c', name: 'A', createdAt: '', updatedAt: '' } });
    if (url.startsWith('/api/conversations?')) {
      const list = opts.list ?? (() => ({ conversations: [], nextCursor: '' }));
      return json(list(new URLSearchParams(url.slice(url.indexOf('?') + 1))));
    }
    if (url === `/api/conversations/${CID}` && method === 'GET') {
      const messages = snapshots[Math.min(snap++, snapshots.length - 1)];
      return json({ conversation: conv(CID, 't', ''), messages, activeMessageId: messages?.at(-1)?.id ?? '', ...opts.snapshotExtra });
    }
    return new Response('{}', { status: 404 });
  });
  const kv = opts.kv ?? memoryKV();
  if (!opts.kv) kv.setItem('chatd.token', 'tok');
  // The sockets of this app only: an earlier test's app may still be reconnecting.
  const sockets: FakeSocket[] = [];
  class AppSocket extends FakeSocket {
    constructor(_url: string, protocols: string[] = []) {
      super();
      this.protocols = protocols;
      sockets.push(this);
    }
  }
  history.replaceState(null, '', opts.path ?? `/c/${CID}`);
  const app = new ChatApp({ kv, fetch: fetchImpl as typeof fetch, WebSocketImpl: AppSocket as unknown as typeof WebSocket, socketUrl: 'ws://x/ws', throttleMs: 0, pages: opts.pages ?? fixedPages('page') });
  app.start();
  started.add(app);
  const socket = () => sockets[sockets.length - 1]!;
  const thread = () => app.store.state.threads[CID];
  const answer = () => thread()?.messages.a1;
  const snapshotsFetched = () => calls.filter((c) => c.url === `/api/conversations/${CID}`).length;
  return { app, kv, calls, sockets, socket, thread, answer, snapshotsFetched };
}

/**
 * fixedPages is a Pages for tests: this page is id, and the pages in gone
 * (which the test may change) are closed.
 */
export function fixedPages(id: string, gone: Set<string> = new Set()): Pages {
  return { id, gone: async (ids) => new Set(ids.filter((x) => x !== id && gone.has(x))) };
}
