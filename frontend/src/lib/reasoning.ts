// How long a reasoning model "thought" about an answer, as this tab saw it,
// and the label of the answer's Thinking section. Pure functions over
// immutable values, like thread.ts.
//
// The server sends no timing of the reasoning: the thinking starts when the
// answer does (its createdAt, the server's clock, so a second tab that joins
// mid-way counts from the same moment) and ends when the first text of the
// answer arrives. A tab that never saw the thinking under way (a stored
// answer, or a catch-up that brought reasoning and text together) does not
// know how long it took and says so by showing no duration.

import { serverToClient } from './serverClock';
import { formatDuration } from './time';

/** ThinkingTimes are one answer's thinking moments, client clock, in ms since the epoch. */
export interface ThinkingTimes {
  /** When the answer started (its createdAt, never later than when this tab first saw it think). */
  start: number;
  /** When this tab applied the answer's first reasoning. */
  seen: number;
  /** When the thinking ended (first answer text, or the end of the answer); absent while it lasts. */
  end?: number;
}

/**
 * CATCH_UP_MS: text arriving this soon after this tab's first reasoning came
 * with it in one catch-up, not after a thinking the tab watched; the
 * duration is then unknown.
 */
export const CATCH_UP_MS = 150;

/** startThinking records the first reasoning of an answer without text yet (createdAt: the answer's). */
export function startThinking(known: ThinkingTimes | undefined, createdAt: string, now: number): ThinkingTimes {
  if (known) return known;
  const at = serverToClient(Date.parse(createdAt));
  return { start: Number.isFinite(at) ? Math.min(at, now) : now, seen: now };
}

/**
 * endThinking records the end of the thinking (the first answer text, or
 * the answer's end); it returns undefined when the end cannot be told apart
 * from a catch-up (see CATCH_UP_MS), which leaves the duration unknown.
 */
export function endThinking(known: ThinkingTimes | undefined, now: number): ThinkingTimes | undefined {
  if (!known || known.end !== undefined) return known;
  if (now - known.seen < CATCH_UP_MS) return undefined;
  return { ...known, end: now };
}

/** seconds is a duration in whole seconds as a person reads it: at least 1 once ended. */
function seconds(ms: number, atLeastOne: boolean): number {
  const s = Math.floor(Math.max(0, ms) / 1000);
  return atLeastOne ? Math.max(1, Math.round(ms / 1000)) : s;
}

/** ThinkingLabel is the Thinking section's summary and whether the model still thinks. */
export interface ThinkingLabel {
  text: string;
  live: boolean;
}

/**
 * thinkingLabel names the Thinking section: "Thinking… 4 s" while the model
 * thinks (the answer streams and has no text yet), "Thought for 7 seconds"
 * or "Thought for 2 minutes" after (formatDuration, the app's style),
 * or "Thoughts" when this tab does not know how long it took.
 */
export function thinkingLabel(times: ThinkingTimes | undefined, thinkingNow: boolean, now: number): ThinkingLabel {
  if (thinkingNow) {
    const s = times ? seconds(now - times.start, false) : 0;
    return { text: `Thinking… ${s} s`, live: true };
  }
  if (times?.end !== undefined) return { text: `Thought for ${formatDuration(seconds(times.end - times.start, true), 'nearest')}`, live: false };
  return { text: 'Thoughts', live: false };
}

// ---- silent waits ----

/** WAIT_NOTICE_MS is how long an answer waits for its first text or reasoning before the wait is shown in words. */
export const WAIT_NOTICE_MS = 3000;

/**
 * reasoningModelName says whether a model id names one of OpenAI's
 * reasoning models (o1, o3, o4, gpt-5, gpt-6 and their variants, also
 * behind a provider's prefix: openai/o3-mini), which think silently
 * before their first token; not gpt-5-chat (gpt-5-chat-latest), the chat
 * model behind ChatGPT, which answers at once. The server's list
 * (llm/openai thinkingName) is the same.
 */
export function reasoningModelName(id: string | undefined): boolean {
  if (!id) return false;
  const name = id.slice(id.lastIndexOf('/') + 1);
  return ['o1', 'o3', 'o4', 'gpt-5', 'gpt-6'].some((p) => name.startsWith(p)) && !name.startsWith('gpt-5-chat');
}

/**
 * reasons says whether the model id is known to reason: the server's
 * list marks it (reasoning: declared, or known to the server by name),
 * its answers here carried reasoning (reasoned), or its name says so.
 */
export function reasons(id: string | undefined, reasoned: ReadonlySet<string>, models: readonly { id: string; reasoning?: boolean }[]): boolean {
  if (!id) return false;
  return reasoned.has(id) || models.some((m) => m.id === id && m.reasoning === true) || reasoningModelName(id);
}

/** modelsThatReasoned returns the models whose answers among messages carried reasoning. */
export function modelsThatReasoned(messages: Iterable<{ role: string; model?: string; reasoning?: string }>): ReadonlySet<string> {
  const models = new Set<string>();
  for (const m of messages) if (m.role === 'assistant' && m.model && m.reasoning) models.add(m.model);
  return models;
}

/**
 * waitStart is when an answer began waiting: its createdAt (on this
 * device's clock: serverClock.ts), never later than when this tab first saw it.
 */
export function waitStart(createdAt: string, seen: number): number {
  const at = serverToClient(Date.parse(createdAt));
  return Number.isFinite(at) ? Math.min(at, seen) : seen;
}

/** WaitLabel is what a silent answer shows: words announced once, and the seconds counted beside them. */
export interface WaitLabel {
  /** Empty until WAIT_NOTICE_MS have passed. */
  text: string;
  /** "12 s"; empty with text. */
  seconds: string;
}

/**
 * waitLabel names a wait for an answer's first text or reasoning:
 * "Thinking…" for a model known to reason, else "Waiting for the model…",
 * with the seconds since start, once WAIT_NOTICE_MS have passed.
 */
export function waitLabel(reasoner: boolean, start: number, now: number): WaitLabel {
  const ms = now - start;
  if (ms < WAIT_NOTICE_MS) return { text: '', seconds: '' };
  return { text: reasoner ? 'Thinking…' : 'Waiting for the model…', seconds: `${Math.floor(ms / 1000)} s` };
}
