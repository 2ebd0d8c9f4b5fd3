// The fallback transport for when a WebSocket cannot be opened: the SSE
// routes of protocol.md read with fetch + ReadableStream (EventSource cannot
// send the Authorization header). An open conversation is followed by asking
// GET .../stream again and again: 204 means nothing runs, a stream carries a
// running answer until its done; a cut stream resumes from the seq applied.

import { ApiError, type ApiClient } from './api';
import { parseServerFrame, type ServerFrame } from './protocol';
import { readSSE } from './sse';
import {
  backoffDelay,
  type Accepted,
  type RegenerateRequest,
  type SendRequest,
  type Transport,
  type TransportHandlers,
} from './transport';

/** SSEOptions configure an SSETransport. */
export interface SSEOptions {
  /** Pause between two GET .../stream when nothing runs; defaults to 3 s. */
  pollIntervalMs?: number;
}

const STATUS_DETAIL = 'live updates via HTTP streaming';

/** SSETransport implements Transport with HTTP requests and event streams. */
export class SSETransport implements Transport {
  readonly kind = 'sse' as const;
  private stopped = true;
  private readonly follows = new Map<string, AbortController>();
  private readonly posting = new Map<string, number>();
  private readonly wakers = new Map<string, () => void>();
  private readonly posts = new Set<AbortController>();
  private failures = 0;

  constructor(
    private readonly api: ApiClient,
    private readonly handlers: TransportHandlers,
    private readonly opts: SSEOptions = {},
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.handlers.status({ state: 'connected', kind: 'sse', detail: STATUS_DETAIL });
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.follows.values()) c.abort();
    for (const c of this.posts) c.abort();
    this.follows.clear();
    this.posts.clear();
  }

  send(r: SendRequest): Promise<Accepted> {
    const { conversationId, ...body } = r;
    return this.post(conversationId, 'messages', body);
  }

  regenerate(r: RegenerateRequest): Promise<Accepted> {
    const { conversationId, ...body } = r;
    return this.post(conversationId, 'regenerate', body);
  }

  async cancel(conversationId: string): Promise<void> {
    await this.api.raw('POST', `/api/conversations/${encodeURIComponent(conversationId)}/cancel`);
  }

  subscribe(conversationId: string): void {
    if (this.follows.has(conversationId) || this.stopped) return;
    const ctrl = new AbortController();
    this.follows.set(conversationId, ctrl);
    void this.follow(conversationId, ctrl.signal);
  }

  resubscribe(conversationId: string): void {
    this.wakers.get(conversationId)?.();
  }

  unsubscribe(conversationId: string): void {
    this.follows.get(conversationId)?.abort();
    this.follows.delete(conversationId);
  }

  reconnectNow(): void {
    for (const wake of this.wakers.values()) wake();
  }

  drop(): void {
    for (const c of this.posts) c.abort();
  }

  /** post starts an answer and streams its frames; it resolves on the ack. */
  private async post(conversationId: string, what: string, body: object): Promise<Accepted> {
    const ctrl = new AbortController();
    this.posts.add(ctrl);
    this.posting.set(conversationId, (this.posting.get(conversationId) ?? 0) + 1);
    const finish = () => {
      this.posts.delete(ctrl);
      this.posting.set(conversationId, (this.posting.get(conversationId) ?? 1) - 1);
      this.resubscribe(conversationId); // follow again: resumes a cut answer, sees the next one
    };
    let res: Response;
    try {
      res = await this.api.raw('POST', `/api/conversations/${encodeURIComponent(conversationId)}/${what}`, {
        body,
        headers: { Accept: 'text/event-stream' },
        signal: ctrl.signal,
      });
    } catch (err) {
      finish();
      throw err;
    }
    return new Promise<Accepted>((resolve, reject) => {
      let settled = false;
      const onFrame = (f: ServerFrame) => {
        if (!settled && f.type === 'ack') {
          settled = true;
          resolve({ conversationId: f.conversationId ?? conversationId, userMessageId: f.userMessageId, messageId: f.messageId });
        } else if (!settled && f.type === 'error') {
          settled = true;
          reject(new ApiError(0, f.code, f.message));
        }
      };
      this.pump(res, onFrame)
        .catch(() => undefined)
        .finally(() => {
          finish();
          if (!settled) reject(new ApiError(0, 'network', 'The stream ended before the server accepted the message.'));
        });
    });
  }

  /** pump reads an event stream to its end, handing every frame to the store. */
  private async pump(res: Response, tap?: (f: ServerFrame) => void): Promise<void> {
    if (!res.body) return;
    await readSSE(res.body, (ev) => {
      const f = parseServerFrame(ev.data);
      if (!f) return;
      tap?.(f);
      this.handlers.frame(f);
    });
  }

  /** follow asks GET .../stream until unsubscribed: catch-up, live deltas, resume after cuts. */
  private async follow(conversationId: string, signal: AbortSignal): Promise<void> {
    const base = `/api/conversations/${encodeURIComponent(conversationId)}/stream`;
    while (!signal.aborted && !this.stopped) {
      if ((this.posting.get(conversationId) ?? 0) > 0) {
        await this.sleep(conversationId, 1000, signal);
        continue;
      }
      const resume = this.handlers.resumePoint(conversationId);
      const query = resume ? `?messageId=${encodeURIComponent(resume.messageId)}&lastSeq=${resume.lastSeq}` : '';
      let pause = this.opts.pollIntervalMs ?? 3000;
      try {
        const res = await this.api.raw('GET', base + query, { headers: { Accept: 'text/event-stream' }, signal });
        this.recovered();
        if (res.status !== 204) {
          await this.pump(res);
          pause = 200;
        }
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof ApiError)) {
          pause = this.lost();
        } else if (err.status === 0) {
          pause = this.lost();
        } else if (err.status === 401) {
          return; // the API client already asked for sign-in
        } else if (err.status === 404) {
          this.follows.delete(conversationId);
          this.handlers.subscribeFailed(conversationId, err.code);
          return;
        } else {
          this.handlers.subscribeFailed(conversationId, err.code);
          pause = 1000;
        }
      }
      await this.sleep(conversationId, pause, signal);
    }
  }

  private recovered(): void {
    if (this.failures === 0) return;
    this.failures = 0;
    this.handlers.status({ state: 'connected', kind: 'sse', detail: STATUS_DETAIL });
    this.handlers.reconnected();
  }

  private lost(): number {
    this.failures++;
    this.handlers.status({ state: this.failures > 3 ? 'offline' : 'reconnecting', kind: 'sse', detail: STATUS_DETAIL });
    return backoffDelay(this.failures, 500, 15000);
  }

  /** sleep waits ms, or less when woken by resubscribe or aborted. */
  private sleep(conversationId: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        if (this.wakers.get(conversationId) === done) this.wakers.delete(conversationId);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.wakers.set(conversationId, done);
    });
  }
}
