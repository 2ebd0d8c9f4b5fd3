// The model picker, grouped by the upstream server that serves each model;
// the offline demo model is clearly labelled as such.

import { currentModel, groupModels, modelLabel, unavailableNotice } from '../lib/models';
import type { ModelInfo, UpstreamInfo } from '../lib/protocol';

/** ModelPickerProps: the models and upstreams of GET /api/models, the picked id and its setter. */
export interface ModelPickerProps {
  models: readonly ModelInfo[];
  upstreams: readonly UpstreamInfo[];
  value: string;
  onChange: (id: string) => void;
  /** Why no other model can be picked now (the picker is then disabled, its title saying it), or undefined. */
  locked?: string;
}

/**
 * ModelPicker renders a select of the models, an option group per upstream.
 * A value the list lacks (a conversation's model, whose upstream could
 * not list its models when the list was loaded) is shown as it is, marked
 * unavailable, not as the default model: the server answers with it once
 * it is listed again, and the list is loaded again after a reconnect. ''
 * shows the default model. The new chat's pick the list lacks is passed
 * as '' (newChatModel: the server would refuse it), PickUnavailableNotice
 * saying so.
 */
export function ModelPicker({ models, upstreams, value, onChange, locked }: ModelPickerProps) {
  if (models.length === 0) return null;
  const current = currentModel(models, value);
  const missing = value !== '' && !current;
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
      value={missing ? value : (current?.id ?? '')}
      onChange={(e) => onChange(e.target.value)}
      disabled={locked !== undefined}
      title={locked ?? (missing ? unavailableTitle(value) : current?.demo ? 'The demo model answers offline with canned text. It is not a real language model.' : pickerTitle(current))}
    >
      {missing && (
        <option value={value} disabled>
          {unavailableLabel(value)}
        </option>
      )}
      {ungrouped.map(option)}
      {groups.map((g) => (
        <optgroup key={g.name} label={g.label}>
          {g.models.map(option)}
        </optgroup>
      ))}
    </select>
  );
}

/** unavailableLabel names a model the list lacks, as its option says it. */
export function unavailableLabel(id: string): string {
  return `${id} (unavailable)`;
}

function unavailableTitle(id: string): string {
  return `Model: ${id}, not offered by the server right now. Pick another, or wait for it to be listed again.`;
}

function pickerTitle(m: ModelInfo | undefined): string {
  if (!m?.upstreamLabel) return 'Model';
  return `Model: ${modelLabel(m)}, served by ${m.upstreamLabel}`;
}

/**
 * PickUnavailableNotice is the line under the header while the model
 * picked for new chats (id) is not offered: the picker shows the default,
 * which new chats use until it is offered again.
 */
export function PickUnavailableNotice({ id }: { id: string }) {
  return (
    <p className="demo-note model-unavailable" role="note">
      {unavailableNotice(id)}
    </p>
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
