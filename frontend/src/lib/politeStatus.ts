// The page's visually hidden polite live region for short confirmations that
// a sighted reader sees on the control itself (a Copy button's "Copied" or
// check mark): a screen reader is told them here. The control's own name
// stays what it does ("Copy message"): a name changed under the focus is
// not reliably read, and would be read as the control's name afterwards.

/** POLITE_STATUS_ID is the id of the region, rendered empty from the start (components/App). */
export const POLITE_STATUS_ID = 'polite-status';

/**
 * sayPolitely puts text in the region as a new node, so the same words said
 * again (a second copy) are announced again. Without the region (a part of
 * the page rendered alone) it does nothing.
 */
export function sayPolitely(text: string): void {
  const region = document.getElementById(POLITE_STATUS_ID);
  if (!region) return;
  const p = document.createElement('p');
  p.textContent = text;
  region.replaceChildren(p);
}
