import { useId, useState } from 'react';
import { MAX_SYSTEM_PROMPT_CHARS, lengthStatus } from '../lib/limits';
import { Dialog } from './Dialog';

/** SystemPromptDialog edits a conversation's system prompt. */
export function SystemPromptDialog({ initial, onSave, onClose }: { initial: string; onSave: (text: string) => Promise<boolean>; onClose: () => void }) {
  const [text, setText] = useState(initial);
  const [saving, setSaving] = useState(false);
  // Always counted (the limit is small); over it, Save is refused, never the text cut.
  const length = lengthStatus(text, MAX_SYSTEM_PROMPT_CHARS, 0);
  const counterId = useId();
  return (
    <Dialog
      title="System prompt"
      onClose={onClose}
      actions={
        <>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="primary"
            disabled={saving || length.over}
            onClick={async () => {
              setSaving(true);
              const ok = await onSave(text);
              setSaving(false);
              if (ok) onClose();
            }}
          >
            Save
          </button>
        </>
      }
    >
      <p className="hint">Instructions the model gets before every message of this conversation.</p>
      <textarea
        className="system-prompt"
        value={text}
        onChange={(e) => setText(e.target.value)}
        rows={8}
        aria-describedby={counterId}
        aria-invalid={length.over || undefined}
        aria-label="System prompt"
        placeholder="You are a helpful assistant."
      />
      <p id={counterId} className={`hint counter${length.over ? ' over' : ''}`} role={length.over ? 'alert' : undefined}>
        {length.text}
      </p>
    </Dialog>
  );
}
