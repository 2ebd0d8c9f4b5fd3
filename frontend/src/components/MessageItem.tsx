// One message of the shown path: its text, status, usage and actions.

import { memo, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useApp } from '../hooks/app';
import { copyText } from '../lib/clipboard';
import type { Message } from '../lib/protocol';
import { PENDING_PREFIX } from '../lib/thread';
import { Icon } from './icons';
import { Markdown } from './Markdown';

/** MessageItemProps: the message, its version position and whether actions are allowed. */
export interface MessageItemProps {
  message: Message;
  version: number;
  versions: number;
  /** An answer is running in the conversation: no regenerate or edit now. */
  locked: boolean;
  modelName: string;
}

const statusText: Record<string, string> = {
  cancelled: 'Stopped',
  error: 'Error',
  interrupted: 'Interrupted',
};

/** MessageItem renders one message. */
export const MessageItem = memo(function MessageItem({ message, version, versions, locked, modelName }: MessageItemProps) {
  const app = useApp();
  const [editing, setEditing] = useState(false);
  const [copied, setCopied] = useState(false);
  const pending = message.id.startsWith(PENDING_PREFIX);
  const isUser = message.role === 'user';
  const streaming = message.status === 'streaming';

  async function copy() {
    if (await copyText(message.content)) {
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    }
  }

  return (
    <article
      className={`msg ${isUser ? 'msg-user' : 'msg-assistant'}${pending ? ' msg-pending' : ''}`}
      data-message-id={message.id}
      data-status={message.status}
      aria-label={isUser ? 'Your message' : 'Answer'}
      aria-busy={streaming || undefined}
    >
      {!isUser && <div className="msg-author">{modelName || 'Assistant'}</div>}
      {editing ? (
        <EditBox
          initial={message.content}
          onCancel={() => setEditing(false)}
          onSubmit={(text) => {
            setEditing(false);
            void app.editAndResend(message.id, text);
          }}
        />
      ) : isUser ? (
        <div className="msg-text">{message.content}</div>
      ) : (
        <div className="msg-body">
          {message.content ? <Markdown text={message.content} /> : streaming ? <Typing /> : null}
        </div>
      )}
      {!streaming && statusText[message.status] && (
        <div className={`msg-status status-${message.status}`} role="note">
          {statusText[message.status]}
          {message.error ? `: ${message.error}` : message.status === 'cancelled' ? ' by the user.' : '.'}
        </div>
      )}
      {!editing && (
        <div className="msg-actions">
          {versions > 1 && (
            <span className="versions" role="group" aria-label="Versions">
              <button
                type="button"
                className="icon"
                aria-label="Previous version"
                disabled={version <= 1}
                onClick={() => app.switchVersion(message.id, -1)}
              >
                <Icon name="left" size={16} />
              </button>
              <span className="version-count" aria-live="polite">
                {version}/{versions}
              </span>
              <button
                type="button"
                className="icon"
                aria-label="Next version"
                disabled={version >= versions}
                onClick={() => app.switchVersion(message.id, 1)}
              >
                <Icon name="right" size={16} />
              </button>
            </span>
          )}
          {!streaming && message.content && (
            <button type="button" className="icon" aria-label={copied ? 'Copied' : 'Copy message'} title="Copy" onClick={copy}>
              <Icon name={copied ? 'check' : 'copy'} size={16} />
            </button>
          )}
          {isUser && !pending && (
            <button type="button" className="icon" aria-label="Edit message" title="Edit" disabled={locked} onClick={() => setEditing(true)}>
              <Icon name="pencil" size={16} />
            </button>
          )}
          {!isUser && !streaming && (
            <button
              type="button"
              className="icon"
              aria-label="Regenerate answer"
              title="Regenerate"
              disabled={locked}
              onClick={() => void app.regenerate(message.id)}
            >
              <Icon name="refresh" size={16} />
            </button>
          )}
          {!isUser && message.usage && !streaming && (
            <span className="usage" title={`${message.usage.promptTokens} prompt + ${message.usage.completionTokens} completion tokens`}>
              {message.usage.totalTokens} tokens
            </span>
          )}
        </div>
      )}
    </article>
  );
});

function Typing() {
  return (
    <div className="typing" aria-label="The answer is being written">
      <span />
      <span />
      <span />
    </div>
  );
}

function EditBox({ initial, onCancel, onSubmit }: { initial: string; onCancel: () => void; onSubmit: (text: string) => void }) {
  const [text, setText] = useState(initial);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const ta = ref.current;
    if (!ta) return;
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }, []);
  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Escape') onCancel();
    else if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (text.trim()) onSubmit(text);
    }
  }
  return (
    <div className="edit-box">
      <textarea ref={ref} value={text} onChange={(e) => setText(e.target.value)} onKeyDown={onKey} aria-label="Edit your message" rows={3} />
      <div className="edit-actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="primary" disabled={!text.trim()} onClick={() => onSubmit(text)}>
          Send
        </button>
      </div>
    </div>
  );
}
