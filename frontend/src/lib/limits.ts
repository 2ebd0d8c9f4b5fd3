// The message length limit as the user meets it: a counter near the limit,
// a refusal over it (never a silent cut), and when a sent message is long
// enough to be shown collapsed.

/** MAX_MESSAGE_CHARS is the server's limit on a message (protocol.md: characters, that is code points). */
export const MAX_MESSAGE_CHARS = 32000;

/** MAX_SYSTEM_PROMPT_CHARS is the server's limit on a system prompt (docs/api.md). */
export const MAX_SYSTEM_PROMPT_CHARS = 8000;

/** MAX_SEARCH_CHARS is the server's limit on a search's text (docs/api.md, `q`). */
export const MAX_SEARCH_CHARS = 200;

/** COUNTER_FROM is the length from which the counter shows. */
export const COUNTER_FROM = 28000;

/** charCount counts code points, as the server does (an emoji is one, not two UTF-16 units). */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** LengthStatus is what the composer shows about a text's length. */
export interface LengthStatus {
  count: number;
  /** Show the counter (near or over the limit). */
  show: boolean;
  /** Over the limit: sending is refused. */
  over: boolean;
  /** The counter's words, e.g. "31,200 / 32,000" or why it cannot be sent. */
  text: string;
  /**
   * What is said once as the text goes over the limit, '' under it: the
   * same words however far over (text changes at every key), so a key
   * typed over the limit says nothing new.
   */
  alert: string;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const characters = (n: number) => `${fmt(n)} character${n === 1 ? '' : 's'}`;

/**
 * LengthKind is what the text is, for the words over the limit: a message
 * (sent: it can be split into several) or a system prompt (saved: one
 * text, only shortened).
 */
export type LengthKind = 'message' | 'systemPrompt';

/** lengthStatus describes text against the limit. */
export function lengthStatus(text: string, max = MAX_MESSAGE_CHARS, from = COUNTER_FROM, kind: LengthKind = 'message'): LengthStatus {
  // Counting code points of a huge paste on every keystroke is cheap next to
  // rendering it; below `from` UTF-16 units it cannot be near the limit.
  if (text.length < from) return { count: text.length, show: false, over: false, text: '', alert: '' };
  const count = charCount(text);
  const over = count > max;
  const words = !over
    ? `${fmt(count)} / ${fmt(max)} characters`
    : kind === 'systemPrompt'
      ? `${fmt(count)} / ${fmt(max)} characters: too long to save. Shorten it by ${characters(count - max)}.`
      : `${fmt(count)} / ${fmt(max)} characters: too long to send. Remove ${characters(count - max)}, or split it into several messages.`;
  const alert = !over ? '' : `Over the limit of ${fmt(max)} characters: too long to ${kind === 'systemPrompt' ? 'save' : 'send'}.`;
  return { count, show: count >= from, over, text: words, alert };
}

/** Collapsing long user messages: more than this many characters or lines. */
export const COLLAPSE_CHARS = 1500;
export const COLLAPSE_LINES = 20;

/** isLongMessage says whether a message is shown collapsed with "Show more". */
export function isLongMessage(text: string): boolean {
  if (text.length > COLLAPSE_CHARS) return true;
  let lines = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) if (++lines > COLLAPSE_LINES) return true;
  return false;
}
