// The model picker; the offline demo model is clearly labelled as such.

import type { ModelInfo } from '../lib/protocol';

/** modelLabel is how a model is named in the UI. */
export function modelLabel(m: ModelInfo): string {
  return m.demo ? 'Demo (offline)' : m.name || m.id;
}

/** ModelPicker renders a select of the models. */
export function ModelPicker({ models, value, onChange }: { models: readonly ModelInfo[]; value: string; onChange: (id: string) => void }) {
  if (models.length === 0) return null;
  const current = models.find((m) => m.id === value) ?? models.find((m) => m.default);
  const known = models.some((m) => m.id === value);
  return (
    <span className="model-picker">
      <select
        aria-label="Model"
        value={known ? value : (current?.id ?? '')}
        onChange={(e) => onChange(e.target.value)}
        title={current?.demo ? 'The demo model answers offline with canned text. It is not a real language model.' : undefined}
      >
        {models.map((m) => (
          <option key={m.id} value={m.id}>
            {modelLabel(m)}
          </option>
        ))}
      </select>
      {current?.demo && (
        <span className="demo-note" role="note">
          Demo answers are generated offline; no real model is used.
        </span>
      )}
    </span>
  );
}
