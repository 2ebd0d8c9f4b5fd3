// One message of the shown path: its text, status, usage and actions.

import { memo, useContext, useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useApp, useAppState } from '../hooks/app';
import { ComposerBox, focusBox, useCoarsePointer } from '../hooks/composerBox';
import { useAutoGrow } from '../hooks/useAutoGrow';
import { VersionFocusContext } from '../hooks/versionFocus';
import { copyText } from '../lib/clipboard';
import { finishNotice } from '../lib/finish';
import { answerFailure } from '../lib/failure';
import { isImeKey } from '../lib/ime';
import { charCount, isLongMessage, lengthStatus } from '../lib/limits';
import type { Message, Usage as UsageCounts } from '../lib/protocol';
import type { ThinkingTimes } from '../lib/reasoning';
import { omittedLabel, usageLabel } from '../lib/usage';
import { sayPolitely } from '../lib/politeStatus';
import { PENDING_PREFIX } from '../lib/thread';
import { hasVisible } from '../lib/visible';
import { Icon } from './icons';
import { LengthCounter } from './LengthCounter';
import { COPIED_MS, Markdown } from './Markdown';
import { Thinking } from './Thinking';
import { Waiting } from './Waiting';

/** MessageItemProps: the message, its version position and whether actions are allowed. */
export interface MessageItemProps {
  message: Message;
  version: number;
  versions: number;
  /**
   * Older versions may be on the server, not loaded yet (a paged
   * conversation): the count is open-ended ("3/3+") and Previous at the
   * oldest loaded one loads them (ChatApp.earlierVersion).
   */
  moreVersions?: boolean;
  /** An answer is running in the conversation: no regenerate or edit now. */
  locked: boolean;
  modelName: string;
  /** A user message waiting for the connection to be sent. */
  queued: boolean;
  /** The live channel is connected. */
  linkUp: boolean;
  /**
   * The live channel is offline (the status line's "Offline", with its
   * Retry): a close nothing reconnects after (1008 policy, 1009 too big),
   * or a server out of reach. Not said to be reconnecting then.
   */
  offline?: boolean;
  /** Offline after a close nothing reconnects after by itself (TransportStatus.retryOnly): only Retry reconnects, no background retries. */
  retryOnly?: boolean;
  /** An answer the server ended while going away: its stored state comes after reconnecting. */
  unconfirmed: boolean;
  /** An answer whose end the server could not confirm stored (a slow database): its stored state is read again until final. */
  unsaved?: boolean;
  /** When the answer thought, as this tab saw it (reasoning models). */
  thinking: ThinkingTimes | undefined;
  /** The answer's model is known to reason (its answers carried reasoning, or its name says so): a silent wait is "Thinking…". */
  reasoner?: boolean;
}

const statusText: Record<string, string> = {
  cancelled: 'Stopped',
  error: 'Error',
  interrupted: 'Interrupted',
};

/**
 * StatusNote says how an answer that did not complete ended: stopped, or
 * for a failed or interrupted one what to do next (answerFailure), with the
 * server's own words under Details: they are often written for whoever runs
 * the server.
 */
function StatusNote({ message }: { message: Message }) {
  const failure = answerFailure(message);
  const label = statusText[message.status];
  return (
    <div className={`msg-status status-${message.status}`} role="note">
      {failure ? `${label}: ${failure.advice}` : `${label}${message.error ? `: ${message.error}` : message.status === 'cancelled' ? ' by the user.' : '.'}`}
      {failure?.detail && (
        <details className="msg-error-detail">
          <summary>Details</summary>
          {failure.detail}
        </details>
      )}
    </div>
  );
}

/**
 * versionWords says a version's position: "Version 2 of 3", and with older
 * versions perhaps on the server, not loaded yet, that the count is of
 * those loaded (the counter's "2/3+").
 */
export function versionWords(version: number, versions: number, more: boolean): string {
  return more ? `Version ${version} of ${versions} loaded; more versions may exist` : `Version ${version} of ${versions}`;
}

