// Short notices: a toast per event, at most four shown, each hidden after a while.

import type { AppState } from './state';
import type { Store } from './store';

/** Toaster shows and hides toasts in the store. */
export class Toaster {
  private seq = 0;
  private through = 0;

  constructor(private readonly store: Store<AppState>) {}

  /** show displays text for 4 s (info) or 8 s (error). */
  show(text: string, kind: 'error' | 'info' = 'info'): void {
    const id = ++this.seq;
    this.store.set((s) => ({ ...s, toasts: [...s.toasts.slice(-3), { id, text, kind }] }));
    setTimeout(() => this.dismiss(id), kind === 'error' ? 8000 : 4000);
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
