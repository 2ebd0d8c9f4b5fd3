// The focus for what a form's refusal shows, once it is shown.

import { useCallback, useEffect, useRef, type RefObject } from 'react';

/** Find names the element to focus, found once rendered. */
type Find = () => HTMLElement | null | undefined;

/**
 * useFocusSoon returns a function that asks for an element to take the
 * focus once the next render is in the page: a refusal's error, not there
 * yet when the answer comes. A form's button (from) is disabled while the
 * server works, and Chromium moves the focus of a disabled button to the
 * page (out of a modal dialog too), where it stayed once the refusal was
 * shown. The focus is taken only from there: from the page, or from the
 * button still (a browser that leaves it on the disabled button). Anywhere
 * else the person put it, it stays: the field where Enter sent the form,
 * the field typed in while the server worked (a refusal is an alert, said
 * all the same).
 */
export function useFocusSoon(from: RefObject<HTMLElement | null>): (find: Find) => void {
  const pending = useRef<Find | null>(null);
  useEffect(() => {
    const find = pending.current;
    if (!find) return;
    pending.current = null;
    const at = document.activeElement;
    const fell = !at || at === document.body || at === from.current;
    if (fell) find()?.focus();
  });
  return useCallback((find: Find) => {
    pending.current = find;
  }, []);
}
