// What a screen reader is told of an answer that streamed in the open
// conversation, once it ends: its text as read on screen (not the markdown
// source), or why it stopped. The answer's own element is busy while it is
// written, and nothing else in the thread is a live region, so without this
// an answer arriving was never announced.

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

/** answerAnnouncement says an ended answer: its text and, when it did not end by itself, why. */
export function answerAnnouncement(m: Message): string {
  const text = m.content ? plainText(m.content) : '';
  const parts = [text ? `Answer: ${text}` : 'Answer'];
  if (m.status === 'cancelled') parts.push('Stopped.');
  else if (m.status === 'error' || m.status === 'interrupted') parts.push(m.error ? `Error: ${m.error}` : 'It did not finish.');
  const finish = finishNotice(m);
  if (finish) parts.push(finish.text);
  return parts.join(' ');
}
