// The message box: Enter sends, Shift+Enter adds a line (on a touch screen,
// whose keyboard has no Shift+Enter, Enter adds a line and the button
// sends), it grows with the text, and its text is kept per conversation
// (see ChatApp.setDraft). Tapping Send or Stop leaves the focus in the box
// (the phone's keyboard stays up), and a Stop tapped just after it took
// Send's place is taken for a double tap on Send and ignored. Near
// the length limit a counter shows; over it sending is refused with the
// reason, never cut. A new chat sent and waiting for the server keeps its
// text in the box, read-only (the text sent is the one shown), with a
// Cancel that makes it editable again.

import { useContext, useId, useLayoutEffect, useRef, type FormEvent, type KeyboardEvent, type MouseEvent, type SyntheticEvent } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { ComposerBox, focusBox, useCoarsePointer } from '../hooks/composerBox';
import { useAutoGrow } from '../hooks/useAutoGrow';
import { NEW_CHAT } from '../lib/drafts';
import { waitReason } from '../lib/errors';
import { isImeKey } from '../lib/ime';
import { lengthStatus } from '../lib/limits';
import { hasVisible } from '../lib/visible';
import { Icon } from './icons';
import { LengthCounter } from './LengthCounter';

/**
 * STOP_TAP_GUARD_MS is how long after Stop takes Send's place (the same
 * button) a tap on it is not a Stop, on a touch screen: the second tap of a
 * double tap on Send, 150-400 ms apart, stopped the answer it had just
 * asked for. A mouse's click stops at once (a reader who sees the answer
 * start and stops it at once means it).
 */
export const STOP_TAP_GUARD_MS = 500;

/**
 * keepBoxFocus is the Send and Stop buttons' pointerdown and mousedown: the
 * press does not take the focus from the box. It fell to the page once the
 * button was disabled (the box emptied), and a phone's keyboard went down
 * at every message. A key on a focused button still activates it.
 */
function keepBoxFocus(e: SyntheticEvent): void {
  e.preventDefault();
}

/** ComposerProps: where the draft lives and what the button does now. */
export interface ComposerProps {
  draftKey: string;
  /** An answer is running: the button stops it. */
  streaming: boolean;
  /** A send is waiting for the server. */
  busy: boolean;
  /** A message of this conversation waits for the connection. */
  queued?: boolean;
  /**
   * Why it waits with the link up: the server's own message (Thread.serverWait,
   * or for a new chat newChat.serverWait); absent: the connection.
   */
  serverWait?: string;
}

/** Composer renders the message box with its Send / Stop button. */
export function Composer({ draftKey, streaming, busy, queued = false, serverWait }: ComposerProps) {
  const app = useApp();
  const stored = useAppState((s) => s.drafts[draftKey]);
  const text = stored ?? app.draft(draftKey);
  /** A new chat sent: its text is on its way (the server may be slow to answer, or waited for). */
  const starting = draftKey === NEW_CHAT && busy;
  const waiting = useAppState((s) => draftKey === NEW_CHAT && !!s.newChat.waiting);
  const own = useRef<HTMLTextAreaElement>(null);
  const ref = useContext(ComposerBox) ?? own; // the view's, when it has one (ComposerBox)
  const touch = useCoarsePointer();
  const stopShownAt = useRef(0);
  useLayoutEffect(() => {
    if (streaming) stopShownAt.current = Date.now();
  }, [streaming]);

  useAutoGrow(ref, text);

  useLayoutEffect(() => {
    // Focus for keyboards and mice; on touch screens it would pop the keyboard up.
    if (window.matchMedia?.('(pointer: fine)').matches) ref.current?.focus();
  }, [draftKey]);

  const length = lengthStatus(text);
  const counterId = useId();
  const waitingId = useId();
  const canSend = !streaming && !busy && !queued && !length.over && hasVisible(text);

  /**
   * backToBox puts the focus in the box after Send or Stop: the button is
   * disabled while a send is on its way, and once a stopped answer ends
   * (the focus would fall to the page). Not on touch screens, where it
   * would pop the keyboard up.
   */
  function backToBox() {
    focusBox(ref.current);
  }
  function send() {
    if (!canSend) return;
    void app.send(text);
    backToBox();
  }
  function cancelWaiting() {
    app.cancelNewChat();
    backToBox(); // the button goes
  }
  function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (streaming) {
      void app.stop();
      backToBox();
    } else send();
  }
  /** onStopClick lets a tap on a touch screen (a click of detail 1 or more; a key's is 0) through only once Stop has been there STOP_TAP_GUARD_MS. */
  function onStopClick(e: MouseEvent<HTMLButtonElement>) {
    if (touch && e.detail > 0 && Date.now() - stopShownAt.current < STOP_TAP_GUARD_MS) e.preventDefault();
  }
  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    // On a touch screen Enter adds a line; a tablet's hardware keyboard sends with Ctrl/Cmd+Enter.
    if (e.key === 'Enter' && !e.shiftKey && !isImeKey(e) && (!touch || e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send();
    }
  }

  const why = length.over
    ? 'Too long to send'
    : queued
      ? `Your last message waits for the ${serverWait !== undefined ? 'server' : 'connection'}`
      : starting
        ? 'Your new conversation is starting'
        : 'Send';
  const describedBy = [length.show || queued ? counterId : '', waiting ? waitingId : ''].filter(Boolean).join(' ');
  return (
    <>
      {waiting && (
        <div id={waitingId} className="counter">
          <span role="status">
            {serverWait !== undefined
              ? `Waiting for the server: ${waitReason(serverWait)} Your new conversation starts when it can take it, with the message below.`
              : 'Your new conversation starts as soon as the server can be reached, with the message below.'}
          </span>{' '}
          <button type="button" className="link-button" aria-label="Cancel the new conversation" onClick={cancelWaiting}>
            Cancel
          </button>
        </div>
      )}
      {queued && !length.show && (
        <p id={counterId} className="counter" role="status">
          {serverWait !== undefined
            ? `Waiting for the server: ${waitReason(serverWait)} Your last message is sent when it can take it; then you can send the next.`
            : 'Your last message is sent when the connection is back; then you can send the next.'}
        </p>
      )}
      <LengthCounter id={counterId} length={length} />
      <form className="composer" onSubmit={onSubmit}>
        <textarea
          ref={ref}
          value={text}
          onChange={(e) => {
            if (!starting) app.setDraft(draftKey, e.target.value);
          }}
          readOnly={starting}
          onKeyDown={onKeyDown}
          placeholder={touch ? 'Send a message' : 'Send a message (Enter to send, Shift+Enter for a new line)'}
          enterKeyHint={touch ? 'enter' : 'send'}
          aria-label="Message"
          dir="auto"
          aria-describedby={describedBy || undefined}
          aria-invalid={length.over || undefined}
          rows={1}
        />
        {streaming ? (
          <button
            type="submit"
            className="send stop"
            aria-label="Stop generating"
            title="Stop"
            onPointerDown={keepBoxFocus}
            onMouseDown={keepBoxFocus}
            onClick={onStopClick}
          >
            <Icon name="stop" />
          </button>
        ) : (
          // aria-disabled, not disabled: Stop focused, an answer ending by itself turned it into a disabled Send, and the focus fell to the page. send() ignores it.
          <button type="submit" className="send" aria-label="Send message" title={why} aria-disabled={!canSend || undefined} onPointerDown={keepBoxFocus} onMouseDown={keepBoxFocus}>
            <Icon name="send" />
          </button>
        )}
      </form>
    </>
  );
}
