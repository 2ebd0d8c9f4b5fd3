// copyText copies text with the Clipboard API, or a hidden textarea where the
// API is missing (pages served over plain http on a LAN address) or refuses.
// The textarea's select() takes the focus and the selection (Blink, Gecko),
// and removing it leaves the focus on the body: both are put back, so the
// button pressed (a keyboard or screen reader user's place) keeps the focus
// and the text the user had selected stays selected.
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall back below
  }
  const focused = document.activeElement;
  const selection = document.getSelection();
  const ranges = selection ? Array.from({ length: selection.rangeCount }, (_, i) => selection.getRangeAt(i).cloneRange()) : [];
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  restore(focused, selection, ranges);
  return ok;
}

// restore gives the focus back to the element that had it and puts back
// the ranges that were selected.
function restore(focused: Element | null, selection: Selection | null, ranges: readonly Range[]) {
  if (focused instanceof HTMLElement && focused !== document.body && focused.isConnected) focused.focus({ preventScroll: true });
  if (!selection) return;
  selection.removeAllRanges();
  for (const r of ranges) selection.addRange(r);
}
