// The REST client: JSON over fetch with the Bearer token on every request.

import type { Conversation, Message, ModelInfo, Params, UpstreamInfo, User } from './protocol';
import { noteServerDate } from './serverClock';

/**
 * SERVER_WAIT_MS is how long a request waits for an answer the server
 * bounds by its CHATD_REQUEST_TIMEOUT (30 s by default: a store slow to
 * answer) before it is given up as lost: that bound and a margin for the
 * network. Shorter, a request the server would still have answered is
 * given up, the server abandons its work with it, and the retry fares no
 * better.
 */
export const SERVER_WAIT_MS = 45_000;

/** ApiError is a failed request: an HTTP error, or status 0 for a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds from Retry-After (429), when given. */
    readonly retryAfter?: number,
    /**
     * A 401 refusing the token the request carried (expired, revoked, its
     * account gone): its challenge names error="invalid_token" (docs/api.md),
     * where a wrong password's names none.
     */
    readonly tokenRefused = false,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** AuthResult is the answer of register, login and a password change: a session. */
export interface AuthResult {
  token: string;
  user: User;
}

/** ConversationPage is one page of the sidebar list. */
export interface ConversationPage {
  conversations: Conversation[];
  nextCursor: string;
}

/** ConversationSnapshot is GET /api/conversations/:id. */
export interface ConversationSnapshot {
  conversation: Conversation;
  /** The newest messages (all of them when hasMore is false), oldest first. */
  messages: Message[];
  activeMessageId: string;
  /** Older messages are left on the server; absent (an unpaged server) means false. */
  hasMore?: boolean;
}

/** MessagePage is GET /api/conversations/:id/messages?before=: older messages, oldest first. */
export interface MessagePage {
  messages: Message[];
  hasMore?: boolean;
}

/** ConversationPatch changes some fields of a conversation. */
export interface ConversationPatch {
  title?: string;
  model?: string;
  systemPrompt?: string;
  /** Replaces the whole set; `{}` clears it. */
  params?: Params;
}

/** NewConversation is the body of a creation: its fields and its idempotency key. */
export interface NewConversation extends ConversationPatch {
  /**
   * The creation's key: a request repeated with it (a retry after a lost
   * answer) gets the conversation the first one created (200) instead of a
   * second one. At most 64 characters.
   */
  clientId?: string;
}

/** ApiOptions configure an ApiClient. */
export interface ApiOptions {
  /** Returns the current token, or null when signed out. */
  token: () => string | null;
  /**
   * Called when an authenticated request answers 401 (expired or revoked
   * token), with the token the request carried: it may have been replaced
   * while the request ran (a password change).
   */
  onUnauthorized: (token: string | null) => void;
  /** Base URL; defaults to "" (same origin). */
  base?: string;
  /** fetch implementation; defaults to the global one. */
  fetch?: typeof fetch;
}

/** parseRetryAfter reads a Retry-After header (seconds or an HTTP date). */
export function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** errorFromResponse builds an ApiError from a non-2xx response's JSON error body. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body?.error?.code) code = body.error.code;
    if (body?.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  const tokenRefused = res.status === 401 && /\berror="invalid_token"/i.test(res.headers.get('WWW-Authenticate') ?? '');
  return new ApiError(res.status, code, message, parseRetryAfter(res.headers.get('Retry-After')), tokenRefused);
}

