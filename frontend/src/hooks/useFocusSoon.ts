// The focus for what a form's refusal shows, once it is shown.

import { useCallback, useEffect, useRef } from 'react';

/** Find names the element to focus, found once rendered. */
type Find = () => HTMLElement | null | undefined;

/**
 * useFocusSoon returns a function that asks for an element to take the
 * focus once the next render is in the page: a refusal's error, not there
 * yet when the answer comes. A form's button is disabled while the server
 * works, and Chromium moves the focus of a disabled button to the page
 * (out of a modal dialog too), where it stayed once the refusal was shown.
 */
export function useFocusSoon(): (find: Find) => void {
  const pending = useRef<Find | null>(null);
  useEffect(() => {
    const find = pending.current;
    if (!find) return;
    pending.current = null;
    find()?.focus();
  });
  return useCallback((find: Find) => {
    pending.current = find;
  }, []);
}
