// The open conversation's message box, for the focus to go to when what had
// it goes away.

import { createContext, useLayoutEffect, useSyncExternalStore, type RefObject } from 'react';

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
 * useFocusInsteadWhenGone hands the focus on (focusInstead) when the element
 * in ref goes while it has it: a Retry gone once what it retried worked. It
 * fell to the page. Checked as the element goes, still in the page, before
 * anything else has taken the focus.
 */
export function useFocusInsteadWhenGone(ref: RefObject<HTMLElement | null>): void {
  useLayoutEffect(() => {
    const el = ref.current;
    return () => {
      if (el && el === document.activeElement) focusInstead();
    };
  }, [ref]);
}
