// The model picker; the offline demo model is clearly labelled as such.

import type { ModelInfo } from '../lib/protocol';

/** modelLabel is how a model is named in the UI. */
export function modelLabel(m: ModelInfo): string {
  return m.demo ? 'Demo (offline)' : m.name || m.id;
}

/** currentModel is the model shown as picked for value (the default when value is unknown). */
export function currentModel(models: readonly ModelInfo[], value: string): ModelInfo | undefined {
  return models.find((m) => m.id === value) ?? models.find((m) => m.default);
}

/** ModelPicker renders a select of the models. */
export function ModelPicker({ models, value, onChange }: { models: readonly ModelInfo[]; value: string; onChange: (id: string) => void }) {
  if (models.length === 0) return null;
  const current = currentModel(models, value);
  const known = models.some((m) => m.id === value);
  return (
    <select
      className="model-picker"
      aria-label="Model"
      value={known ? value : (current?.id ?? '')}
      onChange={(e) => onChange(e.target.value)}
      title={current?.demo ? 'The demo model answers offline with canned text. It is not a real language model.' : 'Model'}
    >
      {models.map((m) => (
        <option key={m.id} value={m.id}>
          {modelLabel(m)}
        </option>
      ))}
    </select>
  );
}

/** DemoNotice is the line under the header while the demo model is picked. */
export function DemoNotice() {
  return (
    <p className="demo-note" role="note">
      Demo model: answers are generated offline; no real model is used.
    </p>
  );
}
