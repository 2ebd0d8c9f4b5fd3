// An answer's "Thinking" section: a reasoning model's thinking, shown live
// and open while the model thinks ("Thinking… 4 s"), collapsed by itself
// once the answer's text starts ("Thought for 7 seconds"), and expandable after.

import { useEffect, useId, useLayoutEffect, useRef, useState } from 'react';
import { useNow } from '../hooks/useNow';
import { thinkingLabel, type ThinkingTimes } from '../lib/reasoning';

/** ThinkingProps: the reasoning so far, its times, and whether the model is thinking now. */
export interface ThinkingProps {
  reasoning: string;
  times: ThinkingTimes | undefined;
  /** The answer streams and has no text yet. */
  thinkingNow: boolean;
}

/** BOTTOM_SLACK_PX: this close to the bottom of the thinking box counts as at it (sub-pixel scrolling, zoom). */
const BOTTOM_SLACK_PX = 4;

/** Thinking renders the collapsible Thinking section of an answer. */
export function Thinking({ reasoning, times, thinkingNow }: ThinkingProps) {
  // null: open while thinking, closed after; a click overrides until the next change of phase.
  const [choice, setChoice] = useState<boolean | null>(null);
  const phase = useRef(thinkingNow);
  useEffect(() => {
    if (phase.current !== thinkingNow) setChoice(null);
    phase.current = thinkingNow;
  }, [thinkingNow]);
  const open = choice ?? thinkingNow;
  const now = useNow(thinkingNow ? 1000 : 0);
  const label = thinkingLabel(times, thinkingNow, now);
  const id = useId();
  const textRef = useRef<HTMLDivElement>(null);
  // The box the reader is in, and whether they are at its bottom (as of the
  // last scroll): a box just opened follows; one scrolled up to reread stays.
  const followed = useRef<{ el: HTMLDivElement | null; atBottom: boolean }>({ el: null, atBottom: true });
  const onScroll = () => {
    const el = textRef.current;
    if (el) followed.current = { el, atBottom: el.scrollHeight - el.scrollTop - el.clientHeight <= BOTTOM_SLACK_PX };
  };
  useLayoutEffect(() => {
    // Follow the newest thinking while it is written, as long as the reader is at the bottom.
    const el = textRef.current;
    if (!el) return;
    if (followed.current.el !== el) followed.current = { el, atBottom: true };
    if (thinkingNow && followed.current.atBottom) el.scrollTop = el.scrollHeight;
  }, [reasoning, thinkingNow, open]);
  return (
    <div className={`thinking${label.live ? ' live' : ''}`} data-state={thinkingNow ? 'thinking' : 'done'}>
      <button type="button" className="thinking-toggle" aria-expanded={open} aria-controls={open ? id : undefined} onClick={() => setChoice(!open)}>
        <span className="chevron" aria-hidden="true">
          ›
        </span>
        <span className="thinking-label">{label.text}</span>
      </button>
      {open && (
        <div id={id} ref={textRef} className="thinking-text" dir="auto" role="region" aria-label="Thinking" onScroll={onScroll}>
          {reasoning}
        </div>
      )}
    </div>
  );
}
