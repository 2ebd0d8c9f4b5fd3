// Signs that the machine or the network just came back, when a live channel
// may have died without a word: the page shown again after being hidden, the
// browser going online, or a timer firing much later than it was set for
// (timers do not run while a laptop sleeps, so the first one after waking
// is late by the time it slept).

/** WakeReason says which sign was seen. */
export type WakeReason = 'visible' | 'online' | 'late';

/** WakeOptions configure a WakeWatch. */
export interface WakeOptions {
  /** Called on each sign. */
  onWake: (why: WakeReason) => void;
  /** Interval of the timer that notices a suspended machine; defaults to 10 s. */
  tickMs?: number;
  /** How much later than due a tick must fire to count as a wake; defaults to 15 s. */
  lateMs?: number;
  /** The window and document listened to; default to the global ones. */
  win?: Window;
  doc?: Document;
}

/** WakeWatch reports wake signs until stopped. */
export class WakeWatch {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private due = 0;
  private hidden = false;
  private running = false;
  private readonly onOnline = () => this.opts.onWake('online');
  private readonly onVisibility = () => {
    if (this.doc.visibilityState === 'hidden') {
      this.hidden = true;
    } else if (this.hidden) {
      this.hidden = false;
      this.opts.onWake('visible');
    }
  };

  constructor(private readonly opts: WakeOptions) {}

  private get win(): Window {
    return this.opts.win ?? window;
  }

  private get doc(): Document {
    return this.opts.doc ?? document;
  }

  /** start listens; a second start does nothing. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.hidden = this.doc.visibilityState === 'hidden';
    this.win.addEventListener('online', this.onOnline);
    this.doc.addEventListener('visibilitychange', this.onVisibility);
    this.tick();
  }

  /** stop ends every listener and the timer. */
  stop(): void {
    this.running = false;
    this.win.removeEventListener('online', this.onOnline);
    this.doc.removeEventListener('visibilitychange', this.onVisibility);
    clearTimeout(this.timer);
  }

  /** tick arms the timer; when it fires late by lateMs or more in a page shown, the machine was asleep. */
  private tick(): void {
    const every = this.opts.tickMs ?? 10_000;
    this.due = Date.now() + every;
    this.timer = setTimeout(() => {
      if (!this.running) return;
      const late = Date.now() - this.due;
      this.tick();
      // A hidden page's timers are throttled (to once a minute in
      // Chromium): late there is no sign of sleep, and the page shown
      // again is a wake of its own.
      if (late >= (this.opts.lateMs ?? 15_000) && this.doc.visibilityState !== 'hidden') this.opts.onWake('late');
    }, every);
  }
}
