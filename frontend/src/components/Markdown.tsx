// Renders markdown block by block: each block's HTML is memoised, so while an
// answer streams only its last block touches the DOM.

import { PureComponent, createRef, memo, useContext, useDeferredValue, useLayoutEffect, useMemo, type MouseEvent } from 'react';
import { ContentGrew } from '../hooks/follow';
import { copyText } from '../lib/clipboard';
import { revealImage, revealKnown } from '../lib/images';
import { renderBlocks } from '../lib/markdown';
import { sayPolitely } from '../lib/politeStatus';

/**
 * Block is one block's markup. A block rendered anew (a streaming answer's
 * last block, at every token) shows again the images the reader already
 * asked for, and gives the focus back to the code block's Copy button that
 * had it: the button goes with the markup it is part of, and the focus fell
 * to the page at every token. The same button is the one at the same place
 * among the block's Copy buttons. Which had the focus is read just before
 * the markup changes (getSnapshotBeforeUpdate: no hook runs then), so
 * nothing takes a focus the reader put elsewhere. The button is focused
 * without scrolling to it (focus scrolls by default): a reader who clicked
 * Copy and scrolled on to read the code as it grows was taken back up at
 * every token, and the list stopped following the answer.
 */
class Block extends PureComponent<{ html: string }> {
  private readonly ref = createRef<HTMLDivElement>();

  override componentDidMount(): void {
    if (this.ref.current) revealKnown(this.ref.current);
  }

  override getSnapshotBeforeUpdate(): number {
    const focused = document.activeElement;
    return this.copyButtons().findIndex((b) => b === focused);
  }

  override componentDidUpdate(_prev: unknown, _state: unknown, focusedCopy: number): void {
    if (this.ref.current) revealKnown(this.ref.current);
    const fell = !document.activeElement || document.activeElement === document.body;
    // Not scrolled to: a reader who scrolled on to read the code stays there.
    if (focusedCopy >= 0 && fell) this.copyButtons()[focusedCopy]?.focus({ preventScroll: true });
  }

  /** copyButtons are the block's code blocks' Copy buttons, in order. */
  private copyButtons(): HTMLButtonElement[] {
    return [...(this.ref.current?.querySelectorAll<HTMLButtonElement>('button.code-copy') ?? [])];
  }

  override render() {
    return <div className="md-block" ref={this.ref} dangerouslySetInnerHTML={{ __html: this.props.html }} />;
  }
}

/**
 * onClick loads a placeholder's image and copies a code block's code. A
 * placeholder's click (a keyboard's Enter or Space too: they click it) is
 * cancelled: inside a link ([![alt](img)](url)) it also opened the link,
 * a host the reader never chose, where the placeholder is there to ask
 * before any host is contacted.
 */
function onClick(e: MouseEvent<HTMLDivElement>): void {
  const image = (e.target as HTMLElement).closest<HTMLButtonElement>('button.remote-image');
  if (image) {
    e.preventDefault();
    revealImage(image);
    return;
  }
  const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button.code-copy');
  if (!button) return;
  const code = button.closest('.code-block')?.querySelector('code');
  if (!code) return;
  void copyText(code.textContent ?? '').then((ok) => copied(button, ok));
}

/** COPIED_MS is how long a Copy button shows "Copied". */
export const COPIED_MS = 1500;

/** The pending restorations of code blocks' Copy buttons to "Copy". */
const restoring = new WeakMap<HTMLButtonElement, ReturnType<typeof setTimeout>>();

/**
 * copied shows on a code block's Copy button that its code was copied (or
 * not) for a moment, and tells a screen reader so (its name, "Copy python
 * code", stays). A second click within that moment restarts it.
 */
function copied(button: HTMLButtonElement, ok: boolean): void {
  button.textContent = ok ? 'Copied' : 'Copy failed';
  sayPolitely(ok ? 'Code copied.' : 'Could not copy the code.');
  clearTimeout(restoring.get(button));
  restoring.set(
    button,
    setTimeout(() => {
      restoring.delete(button);
      button.textContent = 'Copy';
    }, COPIED_MS),
  );
}

/** Markdown renders sanitized markdown; growing: a streaming answer, whose last block is not cached. */
export const Markdown = memo(function Markdown({ text, growing = false }: { text: string; growing?: boolean }) {
  // Deferred: when rendering falls behind a fast stream, React skips
  // intermediate texts instead of queueing them, and typing stays responsive.
  const deferred = useDeferredValue(text);
  const stillGrowing = useDeferredValue(growing); // the same render's value as deferred
  const blocks = useMemo(() => renderBlocks(deferred, stillGrowing), [deferred, stillGrowing]);
  const grew = useContext(ContentGrew);
  useLayoutEffect(() => grew(), [blocks, grew]); // the list keeps a reader at the bottom there
  return (
    <div className="md" onClick={onClick}>
      {blocks.map((html, i) => (
        <Block key={i} html={html} />
      ))}
    </div>
  );
});
