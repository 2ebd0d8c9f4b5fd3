// Connection's token check after a failed channel, against a scripted
// WebSocket and fetch (the real server is exercised by e2e/).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from './api';
import { Connection } from './connection';
import { Persist, memoryKV } from './persist';
import type { TransportStatus } from './transport';

/** FakeSocket is a WebSocket that never opens unless closed by the test. */
class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  constructor() {
    FakeSocket.all.push(this);
  }
  send() {}
  close() {
    this.readyState = 3;
  }
  /** fail closes the socket before it opened, as a browser does when the connection fails. */
  fail() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
}

/** hangingFetch answers nothing: a request on a dead link, ended only by its signal. */
function hangingFetch() {
  const requests: string[] = [];
  const impl = vi.fn((input: RequestInfo | URL, init?: RequestInit) => {
    requests.push(String(input));
    return new Promise<Response>((_resolve, reject) => {
      init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
  });
  return { impl, requests };
}

function setup() {
  const { impl, requests } = hangingFetch();
  const api = new ApiClient({ token: () => 'tok', onUnauthorized: vi.fn(), fetch: impl as typeof fetch });
  const statuses: TransportStatus[] = [];
  const conn = new Connection({
    api,
    persist: new Persist(memoryKV()),
    token: () => 'tok',
    followed: () => null,
    handlers: {
      frame: vi.fn(),
      status: (s) => statuses.push(s),
      reconnected: vi.fn(),
      unauthorized: vi.fn(),
      resumePoint: () => undefined,
      subscribeFailed: vi.fn(),
      notify: vi.fn(),
    },
    socketUrl: 'ws://host/ws',
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
  });
  return { conn, statuses, requests };
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe('Connection', () => {
  it('a token check after a failed open that gets no answer (a dead link) ends in 45 s (the server’s own bound, 30 s, and a margin) as offline, and the channel is retried', async () => {
    const { conn, statuses, requests } = setup();
    conn.start();
    FakeSocket.all[0]!.fail();
    await vi.advanceTimersByTimeAsync(0);
    expect(requests).toEqual(['/api/auth/me']);
    await vi.advanceTimersByTimeAsync(44_999);
    expect(statuses.at(-1)?.state).toBe('connecting'); // still checking
    await vi.advanceTimersByTimeAsync(1);
    expect(statuses.at(-1)).toEqual({ state: 'offline', kind: 'ws', detail: 'The server cannot be reached.' });
    await vi.advanceTimersByTimeAsync(1_000); // the backoff
    expect(FakeSocket.all).toHaveLength(2);
    conn.stop();
  });
});
