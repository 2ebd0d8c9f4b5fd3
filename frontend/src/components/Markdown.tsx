// Renders markdown block by block: each block's HTML is memoised, so while an
// answer streams only its last block touches the DOM.

import { memo, useContext, useDeferredValue, useLayoutEffect, useMemo, useRef, type MouseEvent } from 'react';
import { ContentGrew } from '../hooks/follow';
import { copyText } from '../lib/clipboard';
import { revealImage, revealKnown } from '../lib/images';
import { renderBlocks } from '../lib/markdown';
import { sayPolitely } from '../lib/politeStatus';

const Block = memo(function Block({ html }: { html: string }) {
  const ref = useRef<HTMLDivElement>(null);
  // A block rendered anew (a streaming answer's last block) shows again the
  // images the reader already asked for.
  useLayoutEffect(() => {
    if (ref.current) revealKnown(ref.current);
  }, [html]);
  return <div className="md-block" ref={ref} dangerouslySetInnerHTML={{ __html: html }} />;
});

function onClick(e: MouseEvent<HTMLDivElement>): void {
  const image = (e.target as HTMLElement).closest<HTMLButtonElement>('button.remote-image');
  if (image) {
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
