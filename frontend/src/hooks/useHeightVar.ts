// An element's height as a CSS variable on the page's root, for what is
// fixed on the page to place itself by what is in the flow.

import { useLayoutEffect, type RefObject } from 'react';

/**
 * useHeightVar sets the CSS variable name on the page's root to el's
 * height ("96px"), kept as it changes, removed when el goes: a narrow
 * screen's toasts stand above the composer (--composer-height) and the
 * message list leaves room below its newest message for them
 * (--toasts-height, app.css).
 */
export function useHeightVar(ref: RefObject<HTMLElement | null>, name: string): void {
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const root = document.documentElement.style;
    const set = () => root.setProperty(name, `${Math.ceil(el.getBoundingClientRect().height)}px`);
    set();
    const seen = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(set);
    seen?.observe(el);
    return () => {
      seen?.disconnect();
      root.removeProperty(name);
    };
  }, [ref, name]);
}