/** MessageItem renders one message. */
export const MessageItem = memo(function MessageItem({ message, version, versions, moreVersions = false, locked, modelName, queued, linkUp, offline = false, retryOnly = false, unconfirmed, unsaved = false, thinking, reasoner = false }: MessageItemProps) {
  const app = useApp();
  const isUser = message.role === 'user';
  // An edit box open under this message's parent (app.edits) opens again
  // here: another version shown in place of the one being edited (another
  // tab, an answer) would otherwise take what the user typed away with it.
  const [reopened, setReopened] = useState(() => (isUser ? app.edits.get(message.conversationId, message.parentId) : undefined));
  const [editing, setEditing] = useState(!!reopened);
  const [copied, setCopied] = useState(false);
  const editButton = useRef<HTMLButtonElement>(null);
  const copyButton = useRef<HTMLButtonElement>(null);
  const composerBox = useContext(ComposerBox);
  const versionFocus = useContext(VersionFocusContext);
  const previousVersion = useRef<HTMLButtonElement>(null);
  const nextVersion = useRef<HTMLButtonElement>(null);
  // Shown in place of the version whose Previous or Next button was pressed:
  // that button's twin here takes the focus (the other one, at the end of
  // the versions, where it is aria-disabled).
  useLayoutEffect(() => {
    const dir = versionFocus?.take(message.parentId);
    if (!dir) return;
    const [pressed, other] = dir < 0 ? [previousVersion.current, nextVersion.current] : [nextVersion.current, previousVersion.current];
    (pressed && pressed.getAttribute('aria-disabled') !== 'true' ? pressed : other)?.focus();
  }, []); // on mount only
  function openEdit() {
    if (locked) return; // aria-disabled
    app.edits.open(message.conversationId, message.parentId, message.content);
    setReopened(undefined); // a new edit, of this version's text
    setEditing(true);
  }
  function switchVersion(dir: -1 | 1) {
    if (dir < 0 && version <= 1 && moreVersions) return earlierVersion();
    if (dir < 0 ? version <= 1 : version >= versions) return; // aria-disabled
    versionFocus?.ask(message.parentId, dir);
    app.switchVersion(message.id, dir);
    // Said in the page's polite region: a region in the message element
    // came new with each version, already holding its words, and is not
    // announced by some screen readers (Toasts.tsx).
    sayPolitely(versionWords(version + dir, versions, moreVersions));
  }
  /**
   * earlierVersion is Previous at the oldest version loaded while older ones
   * may be on the server: they are loaded, then the one before is shown
   * (and said, with its count), or, none older, "No earlier versions" said.
   */
  const mounted = useRef(false);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  function earlierVersion() {
    sayPolitely('Loading earlier versions…'); // a press again while they load is told so too
    // Handed on (the focus, the words) only if the reader is still here:
    // not once the conversation was left, the message went, or the focus
    // went elsewhere (typing in the message box) while the pages loaded.
    const focused = document.activeElement;
    const stillHere = () => mounted.current && document.activeElement === focused;
    let handOn = false;
    void app
      .earlierVersion(message.id, () => {
        handOn = stillHere();
        if (handOn) versionFocus?.ask(message.parentId, -1); // asked once a version is found, not at the press
      })
      .then((at) => {
        if (typeof at === 'object') {
          if (handOn) sayPolitely(versionWords(at.version, at.versions, at.moreVersions));
        } else if (at === 'none' && stillHere()) sayPolitely('No earlier versions.');
      });
  }
  /**
   * The edit box was closed without sending: the focus goes back to the
   * Edit button or, disabled meanwhile (an answer started), to the Copy
   * button beside it. The box had it: without this it would fall to the page.
   */
  const cancelled = useRef(false);
  useEffect(() => {
    if (editing || !cancelled.current) return;
    cancelled.current = false;
    const edit = editButton.current;
    if (edit && edit.getAttribute('aria-disabled') !== 'true') edit.focus();
    else if (copyButton.current) copyButton.current.focus();
    else focusBox(composerBox?.current);
  }, [editing, composerBox]);
  const pending = message.id.startsWith(PENDING_PREFIX);
  const streaming = message.status === 'streaming';
  // Busy while text or reasoning is being written, not during a silent wait:
  // assistive technologies may hold back a busy element's live regions, the
  // wait's announcement (Waiting) among them.
  const writing = streaming && !!(message.content || message.reasoning);

  // The check mark shows for a moment after a copy; a second copy restarts it.
  const copiedTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(copiedTimer.current), []);
  async function copy() {
    const ok = await copyText(message.content);
    sayPolitely(ok ? 'Message copied.' : 'Could not copy the message.');
    if (!ok) return;
    setCopied(true);
    clearTimeout(copiedTimer.current);
    copiedTimer.current = setTimeout(() => setCopied(false), COPIED_MS);
  }

  return (
    <article
      className={`msg ${isUser ? 'msg-user' : 'msg-assistant'}${pending ? ' msg-pending' : ''}`}
      data-message-id={message.id}
      data-status={message.status}
      aria-label={isUser ? 'Your message' : 'Answer'}
      aria-busy={writing || undefined}
    >
      {!isUser && <div className="msg-author">{modelName || 'Assistant'}</div>}
      {editing ? (
        <EditBox
          initial={reopened?.text ?? message.content}
          original={reopened?.original ?? message.content}
          reopened={!!reopened}
          locked={locked}
          onChange={(text) => app.edits.type(message.conversationId, message.parentId, text)}
          onCancel={() => {
            app.edits.close(message.conversationId, message.parentId);
            cancelled.current = true;
            setEditing(false);
          }}
          onSubmit={(text) => {
            app.edits.close(message.conversationId, message.parentId);
            setEditing(false);
            // The new version replaces this one on screen, this element with
            // it: the focus goes to the message box, beside the Stop button.
            focusBox(composerBox?.current);
            void app.editAndResend(message.id, text);
          }}
        />
      ) : isUser ? (
        <UserText text={message.content} />
      ) : (
        <>
          {message.reasoning && <Thinking reasoning={message.reasoning} times={thinking} thinkingNow={streaming && !message.content} />}
          <div className="msg-body">
            {message.content ? <Markdown text={message.content} growing={streaming} /> : streaming && !message.reasoning ? <Waiting id={message.id} createdAt={message.createdAt} reasoner={reasoner} /> : null}
          </div>
          <OmittedNote omitted={message.omittedMessages} />
        </>
      )}
      {queued && <QueuedNote conversationId={message.conversationId} clientMessageId={message.clientMessageId ?? ''} />}
      {pending && !queued && <div className="msg-note">Sending…</div>}
      {streaming && !linkUp && (
        <div className="msg-status status-waiting" role="note">
          {offline
            ? retryOnly
              ? 'Offline: the answer continues on the server and resumes here where it stopped once you press Retry to reconnect.'
              : 'Offline: the answer continues on the server and resumes here where it stopped once the connection is back (tried again in the background; Retry tries now).'
            : 'Connection lost. Reconnecting… The answer continues on the server and resumes here where it stopped.'}
        </div>
      )}
      {unconfirmed ? (
        <div className="msg-status status-waiting" role="note">
          {linkUp
            ? 'The server running this answer went away. Loading what it kept of this answer…'
            : offline
              ? retryOnly
                ? 'Offline: the server running this answer went away. Press Retry to reconnect and learn what it kept of this answer.'
                : 'Offline: the server running this answer went away. What it kept of this answer shows once the connection is back (tried again in the background; Retry tries now).'
              : 'Connection lost: the server is going away. Reconnecting to learn what it kept of this answer…'}
        </div>
      ) : unsaved ? (
        <div className="msg-status status-waiting" role="note">
          Not confirmed saved yet: the server’s database is slow. Checking what it kept of this answer…
        </div>
      ) : (
        !streaming && statusText[message.status] && <StatusNote message={message} />
      )}
      {!unconfirmed && !unsaved && <FinishNote message={message} />}
      {!editing && (
        <div className="msg-actions">
          {/* Previous and Next are aria-disabled at the ends, not disabled: a
              focused Next whose later versions went (a refused edit's, dropped)
              lost the focus to the page. switchVersion ignores their press. */}
          {versions > 1 && (
            <span className="versions" role="group" aria-label="Versions">
              <button
                ref={previousVersion}
                type="button"
                className="icon"
                aria-label="Previous version"
                aria-disabled={(version <= 1 && !moreVersions) || undefined}
                onClick={() => switchVersion(-1)}
              >
                <Icon name="left" size={16} />
              </button>
              {/* "2/3" is read "2 slash 3": the words are read instead, and said at each switch (switchVersion). */}
              <span className="version-count" aria-hidden="true">
                {version}/{versions}
                {moreVersions && '+'}
              </span>
              <span className="sr-only">{versionWords(version, versions, moreVersions)}</span>
              <button
                ref={nextVersion}
                type="button"
                className="icon"
                aria-label="Next version"
                aria-disabled={version >= versions || undefined}
                onClick={() => switchVersion(1)}
              >
                <Icon name="right" size={16} />
              </button>
            </span>
          )}
          {!streaming && message.content && (
            <button ref={copyButton} type="button" className="icon" aria-label="Copy message" title="Copy" onClick={copy}>
              <Icon name={copied ? 'check' : 'copy'} size={16} />
            </button>
          )}
          {/* Edit and Regenerate are aria-disabled while an answer runs, not
              disabled: one focused when another tab sent lost the focus to the page. */}
          {isUser && !pending && (
            <button ref={editButton} type="button" className="icon" aria-label="Edit message" title="Edit" aria-disabled={locked || undefined} onClick={openEdit}>
              <Icon name="pencil" size={16} />
            </button>
          )}
          {!isUser && !streaming && (
            <button
              type="button"
              className="icon"
              aria-label="Regenerate answer"
              title="Regenerate"
              aria-disabled={locked || undefined}
              onClick={() => {
                if (locked) return;
                // The new version replaces this answer, this button with it:
                // the focus goes to the message box, where Stop is.
                focusBox(composerBox?.current);
                void app.regenerate(message.id);
              }}
            >
              <Icon name="refresh" size={16} />
            </button>
          )}
          {!isUser && message.usage && !streaming && <Usage usage={message.usage} />}
        </div>
      )}
    </article>
  );
});

