// The live channel seen by the store: one interface, two implementations
// (WebSocket in ws.ts, SSE read with fetch in sseTransport.ts).

import type { ServerFrame } from './protocol';

let requests = 0;

/**
 * requestOrder numbers the requests that read or follow a conversation
 * (its loads, its subscribes) in the order they are made, so a
 * subscribe's ack can tell whether a load came before it (the load's
 * snapshot may then lack what was stored before the subscribe was taken);
 * and the list's reads and the session's first confirmed channel alike
 * (a list read before may lack what changed before the channel was
 * registered: ConversationList.live).
 */
export function requestOrder(): number {
  return ++requests;
}

/** TransportKind names the implementation. */
export type TransportKind = 'ws' | 'sse';

/** LinkState is what the status line shows. */
export type LinkState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

/** TransportStatus is the state of the live channel. */
export interface TransportStatus {
  state: LinkState;
  kind: TransportKind;
  /** A short human explanation (close reason, error), when there is one. */
  detail?: string;
  /** Offline after a close nothing reconnects after by itself (1008 policy, 1009 too big): only Retry does. */
  retryOnly?: boolean;
}

/** Accepted is what an ack of send/regenerate carries. */
export interface Accepted {
  conversationId: string;
  userMessageId?: string;
  messageId?: string;
  /** The conversation's model, no longer offered, that model replaced for this answer (absent: none). */
  replacedModel?: string;
  /** The model answering in its place (only with replacedModel). */
  model?: string;
}

/** SendRequest is a user message to store and answer. */
export interface SendRequest {
  conversationId: string;
  content: string;
  clientMessageId: string;
  parentMessageId?: string;
  model?: string;
}

/** RegenerateRequest asks for another answer to the same user message. */
export interface RegenerateRequest {
  conversationId: string;
  messageId?: string;
  model?: string;
  /**
   * The idempotency key, as a send's: new for each regenerate the user asks
   * for, the same when it is asked again after a cut (the server then
   * answers with the answer the first one made, and starts none).
   */
  clientMessageId: string;
}

/** Resume is where a streaming answer continues: subscribe's messageId + lastSeq (+ lastReasoningSeq). */
export interface Resume {
  messageId: string;
  lastSeq: number;
  /** The reasoning's cursor; absent: 0 (all the reasoning is sent again). */
  lastReasoningSeq?: number;
}

/**
 * AuthVerdict is what a check of the token found when the live channel
 * failed: it works (ok), it was refused (unauthorized), no answer came
 * (offline: the network, a proxy's 502-504), or chatd itself answered not
 * now, with its message (its 503 unavailable: it cannot check the token
 * now, a shutdown): the server is up, the link waits for it.
 */
export type AuthVerdict = 'ok' | 'unauthorized' | 'offline' | { unavailable: string };

/** AuthCheck says whether the token still works when the live channel fails. */
export type AuthCheck = () => Promise<AuthVerdict>;

/** SessionEnd is why the server ended a session, when it says. */
export type SessionEnd = 'accountDeleted';

/** TransportHandlers are the store's callbacks. */
export interface TransportHandlers {
  /** Every server frame, in order. */
  frame(f: ServerFrame): void;
  /** The channel changed state. */
  status(s: TransportStatus): void;
  /** The channel is back after a cut: whole messages may have been missed. */
  reconnected(): void;
  /**
   * The token was refused (close 4401, HTTP 401): sign in again. ended is
   * 'accountDeleted' when the server said why: the account is gone.
   */
  unauthorized(ended?: SessionEnd): void;
  /** The WebSocket cannot be opened while HTTP works: switch to the fallback. */
  fallback(): void;
  /** The resume point of a conversation's streaming answer, if any. */
  resumePoint(conversationId: string): Resume | undefined;
  /**
   * A subscribe was refused for good (bad_seq, not_found, invalid_field,
   * ...), with the server's message; refusals for now (TRANSIENT in ws.ts,
   * a 5xx or 429 of the event stream) are retried by the transport.
   */
  subscribeFailed(conversationId: string, code: string, message?: string): void;
  /**
   * A subscribe was taken: live updates of the conversation flow again.
   * The WebSocket reports its ack, the SSE transport the 200 of an event
   * stream following the conversation (the server subscribes the stream
   * before it answers). sentAt is when the subscribe was asked for, on
   * the requestOrder clock: a conversation loaded before then may lack what
   * was stored between its load and the subscribe. Optional: handlers that
   * need no word of it leave it out.
   */
  subscribed?(conversationId: string, sentAt: number): void;
  /** A notice for the user, said once where the status line would say it on every retry (a toast). */
  notify(text: string): void;
}

