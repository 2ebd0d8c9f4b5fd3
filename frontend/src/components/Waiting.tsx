// What an answer that streams without any text or reasoning yet shows: the
// typing dots, and after a few seconds how long it has waited ("Waiting
// for the model… 12 s", or "Thinking… 12 s" for a model known to reason,
// which may think silently for minutes). Only this component ticks, once a
// second: the thread is not rendered again.

import { useEffect, useRef, useState } from 'react';
import { sayThinkingOnce, thinkingWasSaid } from '../lib/announce';
import { useNow } from '../hooks/useNow';
import { waitLabel, waitStart } from '../lib/reasoning';

/** WaitingProps: the answer's id and createdAt, and whether its model is known to reason. */
export interface WaitingProps {
  id: string;
  createdAt: string;
  reasoner: boolean;
}

/**
 * Waiting renders the wait. The words are a polite live region, present
 * (empty) from the start so that their arrival is announced, and announced
 * once: the seconds beside them change every second outside it.
 * "Thinking…" is said once per answer (sayThinkingOnce), with
 * AnswerAnnouncer's as the reasoning starts: an answer whose thinking was
 * said before this mounted (its conversation shown again) shows the words
 * outside the live region. Said while inert (a phone's drawer over the
 * chat), it was not heard: AnswerAnnouncer says it then.
 */
export function Waiting({ id, createdAt, reasoner }: WaitingProps) {
  const seen = useRef(Date.now());
  const [saidBefore] = useState(() => thinkingWasSaid(id));
  const region = useRef<HTMLSpanElement>(null);
  const now = useNow(1000);
  const label = waitLabel(reasoner, waitStart(createdAt, seen.current), now);
  const thinking = label.text === 'Thinking…';
  useEffect(() => {
    if (thinking && !saidBefore && !region.current?.closest('[inert]')) sayThinkingOnce(id);
  }, [id, thinking, saidBefore]);
  const quiet = thinking && saidBefore;
  return (
    <div className="waiting">
      {/* An image for assistive technologies: a name on a plain div is not read. */}
      <div className="typing" role="img" aria-label="The answer is being written">
        <span />
        <span />
        <span />
      </div>
      <span className="waiting-label">
        <span ref={region} role="status" aria-live="polite">
          {!quiet && label.text}
        </span>
        {quiet && label.text}
        {label.seconds && <span className="waiting-seconds"> {label.seconds}</span>}
      </span>
    </div>
  );
}
