import { useState } from 'react';
import { Dialog } from './Dialog';

/** SystemPromptDialog edits a conversation's system prompt. */
export function SystemPromptDialog({ initial, onSave, onClose }: { initial: string; onSave: (text: string) => Promise<boolean>; onClose: () => void }) {
  const [text, setText] = useState(initial);
  const [saving, setSaving] = useState(false);
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
            disabled={saving}
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
        maxLength={8000}
        rows={8}
        aria-label="System prompt"
        placeholder="You are a helpful assistant."
      />
      <p className="hint">{text.length} / 8000</p>
    </Dialog>
  );
}
