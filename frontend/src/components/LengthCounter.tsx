// A text box's length counter (lib/limits.ts says when it shows and what it
// says) and the one announcement of the text going over the limit.

import type { LengthStatus } from '../lib/limits';

/** LengthCounterProps: the counter's id (its box's aria-describedby names it), the length and the counter's classes. */
export interface LengthCounterProps {
  id: string;
  length: LengthStatus;
  /** The counter's classes; ' over' is added over the limit. */
  className?: string;
}

/**
 * LengthCounter renders the counter, not a live region (the box's
 * aria-describedby ties it to the box, where a screen reader reads it),
 * and beside it a visually hidden alert, present (empty) from the start,
 * that says length.alert once as the text goes over the limit: the
 * counter was the alert, its words changing at every key typed over the
 * limit, so each key interrupted the reader with a new count.
 */
export function LengthCounter({ id, length, className = 'counter' }: LengthCounterProps) {
  return (
    <>
      {length.show && (
        <p id={id} className={`${className}${length.over ? ' over' : ''}`}>
          {length.text}
        </p>
      )}
      <span className="sr-only" role="alert">
        {length.alert}
      </span>
    </>
  );
}
