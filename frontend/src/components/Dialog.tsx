// A modal dialog: Escape and the backdrop close it (not a press over a
// toast beneath the backdrop), focus moves in when it opens (and stays
// where the user puts it) and back when it closes.

import { useEffect, useId, useLayoutEffect, useRef, type ReactNode } from 'react';
import { isImeNativeKey } from '../lib/ime';

/** DialogProps configure a Dialog. */
export interface DialogProps {
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** Buttons at the bottom. */
  actions?: ReactNode;
}

/** Dialog renders a modal window. */
export function Dialog({ title, onClose, children, actions }: DialogProps) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useId();
  // The latest onClose, so a caller's inline arrow (a new function each
  // render) does not re-run the effect below: that moved the focus back to
  // the first button whenever the page behind re-rendered (a live update).
  const close = useRef(onClose);
  useLayoutEffect(() => {
    close.current = onClose;
  });
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    const first =
      ref.current?.querySelector<HTMLElement>('[data-autofocus]') ?? ref.current?.querySelector<HTMLElement>('textarea, input, select, button');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        // The Escape that cancels an input method's conversion (in the
        // system prompt, say) is the IME's: closing would drop what was typed.
        if (isImeNativeKey(e)) return;
        e.stopPropagation();
        close.current();
      } else if (e.key === 'Tab') trapFocus(e, ref.current);
    };
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      previous?.focus?.();
    };
  }, []);
  return (
    <div className="backdrop" onMouseDown={(e) => e.target === e.currentTarget && !overToast(e.clientX, e.clientY) && onClose()}>
      <div className="dialog" role="dialog" aria-modal="true" aria-labelledby={titleId} ref={ref}>
        <h2 id={titleId}>{title}</h2>
        <div className="dialog-body">{children}</div>
        {actions && <div className="dialog-actions">{actions}</div>}
      </div>
    </div>
  );
}

/**
 * overToast says whether a point of the backdrop is over a toast. Toasts
 * stand under the backdrop (app.css), dimmed with the page: a press on one
 * (its Dismiss) landed on the backdrop and closed the dialog, losing what
 * was typed in it, and the toast stayed. Such a press does nothing.
 */
function overToast(x: number, y: number): boolean {
  return document.elementsFromPoint(x, y).some((el) => el.closest('.toasts'));
}

function trapFocus(e: KeyboardEvent, root: HTMLElement | null): void {
  if (!root) return;
  const items = Array.from(root.querySelectorAll<HTMLElement>('button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])')).filter(
    (el) => !el.hasAttribute('disabled') && !el.closest('[hidden]'),
  );
  if (items.length === 0) return;
  const first = items[0]!;
  const last = items[items.length - 1]!;
  if (!root.contains(document.activeElement)) {
    // The focus fell out (the button that had it was disabled or removed,
    // to the page): Tab would go on in the page behind the dialog.
    e.preventDefault();
    (e.shiftKey ? last : first).focus();
  } else if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}