/** FinishNote says why an answer ended when its text does not show it (an output limit, a content filter). */
function FinishNote({ message }: { message: Message }) {
  const notice = finishNotice(message);
  if (!notice) return null;
  return (
    <div className="msg-status status-finish" role="note" data-finish={notice.kind}>
      {notice.text}
    </div>
  );
}

function OmittedNote({ omitted }: { omitted: number | undefined }) {
  const label = omittedLabel(omitted);
  if (!label) return null;
  return (
    <p className="omitted-note" role="note" data-omitted={omitted}>
      {/* The count was only in the tooltip, which neither a screen reader nor the keyboard reaches: read in full instead. */}
      <span aria-hidden="true" title={label.title}>
        {label.text}
      </span>
      <span className="sr-only">{`${label.text}: ${label.title}`}</span>
    </p>
  );
}

function Usage({ usage }: { usage: UsageCounts }) {
  const { text, title } = usageLabel(usage);
  return (
    <span className="usage">
      {/* The prompt's tokens and the total were only in the tooltip, which a screen reader does not reach: read in full instead. */}
      <span aria-hidden="true" title={title}>
        {text}
      </span>
      <span className="sr-only">{title}</span>
    </span>
  );
}

/** UserText shows a user's message; a long one collapsed with "Show more". */
function UserText({ text }: { text: string }) {
  const long = isLongMessage(text);
  const [open, setOpen] = useState(false);
  const id = useId();
  if (!long)
    return (
      <div className="msg-text" dir="auto">
        {text}
      </div>
    );
  return (
    <div className={`msg-text collapsible${open ? ' expanded' : ''}`}>
      <div id={id} className="msg-text-body" dir="auto">
        {text}
      </div>
      <button type="button" className="link-button show-more" aria-expanded={open} aria-controls={id} onClick={() => setOpen(!open)}>
        {open ? 'Show less' : `Show more (${charCount(text).toLocaleString('en-US')} characters)`}
      </button>
    </div>
  );
}

