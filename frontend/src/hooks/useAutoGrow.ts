// A text box as tall as its text, up to a cap, kept so as its width changes.

import { useLayoutEffect, type RefObject } from 'react';

/** MAX_BOX_HEIGHT is the height, in pixels, a growing text box stops at (it scrolls then). */
export const MAX_BOX_HEIGHT = 240;

/** fit sets ta's height to its text's, at most max (at least its rows: an 'auto' height is theirs). */
function fit(ta: HTMLTextAreaElement, max: number): void {
  ta.style.height = 'auto';
  ta.style.height = `${Math.min(ta.scrollHeight, max)}px`;
}

/**
 * useAutoGrow fits the text box in ref to text as it changes, and again
 * when the box's width changes (a window resized, a phone turned, the
 * sidebar opened): its lines wrap anew, and the box kept the height of the
 * old width, with a scroll bar or empty lines. Its own height changing (a
 * fit) is not a width change. Without ResizeObserver (jsdom) only text is
 * followed.
 */
export function useAutoGrow(ref: RefObject<HTMLTextAreaElement | null>, text: string, max = MAX_BOX_HEIGHT): void {
  useLayoutEffect(() => {
    if (ref.current) fit(ref.current, max);
  }, [ref, text, max]);
  useLayoutEffect(() => {
    const ta = ref.current;
    if (!ta || typeof ResizeObserver === 'undefined') return;
    let width = ta.getBoundingClientRect().width;
    const seen = new ResizeObserver(() => {
      const now = ta.getBoundingClientRect().width;
      if (now === width) return;
      width = now;
      fit(ta, max);
    });
    seen.observe(ta);
    return () => seen.disconnect();
  }, [ref, max]);
}