/** Transport is the live channel. */
export interface Transport {
  readonly kind: TransportKind;
  /** start connects; it returns at once. */
  start(): void;
  /** stop disconnects for good and fails pending requests. */
  stop(): void;
  /** send stores a user message and starts an answer. */
  send(r: SendRequest): Promise<Accepted>;
  /** regenerate answers a user message again. */
  regenerate(r: RegenerateRequest): Promise<Accepted>;
  /**
   * cancel stops the running answer of a conversation, for every tab; with
   * messageId only that answer (another one running then is left alone).
   */
  cancel(conversationId: string, messageId?: string): Promise<void>;
  /** subscribe follows a conversation (again after every reconnect, resuming by seq). */
  subscribe(conversationId: string): void;
  /** resubscribe asks again now, from the current resume point (after a gap). */
  resubscribe(conversationId: string): void;
  /** unsubscribe stops following. */
  unsubscribe(conversationId: string): void;
  /**
   * release stops following a conversation the server follows for this
   * channel only because a send or regenerate named it (a WebSocket's
   * send follows its conversation, protocol.md), unless it is subscribed.
   */
  release(conversationId: string): void;
  /** reconnectNow retries at once (a user's "retry"). */
  reconnectNow(): void;
  /**
   * checkNow makes sure the channel is alive after a wake (the page shown
   * again, the browser online, a machine back from sleep): a channel found
   * dead within a few seconds is cut and reconnected, resuming as after any
   * cut; one waiting out a backoff of the client's is retried at once.
   */
  checkNow(): void;
  /** drop cuts the connection as a network failure would (debugging and tests). */
  drop(): void;
}

/**
 * GOING_AWAY_SPREAD_MS is the window over which the first retry after a
 * server going away (isGoingAway) is spread. A rolling restart closes
 * every tab of every user on an instance at once: each retried within the
 * backoff's 125-250 ms, then made its reloads (and over SSE a token
 * check), all onto the instances left in that quarter second. Spread over
 * 3 s (a peak some 24 times lower), the retry still comes before a send
 * made meanwhile gives up waiting for the channel (openWaitMs, 5 s), and
 * the status says "Reconnecting…" for 1.5 s on average.
 */
export const GOING_AWAY_SPREAD_MS = 3000;

/**
 * isGoingAway says whether a close code says the server is going away
 * (1001: a shutdown, a rolling restart, a cluster bus lost) or restarting
 * (1012, which proxies may send): nothing about the client or its token.
 */
export function isGoingAway(code: number | undefined): boolean {
  return code === 1001 || code === 1012;
}

/**
 * goingAwayDelay is the pause before the first retry after a server went
 * away: full jitter over GOING_AWAY_SPREAD_MS, never shorter than the
 * backoff of the attempt (backoffMs), which a run of such closes grows.
 */
export function goingAwayDelay(backoffMs: number, rand: () => number = Math.random): number {
  return Math.max(backoffMs, Math.round(rand() * GOING_AWAY_SPREAD_MS));
}

/** backoffDelay is exponential backoff with jitter: half fixed, half random. */
export function backoffDelay(attempt: number, baseMs = 500, maxMs = 30000, rand: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(exp / 2 + (rand() * exp) / 2);
}

/**
 * TOO_MANY_CONNECTIONS_NOTICE is told once when the server turns the live
 * channel away for the user's open connections (the WebSocket's 1013 "too
 * many connections", the event stream's 429 "too many open connections for
 * this user"), where the status line says TOO_MANY_CONNECTIONS_DETAIL
 * at each retry.
 */
export const TOO_MANY_CONNECTIONS_NOTICE =
  'Too many tabs or devices are connected to your account right now. This tab will keep trying to connect; closing another tab helps.';

/** TOO_MANY_CONNECTIONS_DETAIL is the status line's detail meanwhile (its state says "Reconnecting…"). */
export const TOO_MANY_CONNECTIONS_DETAIL = 'Too many tabs or devices are connected.';