function QueuedNote({ conversationId, clientMessageId }: { conversationId: string; clientMessageId: string }) {
  const app = useApp();
  const composerBox = useContext(ComposerBox);
  // The link up, the server itself refused it for now (Thread.serverWait): not the connection.
  const server = useAppState((s) => s.link.state === 'connected' && s.threads[conversationId]?.serverWait !== undefined);
  function cancel() {
    app.cancelQueued(conversationId, clientMessageId);
    focusBox(composerBox?.current); // where its text went back, to be edited
  }
  return (
    <div className="msg-note queued" role="status">
      {server ? 'Not sent yet: waiting for the server. It is sent as soon as it can take it.' : 'Not sent yet: waiting for the connection. It is sent as soon as the server is reachable.'}{' '}
      <button type="button" className="link-button" onClick={cancel}>
        Cancel and edit
      </button>
    </div>
  );
}

/**
 * EditBox edits a message for a new branch. While an answer runs in the
 * conversation (locked: it started after the box opened) it cannot be
 * sent, and says so: the server would refuse it (generation_running).
 * Reopened (in place of a version that went away with the box), it takes
 * the focus only from the page, where the focus fell, not from elsewhere.
 * Enter sends, Shift+Enter adds a line; on a touch screen (no Shift+Enter
 * on its keyboard) Enter adds a line and its Send button sends. Cancel or
 * Escape with the text changed from the message's (original) asks first
 * whether to discard it (DiscardQuestion): they threw the edit away.
 */
