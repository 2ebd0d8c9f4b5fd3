// The open conversation's message box, for the focus to go to when what had
// it goes away; and the hooks that hand the focus on when what had it goes.

import { createContext, useLayoutEffect, useRef, useSyncExternalStore, type RefObject } from 'react';

/**
 * ComposerBox holds the open conversation's message box (ChatView provides
 * it; Composer fills it). A message's edit box, once sent, hands the focus
 * there: its own element goes with the old version of the message. null
 * outside a ChatView.
 */
export const ComposerBox = createContext<RefObject<HTMLTextAreaElement | null> | null>(null);

/** COARSE_QUERY matches a touch screen's pointer: no hover, a keyboard on the screen. */
export const COARSE_QUERY = '(pointer: coarse)';

/** coarsePointer reports whether the pointer is a finger now; false where the page cannot tell (no matchMedia). */
export function coarsePointer(): boolean {
  return window.matchMedia?.(COARSE_QUERY).matches ?? false;
}

function subscribeCoarse(changed: () => void): () => void {
  const q = window.matchMedia?.(COARSE_QUERY);
  q?.addEventListener?.('change', changed);
  return () => q?.removeEventListener?.('change', changed);
}

/**
 * useCoarsePointer reports coarsePointer and renders again when it changes
 * (a tablet's keyboard and trackpad attached). A phone's keyboard has no
 * Shift+Enter: there Enter adds a line in the message boxes, and their
 * buttons send.
 */
export function useCoarsePointer(): boolean {
  return useSyncExternalStore(subscribeCoarse, coarsePointer, () => false);
}

/**
 * focusBox puts the focus in the message box, except on touch screens
 * (it would pop the keyboard up).
 */
export function focusBox(box: HTMLTextAreaElement | null | undefined): void {
  if (!coarsePointer()) box?.focus();
}

/**
 * focusInstead puts the focus, for a control that had it and goes (a Retry
 * once connected), in the message box (box, else the page's) or, on touch
 * screens and without a box, in the message list: not on the page. Both
 * are in the chat, inert while a phone's drawer covers it (it takes no
 * focus then): the focus goes to the drawer's status line instead, else
 * its first control.
 */
export function focusInstead(box?: HTMLElement | null): void {
  const target = box ?? document.querySelector<HTMLElement>('textarea[aria-label="Message"]');
  const shown = (el: HTMLElement | null | undefined) => (el && !el.closest('[inert]') ? el : null);
  const to =
    (!coarsePointer() && shown(target)) ||
    shown(document.querySelector<HTMLElement>('.messages')) ||
    shown(document.querySelector<HTMLElement>('.status-line')) ||
    shown(document.querySelector<HTMLElement>('nav button, nav input, nav a[href]'));
  to?.focus();
}

/**
 * useFocusInsteadWhenGone hands the focus on (handOn, by default
 * focusInstead; the first render's) when the element in ref goes while it
 * has it: a Retry gone once what it retried worked, or as it starts. It
 * fell to the page. Checked as the element goes, still in the page, before
 * anything else has taken the focus; what comes in the same render is not
 * in the page yet (useFocusAfterGone waits for it).
 */
export function useFocusInsteadWhenGone(ref: RefObject<HTMLElement | null>, handOn: () => void = focusInstead): void {
  useLayoutEffect(() => {
    const el = ref.current;
    return () => {
      if (el && el === document.activeElement) handOn();
    };
  }, [ref]);
}

/**
 * useFocusAfterGone hands the focus on (handOn) after a render in which
 * the element in ref, which had the focus at the render before, is gone
 * and the focus fell to the page: a Load more gone with the last page.
 * handOn runs once that render is in the page, so it can focus what came
 * with it (the page's first item). The focus is read at each render, so a
 * control that renders again as it is used (Loading…) is followed.
 */
export function useFocusAfterGone(ref: RefObject<HTMLElement | null>, handOn: () => void): void {
  const had = useRef(false);
  useLayoutEffect(() => {
    if (ref.current) {
      had.current = ref.current === document.activeElement;
      return;
    }
    const fell = !document.activeElement || document.activeElement === document.body;
    if (had.current && fell) handOn();
    had.current = false;
  });
}
