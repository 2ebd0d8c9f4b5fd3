// The model picker, grouped by the upstream server that serves each model;
// the offline demo model is clearly labelled as such.

import { currentModel, groupModels, modelLabel } from '../lib/models';
import type { ModelInfo, UpstreamInfo } from '../lib/protocol';

/** ModelPickerProps: the models and upstreams of GET /api/models, the picked id and its setter. */
export interface ModelPickerProps {
  models: readonly ModelInfo[];
  upstreams: readonly UpstreamInfo[];
  value: string;
  onChange: (id: string) => void;
}

/** ModelPicker renders a select of the models, an option group per upstream. */
export function ModelPicker({ models, upstreams, value, onChange }: ModelPickerProps) {
  if (models.length === 0) return null;
  const current = currentModel(models, value);
  const known = models.some((m) => m.id === value);
  const { ungrouped, groups } = groupModels(models, upstreams);
  const option = (m: ModelInfo) => (
    <option key={m.id} value={m.id}>
      {modelLabel(m)}
    </option>
  );
  return (
    <select
      className="model-picker"
      aria-label="Model"
      value={known ? value : (current?.id ?? '')}
      onChange={(e) => onChange(e.target.value)}
      title={current?.demo ? 'The demo model answers offline with canned text. It is not a real language model.' : pickerTitle(current)}
    >
      {ungrouped.map(option)}
      {groups.map((g) => (
        <optgroup key={g.name} label={g.label}>
          {g.models.map(option)}
        </optgroup>
      ))}
    </select>
  );
}

function pickerTitle(m: ModelInfo | undefined): string {
  if (!m?.upstreamLabel) return 'Model';
  return `Model: ${modelLabel(m)}, served by ${m.upstreamLabel}`;
}

/** DemoNotice is the line under the header while the demo model is picked. */
export function DemoNotice() {
  return (
    <p className="demo-note" role="note">
      Demo model: answers are generated offline; no real model is used.
    </p>
  );
}
