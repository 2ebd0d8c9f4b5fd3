// Wire types of the chatd API. They mirror docs/protocol.md (live channel,
// chat.v1) and docs/api.md (REST) field for field; keep them in this one file.

/** Status of a stored message. User messages are always complete. */
export type MessageStatus = 'streaming' | 'complete' | 'cancelled' | 'error' | 'interrupted';

/** Role of a message's author. */
export type Role = 'user' | 'assistant';

/** Token accounting reported by the model. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** An account (`user` in api.md). */
export interface User {
  id: string;
  email: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

/** A conversation (`conversation` in api.md). */
export interface Conversation {
  id: string;
  title: string;
  model: string;
  systemPrompt: string;
  /** Sampling parameters; absent when the conversation sets none (the model's defaults apply). */
  params?: Params;
  createdAt: string;
  updatedAt: string;
}

/**
 * A conversation's sampling parameters (api.md, "Parameters"); an absent
 * field takes the model's default.
 */
export interface Params {
  /** 0 to 2. */
  temperature?: number;
  /** Above 0, at most 1. */
  topP?: number;
  /** The longest answer in tokens: 1 to the model's maxOutputTokens. */
  maxTokens?: number;
  /** At most 4 sequences of 1 to 64 characters. */
  stop?: string[];
}

/** A stored message, one node of the conversation's message tree. */
export interface Message {
  id: string;
  conversationId: string;
  /** "" for a root message. */
  parentId: string;
  role: Role;
  content: string;
  /** A reasoning model's "thinking", kept apart from content (absent when there was none). */
  reasoning?: string;
  model?: string;
  status: MessageStatus;
  finishReason?: string;
  usage?: Usage | null;
  /** A human-readable error for error/interrupted answers (REST stores a string). */
  error?: string;
  /**
   * The kind of failure of an error/interrupted answer: its done frame's
   * error.code (timeout, upstream_error, context_length...; protocol.md
   * "Error codes"; `shutdown` on an answer a restart ended, cleanly or by the
   * start-up sweep after a crash). Absent otherwise, and on an answer the
   * periodic sweep or a cluster's takeover ended (their reason is in error).
   */
  errorCode?: string;
  /** How many earlier messages were left out of this answer's prompt to fit the context window. */
  omittedMessages?: number;
  clientMessageId?: string;
  createdAt: string;
  updatedAt: string;
}

/** A model a user may pick (`GET /api/models`). */
export interface ModelInfo {
  id: string;
  name: string;
  demo: boolean;
  default: boolean;
  /** The upstream server that serves it (absent for the demo model). */
  upstream?: string;
  /** The upstream's label, the title of its group in the picker. */
  upstreamLabel?: string;
  /** The context window in tokens, when known. */
  contextTokens?: number;
  /** contextTokens was learned from an upstream's refusal of a too long prompt (this server instance's, for an hour). */
  contextTokensLearned?: boolean;
  /** The bound of a conversation's maxTokens, when the model has one. */
  maxOutputTokens?: number;
  /** The parameters used where a conversation sets none. */
  defaults?: Params;
  /** A reasoning model: it may think, silently, before its first word. */
  reasoning?: boolean;
}

/** An upstream server of `GET /api/models`, in the order its models come. */
export interface UpstreamInfo {
  name: string;
  label: string;
}

/** `{error: {code, message}}`: every REST error and the error of a done frame. */
export interface ErrorBody {
  code: string;
  message: string;
}

// ---- client -> server frames ----

export type FrameId = string | number;

export interface SendFrame {
  type: 'send';
  id?: FrameId;
  conversationId?: string;
  content: string;
  clientMessageId?: string;
  parentMessageId?: string;
  model?: string;
}

export interface CancelFrame {
  type: 'cancel';
  id?: FrameId;
  conversationId: string;
  /** The answer to stop; absent: whichever runs. */
  messageId?: string;
}

export interface RegenerateFrame {
  type: 'regenerate';
  id?: FrameId;
  conversationId: string;
  messageId?: string;
  model?: string;
  /** Idempotency key, as a send's. */
  clientMessageId?: string;
}

export interface SubscribeFrame {
  type: 'subscribe';
  id?: FrameId;
  conversationId: string;
  messageId?: string;
  lastSeq?: number;
  /** The reasoning's cursor (rseq) to resume from; absent counts as 0. */
  lastReasoningSeq?: number;
}

export interface UnsubscribeFrame {
  type: 'unsubscribe';
  id?: FrameId;
  conversationId: string;
}

export interface PingFrame {
  type: 'ping';
  id?: FrameId;
}

export type ClientFrame =
  | SendFrame
  | CancelFrame
  | RegenerateFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | PingFrame;

// ---- server -> client frames ----

export interface HelloFrame {
  type: 'hello';
  protocol: string;
  userId: string;
  maxFrameBytes: number;
  connectionId: string;
  /**
   * "confirmed": the server checked the session before sending hello. A
   * server before that field sent hello before its check, and may close
   * with 4401 right after it.
   */
  session?: 'confirmed';
}

export interface AckFrame {
  type: 'ack';
  id?: FrameId;
  conversationId?: string;
  userMessageId?: string;
  messageId?: string;
  /** The conversation's model, no longer offered, that model answers in place of (absent: none replaced). */
  replacedModel?: string;
  /** The model answering instead of replacedModel (only with it). */
  model?: string;
}

/** A conversation frame: the conversation whole, or for a deletion its id alone (protocol.md). */
export type ConversationFrame =
  | { type: 'conversation'; action: 'created' | 'updated'; conversation: Conversation }
  | { type: 'conversation'; action: 'deleted'; conversation: Pick<Conversation, 'id'> };

export interface MessageFrame {
  type: 'message';
  conversationId: string;
  message: Message;
}

export interface DeltaFrame {
  type: 'delta';
  conversationId: string;
  messageId: string;
  seq: number;
  text: string;
}

/** More of a reasoning model's "thinking"; rseq is the reasoning's length in bytes after it. */
export interface ReasoningFrame {
  type: 'reasoning';
  conversationId: string;
  messageId: string;
  rseq: number;
  text: string;
}

export interface DoneFrame {
  type: 'done';
  conversationId: string;
  messageId: string;
  seq: number;
  /** The reasoning's final length in bytes (absent when the answer had none). */
  rseq?: number;
  /**
   * Messages left out of the prompt to fit the model's context window;
   * absent: as the answer's message frame said (0 when a prompt fitted
   * again sent them all).
   */
  omittedMessages?: number;
  status: Exclude<MessageStatus, 'streaming'>;
  finishReason?: string;
  usage?: Usage | null;
  error?: ErrorBody | null;
}

export interface ErrorFrame {
  type: 'error';
  id?: FrameId;
  code: string;
  message: string;
}

export interface PongFrame {
  type: 'pong';
  id?: FrameId;
}

/** The last event of an SSE stream the server ended, with the code and reason a WebSocket close would carry. */
export interface ClosedFrame {
  type: 'closed';
  closeCode: number;
  reason?: string;
}

export type ServerFrame =
  | HelloFrame
  | AckFrame
  | ConversationFrame
  | MessageFrame
  | DeltaFrame
  | ReasoningFrame
  | DoneFrame
  | ErrorFrame
  | PongFrame
  | ClosedFrame;

/** WebSocket close codes of protocol.md. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  PolicyViolation: 1008,
  TooBig: 1009,
  TryAgainLater: 1013,
  Unauthorized: 4401,
  TooSlow: 4408,
  RateLimited: 4429,
} as const;

/** The reason of the 4401 close that ends the tabs of a deleted account. */
export const ACCOUNT_DELETED_REASON = 'account deleted';

/**
 * The reason of the 1001 close that follows, with several instances, an
 * `error` bad_seq without `id` (hub/remote.go's refuseCursor): a resume
 * point the server took (acked) and then refused, once the answer's text
 * reached it. The client reloads and resumes from the stored length, never
 * with the refused cursor (protocol.md, Close codes).
 */
export const RESUME_REFUSED_REASON = 'resume cursor inside a character; reload';

/** The reason of the 1013 close of a socket over the user's limit of open connections: try again later. */
export const TOO_MANY_CONNECTIONS_REASON = 'too many connections';

/** The message of the event stream's 429 for a user over the limit of open connections (transport/sse/stream.go). */
export const TOO_MANY_STREAMS_MESSAGE = 'too many open connections for this user';

/**
 * The start of the invalid_field refusal of a send whose parent is a
 * message of the user's already answered (hub/send.go): the sender's page
 * had not heard of the answer.
 */
export const PARENT_NOT_AN_ANSWER = 'parentMessageId must name an answer';

/** The subprotocol of this protocol version. */
export const PROTOCOL = 'chat.v1';

/** Parses one server frame; returns null for anything that is not a typed JSON object. */
export function parseServerFrame(data: string): ServerFrame | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const t = (v as { type?: unknown }).type;
  if (typeof t !== 'string') return null;
  return v as ServerFrame;
}
