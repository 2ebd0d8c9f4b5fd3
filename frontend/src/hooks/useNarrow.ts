// Whether the screen is narrow enough for the sidebar to be a drawer over
// the chat (app.css: max-width 760px; a desktop zoomed to 200% too).

import { useSyncExternalStore } from 'react';

/** NARROW_QUERY is app.css's breakpoint below which the sidebar is a drawer. */
export const NARROW_QUERY = '(max-width: 760px)';

function subscribe(changed: () => void): () => void {
  const q = window.matchMedia?.(NARROW_QUERY);
  q?.addEventListener?.('change', changed);
  return () => q?.removeEventListener?.('change', changed);
}

const narrow = () => window.matchMedia?.(NARROW_QUERY).matches ?? false;

/** useNarrow reports whether the sidebar is a drawer now; false where the page cannot tell (no matchMedia). */
export function useNarrow(): boolean {
  return useSyncExternalStore(subscribe, narrow, () => false);
}
