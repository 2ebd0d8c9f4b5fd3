// Remote images in answers load only when the reader asks: the markdown
// renderer turns ![alt](https://host/x) into a button naming the host
// (markdown.ts), and revealImage puts the <img> in its place on a click.
// An answer steered by prompt injection could otherwise send conversation
// text to any host in an image URL, loaded without a click. The <img> is
// made here, after DOMPurify, so its referrerpolicy stays (DOMPurify drops
// the attribute).

/** The images revealed in this page, so a re-rendered block shows them again. */
const revealed = new Set<string>();

/** imageHost returns the host an https image URL would contact, or null for anything else. */
export function imageHost(src: string): string | null {
  try {
    const u = new URL(src.trim());
    return u.protocol === 'https:' && u.hostname ? u.host : null;
  } catch {
    return null;
  }
}

/**
 * revealImage replaces a placeholder button with its image; it returns the
 * <img>, or null. The button had the focus (a keyboard's Enter): the image
 * takes it (focusable by script only), and a screen reader reads its alt,
 * where the focus fell to the page with the button.
 */
export function revealImage(button: HTMLElement): HTMLImageElement | null {
  const src = button.dataset.src ?? '';
  if (!imageHost(src)) return null;
  const img = button.ownerDocument.createElement('img');
  img.referrerPolicy = 'no-referrer';
  img.setAttribute('referrerpolicy', 'no-referrer');
  img.alt = button.dataset.alt ?? '';
  img.decoding = 'async';
  img.className = 'remote-image-loaded';
  img.src = src;
  const focused = button.ownerDocument.activeElement === button;
  if (focused) img.tabIndex = -1;
  button.replaceWith(img);
  if (focused) img.focus();
  revealed.add(src);
  return img;
}

/** revealKnown shows again, under root, the images the reader already revealed (a block re-rendered). */
export function revealKnown(root: HTMLElement): void {
  if (revealed.size === 0) return;
  for (const b of root.querySelectorAll<HTMLElement>('button.remote-image')) {
    if (revealed.has(b.dataset.src ?? '')) revealImage(b);
  }
}

/** forgetRevealed empties the set (a session's end, tests). */
export function forgetRevealed(): void {
  revealed.clear();
}
