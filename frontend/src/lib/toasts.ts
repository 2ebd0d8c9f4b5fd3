// Short notices: a toast per event, at most four shown; an info toast hides
// after a while, an error stays until dismissed.

import type { AppState, Toast } from './state';
import type { Store } from './store';

/** Toaster shows and hides toasts in the store. */
export class Toaster {
  private seq = 0;
  private through = 0;

  constructor(private readonly store: Store<AppState>) {}

  /**
   * show displays text: an info toast for 4 s, an error until dismissed.
   * An error that hid itself after 8 s was gone before a keyboard or
   * screen reader user, for whom the toasts come last, could reach it
   * (WCAG 2.2.1). A fifth toast drops the oldest info one, else the oldest.
   */
  show(text: string, kind: 'error' | 'info' = 'info'): void {
    const id = ++this.seq;
    this.store.set((s) => ({ ...s, toasts: [...withRoom(s.toasts), { id, text, kind }] }));
    if (kind === 'info') setTimeout(() => this.dismiss(id), 4000);
  }

  /**
   * cleared marks every toast shown so far as dropped (the session ended):
   * a view still showing some (Toasts, while the reader is on them) lets
   * them go (clearedThrough).
   */
  cleared(): void {
    this.through = this.seq;
  }

  /** clearedThrough is the id of the last toast dropped with a session; those at or below it are never shown again. */
  get clearedThrough(): number {
    return this.through;
  }

  /** dismiss hides a toast. */
  dismiss(id: number): void {
    this.store.set((s) => ({ ...s, toasts: s.toasts.filter((t) => t.id !== id) }));
  }
}

/** withRoom returns toasts less one when four are shown: the oldest info toast, else the oldest. */
function withRoom(toasts: readonly Toast[]): readonly Toast[] {
  if (toasts.length < 4) return toasts;
  const info = toasts.findIndex((t) => t.kind === 'info');
  const drop = info < 0 ? 0 : info;
  return toasts.filter((_, i) => i !== drop);
}