function EditBox({
  initial,
  original,
  reopened,
  locked,
  onChange,
  onCancel,
  onSubmit,
}: {
  initial: string;
  original: string;
  reopened: boolean;
  locked: boolean;
  onChange: (text: string) => void;
  onCancel: () => void;
  onSubmit: (text: string) => void;
}) {
  const [text, setText] = useState(initial);
  const length = lengthStatus(text);
  const counterId = useId();
  const lockedId = useId();
  const ok = hasVisible(text) && !length.over && !locked;
  const ref = useRef<HTMLTextAreaElement>(null);
  const touch = useCoarsePointer();
  useAutoGrow(ref, text); // from its three rows, as tall as its text up to the composer's cap
  /** Cancel or Escape asked what to do with the changed text. */
  const [asking, setAsking] = useState(false);
  function cancel() {
    if (hasVisible(text) && text !== original) setAsking(true);
    else onCancel();
  }
  function keepEditing() {
    setAsking(false);
    ref.current?.focus();
  }
  useEffect(() => {
    const ta = ref.current;
    if (!ta || (reopened && document.activeElement && document.activeElement !== document.body)) return;
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }, []);
  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Escape') {
      if (!isImeKey(e)) cancel(); // an Escape cancelling a conversion is the input method's
    } else if (e.key === 'Enter' && !e.shiftKey && !isImeKey(e) && (!touch || e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (ok) onSubmit(text);
    }
  }
  return (
    <div className="edit-box">
      <textarea
        ref={ref}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          onChange(e.target.value);
          setAsking(false);
        }}
        onKeyDown={onKey}
        enterKeyHint={touch ? 'enter' : 'send'}
        aria-label="Edit your message"
        dir="auto"
        aria-describedby={[length.show ? counterId : '', locked ? lockedId : ''].join(' ').trim() || undefined}
        aria-invalid={length.over || undefined}
        rows={3}
      />
      <LengthCounter id={counterId} length={length} />
      <p id={lockedId} className="counter edit-locked" role="status">
        {locked ? 'A message or an answer is on its way: send this once it is done.' : ''}
      </p>
      {asking ? (
        <DiscardQuestion onDiscard={onCancel} onKeep={keepEditing} />
      ) : (
        <div className="edit-actions">
          <button type="button" onClick={cancel}>
            Cancel
          </button>
          {/* aria-disabled, not disabled: locked by another tab's send, a
              disabled Send dropped the focus to the page (as Edit's did). */}
          <button type="button" className="primary" aria-disabled={!ok || undefined} onClick={() => ok && onSubmit(text)}>
            Send
          </button>
        </div>
      )}
    </div>
  );
}

/**
 * DiscardQuestion asks, in place of the edit box's buttons, whether to
 * throw its changed text away; Keep editing, which takes the focus, is the
 * answer of Escape too (the focus goes back to the text).
 */
function DiscardQuestion({ onDiscard, onKeep }: { onDiscard: () => void; onKeep: () => void }) {
  const id = useId();
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => keep.current?.focus(), []);
  return (
    <div
      className="edit-actions edit-discard"
      role="group"
      aria-labelledby={id}
      onKeyDown={(e) => {
        if (e.key !== 'Escape') return;
        e.preventDefault();
        onKeep();
      }}
    >
      <span id={id}>Discard your changes?</span>
      <button ref={keep} type="button" onClick={onKeep}>
        Keep editing
      </button>
      <button type="button" className="danger" onClick={onDiscard}>
        Discard
      </button>
    </div>
  );
}
