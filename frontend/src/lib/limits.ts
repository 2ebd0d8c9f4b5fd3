// The message length limit as the user meets it: a counter near the limit,
// a refusal over it (never a silent cut), and when a sent message is long
// enough to be shown collapsed.

/** MAX_MESSAGE_CHARS is the server's limit on a message (protocol.md: characters, that is code points). */
export const MAX_MESSAGE_CHARS = 32000;

/** MAX_SYSTEM_PROMPT_CHARS is the server's limit on a system prompt (docs/api.md). */
export const MAX_SYSTEM_PROMPT_CHARS = 8000;

/** MAX_SEARCH_CHARS is the server's limit on a search's text (docs/api.md, `q`). */
export const MAX_SEARCH_CHARS = 200;

/** MAX_TITLE_CHARS is the server's limit on a conversation's title, trimmed (docs/api.md). */
export const MAX_TITLE_CHARS = 200;

/** MAX_NAME_CHARS is the server's limit on a user's name, trimmed (docs/api.md, register). */
export const MAX_NAME_CHARS = 100;

/** COUNTER_FROM is the length from which the counter shows. */
export const COUNTER_FROM = 28000;

/** charCount counts code points, as the server does (an emoji is one, not two UTF-16 units). */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * clipChars returns text cut to at most max code points, never inside a
 * code point nor, where the browser can tell (Intl.Segmenter), inside a
 * character made of several (an emoji family, a letter and its accents).
 * A text box's maxLength counts UTF-16 units: it cut an emoji in two.
 */
export function clipChars(text: string, max: number): string {
  if (text.length <= max) return text; // UTF-16 units: at most as many code points
  const points = [...text];
  if (points.length <= max) return text;
  const cut = points.slice(0, max).join('');
  if (typeof Intl.Segmenter !== 'function') return cut;
  let end = 0;
  for (const g of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) {
    const next = g.index + g.segment.length;
    if (next > cut.length) break;
    end = next;
  }
  return text.slice(0, end);
}

/**
 * clipEdit limits an edit of a field to max code points: of what the edit
 * inserted (the text before `caret`, where the edit put it, that `before`
 * lacks) only what fits is kept (clipChars: never cut inside a character),
 * the rest of the field as it was. value is the field after the edit and
 * caret its caret; the answer's caret is after what was kept. Clipping the
 * end of the whole text instead dropped its last character and moved the
 * caret to the end when the user typed in the middle of a full field.
 */
export function clipEdit(before: string, value: string, caret: number, max: number): { value: string; caret: number } {
  if (value.length <= max || charCount(value) <= max) return { value, caret };
  const suffix = value.slice(caret);
  if (!before.endsWith(suffix)) {
    const clipped = clipChars(value, max); // not an insertion at the caret: cut the end
    return { value: clipped, caret: clipped.length };
  }
  let start = 0;
  const limit = Math.min(caret, before.length - suffix.length);
  while (start < limit && before[start] === value[start]) start++;
  const unit = value.charCodeAt(start - 1);
  if (start > 0 && unit >= 0xd800 && unit <= 0xdbff) start--; // not between a surrogate pair
  const prefix = value.slice(0, start);
  const room = Math.max(0, max - charCount(prefix) - charCount(suffix));
  const kept = clipChars(value.slice(start, caret), room);
  return { value: prefix + kept + suffix, caret: start + kept.length };
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
 * (sent: it can be split into several), a system prompt (saved: one
 * text, only shortened) or a one-line field (a title, a name).
 */
export type LengthKind = 'message' | 'systemPrompt' | 'field';

/** overWords says why a text over the limit cannot go. */
const overWords: Record<LengthKind, string> = { message: 'too long to send.', systemPrompt: 'too long to save.', field: 'too long.' };

/** lengthStatus describes text against the limit. */
export function lengthStatus(text: string, max = MAX_MESSAGE_CHARS, from = COUNTER_FROM, kind: LengthKind = 'message'): LengthStatus {
  // Counting code points of a huge paste on every keystroke is cheap next to
  // rendering it; below `from` UTF-16 units it cannot be near the limit.
  if (text.length < from) return { count: text.length, show: false, over: false, text: '', alert: '' };
  const count = charCount(text);
  const over = count > max;
  const excess = characters(count - max);
  const fix = kind === 'message' ? `Remove ${excess}, or split it into several messages.` : `Shorten it by ${excess}.`;
  const words = !over ? `${fmt(count)} / ${fmt(max)} characters` : `${fmt(count)} / ${fmt(max)} characters: ${overWords[kind]} ${fix}`;
  const alert = !over ? '' : kind === 'field' ? `Over the limit of ${fmt(max)} characters.` : `Over the limit of ${fmt(max)} characters: ${overWords[kind]}`;
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
