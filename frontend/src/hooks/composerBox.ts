// The open conversation's message box, for the focus to go to when what had
// it goes away.

import { createContext, type RefObject } from 'react';

/**
 * ComposerBox holds the open conversation's message box (ChatView provides
 * it; Composer fills it). A message's edit box, once sent, hands the focus
 * there: its own element goes with the old version of the message. null
 * outside a ChatView.
 */
export const ComposerBox = createContext<RefObject<HTMLTextAreaElement | null> | null>(null);

/**
 * focusBox puts the focus in the message box, except on touch screens
 * (it would pop the keyboard up).
 */
export function focusBox(box: HTMLTextAreaElement | null | undefined): void {
  if (!window.matchMedia?.('(pointer: coarse)').matches) box?.focus();
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
    (!window.matchMedia?.('(pointer: coarse)').matches && shown(target)) ||
    shown(document.querySelector<HTMLElement>('.messages')) ||
    shown(document.querySelector<HTMLElement>('.status-line')) ||
    shown(document.querySelector<HTMLElement>('nav button, nav input, nav a[href]'));
  to?.focus();
}
