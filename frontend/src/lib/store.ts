// A framework-free store: an immutable state value, a list of listeners, and
// throttled publication so a stream of deltas is not one render per token.

/** Listener is told that the published state changed. */
export type Listener = () => void;

/** StoreOptions configure a Store. */
export interface StoreOptions {
  /** Longest delay of a lazy update before listeners hear of it; defaults to 50 ms. */
  throttleMs?: number;
}

/**
 * Store holds the state. `set` publishes at once; `setLazy` (for deltas)
 * publishes at most once per throttle interval. Readers (React) see only the
 * published value, so a burst of lazy updates costs one render.
 */
export class Store<S> {
  private current: S;
  private published: S;
  private readonly listeners = new Set<Listener>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly throttleMs: number;

  constructor(initial: S, opts: StoreOptions = {}) {
    this.current = initial;
    this.published = initial;
    this.throttleMs = opts.throttleMs ?? 50;
  }

  /** state is the latest value, published or not (for the store's own logic). */
  get state(): S {
    return this.current;
  }

  /** snapshot is the published value (for React's useSyncExternalStore). */
  readonly snapshot = (): S => this.published;

  /** subscribe adds a listener and returns its removal. */
  readonly subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  /** set replaces the state and publishes it now. */
  set(update: (s: S) => S): void {
    this.current = update(this.current);
    this.flush();
  }

  /** setLazy replaces the state and publishes it within the throttle interval. */
  setLazy(update: (s: S) => S): void {
    this.current = update(this.current);
    if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.throttleMs);
  }

  /** flush publishes pending lazy updates now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.published === this.current) return;
    this.published = this.current;
    for (const l of [...this.listeners]) l();
  }
}
