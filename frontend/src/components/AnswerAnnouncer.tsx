// The open conversation's polite live region for answers: that a reasoning
// model started thinking is said once, and an answer seen
// streaming here is announced once it ends (lib/announce.ts says how), not
// piece by piece, and not before its end is final (read back when the
// server could not confirm it stored), and the answers of a conversation loaded or reloaded are
// not read out.

import { useEffect, useRef, useState } from 'react';
import { answerAnnouncement, sayThinkingOnce } from '../lib/announce';
import { streamingAnswer, type Thread } from '../lib/thread';

/** CHECKING is said when an answer stops with an end not yet known final: its real end is said once read back. */
export const CHECKING = 'Answer stopped; checking what the server kept of it…';

/**
 * AnswerAnnouncer renders a visually hidden live region, present (empty)
 * from the start so that what it says is announced. Mount it once per
 * conversation (a key): it follows the answer streaming in thread.
 */
export function AnswerAnnouncer({ thread }: { thread: Thread | undefined }) {
  const running = thread ? streamingAnswer(thread)?.id : undefined;
  const followed = useRef<string | undefined>(undefined);
  const checkingSaid = useRef<string | undefined>(undefined);
  // Each announcement is a new node (its count as key): the same words
  // again (a regenerated answer alike the last) are announced again.
  const [said, setSaid] = useState({ text: '', count: 0 });
  useEffect(() => {
    const id = followed.current;
    if (!id || id === running) {
      followed.current = running;
      return;
    }
    // An end not yet known to be final (unsaved: not confirmed stored;
    // unconfirmed: heard while the server went away) is followed until
    // the stored answer is read back: it is said as it ended then, not as
    // the failure the done reported; meanwhile that it stopped and is
    // being checked is said once (the check may take long: the store is
    // slow). A new answer running ends the wait, and the old one is not
    // said.
    const pending = !!thread && (!!thread.unsaved[id] || !!thread.unconfirmed[id]);
    if (pending && !running) {
      if (checkingSaid.current !== id) {
        checkingSaid.current = id;
        setSaid((s) => ({ text: CHECKING, count: s.count + 1 }));
      }
      return;
    }
    followed.current = running;
    if (pending) return;
    const m = thread?.messages[id];
    if (m && m.status !== 'streaming') setSaid((s) => ({ text: answerAnnouncement(m), count: s.count + 1 }));
  }, [running, thread]);
  // A reasoning model's thinking, once it starts, is said once per answer
  // ("Thinking…"): the wait's own live region (Waiting) goes as the
  // thinking comes, the Thinking section's label is not live (it ticks each
  // second), and the answer's element is busy. Not when the wait already
  // said it (a model known to reason), nor again when the conversation is
  // shown again (this is mounted anew): sayThinkingOnce remembers the answer.
  const runningMessage = running ? thread?.messages[running] : undefined;
  const thinking = !!runningMessage?.reasoning && !runningMessage.content;
  useEffect(() => {
    if (!running || !thinking || !sayThinkingOnce(running)) return;
    setSaid((s) => ({ text: 'Thinking…', count: s.count + 1 }));
  }, [running, thinking]);
  return (
    <div className="sr-only" role="status">
      {said.text && <p key={said.count}>{said.text}</p>}
    </div>
  );
}
