import { useLayoutEffect, useRef, useState, type FocusEvent } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { focusInstead } from '../hooks/composerBox';
import { useHeightVar } from '../hooks/useHeightVar';
import type { Toast } from '../lib/state';

/**
 * Toasts renders short notices; errors are announced assertively, the
 * others politely. Each kind has its own live region, in the page from the
 * start (a region put in with its text is not announced by every screen
 * reader), and a toast is no live region itself: one inside another was
 * read twice by some. Errors are listed first, and stay until dismissed;
 * an info toast hides itself after a while (lib/toasts.ts), except while
 * the reader is on them (the pointer over them, or the focus on a Dismiss
 * button): one being read, or whose
 * Dismiss button has the focus, stays until the reader leaves, where it
 * vanished under the reader and took the focus with it. On a narrow
 * screen they stand above the composer (app.css), where they cover none of
 * the header's controls (title, model, menu) and the newest message can
 * scroll clear of them.
 */
export function Toasts() {
  const app = useApp();
  const toasts = useAppState((s) => s.toasts);
  const [pointer, setPointer] = useState(false);
  const [focus, setFocus] = useState(false);
  const [dismissed, setDismissed] = useState<ReadonlySet<number>>(new Set());
  const last = useRef<readonly Toast[]>([]);
  const region = useRef<HTMLDivElement>(null);
  useHeightVar(region, '--toasts-height');
  /** Where the focus was before it came to the toasts. */
  const cameFrom = useRef<HTMLElement | null>(null);
  const holding = pointer || focus;
  const shown = holding ? keep(last.current, toasts, dismissed, app.toastsClearedThrough) : toasts;
  useLayoutEffect(() => {
    last.current = shown; // what is on screen, for the next render
  });

  function release() {
    setDismissed(new Set());
  }
  /**
   * dismiss hides a toast. Its button had the focus (the keyboard): the
   * focus goes to another toast's Dismiss, or, none left, back where it
   * came from (else the message box: leave), and the toasts stop holding for it: the button went away
   * without a blur to say so, the focus fell to the page, and every later
   * toast stayed on screen.
   */
  function dismiss(id: number, button: HTMLButtonElement) {
    const buttons = [...(region.current?.querySelectorAll<HTMLButtonElement>('.toast button') ?? [])];
    const at = buttons.indexOf(button);
    const next = buttons[at + 1] ?? buttons[at - 1];
    const focused = document.activeElement === button;
    app.dismissToast(id);
    if (holding) setDismissed((d) => new Set(d).add(id));
    if (!focused) return;
    const back = cameFrom.current;
    if (next) next.focus();
    else {
      back?.focus(); // its blur ends the hold
      if (!back || document.activeElement !== back) leave(); // gone, disabled or hidden: it took no focus
    }
  }
  /**
   * leave ends the hold for the focus and gives the focus to the message
   * box (focusInstead: the drawer's status line while it covers the chat): where it came from cannot take it back (a Send disabled while
   * busy, a sidebar hidden on a narrow screen), and it would fall to the
   * page, every later toast then staying on screen.
   */
  function leave() {
    setFocus(false);
    if (!pointer) release();
    focusInstead(); // the message box, or the drawer's when it covers the chat
  }
  function onFocus(e: FocusEvent<HTMLDivElement>) {
    setFocus(true);
    const from = e.relatedTarget as HTMLElement | null;
    if (!e.currentTarget.contains(from)) cameFrom.current = from;
  }
  function onBlur(e: FocusEvent<HTMLDivElement>) {
    if (e.currentTarget.contains(e.relatedTarget as Node | null)) return;
    setFocus(false);
    if (!pointer) release();
  }
  const toast = (t: Toast) => (
    <div key={t.id} className={`toast toast-${t.kind}`}>
      <span>{t.text}</span>
      <button type="button" className="icon" aria-label="Dismiss" title="Dismiss" onClick={(e) => dismiss(t.id, e.currentTarget)}>
        ×
      </button>
    </div>
  );
  return (
    <div
      ref={region}
      className="toasts"
      onMouseEnter={() => setPointer(true)}
      onMouseLeave={() => {
        setPointer(false);
        if (!focus) release();
      }}
      onFocus={onFocus}
      onBlur={onBlur}
    >
      <div className="toast-list" aria-live="assertive">
        {shown.filter((t) => t.kind === 'error').map(toast)}
      </div>
      <div className="toast-list" aria-live="polite">
        {shown.filter((t) => t.kind !== 'error').map(toast)}
      </div>
    </div>
  );
}

/**
 * keep returns the toasts shown before that timed out meanwhile (not
 * dismissed), with the store's, in order; never those dropped with a
 * session (ids at or below clearedThrough): the next user's screen shows
 * none of the last one's.
 */
function keep(before: readonly Toast[], now: readonly Toast[], dismissed: ReadonlySet<number>, clearedThrough: number): readonly Toast[] {
  const ids = new Set(now.map((t) => t.id));
  const gone = before.filter((t) => !ids.has(t.id) && !dismissed.has(t.id) && t.id > clearedThrough);
  return gone.length === 0 ? now : [...gone, ...now].sort((a, b) => a.id - b.id);
}
