// What an answer that streams without any text or reasoning yet shows: the
// typing dots, and after a few seconds how long it has waited ("Waiting
// for the model… 12 s", or "Thinking… 12 s" for a model known to reason,
// which may think silently for minutes). Only this component ticks, once a
// second: the thread is not rendered again.

import { useRef } from 'react';
import { useNow } from '../hooks/useNow';
import { waitLabel, waitStart } from '../lib/reasoning';

/** WaitingProps: the answer's createdAt and whether its model is known to reason. */
export interface WaitingProps {
  createdAt: string;
  reasoner: boolean;
}

/**
 * Waiting renders the wait. The words are a polite live region, present
 * (empty) from the start so that their arrival is announced, and announced
 * once: the seconds beside them change every second outside it.
 */
export function Waiting({ createdAt, reasoner }: WaitingProps) {
  const seen = useRef(Date.now());
  const now = useNow(1000);
  const label = waitLabel(reasoner, waitStart(createdAt, seen.current), now);
  return (
    <div className="waiting">
      {/* An image for assistive technologies: a name on a plain div is not read. */}
      <div className="typing" role="img" aria-label="The answer is being written">
        <span />
        <span />
        <span />
      </div>
      <span className="waiting-label">
        <span role="status" aria-live="polite">
          {label.text}
        </span>
        {label.seconds && <span className="waiting-seconds"> {label.seconds}</span>}
      </span>
    </div>
  );
}
