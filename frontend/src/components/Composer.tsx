// The message box: Enter sends, Shift+Enter adds a line, it grows with the
// text, and its text is kept per conversation (see ChatApp.setDraft).

import { useLayoutEffect, useRef, type FormEvent, type KeyboardEvent } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { Icon } from './icons';

/** ComposerProps: where the draft lives and what the button does now. */
export interface ComposerProps {
  draftKey: string;
  /** An answer is running: the button stops it. */
  streaming: boolean;
  /** A send is waiting for the server. */
  busy: boolean;
}

/** Composer renders the message box with its Send / Stop button. */
export function Composer({ draftKey, streaming, busy }: ComposerProps) {
  const app = useApp();
  const stored = useAppState((s) => s.drafts[draftKey]);
  const text = stored ?? app.draft(draftKey);
  const ref = useRef<HTMLTextAreaElement>(null);

  useLayoutEffect(() => {
    const ta = ref.current;
    if (!ta) return;
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight, 240)}px`;
  }, [text]);

  useLayoutEffect(() => {
    // Focus for keyboards and mice; on touch screens it would pop the keyboard up.
    if (window.matchMedia?.('(pointer: fine)').matches) ref.current?.focus();
  }, [draftKey]);

  const canSend = !streaming && !busy && text.trim().length > 0;

  function send() {
    if (canSend) void app.send(text);
  }
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (streaming) void app.stop();
    else send();
  }
  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  }

  return (
    <form className="composer" onSubmit={onSubmit}>
      <textarea
        ref={ref}
        value={text}
        onChange={(e) => app.setDraft(draftKey, e.target.value)}
        onKeyDown={onKeyDown}
        placeholder="Send a message (Enter to send, Shift+Enter for a new line)"
        aria-label="Message"
        rows={1}
        maxLength={32000}
      />
      {streaming ? (
        <button type="submit" className="send stop" aria-label="Stop generating" title="Stop">
          <Icon name="stop" />
        </button>
      ) : (
        <button type="submit" className="send" aria-label="Send message" title="Send" disabled={!canSend}>
          <Icon name="send" />
        </button>
      )}
    </form>
  );
}
