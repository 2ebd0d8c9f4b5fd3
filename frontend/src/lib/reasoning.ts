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
  const at = Date.parse(createdAt);
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
 * thinks (the answer streams and has no text yet), "Thought for 7 s" after,
 * or "Thoughts" when this tab does not know how long it took.
 */
export function thinkingLabel(times: ThinkingTimes | undefined, thinkingNow: boolean, now: number): ThinkingLabel {
  if (thinkingNow) {
    const s = times ? seconds(now - times.start, false) : 0;
    return { text: `Thinking… ${s} s`, live: true };
  }
  if (times?.end !== undefined) return { text: `Thought for ${seconds(times.end - times.start, true)} s`, live: false };
  return { text: 'Thoughts', live: false };
}
