// What a screen reader is told of an answer that streamed in the open
// conversation, once it ends: that it ended, how long it is and, when it
// did not end by itself, why; the reader then reads the answer where it
// is. Not the answer's text: a second copy of it in the page (the live
// region is hidden, not absent) would be found twice by find-in-page, be
// copied twice with the page, and be read again in browse mode. The
// answer's own element is busy while it is written, and nothing else in
// the thread is a live region, so without this an answer arriving was
// never announced.

import { answerFailure } from './failure';
import { finishNotice } from './finish';
import { renderMarkdown } from './markdown';
import type { Message } from './protocol';

/**
 * plainText returns the text of rendered markdown as it reads: the hidden
 * visual copy of math (its MathML is read instead) and the code blocks'
 * language labels and Copy buttons are left out. The HTML is sanitized
 * and parsed into an inert template: nothing in it runs or loads.
 */
export function plainText(markdown: string): string {
  const t = document.createElement('template');
  t.innerHTML = renderMarkdown(markdown);
  for (const el of t.content.querySelectorAll('[aria-hidden="true"], .code-head, annotation')) el.remove();
  for (const el of t.content.querySelectorAll('p, li, pre, div, tr, h1, h2, h3, h4, h5, h6, blockquote, br')) el.append(' ');
  return (t.content.textContent ?? '').replace(/\s+/g, ' ').trim();
}

/** segmenter splits text into words in any script (Intl.Segmenter); undefined where the browser has none. */
let segmenter: Intl.Segmenter | undefined;

/**
 * wordCount counts the words of text as a reader would: Chinese, Japanese
 * or Thai, written without spaces, have words too (a 1,080-character
 * Chinese answer was "1 word"), and punctuation alone is none. Without
 * Intl.Segmenter it counts what spaces separate.
 */
export function wordCount(text: string): number {
  if (!text) return 0;
  if (typeof Intl.Segmenter !== 'function') return text.split(' ').length;
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'word' });
  let n = 0;
  for (const s of segmenter.segment(text)) if (s.isWordLike) n++;
  return n;
}

/**
 * answerAnnouncement says an ended answer: that it ended, its length in
 * words and, when it did not end by itself, why; a failed one what to do
 * next (lib/failure.ts), as its status line says, not the server's words,
 * often written for its operator (they are under the answer's Details).
 */
export function answerAnnouncement(m: Message): string {
  const words = m.content ? wordCount(plainText(m.content)) : 0;
  const length = words ? `, ${words} ${words === 1 ? 'word' : 'words'}` : '';
  const parts: string[] = [];
  if (m.status === 'cancelled') parts.push(`Answer stopped${length}.`);
  else if (m.status === 'error' || m.status === 'interrupted') parts.push(`Answer did not finish${length}.`, answerFailure(m)?.advice ?? '');
  else parts.push(`Answer finished${length}.`);
  const finish = finishNotice(m);
  if (finish) parts.push(finish.text);
  return parts.filter(Boolean).join(' ');
}

/**
 * thinkingSaid holds the answers whose "Thinking…" was said, the newest
 * last (at most THINKING_KEPT): said once per answer, whether by the wait
 * (Waiting, a model known to reason) or as its reasoning starts
 * (AnswerAnnouncer), and not again when its conversation is shown again.
 */
const thinkingSaid = new Set<string>();
const THINKING_KEPT = 100;

/** thinkingWasSaid says whether answer id's "Thinking…" was said. */
export function thinkingWasSaid(id: string): boolean {
  return thinkingSaid.has(id);
}

/** sayThinkingOnce records that answer id's "Thinking…" is said; false when it was already (say nothing). */
export function sayThinkingOnce(id: string): boolean {
  if (thinkingSaid.has(id)) return false;
  thinkingSaid.add(id);
  if (thinkingSaid.size > THINKING_KEPT) thinkingSaid.delete(thinkingSaid.values().next().value as string);
  return true;
}