/** ApiClient calls the REST API of docs/api.md. */
export class ApiClient {
  private readonly base: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: ApiOptions) {
    this.base = opts.base ?? '';
    this.doFetch = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  /** headers returns the auth header (and more) for a request. */
  headers(extra: Record<string, string> = {}, token = this.opts.token()): Record<string, string> {
    return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
  }

  /**
   * raw performs a request and returns the response when it is 2xx; it
   * throws ApiError otherwise. Its 401 ends the session (onUnauthorized)
   * unless auth is false; with auth 'token' only one refusing the token
   * does (tokenRefused), a wrong password being the caller's to show.
   */
  async raw(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal; auth?: boolean | 'token'; token?: string } = {},
  ): Promise<Response> {
    const token = init.token ?? this.opts.token();
    const headers = this.headers(init.headers, token);
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    const sentAt = Date.now();
    try {
      res = await this.doFetch(this.base + path, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: init.signal,
        cache: 'no-store',
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection.');
    }
    noteServerDate(res.headers.get('Date'), sentAt, Date.now());
    if (res.ok) return res;
    const error = await errorFromResponse(res);
    if (res.status === 401 && (init.auth === 'token' ? error.tokenRefused : init.auth !== false)) this.opts.onUnauthorized(token);
    throw error;
  }

  private async json<T>(method: string, path: string, body?: unknown, auth: boolean | 'token' = true): Promise<T> {
    const res = await this.raw(method, path, { body, auth });
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  register(email: string, password: string, name: string): Promise<AuthResult> {
    return this.json('POST', '/api/auth/register', { email, password, name }, false);
  }

  login(email: string, password: string): Promise<AuthResult> {
    return this.json('POST', '/api/auth/login', { email, password }, false);
  }

  /** me answers who token's user is (by default the current token's). */
  async me(token?: string): Promise<{ user: User }> {
    const res = await this.raw('GET', '/api/auth/me', { token });
    return (await res.json()) as { user: User };
  }

  logout(): Promise<void> {
    return this.json('POST', '/api/auth/logout', undefined, false);
  }

  /**
   * revoke ends the sessions of token's user as a logout does, with that
   * token rather than the current one (a sign-out made offline, sent once
   * the network is back). Its 401 (the token already expired or revoked)
   * does not end the current session.
   */
  async revoke(token: string, signal?: AbortSignal): Promise<void> {
    await this.raw('POST', '/api/auth/logout', { auth: false, token, signal });
  }

  /**
   * deleteAccount deletes the signed-in account, its conversations and
   * messages; the password confirms it. It resolves to 'deleted' (204), or
   * to 'deleting' (202) when the account is gone for every sign-in but its
   * data is still being removed. Its 401 for a wrong password is for the
   * caller to show: it does not end the session; one refusing the token
   * (expired, revoked) does, as any request's.
   */
  async deleteAccount(password: string): Promise<'deleted' | 'deleting'> {
    const res = await this.withinServerWait((signal) => this.raw('DELETE', '/api/auth/me', { body: { password }, auth: 'token', signal }));
    return res.status === 202 ? 'deleting' : 'deleted';
  }

  /**
   * changePassword sets a new password once the server has checked the
   * current one. Every token issued before stops working, the one sent
   * included: the answer is the session to use from now on. Its 401 for a
   * wrong current password is for the caller to show: it does not end the
   * session; one refusing the token (expired, revoked) does, as any
   * request's. Both are given up after SERVER_WAIT_MS (withinServerWait).
   */
  changePassword(currentPassword: string, newPassword: string): Promise<AuthResult> {
    return this.withinServerWait(async (signal) => {
      const res = await this.raw('PATCH', '/api/auth/me', { body: { currentPassword, newPassword }, auth: 'token', signal });
      return (await res.json()) as AuthResult;
    });
  }

  /**
   * withinServerWait runs an account request given up after SERVER_WAIT_MS
   * with status 0 'timeout': the server answers it by then (its
   * CHATD_REQUEST_TIMEOUT), and one left unanswered (a half-open
   * connection) held the caller's session, its refused token kept waiting
   * for the answer (RefusalHold), for as long as the browser waits.
   */
  private async withinServerWait<T>(send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ctrl = new AbortController();
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      ctrl.abort();
    }, SERVER_WAIT_MS);
    try {
      return await send(ctrl.signal);
    } catch (err) {
      if (late) throw new ApiError(0, 'timeout', 'The server did not answer in time.');
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  models(): Promise<{ models: ModelInfo[]; upstreams?: UpstreamInfo[] }> {
    return this.json('GET', '/api/models');
  }

  /** listConversations fetches a page of the list, or of a search (query); signal gives the request up. */
  async listConversations(q: { cursor?: string; query?: string; limit?: number; signal?: AbortSignal }): Promise<ConversationPage> {
    const p = new URLSearchParams();
    p.set('limit', String(q.limit ?? 30));
    if (q.cursor) p.set('cursor', q.cursor);
    if (q.query) p.set('q', q.query);
    const res = await this.raw('GET', `/api/conversations?${p.toString()}`, { signal: q.signal });
    return (await res.json()) as ConversationPage;
  }

  /**
   * createConversation creates a conversation, or with a clientId used
   * before answers the one it created; signal gives the request up.
   */
  async createConversation(c: NewConversation, signal?: AbortSignal): Promise<{ conversation: Conversation }> {
    const res = await this.raw('POST', '/api/conversations', { body: c, signal });
    return (await res.json()) as { conversation: Conversation };
  }

  conversation(id: string): Promise<ConversationSnapshot> {
    return this.json('GET', `/api/conversations/${encodeURIComponent(id)}`);
  }

  /** olderMessages fetches up to limit messages older than the message before. */
  olderMessages(id: string, before: string, limit = 100): Promise<MessagePage> {
    const p = new URLSearchParams({ before, limit: String(limit) });
    return this.json('GET', `/api/conversations/${encodeURIComponent(id)}/messages?${p.toString()}`);
  }

  updateConversation(id: string, patch: ConversationPatch): Promise<{ conversation: Conversation }> {
    return this.json('PATCH', `/api/conversations/${encodeURIComponent(id)}`, patch);
  }

  deleteConversation(id: string): Promise<void> {
    return this.json('DELETE', `/api/conversations/${encodeURIComponent(id)}`);
  }

  /**
   * exportConversation downloads an export as a Blob with its suggested
   * file name. A body cut off on its way (the server aborts an export that
   * fails after its first bytes: docs/api.md) is a network error saying so,
   * not the browser's bare "Failed to fetch".
   */
  async exportConversation(id: string, format: 'markdown' | 'json'): Promise<{ blob: Blob; filename: string }> {
    const res = await this.raw('GET', `/api/conversations/${encodeURIComponent(id)}/export?format=${format}`);
    let blob: Blob;
    try {
      blob = await res.blob();
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'The export was cut short before it ended; try again.');
    }
    const fallback = `conversation-${id}.${format === 'markdown' ? 'md' : 'json'}`;
    return { blob, filename: filenameFrom(res.headers.get('Content-Disposition')) ?? fallback };
  }
}

/** filenameFrom reads the file name of a Content-Disposition header. */
export function filenameFrom(cd: string | null): string | undefined {
  if (!cd) return undefined;
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(cd);
  if (star?.[1]) {
    try {
      return sanitizeFilename(decodeURIComponent(star[1].trim().replace(/^"|"$/g, '')));
    } catch {
      // fall through to filename=
    }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(cd);
  const name = plain?.[2] ?? plain?.[1];
  return name ? sanitizeFilename(name.trim()) : undefined;
}

function sanitizeFilename(name: string): string | undefined {
  const clean = name.replace(/[/\\\u0000-\u001f]/g, '_').trim();
  return clean || undefined;
}
