// The models of GET /api/models as the tab knows them (AppState.models and
// upstreams). The server tells no change of its list: an upstream that was
// down, or slower than the server's wait, when the list was loaded lists its
// models only in a later answer. So the list is loaded at the start of a
// session, again after every reconnect (ChatApp.onReconnected), when the page
// is shown again after a while, and every few minutes while it is shown.

import type { ApiClient } from './api';
import type { AppState } from './state';
import type { Store } from './store';

/** MODELS_REFRESH_MS is how often the list is loaded again while the page is shown. */
export const MODELS_REFRESH_MS = 5 * 60_000;

/** MODELS_STALE_MS is how old the list may be when the page is shown again before it is loaded again. */
export const MODELS_STALE_MS = 60_000;

/** ModelList loads and refreshes the models of one session. */
export class ModelList {
  /** The loads asked for: only the answer of the latest is applied. */
  private asked = 0;
  /** When the last load was asked (Date.now()). */
  private askedAt = -Infinity;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly store: Store<AppState>,
    private readonly api: ApiClient,
  ) {}

  /** start loads the list now and keeps it fresh until stop. */
  start(): void {
    this.stop();
    void this.load();
    this.timer = setInterval(() => {
      if (document.visibilityState !== 'hidden') void this.load();
    }, MODELS_REFRESH_MS);
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /** stop ends the refreshes; an answer still on its way is not applied. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.asked++;
  }

  /**
   * load asks for the list and shows its answer unless a later load was
   * asked meanwhile. A failure keeps the list known (the picker stays
   * empty when none is: the server's default model is used).
   */
  async load(): Promise<void> {
    const n = ++this.asked;
    this.askedAt = Date.now();
    try {
      const { models, upstreams = [] } = await this.api.models();
      if (n === this.asked) this.store.set((s) => ({ ...s, models, upstreams }));
    } catch {
      // kept as it was; asked again at the next reconnect or refresh
    }
  }

  private readonly onVisibility = (): void => {
    if (document.visibilityState === 'visible' && Date.now() - this.askedAt >= MODELS_STALE_MS) void this.load();
  };
}
